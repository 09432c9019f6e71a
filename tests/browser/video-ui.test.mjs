// The call window's extras (issue 15), in real Chromium against the real server:
// - the connection info in the voice panel shows, per video stream, resolution, frame rate,
//   bitrate and packets lost (what we receive and what we send);
// - a tile with video goes full screen (Fullscreen API) and, where the browser offers it,
//   picture in picture;
// - the `stream` permission ("Run a community", built on another branch): a channel object
//   whose `permissions` lack `stream` disables the camera and share buttons, and a
//   `forbidden` answer to our `state` turns them off with a clear notice. Both come from the
//   real server: a role's overwrite denies `stream` in lounge.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/server.mjs';
import { closeQuietly, PASSWORD } from './lib/browser.mjs';
import { launchMediaBrowser, openVideoUser, framesArrive, joinVoice, connectedTo } from './lib/video.mjs';

/** A line of the connection info for one video stream, e.g. "Camera 640×360 · 30 fps · 812 kbit/s · 0 lost". */
const STAT_LINE = (/** @type {string} */ label) => new RegExp(`^${label} \\d+×\\d+ · \\d+ fps · [\\d.]+ (kbit|Mbit)/s · \\d+ lost$`);

/** Path of a WebSocket URL. @param {URL} url */
const wsPath = (url) => url.pathname;

/** @type {string} */
let base = '';
/**
 * A REST call to the real server, by Bearer token (no Origin needed).
 * @param {string} method @param {string} path @param {string|null} token @param {unknown} [body]
 * @returns {Promise<any>}
 */
async function api(method, path, token, body) {
  /** @type {Record<string, string>} */
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const r = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  assert.ok(r.ok, `${method} ${path}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

describe('video: connection info, full screen, picture in picture', { timeout: 150_000 }, () => {
  /** @type {Awaited<ReturnType<typeof startServer>>} */
  let server;
  /** @type {import('playwright-core').Browser} */
  let browser;
  /** @type {import('./lib/video.mjs').VideoUser[]} */
  const users = [];

  before(async () => {
    server = await startServer();
    base = server.url.replace(/\/$/, '');
    browser = await launchMediaBrowser();
  });
  after(async () => {
    for (const u of users) await closeQuietly(u);
    await browser?.close().catch(() => {});
    await server?.dispose();
  });

  it('shows per-stream video stats, and a tile goes full screen and picture in picture', async () => {
    const alice = await openVideoUser(browser, server.url, 'alice');
    const bob = await openVideoUser(browser, server.url, 'bob');
    users.push(alice, bob);
    await joinVoice(alice);
    await joinVoice(bob);
    await connectedTo(bob, 'alice');

    await alice.page.click('#voice-panel .vp-camera');
    await framesArrive(bob, 'camera');
    // Bob's row for Alice: what he receives. Alice's row for Bob: what she sends him.
    const inbound = bob.page.locator('#voice-panel .vp-person[data-user="alice"] .vp-video-stat', { hasText: /^Camera / });
    await inbound.waitFor({ timeout: 10_000 });
    await bob.page.waitForFunction((re) => [...document.querySelectorAll('#voice-panel .vp-person[data-user="alice"] .vp-video-stat')]
      .some((e) => new RegExp(re).test(e.textContent ?? '')), STAT_LINE('Camera').source, { timeout: 10_000 });
    const line = await inbound.textContent();
    assert.match(line ?? '', STAT_LINE('Camera'));
    const [, w, hgt] = /(\d+)×(\d+)/.exec(line ?? '') ?? [];
    assert.ok(Number(w) > 0 && Number(hgt) > 0, `a resolution: ${line}`);
    await alice.page.waitForFunction((re) => [...document.querySelectorAll('#voice-panel .vp-person[data-user="bob"] .vp-video-stat')]
      .some((e) => new RegExp(re).test(e.textContent ?? '')), STAT_LINE('Sending camera').source, { timeout: 10_000 });

    // Full screen: the tile (with its label) fills the screen, and leaves it again.
    const tile = bob.page.locator('#voice-video .vv-tile[data-key^="cam:"][data-user="alice"][data-video="true"]');
    await tile.locator('.vv-fullscreen').click();
    await bob.page.waitForFunction(() => document.fullscreenElement?.matches('.vv-tile[data-user="alice"]') ?? false);
    assert.equal(await bob.page.locator('#voice-video .vv-stage').isHidden(), true, 'the button does not focus the tile');
    await bob.page.locator('.vv-tile[data-user="alice"] .vv-fullscreen').click();
    await bob.page.waitForFunction(() => document.fullscreenElement === null);

    // Picture in picture, where offered: the tile's <video> goes into the floating window.
    const offered = await bob.page.evaluate(() => !!document.pictureInPictureEnabled);
    assert.equal(await tile.locator('.vv-pip').count(), offered ? 1 : 0, 'the button is there exactly when the browser offers it');
    if (offered) {
      await tile.locator('.vv-pip').click();
      await bob.page.waitForFunction(() => document.pictureInPictureElement?.closest('.vv-tile[data-user="alice"]') != null);
      // The camera stops: the tile loses its video, and picture in picture closes with it.
      await alice.page.click('#voice-panel .vp-camera');
      await bob.page.waitForFunction(() => document.pictureInPictureElement === null, null, { timeout: 10_000 });
    } else {
      await alice.page.click('#voice-panel .vp-camera');
    }

    // A screen share being watched gets its own line.
    await alice.page.click('#voice-panel .vp-share');
    await bob.page.click('#voice-video .vv-screen[data-user="alice"] .vv-watch');
    await framesArrive(bob, 'screen');
    await bob.page.waitForFunction((re) => [...document.querySelectorAll('#voice-panel .vp-person[data-user="alice"] .vp-video-stat')]
      .some((e) => new RegExp(re).test(e.textContent ?? '')), STAT_LINE('Screen').source, { timeout: 10_000 });
    await alice.page.click('#voice-panel .vp-share');
    for (const u of users) assert.deepEqual(u.problems, [], `${u.username}: no page errors`);
    // Out of the call, so the next test's room is only its own two (less load on two cores).
    for (const u of [alice, bob]) await closeQuietly(u);
  });

  it('without `stream` the camera and share buttons are disabled, and a refusal says so', async () => {
    // The real server's permissions ("Run a community"): the owner (alice, the first account
    // of this file) makes a role whose overwrite in lounge denies `stream`, and gives it to
    // carol and dave. Carol's channel objects then lack `stream`, so her buttons are off.
    const owner = await api('POST', '/api/login', null, { username: 'alice', password: PASSWORD });
    const token = owner.token;
    const role = (await api('POST', '/api/roles', token, { name: 'No video' })).id;
    await api('PUT', `/api/channels/lounge/overwrites/${role}`, token, { allow: [], deny: ['stream'] });
    const carol = await openVideoUser(browser, server.url, 'carol');
    // Dave's page is an older client: it ignores `permissions` (Playwright strips them from
    // what reaches his page), so he may try, and the real server's refusal is what he meets.
    /** @param {any} c */
    const strip = (c) => { delete c.permissions; return c; };
    const dave = await openVideoUser(browser, server.url, 'dave', {
      setup: async (context) => {
        await context.routeWebSocket((url) => wsPath(url) === '/ws', (ws) => {
          const up = ws.connectToServer();
          up.onMessage((m) => {
            const f = JSON.parse(String(m));
            for (const c of [...(f.channels ?? []), ...(f.channel ? [f.channel] : [])]) strip(c);
            ws.send(JSON.stringify(f));
          });
        });
        await context.route((url) => url.pathname === '/api/channels', async (route) => {
          const r = await route.fetch();
          const body = await r.json();
          await route.fulfill({ response: r, json: Array.isArray(body) ? body.map(strip) : body });
        });
      },
    });
    for (const name of ['carol', 'dave']) await api('PUT', `/api/members/${name}/roles/${role}`, token);
    users.push(carol, dave);
    await joinVoice(carol);
    await joinVoice(dave);
    await connectedTo(carol, 'dave');

    for (const sel of ['.vp-camera', '.vp-share']) {
      const btn = carol.page.locator(`#voice-panel ${sel}`);
      assert.equal(await btn.isDisabled(), true, `${sel} is disabled without stream`);
      assert.match(await btn.getAttribute('title') ?? '', /do not have permission/);
    }
    assert.equal(await carol.page.locator('#voice-panel .vp-quality').isHidden(), true, 'no quality choice');
    await carol.page.locator('#voice-panel .vp-camera').dispatchEvent('click');
    assert.equal(await carol.page.locator('#voice-panel .vp-camera[aria-pressed="true"]').count(), 0, 'a forced click does nothing');

    // Dave may try (his channel says nothing); the server's refusal turns the camera off and
    // says why, and the call goes on.
    assert.equal(await dave.page.locator('#voice-panel .vp-camera').isDisabled(), false, 'a channel without `permissions` allows it');
    await dave.page.click('#voice-panel .vp-camera');
    await dave.page.locator('#voice-panel .vp-notice', { hasText: 'not allowed to use the camera or share your screen in lounge' }).waitFor();
    await dave.page.locator('#voice-panel .vp-camera[aria-pressed="false"]').waitFor();
    assert.match(await dave.page.locator('#voice-panel .vp-notice').textContent() ?? '', /you need stream/);
    assert.equal(await dave.page.locator('#voice-panel[data-phase="connected"]').count(), 1, 'still in the call');
    const live = await dave.page.evaluate(() => /** @type {any} */ (window).__video.pcs
      .flatMap((/** @type {RTCPeerConnection} */ pc) => pc.signalingState === 'closed' ? [] : pc.getSenders())
      .filter((/** @type {RTCRtpSender} */ s) => s.track?.kind === 'video').length);
    assert.equal(live, 0, 'dave sends no video track');
    for (const u of [carol, dave]) assert.deepEqual(u.problems, [], `${u.username}: no page errors`);
  });
});
