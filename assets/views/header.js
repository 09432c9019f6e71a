// @ts-check
//! The channel header (name, topic, admin and layout buttons) and the connection banner at the
//! top of the page (reconnecting / server unreachable, with a "Retry now" button), and on a
//! phone the in-call pill.

import { h, setChildren } from '../dom.js';
import { can } from '../perms.js';
import { channelLabel } from '../state.js';

/** @typedef {import('../state.js').State} State */

/**
 * @param {State} s
 * @param {string} inCall the voice channel this page is in, or ''
 */
export function renderHeader(s, inCall) {
  // On a phone the voice panel is inside the closed channel drawer: this pill says you are
  // in a call (issue 18, bug 12) and opens the drawer. CSS shows it only below 640 px.
  const pill = /** @type {HTMLButtonElement} */ (document.getElementById('call-pill'));
  if (pill.dataset.sig !== inCall) {
    pill.dataset.sig = inCall;
    pill.hidden = !inCall;
    pill.textContent = inCall ? `🔊 ${inCall}` : '';
    pill.title = inCall ? `In voice: ${inCall}. Open the voice controls.` : '';
    pill.setAttribute('aria-label', inCall ? `In voice channel ${inCall}: open the voice controls` : '');
  }
  const ch = s.channels.find((c) => c.name === s.current);
  const title = /** @type {HTMLElement} */ (document.getElementById('chat-title'));
  const topic = /** @type {HTMLElement} */ (document.getElementById('chat-topic'));
  const del = /** @type {HTMLButtonElement} */ (document.getElementById('delete-channel-btn'));
  const dm = ch?.kind === 'dm';
  // A DM is named by its other members, never by its internal name (docs/DMS.md).
  title.textContent = ch ? channelLabel(s, ch.name, { hash: false }) : '';
  const sigil = /** @type {HTMLElement} */ (document.querySelector('#chat-head .hash'));
  sigil.textContent = dm ? '@' : '#';
  topic.textContent = ch?.topic ?? '';
  topic.title = ch?.topic ?? '';
  topic.hidden = !ch?.topic;
  const add = /** @type {HTMLButtonElement} */ (document.getElementById('dm-add-btn'));
  add.hidden = !dm;
  // Nobody deletes a DM (the server refuses it: no `manage_channels` in a DM).
  del.hidden = !(ch && !dm && can(s, 'manage_channels', ch.name));
  const unread = s.channels.filter((c) => c.kind !== 'voice' && c.name !== s.current && (s.chans.get(c.name)?.lastId ?? 0) > (s.readIds.get(c.name) ?? 0)).length;
  const mentionCount = [...s.chans.values()].reduce((n, c) => n + c.mentions, 0);
  document.title = `${mentionCount ? `(${mentionCount}) ` : unread ? '• ' : ''}${ch ? `${channelLabel(s, ch.name)} — ` : ''}mini-discord`;
}

/**
 * @param {State} s
 * @param {() => void} retryNow
 */
export function renderBanner(s, retryNow) {
  const banner = /** @type {HTMLElement} */ (document.getElementById('banner'));
  const c = s.conn;
  const queued = s.outbox.filter((e) => e.status !== 'failed').length;
  const pendingNote = queued ? ` ${queued} unsent message${queued === 1 ? '' : 's'} waiting.` : '';
  /** @type {{cls:string, text:string, retry:boolean}|null} */
  let view = null;
  if (!s.me || c.state === 'ready') view = null;
  else if (c.state === 'waiting') {
    const secs = Math.max(0, Math.ceil(((c.retryAt ?? Date.now()) - Date.now()) / 1000));
    const what = c.reason === 'server unreachable' ? 'Server unreachable' : 'Connection lost';
    view = { cls: 'error', text: `${what} — reconnecting in ${secs} s.${pendingNote}`, retry: true };
  } else if (c.attempt > 0) {
    view = { cls: 'warn', text: `Reconnecting…${pendingNote}`, retry: false };
  }
  const sig = view ? JSON.stringify(view) : '';
  if (banner.dataset.sig === sig) return;
  banner.dataset.sig = sig;
  banner.hidden = !view;
  document.body.classList.toggle('has-banner', !!view);
  if (!view) return banner.replaceChildren();
  banner.className = `banner ${view.cls}`;
  setChildren(banner,
    h('span', { class: 'banner-text' }, view.text),
    view.retry ? h('button', { class: 'btn small', type: 'button', dataset: { focus: 'retry' }, onclick: retryNow }, 'Retry now') : null,
  );
}
