// @ts-check
//! Unread and mentions (docs/UI.md, "Unread and mentions"): the newest id the user has seen in
//! each channel, kept in localStorage; marking the current channel read when its newest
//! message is on screen in a visible tab; desktop notifications for mentions in a hidden tab.

import { markRead } from './state.js';

/** @typedef {import('./protocol.js').Message} Message */

/** @param {import('./app.js').App} app */
export function createUnread(app) {
  const { state } = app;
  const key = (id = state.me?.id ?? 0) => `md.read.${id}`;

  /** @param {number} userId @returns {Map<string, number>} */
  function load(userId) {
    try {
      const reads = JSON.parse(localStorage.getItem(key(userId)) ?? '{}');
      return new Map(Object.entries(reads).map(([k, v]) => [k, Number(v)]));
    } catch {
      return new Map();
    }
  }

  function save() {
    try {
      localStorage.setItem(key(), JSON.stringify(Object.fromEntries(state.readIds)));
    } catch {
      /* ignore */
    }
  }

  /** Is the user looking at the newest message of `channel` right now? @param {string} channel */
  function seeing(channel) {
    return channel === state.current && document.visibilityState === 'visible' && app.atBottom();
  }

  /** Mark the current channel read if the user can actually see its newest message. */
  function markReadIfVisible() {
    if (!seeing(state.current)) return;
    if (markRead(state, state.current)) {
      save();
      app.changed();
    }
  }

  /** A desktop notification for a mention, when the user allowed them. @param {Message} m */
  function notify(m) {
    if (document.visibilityState !== 'hidden') return;
    if (!('Notification' in window) || Notification.permission !== 'granted') return;
    try {
      const n = new Notification(`${m.author} mentioned you in #${m.channel}`, {
        body: m.content.length > 200 ? `${m.content.slice(0, 197)}…` : m.content,
        tag: `md-${m.id}`,
        icon: '/favicon.svg',
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

  return { load, save, seeing, markReadIfVisible, notify };
}

/** @typedef {ReturnType<typeof createUnread>} Unread */
