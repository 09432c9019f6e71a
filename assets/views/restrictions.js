// @ts-check
//! What the user may not do right now, shown on the page (API.md v2): the composer is
//! disabled without `send_messages` or during a timeout (with a live countdown, "You can talk
//! again in 4:59"), the attach button hidden without `attach_files`, the camera and screen
//! buttons without `stream`, the server settings gear without any moderation permission.
//! Runs after the other views on every render; perms.js decides, this only reflects it.

import { h } from '../dom.js';
import { channelPerms, timeoutLeftMs, countdown, canOpenSettings, can } from '../perms.js';

/** @typedef {import('../state.js').State} State */

/** @param {State} s @param {string} inCall the voice channel this page is in, or '' */
export function renderRestrictions(s, inCall) {
  const input = /** @type {HTMLTextAreaElement} */ (document.getElementById('composer-input'));
  const sendBtn = /** @type {HTMLButtonElement} */ (document.getElementById('send-btn'));
  const form = /** @type {HTMLFormElement} */ (document.getElementById('composer'));
  const perms = channelPerms(s, s.current);
  const left = timeoutLeftMs(s);
  const mayType = perms.has('send_messages');

  let notice = document.getElementById('timeout-notice');
  if (!notice) {
    notice = h('div', { class: 'timeout-notice', id: 'timeout-notice', role: 'status', hidden: true });
    form.before(notice);
  }
  const text = left > 0 ? `You are timed out. You can talk again in ${countdown(left)}.`
    : !mayType && s.current ? 'You do not have permission to send messages in this channel.' : '';
  if (notice.textContent !== text) notice.textContent = text;
  notice.hidden = !text;
  notice.classList.toggle('timed-out', left > 0);

  if (input.disabled === mayType) input.disabled = !mayType;
  sendBtn.disabled = !mayType;
  form.classList.toggle('locked', !mayType);
  if (!mayType) input.placeholder = left > 0 ? 'You are timed out' : 'You cannot send messages here';
  form.toggleAttribute('data-no-attach', !mayType || !perms.has('attach_files'));
  document.body.toggleAttribute('data-no-react', !perms.has('add_reactions'));

  const panel = document.getElementById('voice-panel');
  if (panel) panel.toggleAttribute('data-no-stream', !!inCall && !channelPerms(s, inCall).has('stream'));

  const gear = /** @type {HTMLButtonElement|null} */ (document.getElementById('server-settings-btn'));
  if (gear) gear.hidden = !canOpenSettings(s);
  const invite = /** @type {HTMLButtonElement|null} */ (document.getElementById('invite-btn'));
  if (invite && s.roles.length) invite.hidden = !can(s, 'create_invites');
}
