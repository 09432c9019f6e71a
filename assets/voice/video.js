// @ts-check
//! Video in voice calls: opening the camera and a screen share (with its quality presets),
//! the bitrate caps per number of receivers, and the call window (`#voice-video`): a tile
//! per person (their video, or their avatar while the camera is off) and a stage for screen
//! shares. A share is only received on request: its tile shows a LIVE label and a "Watch"
//! button until this page sends `watch`. Clicking a tile puts it on the stage (focus); a
//! tile showing video has a full screen button (Fullscreen API, on the tile, so its label
//! stays) and, where the browser offers it, picture in picture (on its <video>).
//! No signaling here: voice.js decides what to send and calls `update()` with what to show.

import { h, avatar } from '../dom.js';
import { voiceIcon } from './icons.js';

/** Screen share presets: resolution and frame rate asked of getDisplayMedia, and the upload
 * budget the share gets in all (split between its watchers, see `screenBitrate`). */
export const SCREEN_QUALITIES = {
  '720p30': { width: 1280, height: 720, frameRate: 30, bps: 2_500_000 },
  '1080p30': { width: 1920, height: 1080, frameRate: 30, bps: 4_000_000 },
  '1080p60': { width: 1920, height: 1080, frameRate: 60, bps: 6_000_000 },
};
/** @typedef {keyof typeof SCREEN_QUALITIES} ScreenQuality */
export const DEFAULT_SCREEN_QUALITY = /** @type {ScreenQuality} */ ('720p30');
const QUALITY_KEY = 'voice.screenQuality';

/** The camera is asked for 640x360 at 30 fps: tiles are small, and in a mesh every viewer
 * costs the sender one more upload of it. */
const CAMERA = { width: 640, height: 360, frameRate: 30 };
/** A camera's upload budget in all (about 1.5 Mbit/s, a home uplink's share for video),
 * split between receivers, never below what still shows a face. */
const CAMERA_TOTAL_BPS = 1_500_000;
const CAMERA_MIN_BPS = 150_000;
const CAMERA_MAX_BPS = 800_000;
/** A screen share below this per watcher is unreadable text. */
const SCREEN_MIN_BPS = 500_000;

/** @returns {ScreenQuality} */
export function screenQuality() {
  const q = localStorage.getItem(QUALITY_KEY);
  return q && q in SCREEN_QUALITIES ? /** @type {ScreenQuality} */ (q) : DEFAULT_SCREEN_QUALITY;
}

/** @param {string} q */
export function setScreenQuality(q) {
  if (q in SCREEN_QUALITIES) localStorage.setItem(QUALITY_KEY, q);
}

/** Per-receiver cap of the camera with `receivers` people receiving it. @param {number} receivers */
export function cameraBitrate(receivers) {
  const each = CAMERA_TOTAL_BPS / Math.max(1, receivers);
  return Math.round(Math.min(CAMERA_MAX_BPS, Math.max(CAMERA_MIN_BPS, each)));
}

/** Per-watcher cap of a screen share. @param {ScreenQuality} q @param {number} watchers */
export function screenBitrate(q, watchers) {
  return Math.round(Math.max(SCREEN_MIN_BPS, SCREEN_QUALITIES[q].bps / Math.max(1, watchers)));
}

/** Opens the camera; rejects with a message meant for the user. @returns {Promise<MediaStreamTrack>} */
export async function openCamera() {
  try {
    const s = await navigator.mediaDevices.getUserMedia({
      video: { width: { ideal: CAMERA.width }, height: { ideal: CAMERA.height }, frameRate: { ideal: CAMERA.frameRate } },
      audio: false,
    });
    const t = s.getVideoTracks()[0];
    t.contentHint = 'motion';
    return t;
  } catch (err) {
    const name = err instanceof Error ? err.name : '';
    throw new Error(name === 'NotAllowedError' ? 'Camera access was denied. Allow the camera for this site, then try again.'
      : name === 'NotFoundError' ? 'No camera was found.' : `The camera could not be opened${name ? ` (${name})` : ''}.`, { cause: err });
  }
}

/** Opens a screen share at quality `q`; null if the user cancelled the picker.
 * @param {ScreenQuality} q @returns {Promise<MediaStream|null>} */
export async function openScreen(q) {
  const p = SCREEN_QUALITIES[q];
  try {
    const s = await navigator.mediaDevices.getDisplayMedia({
      video: { width: { ideal: p.width }, height: { ideal: p.height }, frameRate: { ideal: p.frameRate } },
      audio: false,
    });
    // Text and code stay sharp with 'detail' (resolution kept, frames dropped under
    // pressure); at 60 fps the user asked for smooth movement instead.
    for (const t of s.getVideoTracks()) t.contentHint = p.frameRate >= 60 ? 'motion' : 'detail';
    return s;
  } catch (err) {
    if (err instanceof Error && err.name === 'NotAllowedError') return null;
    throw new Error(`The screen could not be shared${err instanceof Error ? ` (${err.name})` : ''}.`, { cause: err });
  }
}

/**
 * One line of the connection info for a video stream: "Camera 640×360 · 30 fps · 812 kbit/s
 * · 0 lost". Parts not measured yet (the first reading has no bitrate) are left out.
 * @param {string} label @param {import('./peer.js').VideoStreamStats} v
 */
export function videoStatsLine(label, v) {
  const parts = [`${label} ${v.width}×${v.height}`];
  if (v.fps != null) parts.push(`${v.fps} fps`);
  if (v.kbps != null) parts.push(v.kbps >= 1000 ? `${(v.kbps / 1000).toFixed(1)} Mbit/s` : `${v.kbps} kbit/s`);
  parts.push(`${v.lost} lost`);
  return parts.join(' · ');
}

/** Simulcast layers the media server asks a camera for (its rids, src/media/simulcast.rs):
 * how much each is scaled down and its share of the camera's budget. The server forwards
 * each receiver the best layer its downlink takes. Chromium picks the scaling itself unless
 * told (and then sends fewer layers at 640x360, the top one scaled down most). */
export const SIMULCAST = {
  h: { scaleResolutionDownBy: 1, share: 0.65 },
  m: { scaleResolutionDownBy: 2, share: 0.25 },
  l: { scaleResolutionDownBy: 4, share: 0.1 },
};

/**
 * Caps `sender` at `bps`: each encoding at `bps`, or, when it sends the media server's
 * simulcast layers, each layer at its share of it (and at its scale).
 * @param {RTCRtpSender} sender @param {number} bps
 */
export async function capBitrate(sender, bps) {
  const params = sender.getParameters();
  if (!params.encodings?.length) return; // not negotiated yet; set again at the next update
  /** @param {RTCRtpEncodingParameters} e */
  const layer = (e) => (e.rid && e.rid in SIMULCAST ? SIMULCAST[/** @type {keyof typeof SIMULCAST} */ (e.rid)] : null);
  const layered = params.encodings.length > 1 && params.encodings.every((e) => layer(e));
  /** @param {RTCRtpEncodingParameters} e */
  const want = (e) => {
    const l = layered ? layer(e) : null;
    return l ? { maxBitrate: Math.round(bps * l.share), scaleResolutionDownBy: l.scaleResolutionDownBy } : { maxBitrate: bps };
  };
  const same = (/** @type {RTCRtpEncodingParameters} */ e) => {
    const w = want(e);
    return e.maxBitrate === w.maxBitrate && (!('scaleResolutionDownBy' in w) || e.scaleResolutionDownBy === w.scaleResolutionDownBy);
  };
  if (params.encodings.every(same)) return;
  for (const e of params.encodings) Object.assign(e, want(e));
  await sender.setParameters(params).catch((e) => console.warn('voice: setParameters', e));
}

/**
 * @typedef {{id:string, user:string, self:boolean, camera:MediaStream|null, speaking:boolean}} Tile
 * @typedef {{id:string, user:string, self:boolean, stream:MediaStream|null, watching:boolean}} Share
 * @typedef {{tiles:Tile[], shares:Share[]}} StageView
 */

/** @typedef {{box:HTMLElement, video:HTMLVideoElement, face:HTMLElement, label:HTMLElement,
 *   button:HTMLButtonElement|null, tools:HTMLElement}} Cell */

/** Picture in picture is offered here (Chromium, Safari; not Firefox's API). */
function canPip() {
  return 'pictureInPictureEnabled' in document && !!document.pictureInPictureEnabled;
}

/** Full screen for a tile, or back. @param {HTMLElement} box */
function toggleFullscreen(box) {
  if (document.fullscreenElement === box) document.exitFullscreen().catch(() => {});
  else if (typeof box.requestFullscreen === 'function') box.requestFullscreen().catch((e) => console.warn('video: fullscreen', e));
}

/** Picture in picture for a tile's video, or back. @param {HTMLVideoElement} video */
function togglePip(video) {
  if (document.pictureInPictureElement === video) document.exitPictureInPicture().catch(() => {});
  else video.requestPictureInPicture().catch((e) => console.warn('video: picture in picture', e));
}

export class VideoStage {
  /** @param {{watch:(id:string, on:boolean)=>void}} on */
  constructor(on) {
    this.on = on;
    this.root = h('section', { id: 'voice-video', class: 'vv', hidden: true, 'aria-label': 'Video call' });
    this.stage = h('div', { class: 'vv-stage' });
    this.grid = h('div', { class: 'vv-grid' });
    this.root.append(this.stage, this.grid);
    document.body.append(this.root);
    /** @type {Map<string, Cell>} */
    this.cells = new Map();
    /** The focused tile's key (`cam:<id>` or `screen:<id>`), shown on the stage. */
    this.focus = '';
  }

  /** @param {StageView|null} v null: not in a call */
  update(v) {
    const shown = !!v && (v.tiles.some((t) => t.camera) || v.shares.length > 0);
    this.root.hidden = !shown;
    if (!v || !shown) {
      for (const key of [...this.cells.keys()]) this.drop(key);
      return;
    }
    const keys = new Set();
    for (const s of v.shares) {
      const key = `screen:${s.id}`;
      keys.add(key);
      const c = this.cell(key, s.user, true);
      c.box.dataset.watching = String(s.watching || s.self);
      c.label.textContent = s.self ? 'Your screen · LIVE' : `${s.user} · LIVE`;
      if (c.button) {
        c.button.hidden = s.self;
        c.button.textContent = s.watching ? 'Stop watching' : 'Watch';
        c.button.onclick = (ev) => {
          ev.stopPropagation();
          this.on.watch(s.id, !s.watching);
        };
      }
      this.show(c, s.watching || s.self ? s.stream : null);
    }
    for (const t of v.tiles) {
      const key = `cam:${t.id}`;
      keys.add(key);
      const c = this.cell(key, t.user, false);
      c.label.textContent = t.self ? `${t.user} (you)` : t.user;
      c.box.classList.toggle('speaking', t.speaking);
      this.show(c, t.camera);
    }
    for (const key of [...this.cells.keys()]) if (!keys.has(key)) this.drop(key);
    // A share goes on the stage unless something else was focused.
    if (!keys.has(this.focus)) this.focus = v.shares[0] ? `screen:${v.shares[0].id}` : '';
    for (const [key, c] of this.cells) {
      const parent = key === this.focus ? this.stage : this.grid;
      if (c.box.parentElement !== parent) parent.append(c.box);
    }
    this.stage.hidden = !this.focus;
  }

  /** @private @param {string} key @param {string} user @param {boolean} screen */
  cell(key, user, screen) {
    let c = this.cells.get(key);
    if (c) return c;
    const video = /** @type {HTMLVideoElement} */ (h('video', { autoplay: true, playsInline: true, muted: true }));
    const face = h('div', { class: 'vv-face' }, avatar(user));
    const label = h('span', { class: 'vv-label' });
    const button = screen ? /** @type {HTMLButtonElement} */ (h('button', { class: 'btn small primary vv-watch', type: 'button' }, 'Watch')) : null;
    /** @param {string} cls @param {string} title @param {'fullscreen'|'pip'} glyph @param {() => void} act */
    const tool = (cls, title, glyph, act) => h('button', {
      class: `vv-tool ${cls}`, type: 'button', title, 'aria-label': `${title}: ${user}`,
      onclick: (/** @type {Event} */ ev) => {
        ev.stopPropagation(); // not a click on the tile (focus)
        act();
      },
    }, voiceIcon(glyph));
    const tools = h('div', { class: 'vv-tools', hidden: true },
      tool('vv-fullscreen', 'Full screen', 'fullscreen', () => toggleFullscreen(box)),
      canPip() ? tool('vv-pip', 'Picture in picture', 'pip', () => togglePip(video)) : '');
    const box = h('div', { class: `vv-tile${screen ? ' vv-screen' : ''}`, tabindex: 0, dataset: { key, user } },
      video, face, label, tools, button ?? '');
    const focus = () => {
      this.focus = this.focus === key ? '' : key;
      for (const [k, x] of this.cells) {
        const parent = k === this.focus ? this.stage : this.grid;
        if (x.box.parentElement !== parent) parent.append(x.box);
      }
      this.stage.hidden = !this.focus;
    };
    box.addEventListener('click', focus);
    box.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' || ev.key === ' ') {
        ev.preventDefault();
        focus();
      }
    });
    c = { box, video, face, label, button, tools };
    this.cells.set(key, c);
    this.grid.append(box);
    return c;
  }

  /** @private @param {Cell} c @param {MediaStream|null} stream */
  show(c, stream) {
    if (c.video.srcObject !== stream) {
      if (!stream) leaveFullscreen(c);
      c.video.srcObject = stream;
      if (stream) c.video.play().catch(() => {});
    }
    c.tools.hidden = !stream;
    c.video.hidden = !stream;
    c.face.hidden = !!stream;
    c.box.dataset.video = String(!!stream);
  }

  /** @private @param {string} key */
  drop(key) {
    const c = this.cells.get(key);
    if (!c) return;
    leaveFullscreen(c);
    c.video.srcObject = null;
    c.box.remove();
    this.cells.delete(key);
  }
}

/** A tile losing its video leaves full screen and picture in picture: both would show a
 * frozen last frame. @param {Cell} c */
function leaveFullscreen(c) {
  if (document.fullscreenElement === c.box) document.exitFullscreen().catch(() => {});
  if (document.pictureInPictureElement === c.video) document.exitPictureInPicture().catch(() => {});
}
