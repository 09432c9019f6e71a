// @ts-check
//! Unread and mentions (docs/UI.md, "Unread and mentions"). The read markers live on the
//! server (issue 14): `ready.unread` brings them and the mention counts, `read` events bring
//! what another device of this user read, and marking a channel read here sends `read`, so
//! reading on the phone clears the laptop too. A channel is marked read when its newest
//! message is on screen in a visible tab. Desktop notifications (tab hidden) follow the
//! user's notification levels and status: mentions (or every message of a channel set to
//! "all"), never in do not disturb.

import { markRead, chan } from './state.js';
import { frames } from './protocol.js';

/** @typedef {import('./protocol.js').Message} Message */

/** Read markers go to the server at most this often (per page, all channels in one go). */
const READ_SEND_MS = 500;

/** @param {import('./app.js').App} app */
export function createUnread(app) {
  const { state, conn } = app;

  /** Is the user looking at the newest message of `channel` right now? @param {string} channel */
  function seeing(channel) {
    return channel === state.current && document.visibilityState === 'visible' && app.atBottom();
  }

  /** channel → the newest id read here and not yet told to the server */
  const unsent = new Map();
  /** @type {ReturnType<typeof setTimeout>|null} */
  let timer = null;

  /** Tells the server what was read, at most once per `READ_SEND_MS`: reading along in a busy
   * channel marks every new message read, and one `read` per message would be a flood
   * (the server allows 10 a second). */
  function flushReads() {
    timer = null;
    for (const [channel, id] of unsent) conn.send(frames.read(channel, id));
    unsent.clear();
  }

  /** Mark the current channel read if the user can actually see its newest message. */
  function markReadIfVisible() {
    if (!seeing(state.current)) return;
    if (markRead(state, state.current)) {
      const id = chan(state, state.current).lastId;
      if (id > 0) {
        unsent.set(state.current, id);
        timer ??= setTimeout(flushReads, READ_SEND_MS);
      }
      app.changed();
    }
  }

  /** Whether a message should notify, by the user's level for its channel and their status.
   * @param {Message} m @param {boolean} mentioned */
  function wanted(m, mentioned) {
    if (state.myStatus === 'dnd') return false;
    const level = state.notify.channels[m.channel] ?? state.notify.default;
    return level === 'all' || (level === 'mentions' && mentioned);
  }

  /** A desktop notification while the tab is hidden, when the user allowed them.
   * @param {Message} m @param {boolean} mentioned */
  function notify(m, mentioned) {
    if (document.visibilityState !== 'hidden' || !wanted(m, mentioned)) return;
    if (!('Notification' in window) || Notification.permission !== 'granted') return;
    const who = state.users.get(m.author)?.display_name || m.author;
    try {
      const dm = state.channels.some((c) => c.name === m.channel && c.kind === 'dm');
      const title = dm ? `${who} (direct message)` : mentioned ? `${who} mentioned you in #${m.channel}` : `${who} in #${m.channel}`;
      const n = new Notification(title, {
        body: m.content.length > 200 ? `${m.content.slice(0, 197)}…` : m.content,
        tag: `md-${m.id}`,
        icon: '/icons/icon-192.png',
      });
      n.onclick = () => {
        window.focus();
        app.selectChannel(m.channel);
        n.close();
      };
    } catch {
      /* some platforms only allow notifications from a service worker */
    }
  }

  return { seeing, markReadIfVisible, notify };
}

/** @typedef {ReturnType<typeof createUnread>} Unread */
