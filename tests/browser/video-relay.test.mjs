// Video through a real coturn, relay only (issue 15): coturn runs with the SHIPPED
// deploy/turnserver.conf, adapted by lib/turn.mjs only where a test must (loopback listener
// and relay address, a random port and relay range, a temp dir for pid/db, a test secret,
// loopback peers allowed — both browsers relay from 127.0.0.1). Its limits (max-bps,
// user-quota, total-quota) are the shipped ones, so this test fails if they do not fit video.
// Two contexts with the app's "Relay only" setting (iceTransportPolicy: relay). The fake camera
// plays random noise (lib/video.mjs noiseClip), which an encoder cannot compress, so the
// camera's bitrate is set by the caps on the way: the app's (800 kbit/s for one receiver) and
// coturn's max-bps. Alice's camera reaches Bob relayed (framesDecoded rising, the selected pair
// relay/relay) at more than the old max-bps=64000 (512 kbit/s) could carry — this failed
// with that value — and then her screen share arrives relayed too. The bitrates measured here
// are the ones docs/DEPLOY.md quotes for the TURN host.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/server.mjs';
import { startTurn } from './lib/turn.mjs';
import { closeQuietly } from './lib/browser.mjs';
import {
  launchMediaBrowser, noiseClip, openVideoUser, framesArrive, videoDelta, joinVoice, connectedTo, sleep,
} from './lib/video.mjs';

/** The per-session cap the shipped file had before (max-bps=64000 bytes/s): a relayed share
 * must get through faster than that, or the cap is what limits it. */
const OLD_CAP_BPS = 64_000 * 8;
/** How long a bitrate is measured. */
const MEASURE_MS = 4_000;
/** Bandwidth estimation starts low and ramps up; the camera is given this long to pass the old cap. */
const RAMP_DEADLINE_MS = 30_000;

/** @param {{bytes:number, secs:number, frames:number}} d */
const rate = (d) => `${Math.round((d.bytes * 8) / d.secs / 1000)} kbit/s at the receiver, ${(d.frames / d.secs).toFixed(0)} fps`;

/**
 * The fastest MEASURE_MS window of `u`'s inbound video until it passes 1.2 x the old cap or
 * RAMP_DEADLINE_MS is over (bandwidth estimation needs a while to ramp up).
 * @param {import('./lib/video.mjs').VideoUser} u
 */
async function fastest(u) {
  const deadline = Date.now() + RAMP_DEADLINE_MS;
  let best = await videoDelta(u, MEASURE_MS);
  while (Date.now() < deadline && (best.bytes * 8) / best.secs <= OLD_CAP_BPS * 1.2) {
    const d = await videoDelta(u, MEASURE_MS);
    if (d.bytes / d.secs > best.bytes / best.secs) best = d;
  }
  // Once past the cap, one more window: what it settles at is what DEPLOY.md quotes.
  const more = await videoDelta(u, MEASURE_MS);
  return more.bytes / more.secs > best.bytes / best.secs ? more : best;
}

describe('video: through coturn (relay only, shipped turnserver.conf)', { timeout: 120_000 }, () => {
  const secret = `video-test-${Math.random().toString(36).slice(2)}`;
  /** @type {Awaited<ReturnType<typeof startTurn>>} */
  let turn;
  /** @type {Awaited<ReturnType<typeof startServer>>} */
  let server;
  /** @type {import('playwright-core').Browser} */
  let browser;
  /** @type {import('./lib/video.mjs').VideoUser[]} */
  const users = [];

  before(async () => {
    turn = await startTurn({ secret });
    server = await startServer({ env: { TURN_HOST: '127.0.0.1', TURN_PORT: String(turn.port), TURN_SECRET: secret } });
    browser = await launchMediaBrowser({ cameraFile: noiseClip() });
  });

  after(async () => {
    for (const u of users) await closeQuietly(u);
    await browser?.close().catch(() => {});
    await server?.dispose();
    await turn?.stop();
  });

  it('a camera arrives relayed at more than the old per-session cap, and so does a share', async (t) => {
    const alice = await openVideoUser(browser, server.url, 'alice', { relayOnly: true });
    const bob = await openVideoUser(browser, server.url, 'bob', { relayOnly: true });
    users.push(alice, bob);
    await joinVoice(alice);
    await joinVoice(bob);
    await connectedTo(alice, 'bob', 'relayed');
    await connectedTo(bob, 'alice', 'relayed');

    // Camera (noise): Bob decodes Alice's frames over a relay/relay pair, and the bitrate
    // ramps up past the old per-session cap.
    await alice.page.click('#voice-panel .vp-camera');
    const cam = await framesArrive(bob, 'camera');
    assert.deepEqual(cam.paths, ['relay/relay'], `bob's selected pair is relay on both ends: ${cam.paths}`);
    const camRate = await fastest(bob);
    const camLine = `relayed camera (noise) ${camRate.width}x${camRate.height}: ${rate(camRate)}`;
    t.diagnostic(camLine);
    console.log(camLine);
    assert.ok((camRate.bytes * 8) / camRate.secs > OLD_CAP_BPS * 1.2,
      `the relayed camera gets more than 1.2 x the old 512 kbit/s session cap (${camLine}); coturn log tail:\n${turn.log.slice(-5).join('\n')}`);
    await alice.page.click('#voice-panel .vp-camera');

    // Screen share (720p30, the default; Chromium's fake screen): Bob watches it, relayed.
    await alice.page.click('#voice-panel .vp-share');
    await bob.page.click('#voice-video .vv-screen[data-user="alice"] .vv-watch');
    const first = await framesArrive(bob, 'screen');
    assert.deepEqual(first.paths, ['relay/relay'], `still relayed: ${first.paths}`);
    await sleep(3_000);
    const share = await videoDelta(bob, MEASURE_MS);
    const shareLine = `relayed screen share (fake screen) ${share.width}x${share.height}: ${rate(share)}`;
    t.diagnostic(shareLine);
    console.log(shareLine);
    assert.ok(share.frames > 0 && share.width === 1280, `720p frames decoded: ${shareLine}`);
    for (const u of users) assert.deepEqual(u.problems, [], `${u.username}: no page errors`);
  });
});
