// @ts-check
//! The app's entry point and wiring: it creates the one state (state.js), the `/ws` connection
//! (protocol.js) and the views, connects them, and defines the `actions` the views may call.
//! Each concern has its own module: events.js (server events → state), outbox.js (sending,
//! in typed order, until acknowledged), history.js (pages and catch-up), unread.js (read
//! markers, mentions), dialogs.js, views/layout.js (drawers). State changes only through the
//! functions in state.js; `changed()` schedules one re-render per animation frame.

import { Connection, rest, ApiError, frames } from './protocol.js';
import {
  createState, resetState, signIn, setUsers, selectCurrent, setReplyTo, setEditing, pickChannel,
  lastOwnMessage, findMessage, applyUserUpdate, setMyStatus, setNotifySettings,
} from './state.js';
import { fillIcons } from './icons.js';
import { toast } from './ui.js';
import { createAuthView } from './views/auth.js';
import { renderSidebar } from './views/sidebar.js';
import { installShortcuts } from './views/shortcuts.js';
import { renderMembers } from './views/members.js';
import { createMessagesView } from './views/messages.js';
import { createComposer } from './views/composer.js';
import { renderHeader, renderBanner } from './views/header.js';
import { createLayout } from './views/layout.js';
import { createSearch } from './views/search.js';
import { createOutbox } from './outbox.js';
import { createHistory } from './history.js';
import { createUnread } from './unread.js';
import { listen } from './events.js';
import * as dialogs from './dialogs.js';
import * as voice from './voice.js';
import { avatarUrls } from './dom.js';
import { pickAvatar } from './views/attachments.js';
import { openUserSettings } from './views/settings.js';
import { renderRestrictions } from './views/restrictions.js';
import { openServerSettings } from './views/server-settings.js';
import { openChannelSettings } from './views/channel-settings.js';
import { openPins } from './views/pins.js';
import { showRemoved } from './views/removed.js';
import { can, timeoutLeftMs } from './perms.js';
import { createProfileCard } from './views/profile.js';
import './views/profile-roles.js'; // adds the roles part to the profile card
import { renderNotifyLevel } from './views/notify.js';
import { registerServiceWorker, subscribePush, unsubscribePush } from './push.js';
import { watchIdle } from './idle.js';
import { installDms, newDm, leaveDm } from './dms.js';
import { addressChannel, showInAddress } from './address.js';

/**
 * What the views may ask for.
 * @typedef {object} Actions
 * @property {(name:string)=>void} selectChannel
 * @property {(name:string)=>void} joinVoice
 * @property {()=>string} voiceChannel the voice channel this page is connected to, or ''
 * @property {(at?:import('./views/settings.js').Section)=>void} userSettings the one gear (voice is a section)
 * @property {(kind:'text'|'voice')=>void} openCreateChannel
 * @property {(name:string)=>void} deleteChannel asks, then deletes (admin)
 * @property {()=>void} enableNotifications
 * @property {()=>void} changeAvatar
 * @property {()=>void} logout
 * @property {(content:string, attachments?:string[])=>void} send
 * @property {(nonce:string)=>void} retry
 * @property {(nonce:string)=>void} discard
 * @property {()=>void} loadOlder
 * @property {()=>void} seenBottom
 * @property {(channel:string, id:number)=>void} fetchQuoted
 * @property {(id:number)=>void} startReply
 * @property {()=>void} cancelReply
 * @property {(id:number)=>void} startEdit
 * @property {()=>void} cancelEdit
 * @property {(id:number, content:string)=>void} saveEdit
 * @property {()=>void} editLast
 * @property {(id:number, skipConfirm:boolean)=>void} deleteMessage
 * @property {(id:number, emoji:string)=>void} react
 * @property {()=>void} typing
 * @property {(q:string)=>Promise<import('./protocol.js').Message[]>} search full-text, newest first
 * @property {(id:number, on:boolean)=>void} pin pin or unpin (manage_messages)
 * @property {(name:string)=>void} openChannelSettings
 * @property {(moves:{name:string, patch:{position?:number, category?:string|null}}[])=>void} moveChannels drag-reorder (manage_channels)
 * @property {(username:string, from:HTMLElement)=>void} openProfile the profile card (views/profile.js)
 * @property {()=>void} newDm "New message": pick people, open their DM (dms.js)
 * @property {(name:string)=>void} leaveDm leave a group DM, close a two-person one (dms.js)
 */

/**
 * What the controller modules share.
 * @typedef {object} App
 * @property {import('./state.js').State} state
 * @property {Connection} conn
 * @property {() => void} changed        schedule one re-render
 * @property {(err:unknown, what:string|null) => void} restError  a REST failure: toast `what` (null: log only)
 * @property {() => boolean} atBottom    the message list shows its newest message
 * @property {(name:string) => void} selectChannel
 * @property {() => void} sessionExpired
 * @property {() => void} refreshUsers
 * @property {(closeReason:string) => void} removed  kicked or banned: leave the app, say why
 */

/** Outbox timeouts, countdowns and typing expiry are checked this often. */
const TICK_MS = 500;

const state = createState();
const conn = new Connection(Connection.defaultUrl());
let renderQueued = false;
let usersInFlight = false;
let timedOutShown = false;

/** @type {App} */
const app = {
  state,
  conn,
  changed,
  restError,
  atBottom: () => messagesView.isAtBottom(),
  selectChannel,
  sessionExpired,
  refreshUsers,
  removed,
};
installDms(app);
const outbox = createOutbox(app);
const pages = createHistory(app);
const unread = createUnread(app);
listen(app, { outbox, unread, history: pages });

// ---------------------------------------------------------------- rendering

function changed() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    render();
  });
}

function render() {
  if (!state.me) return;
  renderSidebar(state, actions);
  renderHeader(state, voice.currentChannel());
  messagesView.render(state);
  composer.render(state);
  renderMembers(state, actions.openProfile);
  renderNotifyLevel(state, setNotify);
  renderBanner(state, () => conn.retryNow());
  renderRestrictions(state, voice.currentChannel());
}

function tick() {
  let dirty = outbox.tick();
  if ([...state.typing.values()].some((m) => m.size)) dirty = true; // typing lines expire
  if (state.conn.state === 'waiting') dirty = true;
  if (timeoutLeftMs(state) > 0 || timedOutShown) dirty = true; // the countdown, and its end
  timedOutShown = timeoutLeftMs(state) > 0;
  if (dirty) changed();
}

// ---------------------------------------------------------------- shared helpers

async function refreshUsers() {
  if (usersInFlight) return;
  usersInFlight = true;
  try {
    setUsers(state, await rest.users());
    for (const u of state.users.values()) if (u.avatar_url) avatarUrls.set(u.username, u.avatar_url);
    changed();
  } catch (err) {
    restError(err, null);
  } finally {
    usersInFlight = false;
  }
}

/** @param {unknown} err @param {string|null} what shown in a toast unless null */
function restError(err, what) {
  if (err instanceof ApiError && err.status === 401) return sessionExpired();
  if (err instanceof ApiError && err.code === 'rate_limited') {
    toast(`Rate limited: try again in ${Math.ceil((err.retryAfterMs ?? 1000) / 1000)} s.`, 'error');
    return;
  }
  if (what) toast(`${what}: ${err instanceof Error ? err.message : String(err)}`, 'error');
  else console.warn(err);
}

/** @param {string} name */
function selectChannel(name) {
  if (!name) return;
  const ch = state.channels.find((c) => c.name === name);
  if (!ch || ch.kind === 'voice') return;
  selectCurrent(state, name);
  showInAddress(name);
  layout.closeDrawers();
  if (!state.chans.get(name)?.loaded) pages.loadLatest(name);
  changed();
  requestAnimationFrame(() => {
    unread.markReadIfVisible();
    if (!matchMedia('(max-width: 640px)').matches) composer.focus();
  });
}

function sessionExpired() {
  if (!state.me) return;
  teardown();
  auth.show('Your session has expired. Please sign in again.');
}

/** Kicked or banned (the socket closed with 4003): every tab ends up here, with the reason. @param {string} reason */
function removed(reason) {
  if (!state.me) return;
  outbox.forget();
  teardown();
  showRemoved(reason);
}

function teardown() {
  voice.leave(true);
  conn.stop();
  resetState(state);
  search.close();
  layout.show(false);
  document.body.classList.remove('has-banner');
  const banner = /** @type {HTMLElement} */ (document.getElementById('banner'));
  banner.hidden = true;
  banner.dataset.sig = '';
  document.title = 'mini-discord';
}

/** One channel's notification level, or (channel '') the default. @param {string} channel @param {import('./protocol.js').NotifyLevel|null} level */
async function setNotify(channel, level) {
  try {
    setNotifySettings(state, await rest.setNotify(channel || null, level));
  } catch (err) {
    restError(err, 'Notification setting not saved');
  }
  changed();
}

/** @param {import('./protocol.js').ChosenStatus} status */
function setStatus(status) {
  if (!conn.send(frames.status(status))) return;
  setMyStatus(state, status);
  changed();
}

// ---------------------------------------------------------------- actions

/** @type {Actions} */
const actions = {
  selectChannel,
  joinVoice(name) {
    if (timeoutLeftMs(state) > 0) return toast('You are timed out: you cannot join voice until it ends.', 'error');
    if (!can(state, 'connect', name)) return toast('You do not have permission to join this voice channel.', 'error');
    voice.join(name);
  },
  voiceChannel: () => voice.currentChannel(),
  userSettings: (at) => void openUserSettings({
    username: state.me?.username ?? '', at, changed, enableNotifications: () => actions.enableNotifications(),
    voiceSection: () => voice.settingsSection(),
  }),
  openCreateChannel: (kind) => dialogs.openCreateChannel(app, kind),
  deleteChannel: (name) => void dialogs.deleteChannel(app, name),
  changeAvatar() {
    pickAvatar((user) => {
      state.me = user;
      if (user.avatar_url) avatarUrls.set(user.username, user.avatar_url);
      refreshUsers();
      changed();
    });
  },
  enableNotifications() {
    if (!('Notification' in window)) return;
    Notification.requestPermission().then((p) => {
      toast(p === 'granted' ? 'You will be notified when someone mentions you.' : 'Notifications stay off.', p === 'granted' ? 'success' : 'info');
      if (p === 'granted') void subscribePush();
      const panel = document.getElementById('user-panel');
      if (panel) panel.dataset.sig = '';
      changed();
    });
  },
  async logout() {
    try {
      await rest.logout();
    } catch {
      /* the session may already be gone; sign out locally anyway */
    }
    outbox.forget();
    composer.forgetDrafts();
    await unsubscribePush();
    teardown();
    auth.show('You have signed out.');
  },
  send(content, attachments) {
    outbox.send(content, attachments);
    messagesView.scrollToBottom();
    changed();
  },
  retry(nonce) {
    outbox.retry(nonce);
    changed();
  },
  discard: (nonce) => outbox.discard(nonce),
  loadOlder: () => void pages.loadOlder(),
  seenBottom: () => unread.markReadIfVisible(),
  fetchQuoted: (channel, id) => pages.fetchQuoted(channel, id),
  startReply(id) {
    setReplyTo(state, id);
    changed();
    composer.focus();
  },
  cancelReply() {
    setReplyTo(state, null);
    changed();
    composer.focus();
  },
  startEdit(id) {
    setEditing(state, id);
    changed();
  },
  cancelEdit() {
    setEditing(state, null);
    changed();
    composer.focus();
  },
  saveEdit(id, content) {
    if (!conn.send(frames.edit(id, content))) {
      toast('Not connected — your edit was not saved. Try again when the connection is back.', 'error');
      return;
    }
    setEditing(state, null);
    changed();
    composer.focus();
  },
  editLast() {
    const m = lastOwnMessage(state, state.current);
    if (m) actions.startEdit(m.id);
  },
  async deleteMessage(id, skipConfirm) {
    if (!skipConfirm && !(await dialogs.confirmDeleteMessage(findMessage(state, id)))) return;
    if (!conn.send(frames.delete(id))) toast('Not connected — the message was not deleted.', 'error');
    if (state.editing === id) setEditing(state, null);
    changed();
  },
  react(id, emoji) {
    if (!conn.send(frames.react(id, emoji))) toast('Not connected — try again in a moment.', 'error');
  },
  typing() {
    if (state.current) conn.send(frames.typing(state.current));
  },
  pin(id, on) {
    if (!conn.send(frames.pin(id, on))) toast('Not connected — try again in a moment.', 'error');
  },
  openChannelSettings: (name) => openChannelSettings(app, name),
  async moveChannels(moves) {
    for (const { name, patch } of moves) {
      try {
        await rest.patchChannel(name, patch);
      } catch (err) {
        restError(err, `Could not move #${name}`);
        return;
      }
    }
  },
  openProfile: (username, from) => profileCard.open(username, from),
  newDm: () => void newDm(),
  leaveDm: (name) => void leaveDm(name),
  async search(q) {
    try {
      return await rest.search(q);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) sessionExpired();
      throw err;
    }
  },
};

// ---------------------------------------------------------------- start

const layout = createLayout({
  invite: () => void dialogs.openInvite(app),
  deleteChannel: () => void dialogs.deleteChannel(app, app.state.current),
  callPill: () => layout.openSidebar(),
});
document.getElementById('server-settings-btn')?.addEventListener('click', () => openServerSettings(app, actions.openChannelSettings));
document.getElementById('pins-btn')?.addEventListener('click', () => void openPins(app, state.current));
const bootEl = /** @type {HTMLElement} */ (document.getElementById('boot'));
const messagesView = createMessagesView(actions);
const composer = createComposer(actions);
const auth = createAuthView((user) => start(user));
const search = createSearch(actions, state);
const profileCard = createProfileCard(() => state, {
  async saveProfile(fields) {
    try {
      const { user } = await rest.updateProfile(fields);
      applyUserUpdate(state, user);
      changed();
      return true;
    } catch (err) {
      restError(err, null);
      return false;
    }
  },
  setStatus,
  setDefaultNotify: (level) => void setNotify('', level),
  changeAvatar: () => actions.changeAvatar(),
});
installShortcuts(() => state, actions);

window.addEventListener('hashchange', () => {
  const name = addressChannel();
  if (name && name !== state.current) selectChannel(name);
});
document.addEventListener('visibilitychange', () => requestAnimationFrame(unread.markReadIfVisible));
window.addEventListener('online', () => conn.retryNow());

/** @param {import('./protocol.js').User} user */
function start(user) {
  signIn(state, user, outbox.load(user.id));
  selectCurrent(state, pickChannel(state, addressChannel()) || addressChannel() || 'general');
  auth.hide();
  bootEl.hidden = true;
  layout.show(true);
  conn.start();
  refreshUsers();
  rest.notifySettings().then((n) => {
    setNotifySettings(state, n);
    changed();
  }, (err) => restError(err, null));
  void subscribePush();
  changed();
}

async function boot() {
  let delay = 1000;
  for (;;) {
    try {
      const { user } = await rest.me();
      start(user);
      return;
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        bootEl.hidden = true;
        auth.show();
        return;
      }
      const p = bootEl.querySelector('p');
      if (p) p.textContent = `The server is unreachable. Retrying in ${Math.round(delay / 1000)} s…`;
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 15_000);
    }
  }
}

// A click on a push notification opens `/?channel=…&message=…` (assets/sw.js): show that channel.
const opened = new URLSearchParams(location.search).get('channel');
if (opened) {
  history.replaceState(null, '', '/');
  showInAddress(opened);
}
void registerServiceWorker();
watchIdle({ chosen: () => state.myStatus, set: (st) => { if (state.me) setStatus(st); } });
fillIcons();
voice.configure({
  username: () => state.me?.username ?? '',
  onChange: () => changed(),
  openSettings: () => actions.userSettings('voice'),
  channel: (name) => state.channels.find((c) => c.name === name), // its `permissions` gate camera and screen
});
setInterval(tick, TICK_MS);
boot();
