// @ts-check
//! The voice panel in the sidebar (`#voice-panel`): connection status, everyone in the call
//! with a speaking ring, mute/deafen flags, the connection path (direct or relayed), RTT and
//! loss, per video stream its resolution, frame rate, bitrate and packets lost, a volume
//! slider per participant, and the mute / deafen / camera / share screen
//! (with its quality) / settings / leave buttons.
//! Elements are built once and updated in place, so a slider being dragged survives updates.

import { MAX_USER_VOLUME } from './settings.js';
import { h, avatar } from '../dom.js';
import { icon } from '../icons.js';
import { SCREEN_QUALITIES } from './video.js';
import { voiceIcon } from './icons.js';

// The voice icons live in voice/icons.js; re-exported for views/sidebar.js.
export { voiceIcon };

/**
 * @typedef {{id:string, user:string, self:boolean, muted:boolean, deafened:boolean,
 *   speaking:boolean, state:string, line:string, path:string, title:string, volume:number,
 *   video:string[]}} PersonView
 * @typedef {{phase:'idle'|'joining'|'connected'|'reconnecting'|'error', channel:string,
 *   error:string, errorTitle?:string, notice:string, muted:boolean, deafened:boolean, relayOnly:boolean,
 *   ptt:boolean, pttHeld:boolean, pttLabel:string, autoplayBlocked:boolean, people:PersonView[],
 *   camera:boolean, screen:boolean, quality:string, streamAllowed:boolean}} PanelView
 *   `streamAllowed`: the channel grants `stream`; without it the camera and share buttons
 *   are disabled and say why.
 * @typedef {{leave:()=>void, retry:()=>void, dismiss:()=>void, toggleMute:()=>void,
 *   toggleDeafen:()=>void, settings:()=>void, volume:(user:string, v:number)=>void,
 *   enableSound:()=>void, toggleCamera:()=>void, toggleScreen:()=>void, quality:(q:string)=>void}} PanelHandlers
 */

export class VoicePanel {
  /** @param {HTMLElement} root @param {PanelHandlers} on */
  constructor(root, on) {
    this.root = root;
    this.on = on;
    /** @type {Map<string, {li:HTMLElement, sig:string, name:HTMLElement, line:HTMLElement, flags:HTMLElement, videoStats:HTMLElement, slider:HTMLInputElement|null, pct:HTMLElement|null}>} */
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
    for (const [btn, what] of /** @type {const} */ ([[d.camera, 'use the camera'], [d.share, 'share your screen']])) {
      const b = /** @type {HTMLButtonElement} */ (btn);
      b.disabled = !v.streamAllowed;
      if (!v.streamAllowed) b.title = `You do not have permission to ${what} in this channel`;
    }
    const q = /** @type {HTMLSelectElement} */ (d.quality);
    q.hidden = !v.streamAllowed;
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
      const sig = JSON.stringify([p.muted, p.deafened, p.line, p.state, p.path, p.title, p.video]);
      if (row.sig !== sig) {
        row.sig = sig;
        row.line.textContent = p.line;
        row.videoStats.replaceChildren(...p.video.map((t) => h('li', { class: 'vp-video-stat' }, t)));
        row.videoStats.hidden = !p.video.length;
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
    const videoStats = h('ul', { class: 'vp-video-stats', hidden: true, 'aria-label': `Video with ${p.user}` });
    li.append(videoStats);
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
    return { li, sig: '', name, line, flags, videoStats, slider, pct };
  }
}

/** @param {HTMLElement} btn @param {boolean} on @param {string} label */
function setToggle(btn, on, label) {
  btn.setAttribute('aria-pressed', String(on));
  btn.setAttribute('aria-label', label);
  btn.title = label;
  btn.classList.toggle('on', on);
}
