// @ts-check
//! The app's dialogs, built on ui.js `openModal`: create a channel, invite people (new links,
//! uses/expiry, the live invites with revoke), and the
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

/** The invite dialog's choices: [label, value]; the first of each is the v1 default. */
const INVITE_USES = /** @type {[string, number][]} */ ([['1 use', 1], ['5 uses', 5], ['10 uses', 10], ['25 uses', 25], ['100 uses', 100]]);
const INVITE_EXPIRY = /** @type {[string, number][]} */ ([['7 days', 7 * 86400], ['30 minutes', 1800], ['1 hour', 3600], ['6 hours', 6 * 3600], ['1 day', 86400], ['30 days', 30 * 86400]]);

/** @param {(string|number)[][]} options [label, value] pairs @param {string} id @param {string} label */
function select(options, id, label) {
  return h('select', { id, 'aria-label': label },
    options.map(([text, value]) => h('option', { value: String(value) }, text)));
}

/**
 * Invite people: a fresh link (one use, a week, as in v1) with a Copy button, options to make
 * another with more uses or a different expiry, and the live invites with Revoke.
 * @param {App} app
 */
export async function openInvite(app) {
  /** @type {import('./protocol.js').Invite} */
  let inv;
  try {
    inv = await rest.createInvite();
  } catch (err) {
    app.restError(err, 'Could not create an invite');
    return;
  }
  const linkOf = (/** @type {string} */ code) => `${location.origin}/?invite=${encodeURIComponent(code)}`;
  const field = h('input', { id: 'invite-link', readOnly: true, value: linkOf(inv.code), 'aria-label': 'Invite link' });
  const copy = h('button', { class: 'btn primary', type: 'button' }, 'Copy');
  const about = h('p', { class: 'hint', id: 'invite-about' });
  const uses = select(INVITE_USES, 'invite-uses', 'Maximum uses');
  const expiry = select(INVITE_EXPIRY, 'invite-expiry', 'Expires after');
  const make = h('button', { class: 'btn ghost', type: 'button', id: 'invite-new' }, 'New link');
  const list = h('ul', { class: 'invite-list', id: 'invite-list', 'aria-label': 'Active invites' });

  const describe = (/** @type {import('./protocol.js').Invite} */ i) =>
    `${i.uses} of ${i.max_uses} use${i.max_uses === 1 ? '' : 's'}, expires ${new Date(i.expires_ts).toLocaleString()}`;
  const show = (/** @type {import('./protocol.js').Invite} */ i) => {
    inv = i;
    field.value = linkOf(i.code);
    about.textContent = `Can be used ${i.max_uses === 1 ? 'once' : `${i.max_uses} times`}. Expires ${new Date(i.expires_ts).toLocaleString()}.`;
    copy.textContent = 'Copy';
  };
  async function refresh() {
    try {
      const live = await rest.invites();
      list.replaceChildren(...live.map((i) => h('li', { class: 'invite-item', dataset: { code: i.code } },
        h('code', { class: 'invite-code' }, i.code),
        h('span', { class: 'invite-meta' }, describe(i)),
        h('button', {
          class: 'btn ghost small',
          type: 'button',
          'aria-label': `Revoke invite ${i.code}`,
          onclick: async () => {
            try {
              await rest.revokeInvite(i.code);
              toast('Invite revoked.', 'success');
            } catch (err) {
              app.restError(err, 'Could not revoke the invite');
            }
            void refresh();
          },
        }, 'Revoke'))));
      if (!live.length) list.replaceChildren(h('li', { class: 'hint' }, 'No active invites.'));
    } catch (err) {
      app.restError(err, 'Could not list invites');
    }
  }

  copy.addEventListener('click', async () => {
    field.select();
    try {
      await navigator.clipboard.writeText(field.value);
      copy.textContent = 'Copied';
    } catch {
      copy.textContent = 'Press Ctrl+C';
    }
  });
  make.addEventListener('click', async () => {
    make.disabled = true;
    try {
      show(await rest.createInvite({ max_uses: Number(uses.value), expires_in_s: Number(expiry.value) }));
      field.select();
      await refresh();
    } catch (err) {
      app.restError(err, 'Could not create an invite');
    } finally {
      make.disabled = false;
    }
  });

  show(inv);
  openModal({
    title: 'Invite people',
    body: [
      h('p', { class: 'modal-text' }, 'Send this link to someone you want on this server.'),
      h('div', { class: 'copy-row' }, field, copy),
      about,
      h('div', { class: 'invite-options' }, uses, expiry, make),
      h('h3', { class: 'modal-subtitle' }, 'Active invites'),
      list,
    ],
  });
  field.select();
  void refresh();
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
