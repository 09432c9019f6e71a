// @ts-check
//! The voice panel in the sidebar (`#voice-panel`): connection status, everyone in the call
//! with a speaking ring, mute/deafen flags, the connection path (direct or relayed), RTT and
//! loss, a volume slider per participant, and the mute / deafen / camera / share screen
//! (with its quality) / settings / leave buttons.
//! Elements are built once and updated in place, so a slider being dragged survives updates.

import { MAX_USER_VOLUME } from './settings.js';
import { h, avatar } from '../dom.js';
import { icon } from '../icons.js';
import { SCREEN_QUALITIES } from './video.js';

const SVG_NS = 'http://www.w3.org/2000/svg';
/** Icons only the voice panel uses (24×24 Material shapes, like icons.js). */
const PATHS = {
  mic: 'M12 14c1.66 0 2.99-1.34 2.99-3L15 5c0-1.66-1.34-3-3-3S9 3.34 9 5v6c0 1.66 1.34 3 3 3zm5.3-3c0 3-2.54 5.1-5.3 5.1S6.7 14 6.7 11H5c0 3.41 2.72 6.23 6 6.72V21h2v-3.28c3.28-.48 6-3.3 6-6.72h-1.7z',
  headset: 'M12 1c-4.97 0-9 4.03-9 9v7c0 1.66 1.34 3 3 3h3v-8H5v-2c0-3.87 3.13-7 7-7s7 3.13 7 7v2h-4v8h3c1.66 0 3-1.34 3-3v-7c0-4.97-4.03-9-9-9z',
  gear: 'M19.14 12.94c.04-.3.06-.61.06-.94 0-.32-.02-.64-.07-.94l2.03-1.58a.49.49 0 0 0 .12-.61l-1.92-3.32a.49.49 0 0 0-.59-.22l-2.39.96c-.5-.38-1.03-.7-1.62-.94l-.36-2.54a.48.48 0 0 0-.48-.41h-3.84c-.24 0-.43.17-.47.41l-.36 2.54c-.59.24-1.13.57-1.62.94l-2.39-.96a.49.49 0 0 0-.59.22L2.74 8.87c-.12.21-.08.47.12.61l2.03 1.58c-.05.3-.09.63-.09.94s.02.64.07.94l-2.03 1.58a.49.49 0 0 0-.12.61l1.92 3.32c.12.22.37.29.59.22l2.39-.96c.5.38 1.03.7 1.62.94l.36 2.54c.05.24.24.41.48.41h3.84c.24 0 .44-.17.47-.41l.36-2.54c.59-.24 1.13-.56 1.62-.94l2.39.96c.22.08.47 0 .59-.22l1.92-3.32c.12-.22.07-.47-.12-.61l-2.01-1.58zM12 15.6c-1.98 0-3.6-1.62-3.6-3.6s1.62-3.6 3.6-3.6 3.6 1.62 3.6 3.6-1.62 3.6-3.6 3.6z',
  hangup: 'M12 9c-1.6 0-3.15.25-4.6.72v3.1c0 .39-.23.74-.56.9-.98.49-1.87 1.12-2.66 1.85-.18.18-.43.28-.7.28-.28 0-.53-.11-.71-.29L.29 13.08a.96.96 0 0 1-.29-.7c0-.28.11-.53.29-.71C3.34 8.78 7.46 7 12 7s8.66 1.78 11.71 4.67c.18.18.29.43.29.71 0 .28-.11.53-.29.71l-2.48 2.48c-.18.18-.43.29-.71.29-.27 0-.52-.11-.7-.28a11.3 11.3 0 0 0-2.67-1.85.99.99 0 0 1-.56-.9v-3.1C15.15 9.25 13.6 9 12 9z',
  camera: 'M17 10.5V7c0-.55-.45-1-1-1H4c-.55 0-1 .45-1 1v10c0 .55.45 1 1 1h12c.55 0 1-.45 1-1v-3.5l4 4v-11l-4 4z',
  screen: 'M20 18c1.1 0 1.99-.9 1.99-2L22 6c0-1.11-.9-2-2-2H4c-1.11 0-2 .89-2 2v10c0 1.1.89 2 2 2H0v2h24v-2h-4zM4 6h16v10H4V6z',
  signal: 'M3 21h3v-5H3v5zm5 0h3v-9H8v9zm5 0h3V8h-3v13zm5 0h3V3h-3v18z',
};

/** @param {keyof typeof PATHS} name */
export function voiceIcon(name) {
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  svg.setAttribute('class', 'icon');
  const path = document.createElementNS(SVG_NS, 'path');
  path.setAttribute('d', PATHS[name]);
  path.setAttribute('fill', 'currentColor');
  svg.append(path);
  return svg;
}

/**
 * @typedef {{id:string, user:string, self:boolean, muted:boolean, deafened:boolean,
 *   speaking:boolean, state:string, line:string, path:string, title:string, volume:number}} PersonView
 * @typedef {{phase:'idle'|'joining'|'connected'|'reconnecting'|'error', channel:string,
 *   error:string, errorTitle?:string, notice:string, muted:boolean, deafened:boolean, relayOnly:boolean,
 *   ptt:boolean, pttHeld:boolean, pttLabel:string, autoplayBlocked:boolean, people:PersonView[],
 *   camera:boolean, screen:boolean, quality:string}} PanelView
 * @typedef {{leave:()=>void, retry:()=>void, dismiss:()=>void, toggleMute:()=>void,
 *   toggleDeafen:()=>void, settings:()=>void, volume:(user:string, v:number)=>void,
 *   enableSound:()=>void, toggleCamera:()=>void, toggleScreen:()=>void, quality:(q:string)=>void}} PanelHandlers
 */

export class VoicePanel {
  /** @param {HTMLElement} root @param {PanelHandlers} on */
  constructor(root, on) {
    this.root = root;
    this.on = on;
    /** @type {Map<string, {li:HTMLElement, sig:string, name:HTMLElement, line:HTMLElement, flags:HTMLElement, slider:HTMLInputElement|null, pct:HTMLElement|null}>} */
    this.rows = new Map();
    this.built = false;
    this.sig = '';
  }

  /** @param {PanelView} v */
  update(v) {
    if (v.phase === 'idle') {
      this.clear();
      return;
    }
    if (v.phase === 'error') {
      const sig = `error|${v.errorTitle}|${v.error}`;
      if (this.sig === sig) return;
      this.clear();
      this.sig = sig;
      this.root.dataset.phase = 'error';
      this.root.append(
        h('div', { class: 'vp-error', role: 'alert' },
          h('strong', null, v.errorTitle || `Could not join ${v.channel}`),
          h('p', null, v.error),
          h('div', { class: 'vp-error-actions' },
            h('button', { class: 'btn small primary', type: 'button', onclick: () => this.on.retry() }, 'Try again'),
            h('button', { class: 'btn small', type: 'button', onclick: () => this.on.dismiss() }, 'Dismiss'))));
      return;
    }
    if (!this.built || this.sig.startsWith('error')) this.build();
    this.sig = 'call';
    const d = /** @type {Record<string, HTMLElement>} */ (this.parts);
    this.root.dataset.phase = v.phase;
    d.title.textContent = v.phase === 'connected' ? 'Voice connected' : v.phase === 'joining' ? 'Connecting…' : 'Reconnecting…';
    d.sub.textContent = `${v.channel}${v.relayOnly ? ' · relay only' : ''}`;
    d.notice.textContent = v.notice;
    d.notice.hidden = !v.notice;
    d.sound.hidden = !v.autoplayBlocked;
    d.ptt.hidden = !v.ptt;
    d.ptt.textContent = v.pttHeld ? `Talking (${v.pttLabel})` : `Push to talk: hold ${v.pttLabel}`;
    d.ptt.classList.toggle('on', v.pttHeld);
    setToggle(d.mute, v.muted || v.deafened, v.muted || v.deafened ? 'Unmute' : 'Mute');
    setToggle(d.deafen, v.deafened, v.deafened ? 'Undeafen' : 'Deafen');
    setToggle(d.camera, v.camera, v.camera ? 'Turn off camera' : 'Turn on camera');
    setToggle(d.share, v.screen, v.screen ? 'Stop sharing' : 'Share screen');
    const q = /** @type {HTMLSelectElement} */ (d.quality);
    if (q.value !== v.quality && document.activeElement !== q) q.value = v.quality;
    this.updatePeople(v.people);
  }

  /** Toggle just the speaking ring (called ten times a second; no rebuild). @param {string} id @param {boolean} on */
  speaking(id, on) {
    this.rows.get(id)?.li.classList.toggle('speaking', on);
  }

  /** @private */
  clear() {
    this.root.replaceChildren();
    this.rows.clear();
    this.built = false;
    this.sig = '';
    delete this.root.dataset.phase;
  }

  /** @private */
  build() {
    this.clear();
    const title = h('strong', { class: 'vp-title' });
    const sub = h('span', { class: 'vp-sub' });
    const notice = h('p', { class: 'vp-notice', role: 'status', hidden: true });
    const sound = h('button', { class: 'btn small primary vp-sound', type: 'button', hidden: true, onclick: () => this.on.enableSound() }, 'Click to enable sound');
    const ptt = h('p', { class: 'vp-ptt', hidden: true });
    const list = h('ul', { class: 'vp-people', 'aria-label': 'In this call' });
    const mute = h('button', { class: 'vp-ctl vp-mute', type: 'button', onclick: () => this.on.toggleMute() }, voiceIcon('mic'));
    const deafen = h('button', { class: 'vp-ctl vp-deafen', type: 'button', onclick: () => this.on.toggleDeafen() }, voiceIcon('headset'));
    const camera = h('button', { class: 'vp-ctl vp-camera', type: 'button', onclick: () => this.on.toggleCamera() }, voiceIcon('camera'));
    const share = h('button', { class: 'vp-ctl vp-share', type: 'button', onclick: () => this.on.toggleScreen() }, voiceIcon('screen'));
    const quality = /** @type {HTMLSelectElement} */ (h('select', { class: 'vp-quality', 'aria-label': 'Screen share quality', title: 'Screen share quality' },
      ...Object.keys(SCREEN_QUALITIES).map((k) => h('option', { value: k }, k))));
    quality.addEventListener('change', () => this.on.quality(quality.value));
    const settings = h('button', { class: 'vp-ctl vp-settings', type: 'button', title: 'Voice settings', 'aria-label': 'Voice settings', onclick: () => this.on.settings() }, voiceIcon('gear'));
    const leave = h('button', { class: 'vp-ctl vp-leave', type: 'button', title: 'Disconnect', 'aria-label': 'Disconnect', onclick: () => this.on.leave() }, voiceIcon('hangup'));
    this.root.append(
      h('div', { class: 'vp-head' },
        h('span', { class: 'vp-signal', 'aria-hidden': 'true' }, voiceIcon('signal')),
        h('div', { class: 'vp-head-text', role: 'status' }, title, sub)),
      notice, sound, list, ptt,
      h('div', { class: 'vp-controls' }, mute, deafen, camera, share, settings, leave),
      h('div', { class: 'vp-video-controls' }, quality));
    this.parts = { title, sub, notice, sound, ptt, list, mute, deafen, camera, share, quality };
    this.built = true;
  }

  /** @private @param {PersonView[]} people */
  updatePeople(people) {
    const list = /** @type {HTMLElement} */ (this.parts?.list);
    const keep = new Set(people.map((p) => p.id));
    for (const [id, row] of this.rows) {
      if (!keep.has(id)) {
        row.li.remove();
        this.rows.delete(id);
      }
    }
    let prev = /** @type {Element|null} */ (null);
    for (const p of people) {
      let row = this.rows.get(p.id);
      if (!row) {
        row = this.person(p);
        this.rows.set(p.id, row);
      }
      const sig = JSON.stringify([p.muted, p.deafened, p.line, p.state, p.path, p.title]);
      if (row.sig !== sig) {
        row.sig = sig;
        row.line.textContent = p.line;
        row.li.dataset.state = p.state;
        row.li.dataset.path = p.path;
        row.li.title = p.title;
        row.flags.replaceChildren(
          p.muted ? h('span', { class: 'vp-flag', title: 'Muted' }, icon('mic-off'), h('span', { class: 'visually-hidden' }, 'muted')) : '',
          p.deafened ? h('span', { class: 'vp-flag', title: 'Deafened' }, icon('sound-off'), h('span', { class: 'visually-hidden' }, 'deafened')) : '');
      }
      row.li.classList.toggle('speaking', p.speaking);
      if (row.slider && document.activeElement !== row.slider) {
        row.slider.value = String(Math.round(p.volume * 100));
        if (row.pct) row.pct.textContent = `${Math.round(p.volume * 100)}%`;
      }
      const want = prev ? prev.nextElementSibling : list.firstElementChild;
      if (want !== row.li) list.insertBefore(row.li, want);
      prev = row.li;
    }
  }

  /** @private @param {PersonView} p */
  person(p) {
    const name = h('span', { class: 'vp-name' }, p.self ? `${p.user} (you)` : p.user);
    const line = h('span', { class: 'vp-line' });
    const flags = h('span', { class: 'vp-flags' });
    const li = h('li', { class: `vp-person${p.self ? ' self' : ''}`, dataset: { peer: p.id, user: p.user } },
      h('div', { class: 'vp-row' },
        h('span', { class: 'vp-avatar' }, avatar(p.user)),
        h('span', { class: 'vp-who' }, name, line),
        flags));
    /** @type {HTMLInputElement|null} */
    let slider = null;
    /** @type {HTMLElement|null} */
    let pct = null;
    if (!p.self) {
      // Up to 200 %: above 100 % the voice goes through a GainNode (voice/volume.js).
      const sliderEl = h('input', { type: 'range', min: 0, max: Math.round(MAX_USER_VOLUME * 100), step: 1, class: 'vp-volume',
        value: String(Math.round(p.volume * 100)), 'aria-label': `Volume for ${p.user}` });
      const pctEl = h('span', { class: 'vp-pct' }, `${Math.round(p.volume * 100)}%`);
      sliderEl.addEventListener('input', () => {
        pctEl.textContent = `${sliderEl.value}%`;
        this.on.volume(p.user, Number(sliderEl.value) / 100);
      });
      const box = h('div', { class: 'vp-volbox', hidden: true }, icon('speaker'), sliderEl, pctEl);
      const toggle = h('button', { class: 'icon-btn small vp-voltoggle', type: 'button', title: `Volume for ${p.user}`,
        'aria-label': `Volume for ${p.user}`, 'aria-expanded': 'false' }, icon('speaker'));
      toggle.addEventListener('click', () => {
        box.hidden = !box.hidden;
        toggle.setAttribute('aria-expanded', String(!box.hidden));
        if (!box.hidden) sliderEl.focus();
      });
      li.firstElementChild?.append(toggle);
      li.append(box);
      slider = sliderEl;
      pct = pctEl;
    }
    return { li, sig: '', name, line, flags, slider, pct };
  }
}

/** @param {HTMLElement} btn @param {boolean} on @param {string} label */
function setToggle(btn, on, label) {
  btn.setAttribute('aria-pressed', String(on));
  btn.setAttribute('aria-label', label);
  btn.title = label;
  btn.classList.toggle('on', on);
}
