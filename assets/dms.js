// @ts-check
//! Direct messages in the app (docs/DMS.md):
//! - "Message" on a profile card opens (or reuses) the DM with that user (`POST /api/dms`);
//! - "New message" (the + by *Direct messages*) picks up to 9 people and opens that DM;
//! - "Add people" in an open DM adds them (`POST /api/dms/{name}/members`: on a two-person
//!   DM that makes a new group DM, which is then shown);
//! - the × on a DM's row leaves a group DM (`DELETE /api/dms/{name}/members/me`, after a
//!   question), or closes a two-person one: closing is this browser's choice, kept in
//!   localStorage (`md.dm.closed.<user>`), and lasts until a newer message arrives in it.
//! A DM is otherwise a text channel: the same message view, composer, unread and
//! notification code; it is named by `state.js` `dmLabel` (never by its internal name).
//! User text only enters the page through `textContent` (`h`).

import { h } from './dom.js';
import { rest, MAX_DM_MEMBERS } from './protocol.js';
import { toast, confirmDialog } from './ui.js';
import {
  addChannel, removeChannel, dmLabel, isPairDm, closeDm, reopenDm, setClosedDms, pickChannel,
} from './state.js';
import { addProfileSection } from './views/profile.js';
import { pickPeople } from './views/dm-picker.js';

/**
 * @typedef {import('./protocol.js').Channel} Channel
 * @typedef {import('./app.js').App} App
 */

/** @type {App|null} */
let app = null;

/** @param {string} username */
const closedKey = (username) => `md.dm.closed.${username}`;

/** @param {string} username @returns {Map<string, number>} */
function loadClosed(username) {
  try {
    const raw = JSON.parse(localStorage.getItem(closedKey(username)) ?? '{}');
    return new Map(Object.entries(raw).filter(([, v]) => typeof v === 'number'));
  } catch {
    return new Map();
  }
}

function saveClosed() {
  const a = app;
  if (!a?.state.me) return;
  try {
    localStorage.setItem(closedKey(a.state.me.username), JSON.stringify(Object.fromEntries(a.state.closedDms)));
  } catch {
    /* storage full or disabled: closed for this page only */
  }
}

/** Hooks DMs into the app (called once from app.js). @param {App} a */
export function installDms(a) {
  app = a;
  // Before events.js's own `ready` handler: which DMs this browser closed, for this user.
  a.conn.on('ready', (f) => setClosedDms(a.state, loadClosed(f.user.username)));
  document.getElementById('dm-add-btn')?.addEventListener('click', () => void addPeople(a.state.current));
}

/** Shows the DM `channel` answered by the server (its `channel_create` may come later).
 * @param {App} a @param {Channel} channel */
function show(a, channel) {
  if (!a.state.channels.some((c) => c.name === channel.name)) addChannel(a.state, channel);
  if (reopenDm(a.state, channel.name)) saveClosed();
  a.selectChannel(channel.name);
}

/** Opens the DM with `usernames` and shows it. @param {string[]} usernames */
export async function openDm(usernames) {
  if (!app) return;
  const a = app;
  try {
    show(a, (await rest.openDm(usernames)).channel);
  } catch (e) {
    a.restError(e, 'Could not open the conversation');
  }
}

/** "New message": pick people, open their DM. */
export async function newDm() {
  if (!app) return;
  const picked = await pickPeople(app.state, { title: 'New message', submitLabel: 'Open', max: MAX_DM_MEMBERS - 1 });
  if (picked) await openDm(picked);
}

/** "Add people" to the open DM `name`: one `POST …/members` each; the first on a
 * two-person DM makes the new group DM the others are added to. @param {string} name */
export async function addPeople(name) {
  if (!app) return;
  const a = app;
  const c = a.state.channels.find((x) => x.name === name && x.kind === 'dm');
  if (!c) return;
  const members = c.members ?? [];
  const room = MAX_DM_MEMBERS - members.length;
  if (room <= 0) return toast(`This group is full: a group DM holds at most ${MAX_DM_MEMBERS} people.`, 'info');
  const picked = await pickPeople(a.state, { title: 'Add people', submitLabel: 'Add', max: room, exclude: members });
  if (!picked) return;
  let target = c;
  try {
    for (const username of picked) target = (await rest.addToDm(target.name, username)).channel;
  } catch (e) {
    a.restError(e, 'Could not add everyone');
  }
  if (target !== c) show(a, target);
  a.changed();
}

/** The × of a DM's row: leave a group DM (asked first), close a two-person one.
 * @param {string} name */
export async function leaveDm(name) {
  if (!app) return;
  const a = app;
  const s = a.state;
  const c = s.channels.find((x) => x.name === name && x.kind === 'dm');
  if (!c) return;
  const label = dmLabel(s, c);
  const away = () => {
    if (s.current === name) a.selectChannel(pickChannel(s, ''));
    a.changed();
  };
  if (isPairDm(name)) {
    closeDm(s, name);
    saveClosed();
    away();
    return;
  }
  const ok = await confirmDialog('Leave group',
    `Leave the conversation with ${label}? You will not see it again unless someone adds you back.`, 'Leave group');
  if (!ok) return;
  try {
    await rest.leaveDm(name);
  } catch (e) {
    a.restError(e, 'Could not leave the conversation');
    return;
  }
  // Every tab hears `channel_delete` (maybe before this answer); this one need not wait.
  const wasCurrent = s.current === name;
  removeChannel(s, name);
  if (wasCurrent) a.selectChannel(pickChannel(s, ''));
  toast(`You left the conversation with ${label}.`, 'info', 4000, `gone-${name}`);
  a.changed();
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
