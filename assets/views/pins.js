// @ts-check
//! The pinned messages of a channel (`GET /api/pins?channel=`), from the pin button in the
//! channel header: author, time and text of each (plain text, never HTML), and Unpin for
//! those with `manage_messages`.

import { h, avatar, formatTime } from '../dom.js';
import { rest, frames } from '../protocol.js';
import { openModal, toast } from '../ui.js';
import { can } from '../perms.js';
import { channelLabel } from '../state.js';

/** @param {import('../app.js').App} app @param {string} channel */
export async function openPins(app, channel) {
  let pins;
  try {
    pins = await rest.pins(channel);
  } catch (err) {
    app.restError(err, 'Could not load the pinned messages');
    return;
  }
  const mod = can(app.state, 'manage_messages', channel);
  const where = channelLabel(app.state, channel);
  const list = h('ol', { class: 'pins-list', id: 'pins-list', 'aria-label': `Pinned in ${where}` },
    pins.length ? pins.map((m) => {
      const li = h('li', { class: 'pin-item', dataset: { id: String(m.id) } },
        avatar(m.author, 'tiny'),
        h('div', { class: 'pin-body' },
          h('div', { class: 'pin-head' }, h('strong', null, m.author), ' ', h('time', { class: 'ts' }, formatTime(m.ts))),
          h('p', { class: 'pin-text', dir: 'auto' }, m.content)),
        mod ? h('button', {
          class: 'btn ghost small unpin-btn', type: 'button', 'aria-label': `Unpin the message of ${m.author}`,
          onclick: () => {
            if (!app.conn.send(frames.pin(m.id, false))) return toast('Not connected — try again in a moment.', 'error');
            li.remove();
          },
        }, 'Unpin') : null);
      return li;
    }) : h('li', { class: 'hint' }, 'No pinned messages yet.'));
  openModal({ title: `Pinned in ${where}`, body: [list] });
}
