// What the video browser tests share (video*.test.mjs, bench/video.mjs): a Chromium with fake
// camera and fake screen, a signed-in user whose page keeps the app's peer connections for
// getStats(), and bounded waits on decoded frames. The app itself is not changed for tests:
// an init script wraps RTCPeerConnection. Read ../../../../shared/notes/browser-and-turn-testing.md.

import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { ARGS, CHROMIUM, signIn } from './browser.mjs';

export const MEDIA_ARGS = ['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream', '--allow-loopback-in-peer-connection'];
/** Between two getStats() snapshots. */
export const SAMPLE_MS = 1_500;
/** How long frames may take to arrive after a track is added (negotiation, ICE, a keyframe). */
const FRAMES_TIMEOUT_MS = 15_000;

/** @returns {Promise<number>} a free UDP port on loopback, for SFU_UDP_PORT */
export function freeUdpPort() {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.on('error', reject);
    s.bind(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * The values of /metrics counters, all from one scrape: counters compared with each other
 * must be read at the same instant, or a scrape that is slow to come back on a busy machine
 * counts a quarter second of frames on one side only.
 * @param {string} url @param {string[]} names
 */
export async function metrics(url, ...names) {
  const text = await (await fetch(`${url}/metrics`)).text();
  return names.map((name) => {
    const line = text.split('\n').find((l) => l.startsWith(`${name} `));
    assert.ok(line, `${name} in /metrics`);
    return Number(line.split(' ')[1]);
  });
}

export const sleep = (/** @type {number} */ ms) => new Promise((r) => setTimeout(r, ms));

/** @param {{cameraFile?: string}} [opts] cameraFile: a .y4m the fake camera plays instead of its pattern */
export function launchMediaBrowser(opts = {}) {
  const extra = opts.cameraFile ? [`--use-file-for-fake-video-capture=${opts.cameraFile}`] : [];
  return chromium.launch({ executablePath: CHROMIUM, args: [...ARGS, ...MEDIA_ARGS, ...extra], headless: true, timeout: 30_000 });
}

/** Frames in the noise clip (it loops): one second at 30 fps. */
const NOISE_FRAMES = 30;

/**
 * Writes a `w`x`hgt` (default 320x240) 30 fps clip of random noise as .y4m (4:2:0) into a new
 * temp dir and returns its path. Noise does not compress, so an encoder sending it uses all
 * the bitrate it is allowed: what it gets is set by the caps on the way (ours, the TURN
 * server's), not by how simple Chromium's fake pattern is.
 */
export function noiseClip(w = 320, hgt = 240) {
  const dir = mkdtempSync(path.join(tmpdir(), 'md-noise-'));
  const file = path.join(dir, 'noise.y4m');
  const parts = [Buffer.from(`YUV4MPEG2 W${w} H${hgt} F30:1 Ip A1:1 C420jpeg\n`)];
  for (let i = 0; i < NOISE_FRAMES; i++) parts.push(Buffer.from('FRAME\n'), randomBytes((w * hgt * 3) / 2));
  writeFileSync(file, Buffer.concat(parts));
  return file;
}

/** Runs in the page before the app: keeps its peer connections for getStats(). */
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
  const open = () => pcs.filter((p) => p.signalingState !== 'closed');
  /** Inbound and outbound video over every open peer connection, and the selected paths. */
  async function video() {
    let bytes = 0, frames = 0, width = 0, height = 0, sent = 0, outStreams = 0;
    /** @type {string[]} */
    const paths = [];
    for (const pc of open()) {
      /** @type {Map<string, any>} */
      const byId = new Map();
      (await pc.getStats()).forEach((/** @type {any} */ s) => byId.set(s.id, s));
      for (const s of byId.values()) {
        if (s.type === 'inbound-rtp' && s.kind === 'video') {
          bytes += s.bytesReceived ?? 0;
          frames += s.framesDecoded ?? 0;
          width = Math.max(width, s.frameWidth ?? 0);
          height = Math.max(height, s.frameHeight ?? 0);
        }
        if (s.type === 'outbound-rtp' && s.kind === 'video') {
          sent += (s.bytesSent ?? 0) + (s.headerBytesSent ?? 0);
          outStreams += 1;
        }
        if (s.type === 'transport' && s.selectedCandidatePairId) {
          const pair = byId.get(s.selectedCandidatePairId);
          paths.push(`${byId.get(pair?.localCandidateId)?.candidateType}/${byId.get(pair?.remoteCandidateId)?.candidateType}`);
        }
      }
    }
    return { bytes, frames, width, height, sent, outStreams, paths };
  }
  // @ts-ignore
  window.__video = { pcs, video };
}

/**
 * A signed-in user in their own context (camera and microphone granted).
 * @param {import('playwright-core').Browser} browser @param {string} url @param {string} name
 * @param {{mode?: 'register'|'login', relayOnly?: boolean, timeout?: number,
 *   setup?: (context: import('playwright-core').BrowserContext) => Promise<unknown>}} [opts]
 *   setup: runs on the new context before its page opens (e.g. WebSocket routes);
 *   timeout: the context's default for navigation and waits (10 s)
 */
export async function openVideoUser(browser, url, name, opts = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, permissions: ['microphone', 'camera'] });
  context.setDefaultTimeout(opts.timeout ?? 10_000);
  await opts.setup?.(context);
  await context.addInitScript(instrument);
  if (opts.relayOnly) {
    // The app's own "Relay only" voice setting (voice/settings.js), set before it loads.
    await context.addInitScript(() => localStorage.setItem('md.voice.settings', JSON.stringify({ relayOnly: true })));
  }
  const page = await context.newPage();
  /** @type {string[]} */
  const problems = [];
  watchProblems(page, problems);
  await page.goto(url);
  await signIn(page, name, opts.mode ?? 'register');
  return { context, page, problems, username: name };
}

/** @param {import('playwright-core').Page} page @param {string[]} problems */
export function watchProblems(page, problems) {
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !/WebSocket connection|Failed to load resource/.test(msg.text())) problems.push(`console: ${msg.text()}`);
  });
}

/** @typedef {Awaited<ReturnType<typeof openVideoUser>>} VideoUser */
/** @typedef {{bytes:number, frames:number, width:number, height:number, sent:number, outStreams:number, paths:string[]}} VideoStats */

/** @param {VideoUser} u @returns {Promise<VideoStats>} */
export const videoStats = (u) => u.page.evaluate(() => /** @type {any} */ (window).__video.video());

/** Inbound and outbound video of `u` during `ms`. @param {VideoUser} u @param {number} [ms] */
export async function videoDelta(u, ms = SAMPLE_MS) {
  const a = await videoStats(u);
  const t0 = Date.now();
  await sleep(ms);
  const b = await videoStats(u);
  const secs = (Date.now() - t0) / 1000;
  return {
    bytes: b.bytes - a.bytes, frames: b.frames - a.frames, sent: b.sent - a.sent, secs,
    width: b.width, height: b.height, paths: b.paths, outStreams: b.outStreams,
  };
}

/** Waits (bounded) until `u` decodes video frames. @param {VideoUser} u @param {string} what */
export async function framesArrive(u, what) {
  const deadline = Date.now() + FRAMES_TIMEOUT_MS;
  let d = null;
  while (Date.now() < deadline) {
    d = await videoDelta(u);
    if (d.frames > 0) return d;
  }
  assert.fail(`${u.username} decoded no ${what} frames (last delta ${JSON.stringify(d)})`);
}

/** @param {VideoUser} u */
export async function joinVoice(u, channel = 'lounge') {
  await u.page.click(`#sidebar .chan.voice[data-channel="${channel}"]`);
  await u.page.locator('#voice-panel[data-phase="connected"]').waitFor();
}

/** Waits until `u` shows `other` in the call with a connected peer connection. @param {VideoUser} u @param {string} other */
export function connectedTo(u, other, path = '') {
  const sel = `#voice-panel .vp-person[data-user="${other}"][data-state="connected"]${path ? `[data-path="${path}"]` : ''}`;
  return u.page.locator(sel).waitFor({ timeout: 15_000 });
}
