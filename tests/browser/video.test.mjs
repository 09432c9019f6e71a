// Video and screen share in voice channels (issue 15), in real Chromium against the real
// server: three people in `lounge` (three contexts in one browser, fake camera and fake
// screen). Alice's camera reaches Bob (framesDecoded rising) and her tile falls back to the
// avatar when she stops; her screen share reaches only Carol, who asked to watch it (Bob's
// inbound video bytes stay flat); and a /ws client sees the `video` / `screen` flags in
// `voice_state`. The shared helpers are in lib/video.mjs.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/server.mjs';
import { closeQuietly } from './lib/browser.mjs';
import { launchMediaBrowser, openVideoUser as openUser, videoDelta, framesArrive, joinVoice, sleep } from './lib/video.mjs';

/** @typedef {import('./lib/video.mjs').VideoUser} User */

describe('video and screen share', { timeout: 90_000 }, () => {
  /** @type {Awaited<ReturnType<typeof startServer>>} */
  let server;
  /** @type {import('playwright-core').Browser} */
  let browser;
  /** @type {User[]} */
  let users = [];

  before(async () => {
    server = await startServer();
    browser = await launchMediaBrowser();
  });
  after(async () => {
    for (const u of users) await closeQuietly(u);
    await browser?.close().catch(() => {});
    await server?.dispose();
  });

  it('camera reaches the room, a share only its watcher, and /ws sees the flags', async () => {
    const alice = await openUser(browser, server.url, 'alice');
    const bob = await openUser(browser, server.url, 'bob');
    const carol = await openUser(browser, server.url, 'carol');
    users = [alice, bob, carol];
    // Carol's page also holds a /ws socket of its own, to read voice_state as any client would.
    await carol.page.evaluate(() => {
      const w = /** @type {any} */ (window);
      w.__states = [];
      const ws = new WebSocket(`ws://${location.host}/ws`);
      ws.onmessage = (ev) => {
        const f = JSON.parse(ev.data);
        if (f.type === 'voice_state') w.__states.push(f);
      };
      return new Promise((r) => { ws.onopen = r; });
    });
    for (const u of users) await joinVoice(u);
    for (const u of [bob, carol]) {
      await u.page.locator('#voice-panel .vp-person[data-user="alice"][data-state="connected"]').waitFor({ timeout: 15_000 });
    }
    await bob.page.locator('#voice-panel .vp-person[data-user="carol"][data-state="connected"]').waitFor({ timeout: 15_000 });

    // Camera on: Bob decodes Alice's frames, and her tile shows video instead of her avatar.
    await alice.page.click('#voice-panel .vp-camera');
    await alice.page.locator('#voice-panel .vp-camera[aria-pressed="true"]').waitFor();
    await bob.page.locator('#sidebar .voice-member .vm-camera').waitFor();
    await framesArrive(bob, 'camera');
    await bob.page.locator('#voice-video .vv-tile[data-key^="cam:"][data-user="alice"][data-video="true"]').waitFor();
    await bob.page.locator('#voice-video .vv-tile[data-user="bob"][data-video="false"] .avatar').waitFor();

    // Camera off: the tile falls back to the avatar, frames stop, the local track ended.
    await alice.page.click('#voice-panel .vp-camera');
    await bob.page.locator('#voice-video[hidden]').waitFor({ state: 'attached' });
    await sleep(1_000); // frames in flight
    const afterCam = await videoDelta(bob);
    assert.equal(afterCam.frames, 0, `no camera frames after it is off: ${JSON.stringify(afterCam)}`);
    const live = await alice.page.evaluate(() => /** @type {any} */ (window).__video.pcs
      .flatMap((/** @type {RTCPeerConnection} */ pc) => pc.signalingState === 'closed' ? [] : pc.getSenders())
      .filter((/** @type {RTCRtpSender} */ s) => s.track?.kind === 'video' && s.track.readyState === 'live').length);
    assert.equal(live, 0, 'alice sends no live video track');

    // Screen share: both see a LIVE tile with a Watch button; only Carol clicks it.
    await alice.page.click('#voice-panel .vp-share');
    for (const u of [bob, carol]) {
      await u.page.locator('#voice-video .vv-screen[data-user="alice"] .vv-label', { hasText: 'LIVE' }).waitFor();
    }
    await carol.page.click('#voice-video .vv-screen[data-user="alice"] .vv-watch');
    await framesArrive(carol, 'screen');
    await carol.page.locator('#voice-video .vv-stage .vv-screen[data-user="alice"][data-video="true"]').waitFor();
    if (process.env.MD_VIDEO_SCREENSHOT) await carol.page.screenshot({ path: process.env.MD_VIDEO_SCREENSHOT });
    const bobDuring = await videoDelta(bob);
    assert.equal(bobDuring.bytes, 0, `bob did not ask to watch: no video bytes (${JSON.stringify(bobDuring)})`);
    await bob.page.locator('#voice-video .vv-screen[data-user="alice"][data-video="false"] .vv-watch').waitFor();
    // Bob's sidebar (fed by /ws voice_state) says Alice is live.
    await bob.page.locator('#sidebar .voice-member .vm-live', { hasText: 'LIVE' }).waitFor();

    // /ws saw the flags: camera on, then off, then screen on.
    const states = await carol.page.evaluate(() => /** @type {any} */ (window).__states
      .filter((/** @type {any} */ f) => f.user === 'alice'));
    assert.ok(states.some((/** @type {any} */ f) => f.video === true && f.screen === false), JSON.stringify(states));
    assert.ok(states.some((/** @type {any} */ f) => f.video === false && f.screen === true), JSON.stringify(states));

    // Stop sharing: the LIVE tile goes, and Carol's frames stop.
    await alice.page.click('#voice-panel .vp-share');
    await carol.page.locator('#voice-video .vv-screen').waitFor({ state: 'detached' });
    await sleep(1_000);
    const afterShare = await videoDelta(carol);
    assert.equal(afterShare.frames, 0, `no screen frames after the share stopped: ${JSON.stringify(afterShare)}`);

    for (const u of users) assert.deepEqual(u.problems, [], `${u.username}: no page errors`);
  });
});
