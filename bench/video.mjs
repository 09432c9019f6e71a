// Video benchmark (issue 15), run by bench/video.sh (numbers in docs/PERFORMANCE.md).
//
// Three people in `lounge` (three contexts in one headless Chromium, fake devices, the real
// server on loopback). Alice is the sender; Bob and Carol receive.
//   1. camera on → the first frame Bob decodes (median of ROUNDS toggles);
//   2. "Share screen" → the first frame Bob decodes (Bob presses Watch as soon as the LIVE tile
//      shows, as a person would, only faster; median of ROUNDS shares);
//   3. Alice's video upload (outbound-rtp bytes, RTP headers included) while her share has one
//      watcher and then two, after a warm-up, with the app's caps and with Chromium's own
//      WebRTC defaults (the app's setParameters maxBitrate calls dropped by an init script).
// Sources: Chromium's fake screen (1280x720, a simple moving pattern that needs little
// bitrate), and `noise` (the fake camera playing 320x240 random noise, also used as the
// "screen"): noise does not compress, so what it gets is set by the caps alone.
// Prints a markdown table and one `RESULT {json}` line.

import { startServer } from '../tests/browser/lib/server.mjs';
import {
  launchMediaBrowser, noiseClip, openVideoUser, joinVoice, connectedTo, videoStats, sleep,
} from '../tests/browser/lib/video.mjs';

const ROUNDS = Number(process.env.ROUNDS ?? 5);
const WARMUP_MS = Number(process.env.WARMUP_MS ?? 8_000);
const WINDOW_MS = Number(process.env.WINDOW_MS ?? 8_000);
/** How often the first-frame waits poll getStats (the timing's resolution). */
const POLL_MS = 25;
const FIRST_FRAME_TIMEOUT_MS = 20_000;
const ACTION_TIMEOUT_MS = 30_000;

/** Init script: Chromium's defaults, i.e. the app's bitrate caps never reach the encoder. */
function dropCaps() {
  const orig = RTCRtpSender.prototype.setParameters;
  RTCRtpSender.prototype.setParameters = function (params, ...rest) {
    for (const e of params.encodings ?? []) delete e.maxBitrate;
    return orig.call(this, params, ...rest);
  };
}

/** Init script: the "screen" is the fake camera (for the noise source). */
function screenFromCamera() {
  navigator.mediaDevices.getDisplayMedia = (c) => navigator.mediaDevices.getUserMedia({ video: c?.video ?? true, audio: false });
}

const median = (/** @type {number[]} */ xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Polls until `u` has decoded more frames than `base`; ms since `t0`. */
async function firstFrame(u, base, t0) {
  while (Date.now() - t0 < FIRST_FRAME_TIMEOUT_MS) {
    if ((await videoStats(u)).frames > base) return Date.now() - t0;
    await sleep(POLL_MS);
  }
  throw new Error(`${u.username}: no frame within ${FIRST_FRAME_TIMEOUT_MS} ms`);
}

/** Alice's video upload in kbit/s over WINDOW_MS. */
async function uplink(alice) {
  const a = await videoStats(alice);
  const t = Date.now();
  await sleep(WINDOW_MS);
  const b = await videoStats(alice);
  return Math.round(((b.sent - a.sent) * 8) / (Date.now() - t));
}

/** One configuration: a fresh server and browser. @param {'fake-screen'|'noise'} source @param {'app caps'|'Chromium defaults'} caps */
async function run(source, caps, timings) {
  const server = await startServer();
  const browser = await launchMediaBrowser(source === 'noise' ? { cameraFile: noiseClip() } : {});
  try {
    const setup = async (/** @type {import('playwright-core').BrowserContext} */ c) => {
      if (caps === 'Chromium defaults') await c.addInitScript(dropCaps);
      if (source === 'noise') await c.addInitScript(screenFromCamera);
    };
    const users = [];
    for (const name of ['alice', 'bob', 'carol']) users.push(await openVideoUser(browser, server.url, name, { setup }));
    // A busy machine (the run these numbers come from had a load average over 40) makes
    // clicks slow to become actionable; the tests' 10 s is too short here.
    for (const u of users) u.context.setDefaultTimeout(ACTION_TIMEOUT_MS);
    const [a, b, c] = users;
    for (const u of users) await joinVoice(u);
    for (const u of [b, c]) await connectedTo(u, 'alice');
    await connectedTo(b, 'carol');
    await sleep(1_000);
    const out = { source, caps, camera_first_frame_ms: null, share_first_frame_ms: null, uplink_kbps_1_watcher: 0, uplink_kbps_2_watchers: 0 };

    if (timings) {
      const cam = [], share = [];
      for (let i = 0; i < ROUNDS; i++) {
        let base = (await videoStats(b)).frames;
        let t0 = Date.now();
        await a.page.click('#voice-panel .vp-camera');
        cam.push(await firstFrame(b, base, t0));
        await a.page.click('#voice-panel .vp-camera');
        await sleep(1_000);

        base = (await videoStats(b)).frames;
        t0 = Date.now();
        await a.page.click('#voice-panel .vp-share');
        await b.page.click('#voice-video .vv-screen[data-user="alice"] .vv-watch');
        share.push(await firstFrame(b, base, t0));
        await a.page.click('#voice-panel .vp-share');
        await b.page.locator('#voice-video .vv-screen').waitFor({ state: 'detached' });
        await sleep(1_000);
      }
      out.camera_first_frame_ms = median(cam);
      out.share_first_frame_ms = median(share);
      out.camera_runs = cam;
      out.share_runs = share;
    }

    await a.page.click('#voice-panel .vp-share');
    await b.page.click('#voice-video .vv-screen[data-user="alice"] .vv-watch');
    await sleep(WARMUP_MS);
    out.uplink_kbps_1_watcher = await uplink(a);
    await c.page.click('#voice-video .vv-screen[data-user="alice"] .vv-watch');
    await sleep(WARMUP_MS);
    out.uplink_kbps_2_watchers = await uplink(a);
    const st = await videoStats(a);
    out.sender_streams = st.outStreams;
    console.log(`progress: ${JSON.stringify(out)}`);
    for (const u of users) if (u.problems.length) out.problems = [...(out.problems ?? []), ...u.problems];
    return out;
  } finally {
    await browser.close().catch(() => {});
    await server.dispose();
  }
}

const results = [];
results.push(await run('fake-screen', 'app caps', true));
results.push(await run('fake-screen', 'Chromium defaults', false));
results.push(await run('noise', 'app caps', false));
results.push(await run('noise', 'Chromium defaults', false));

console.log('\n| source | caps | camera → first frame (median ms) | share → first frame (median ms) | uplink, 1 watcher (kbit/s) | uplink, 2 watchers (kbit/s) |');
console.log('|---|---|---|---|---|---|');
for (const r of results) {
  console.log(`| ${r.source} | ${r.caps} | ${r.camera_first_frame_ms ?? '—'} | ${r.share_first_frame_ms ?? '—'} | ${r.uplink_kbps_1_watcher} | ${r.uplink_kbps_2_watchers} |`);
}
console.log(`RESULT ${JSON.stringify({ rounds: ROUNDS, warmup_ms: WARMUP_MS, window_ms: WINDOW_MS, results })}`);
