// @ts-check
//! Direct messages in the app (docs/DMS.md): the "Message" button on a profile card opens
//! (or reuses) the DM with that user through `POST /api/dms` and shows it; `dmLabel` is how a
//! DM is named in the sidebar and header (the other members' shown names, not its id-based
//! channel name). A DM is otherwise a text channel: the same message view, composer, unread
//! and notification code. User text only enters the page through `textContent` (`h`).

import { h } from './dom.js';
import { api } from './protocol.js';
import { addChannel, shownName } from './state.js';
import { addProfileSection } from './views/profile.js';

/**
 * @typedef {import('./state.js').State} State
 * @typedef {import('./protocol.js').Channel} Channel
 * @typedef {import('./app.js').App} App
 */

/** @type {App|null} */
let app = null;

/** Hooks DMs into the app (called once from app.js). @param {App} a */
export function installDms(a) {
  app = a;
}

/** What a DM is called for the signed-in user: the other members, by shown name.
 * @param {State} s @param {Channel} c */
export function dmLabel(s, c) {
  const me = s.me?.username;
  const others = (c.members ?? []).filter((m) => m !== me);
  return others.map((m) => shownName(s, m)).join(', ') || c.name;
}

/** Opens the DM with `usernames` and shows it. @param {string[]} usernames */
export async function openDm(usernames) {
  if (!app) return;
  const a = app;
  try {
    const r = /** @type {{channel: Channel}} */ (await api('POST', '/api/dms', { users: usernames }));
    // The `channel_create` event may come after this answer: add it now so it can be shown.
    if (!a.state.channels.some((c) => c.name === r.channel.name)) addChannel(a.state, r.channel);
    a.selectChannel(r.channel.name);
  } catch (e) {
    a.restError(e, 'Could not open the conversation');
  }
}

addProfileSection(({ state: s, username, mine, close }) => {
  if (mine || !s.me) return null;
  return h('button', {
    class: 'btn profile-message',
    type: 'button',
    dataset: { focus: 'message' },
    onclick: () => {
      close();
      openDm([username]);
    },
  }, 'Message');
});
