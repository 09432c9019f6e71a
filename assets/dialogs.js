// @ts-check
//! The app's dialogs, built on ui.js `openModal`: create a channel, invite people, and the
//! confirmations before deleting a channel or a message. Each takes what it needs and changes
//! state only through state.js.

import { rest, ApiError } from './protocol.js';
import { addChannel } from './state.js';
import { h } from './dom.js';
import { icon } from './icons.js';
import { toast, openModal, confirmDialog } from './ui.js';

/** @typedef {import('./app.js').App} App */

/** @param {App} app @param {'text'|'voice'} kind the type picked first */
export function openCreateChannel(app, kind) {
  const name = h('input', { id: 'new-channel-name', name: 'name', autofocus: true, required: true, maxLength: 32, pattern: '[a-z0-9_\\-]{1,32}', autocomplete: 'off', placeholder: 'new-channel', spellcheck: false });
  const topic = h('input', { id: 'new-channel-topic', name: 'topic', dir: 'auto', maxLength: 200, autocomplete: 'off', placeholder: 'What is this channel about?' });
  const kindText = h('input', { type: 'radio', name: 'kind', value: 'text', id: 'kind-text', checked: kind === 'text' });
  const kindVoice = h('input', { type: 'radio', name: 'kind', value: 'voice', id: 'kind-voice', checked: kind === 'voice' });
  name.addEventListener('input', () => {
    const fixed = name.value.toLowerCase().replace(/\s+/g, '-').replace(/[^a-z0-9_-]/g, '');
    if (fixed !== name.value) name.value = fixed;
  });
  openModal({
    title: 'Create channel',
    submitLabel: 'Create channel',
    body: [
      h('fieldset', { class: 'kind-pick' },
        h('legend', null, 'Channel type'),
        h('label', { class: 'kind-opt', for: 'kind-text' }, kindText, h('span', { class: 'kind-icon', 'aria-hidden': 'true' }, '#'), h('span', null, h('strong', null, 'Text'), h('small', null, 'Messages, replies, reactions'))),
        h('label', { class: 'kind-opt', for: 'kind-voice' }, kindVoice, h('span', { class: 'kind-icon', 'aria-hidden': 'true' }, icon('speaker')), h('span', null, h('strong', null, 'Voice'), h('small', null, 'Talk together')))),
      h('label', { for: 'new-channel-name' }, 'Channel name'), name,
      h('p', { class: 'hint' }, 'Lowercase letters, digits, - and _ (up to 32).'),
      h('label', { for: 'new-channel-topic' }, 'Topic ', h('span', { class: 'optional' }, '(optional)')), topic,
    ],
    onSubmit: async () => {
      const n = name.value.trim();
      if (!/^[a-z0-9_-]{1,32}$/.test(n)) throw new Error('Use 1–32 lowercase letters, digits, - or _.');
      const k = kindVoice.checked ? 'voice' : 'text';
      try {
        const created = await rest.createChannel(n, k, topic.value.trim());
        addChannel(app.state, created);
        if (k === 'text') app.selectChannel(created.name);
        toast(`Created ${k === 'text' ? '#' : '🔊 '}${created.name}`, 'success');
      } catch (err) {
        if (err instanceof ApiError && err.code === 'conflict') throw new Error(`A channel named “${n}” already exists.`);
        throw err;
      }
    },
  });
}

/** A fresh single-use invite link, with a Copy button. @param {App} app */
export async function openInvite(app) {
  try {
    const inv = await rest.createInvite();
    const link = `${location.origin}/?invite=${encodeURIComponent(inv.code)}`;
    const field = h('input', { id: 'invite-link', readOnly: true, value: link, 'aria-label': 'Invite link' });
    const copy = h('button', { class: 'btn primary', type: 'button' }, 'Copy');
    copy.addEventListener('click', async () => {
      field.select();
      try {
        await navigator.clipboard.writeText(link);
        copy.textContent = 'Copied';
      } catch {
        copy.textContent = 'Press Ctrl+C';
      }
    });
    openModal({
      title: 'Invite people',
      body: [
        h('p', { class: 'modal-text' }, 'Send this link to someone you want on this server. It can be used once.'),
        h('div', { class: 'copy-row' }, field, copy),
        inv.expires_ts ? h('p', { class: 'hint' }, `Expires ${new Date(inv.expires_ts).toLocaleString()}.`) : null,
      ],
    });
    field.select();
  } catch (err) {
    app.restError(err, 'Could not create an invite');
  }
}

/**
 * Ask, then delete a text or voice channel (the server's `channel_delete` updates every page).
 * @param {App} app @param {string} name
 */
export async function deleteChannel(app, name) {
  if (!name) return;
  const ok = await confirmDialog('Delete channel', `Delete #${name} and all of its messages? This cannot be undone.`, 'Delete channel');
  if (!ok) return;
  try {
    await rest.deleteChannel(name);
  } catch (err) {
    app.restError(err, `Could not delete #${name}`);
  }
}

/** @param {import('./protocol.js').Message|null} m @returns {Promise<boolean>} */
export function confirmDeleteMessage(m) {
  const preview = m ? (m.content.length > 140 ? `${m.content.slice(0, 137)}…` : m.content) : '';
  return confirmDialog('Delete message', `Are you sure you want to delete this message?${preview ? `\n\n“${preview}”` : ''}`, 'Delete');
}
