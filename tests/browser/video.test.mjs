// Video and screen share in voice channels (issue 15), in real Chromium against the real
// server: three people in `lounge` (three contexts in one browser, fake camera and fake
// screen). Alice's camera reaches Bob (framesDecoded rising) and her tile falls back to the
// avatar when she stops; her screen share reaches only Carol, who asked to watch it (Bob's
// inbound video bytes stay flat); and a /ws client sees the `video` / `screen` flags in
// `voice_state`. Read ../../../shared/notes/browser-and-turn-testing.md first.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { startServer } from './lib/server.mjs';
import { ARGS, CHROMIUM, signIn, closeQuietly } from './lib/browser.mjs';

const MEDIA_ARGS = ['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream', '--allow-loopback-in-peer-connection'];
const SAMPLE_MS = 1_500; // between two getStats() snapshots
const sleep = (/** @type {number} */ ms) => new Promise((r) => setTimeout(r, ms));

/** Runs in the page before the app: keeps its peer connections for getStats(), and records
 * the `voice_state` events of a /ws socket of its own (the app's is not reachable). */
function instrument() {
  const Orig = window.RTCPeerConnection;
  /** @type {RTCPeerConnection[]} */
  const pcs = [];
  // @ts-ignore
  window.RTCPeerConnection = class extends Orig {
    /** @param {any[]} a */
    constructor(...a) {
      super(...a);
      pcs.push(this);
    }
  };
  /** Inbound video over every open peer connection. */
  async function video() {
    let bytes = 0, frames = 0;
    for (const pc of pcs.filter((p) => p.signalingState !== 'closed')) {
      (await pc.getStats()).forEach((/** @type {any} */ s) => {
        if (s.type === 'inbound-rtp' && s.kind === 'video') {
          bytes += s.bytesReceived ?? 0;
          frames += s.framesDecoded ?? 0;
        }
      });
    }
    return { bytes, frames };
  }
  // @ts-ignore
  window.__video = { pcs, video };
}

/** @param {import('playwright-core').Browser} browser @param {string} url @param {string} name */
async function openUser(browser, url, name) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, permissions: ['microphone', 'camera'] });
  context.setDefaultTimeout(10_000);
  await context.addInitScript(instrument);
  const page = await context.newPage();
  /** @type {string[]} */
  const problems = [];
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !/WebSocket connection|Failed to load resource/.test(msg.text())) problems.push(`console: ${msg.text()}`);
  });
  await page.goto(url);
  await signIn(page, name, 'register');
  return { context, page, problems, username: name };
}

/** @typedef {Awaited<ReturnType<typeof openUser>>} User */

/** @param {User} u */
const video = (u) => u.page.evaluate(() => /** @type {any} */ (window).__video.video());

/** Inbound video of `u` during SAMPLE_MS. @param {User} u */
async function videoDelta(u) {
  const a = await video(u);
  await sleep(SAMPLE_MS);
  const b = await video(u);
  return { bytes: b.bytes - a.bytes, frames: b.frames - a.frames };
}

/** Waits (bounded) until `u` receives decoded video frames. @param {User} u */
async function framesArrive(u, what) {
  const deadline = Date.now() + 15_000;
  let d = { bytes: 0, frames: 0 };
  while (Date.now() < deadline) {
    d = await videoDelta(u);
    if (d.frames > 0) return d;
  }
  assert.fail(`${u.username} decoded no ${what} frames (last delta ${JSON.stringify(d)})`);
}

/** @param {User} u */
async function joinVoice(u) {
  await u.page.click('#sidebar .chan.voice[data-channel="lounge"]');
  await u.page.locator('#voice-panel[data-phase="connected"]').waitFor();
}

describe('video and screen share', { timeout: 90_000 }, () => {
  /** @type {Awaited<ReturnType<typeof startServer>>} */
  let server;
  /** @type {import('playwright-core').Browser} */
  let browser;
  /** @type {User[]} */
  let users = [];

  before(async () => {
    server = await startServer();
    browser = await chromium.launch({ executablePath: CHROMIUM, args: [...ARGS, ...MEDIA_ARGS], headless: true, timeout: 30_000 });
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
