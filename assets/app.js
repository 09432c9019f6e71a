// @ts-check
//! The app's controller: it owns the state (state.js), feeds it from the server (protocol.js),
//! and turns user actions into frames and REST calls. Views (views/*.js) only read the state
//! and call the `actions` defined here; `changed()` schedules one re-render per frame.
//!
//! Delivery rules (issue 4): a message typed here lives in `state.outbox` (and localStorage)
//! until the server's `message` event with the same nonce arrives. While disconnected it waits
//! as `queued`; on every `ready` it is sent again with the same nonce, which the server
//! de-duplicates. After every `ready`, each loaded channel catches up with `after=<newest id>`
//! pages until a short page, merged by id: no gap, no duplicate, id order.

import { Connection, rest, ApiError, newNonce, HISTORY_MAX } from './protocol.js';
import {
  createState, chan, mergeMessages, removeMessage, reconcileRange, oldestId, newestId,
  mentions, lastOwnMessage, findMessage, TYPING_SHOW_MS,
} from './state.js';
import { h } from './dom.js';
import { fillIcons, icon } from './icons.js';
import { toast, openModal, confirmDialog } from './ui.js';
import { createAuthView } from './views/auth.js';
import { renderSidebar } from './views/sidebar.js';
import { renderMembers } from './views/members.js';
import { createMessagesView } from './views/messages.js';
import { createComposer } from './views/composer.js';
import { renderHeader, renderBanner } from './views/header.js';
import * as voice from './voice.js';

/**
 * What the views may ask for.
 * @typedef {object} Actions
 * @property {(name:string)=>void} selectChannel
 * @property {(name:string)=>void} joinVoice
 * @property {()=>string} voiceChannel the voice channel this page is connected to, or ''
 * @property {()=>void} voiceSettings
 * @property {(kind:'text'|'voice')=>void} openCreateChannel
 * @property {()=>void} enableNotifications
 * @property {()=>void} logout
 * @property {(content:string)=>void} send
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
 */

const PAGE = 50; // messages per scroll-back page
const ACK_TIMEOUT_MS = 15_000; // a sent message with no `message` event by then is "failed"
const TICK_MS = 500; // outbox, countdowns and typing expiry are checked this often

const state = createState();
const conn = new Connection(Connection.defaultUrl());
let renderQueued = false;
let readyGeneration = 0;
/** @type {Set<number>} reply targets being fetched */
const quoting = new Set();

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
  renderHeader(state);
  messagesView.render(state);
  composer.render(state);
  renderMembers(state);
  renderBanner(state, () => conn.retryNow());
}

// ---------------------------------------------------------------- persistence

const storeKey = (/** @type {string} */ what) => `md.${what}.${state.me?.id ?? 0}`;

function loadLocal() {
  try {
    const reads = JSON.parse(localStorage.getItem(storeKey('read')) ?? '{}');
    state.readIds = new Map(Object.entries(reads).map(([k, v]) => [k, Number(v)]));
    const outbox = JSON.parse(localStorage.getItem(storeKey('outbox')) ?? '[]');
    // Whatever was in flight when the page closed goes out again (same nonce: no duplicate).
    state.outbox = Array.isArray(outbox)
      ? outbox.map((e) => ({ ...e, status: e.status === 'failed' ? 'failed' : 'queued' }))
      : [];
  } catch {
    state.readIds = new Map();
    state.outbox = [];
  }
}

function saveOutbox() {
  try {
    localStorage.setItem(storeKey('outbox'), JSON.stringify(state.outbox));
  } catch {
    /* storage full or disabled: the outbox still lives in the page */
  }
}

function saveReads() {
  try {
    localStorage.setItem(storeKey('read'), JSON.stringify(Object.fromEntries(state.readIds)));
  } catch {
    /* ignore */
  }
}

// ---------------------------------------------------------------- reading and unread

/** Mark the current channel read if the user can actually see its newest message. */
function markReadIfVisible() {
  const c = state.chans.get(state.current);
  if (!c || document.visibilityState !== 'visible' || !messagesView.isAtBottom()) return;
  const read = state.readIds.get(state.current) ?? 0;
  if (c.lastId > read || c.mentions) {
    state.readIds.set(state.current, c.lastId);
    c.mentions = 0;
    saveReads();
    changed();
  }
}

// ---------------------------------------------------------------- history

/** @param {string} name */
async function loadLatest(name) {
  const c = chan(state, name);
  try {
    const page = await rest.history(name, { limit: PAGE });
    reconcileRange(c, page);
    if (!c.loaded) c.reachedStart = page.length < PAGE;
    c.loaded = true;
  } catch (err) {
    handleRestError(err, `Could not load #${name}`);
  }
  changed();
}

/**
 * Fetch everything after the newest message we hold, page by page, until a short page.
 * @param {string} name @param {number} generation
 */
async function catchUp(name, generation) {
  const c = chan(state, name);
  let after = newestId(c);
  for (;;) {
    if (generation !== readyGeneration) return; // a newer `ready` started its own catch-up
    const page = await rest.history(name, { after, limit: HISTORY_MAX });
    mergeMessages(c, page);
    changed();
    if (page.length < HISTORY_MAX) break;
    after = page[page.length - 1].id;
  }
  // Edits, reactions and deletions that happened while we were away, for the newest page.
  const latest = await rest.history(name, { limit: PAGE });
  if (generation === readyGeneration) reconcileRange(c, latest);
}

async function loadOlder() {
  const name = state.current;
  const c = state.chans.get(name);
  if (!c || !c.loaded || c.reachedStart || c.loadingOlder || !c.ids.length) return;
  c.loadingOlder = true;
  changed();
  try {
    const page = await rest.history(name, { before: oldestId(c), limit: PAGE });
    mergeMessages(c, page);
    if (page.length < PAGE) c.reachedStart = true;
  } catch (err) {
    handleRestError(err, 'Could not load older messages');
  } finally {
    c.loadingOlder = false;
    changed();
  }
}

// ---------------------------------------------------------------- outbox

function flushOutbox() {
  if (!conn.isReady) return;
  const now = Date.now();
  for (const e of state.outbox) {
    if (e.status === 'failed' || e.status === 'pending') continue;
    if (e.notBefore && e.notBefore > now) break; // keep order: nothing overtakes a held message
    /** @type {import('./protocol.js').Frame} */
    const frame = { type: 'send', channel: e.channel, content: e.content, nonce: e.nonce };
    if (e.reply_to != null) frame.reply_to = e.reply_to;
    if (!conn.send(frame)) return;
    e.status = 'pending';
    e.sentAt = now;
    e.notBefore = undefined;
    e.error = undefined;
  }
  saveOutbox();
  changed();
}

function tick() {
  const now = Date.now();
  let dirty = false;
  for (const e of state.outbox) {
    if (e.status === 'pending' && e.sentAt && now - e.sentAt > ACK_TIMEOUT_MS) {
      e.status = 'failed';
      e.error = 'the server did not answer';
      dirty = true;
    }
    if (e.notBefore) dirty = true; // countdown text
  }
  if (state.outbox.some((e) => e.status === 'queued')) flushOutbox();
  if (dirty) saveOutbox();
  for (const m of state.typing.values()) if (m.size) dirty = true;
  if (state.conn.state === 'waiting') dirty = true;
  if (dirty) changed();
}

// ---------------------------------------------------------------- server events

conn.on('status', (st) => {
  state.conn = { state: st.state, attempt: st.attempt, reason: st.reason,
    retryAt: st.retryInMs != null ? Date.now() + st.retryInMs : undefined };
  if (st.state !== 'ready') {
    // Not acknowledged before the socket went: send again after `ready` (same nonce).
    for (const e of state.outbox) if (e.status === 'pending') e.status = 'queued';
    state.typing.clear();
  }
  changed();
});

conn.on('unauthorized', () => sessionExpired());

conn.on('ready', async (/** @type {import('./protocol.js').ReadyFrame} */ f) => {
  const generation = ++readyGeneration;
  state.me = f.user;
  state.channels = f.channels;
  state.presence = new Map(f.presence.map((p) => [p.user, p.status]));
  state.voice = new Map();
  for (const v of f.voice ?? []) voiceSet(v.channel, v.user, true, v.muted, v.deafened);
  const names = new Set(f.channels.map((c) => c.name));
  for (const name of [...state.chans.keys()]) if (!names.has(name)) state.chans.delete(name);
  // Deleted while this page was away: its voice socket would only ever get 404 back.
  if (voice.currentChannel() && !names.has(voice.currentChannel())) leaveDeletedVoice(voice.currentChannel());
  for (const [name, id] of Object.entries(f.last_ids ?? {})) {
    const c = chan(state, name);
    if (id > c.lastId) c.lastId = id;
  }
  if (!state.channels.some((c) => c.name === state.current && c.kind === 'text')) {
    state.current = pickChannel();
  }
  flushOutbox();
  changed();
  refreshUsers();

  const loaded = [...state.chans.entries()].filter(([, c]) => c.loaded).map(([n]) => n);
  for (const name of loaded) {
    catchUp(name, generation).catch((err) => handleRestError(err, `Could not catch up #${name}`)).finally(changed);
  }
  if (state.current && !state.chans.get(state.current)?.loaded) loadLatest(state.current);
});

conn.on('message', (f) => {
  /** @type {import('./protocol.js').Message} */
  const m = f.message;
  if (f.nonce) {
    const i = state.outbox.findIndex((e) => e.nonce === f.nonce);
    if (i >= 0 && m.author === state.me?.username) {
      state.outbox.splice(i, 1);
      saveOutbox();
    }
  }
  const c = chan(state, m.channel);
  if (c.loaded) mergeMessages(c, [m]);
  else if (m.id > c.lastId) c.lastId = m.id;
  state.typing.get(m.channel)?.delete(m.author);
  const me = state.me?.username ?? '';
  if (m.author === me) {
    // Your own message never makes a channel unread.
    if ((state.readIds.get(m.channel) ?? 0) < m.id) state.readIds.set(m.channel, m.id);
    saveReads();
  } else if (me && mentions(m.content, me)) {
    const seeing = m.channel === state.current && document.visibilityState === 'visible' && messagesView.isAtBottom();
    if (!seeing) c.mentions += 1;
    if (document.visibilityState === 'hidden') notify(m);
  }
  changed();
  requestAnimationFrame(markReadIfVisible);
});

conn.on('message_update', (f) => {
  const m = f.message;
  const c = state.chans.get(m.channel);
  if (c?.byId.has(m.id)) mergeMessages(c, [m]);
  if (state.quoted.has(m.id)) state.quoted.set(m.id, m);
  changed();
});

conn.on('message_delete', (f) => {
  const c = state.chans.get(f.channel);
  if (c) removeMessage(c, f.id);
  if (state.quoted.has(f.id)) state.quoted.set(f.id, 'missing');
  if (state.editing === f.id) state.editing = null;
  if (state.replyTo?.messageId === f.id) state.replyTo = null;
  changed();
});

conn.on('reaction', (f) => {
  const m = state.chans.get(f.channel)?.byId.get(f.id);
  if (!m) return;
  const reactions = { ...(m.reactions ?? {}) };
  const users = (reactions[f.emoji] ?? []).filter((u) => u !== f.user);
  if (f.on) users.push(f.user);
  if (users.length) reactions[f.emoji] = users;
  else delete reactions[f.emoji];
  mergeMessages(/** @type {any} */ (state.chans.get(f.channel)), [{ ...m, reactions }]);
  changed();
});

conn.on('typing', (f) => {
  if (f.user === state.me?.username) return;
  let m = state.typing.get(f.channel);
  if (!m) state.typing.set(f.channel, (m = new Map()));
  m.set(f.user, Date.now() + TYPING_SHOW_MS);
  changed();
});

conn.on('presence', (f) => {
  state.presence.set(f.user, f.status);
  if (!state.users.has(f.user)) refreshUsers();
  changed();
});

conn.on('voice_state', (f) => {
  voiceSet(f.channel, f.user, f.joined, f.muted, f.deafened);
  changed();
});

conn.on('channel_create', (f) => {
  if (!state.channels.some((c) => c.name === f.channel.name)) state.channels.push(f.channel);
  else state.channels = state.channels.map((c) => (c.name === f.channel.name ? f.channel : c));
  changed();
});

/** The voice channel this page is in no longer exists: end the call and say why. @param {string} name */
function leaveDeletedVoice(name) {
  voice.leave(true);
  toast(`Voice channel ${name} was deleted. You left the call.`, 'info', 6000);
}

conn.on('channel_delete', (f) => {
  if (voice.currentChannel() === f.name) leaveDeletedVoice(f.name);
  state.channels = state.channels.filter((c) => c.name !== f.name);
  state.chans.delete(f.name);
  state.voice.delete(f.name);
  const dropped = state.outbox.filter((e) => e.channel === f.name).length;
  state.outbox = state.outbox.filter((e) => e.channel !== f.name);
  if (dropped) saveOutbox();
  if (state.current === f.name) {
    toast(`#${f.name} was deleted.`, 'info');
    selectChannel(pickChannel());
  }
  changed();
});

conn.on('error', (f) => {
  const entry = f.nonce ? state.outbox.find((e) => e.nonce === f.nonce) : null;
  if (f.code === 'unauthorized') return sessionExpired();
  if (entry) {
    if (f.code === 'rate_limited') {
      const wait = Number(f.retry_after_ms) || 1000;
      entry.status = 'queued';
      entry.notBefore = Date.now() + wait;
      entry.error = undefined;
      toast(`You are sending too fast — waiting ${(wait / 1000).toFixed(1)} s.`, 'error', 2500);
    } else {
      entry.status = 'failed';
      entry.error = f.message || f.code;
    }
    saveOutbox();
  } else if (f.code === 'rate_limited') {
    toast(`Slow down: try again in ${((Number(f.retry_after_ms) || 1000) / 1000).toFixed(1)} s.`, 'error');
  } else {
    toast(f.message || `Error: ${f.code}`, 'error');
  }
  changed();
});

/** @param {string} channel @param {string} user @param {boolean} joined @param {boolean} muted @param {boolean} deafened */
function voiceSet(channel, user, joined, muted, deafened) {
  // A user is in at most one voice channel.
  for (const [name, m] of state.voice) if (name !== channel) m.delete(user);
  let m = state.voice.get(channel);
  if (!m) state.voice.set(channel, (m = new Map()));
  if (joined) m.set(user, { muted: !!muted, deafened: !!deafened });
  else m.delete(user);
}

// ---------------------------------------------------------------- helpers

function pickChannel() {
  const fromHash = decodeURIComponent(location.hash.slice(1));
  const text = state.channels.filter((c) => c.kind === 'text');
  return (text.find((c) => c.name === fromHash) ?? text.find((c) => c.name === 'general') ?? text[0])?.name ?? '';
}

let usersInFlight = false;
async function refreshUsers() {
  if (usersInFlight) return;
  usersInFlight = true;
  try {
    const users = await rest.users();
    state.users = new Map(users.map((u) => [u.username, u]));
    changed();
  } catch (err) {
    handleRestError(err, null);
  } finally {
    usersInFlight = false;
  }
}

/** @param {unknown} err @param {string|null} what shown in a toast unless null */
function handleRestError(err, what) {
  if (err instanceof ApiError && err.status === 401) return sessionExpired();
  if (err instanceof ApiError && err.code === 'rate_limited') {
    toast(`Rate limited: try again in ${Math.ceil((err.retryAfterMs ?? 1000) / 1000)} s.`, 'error');
    return;
  }
  if (what) toast(`${what}: ${err instanceof Error ? err.message : String(err)}`, 'error');
  else console.warn(err);
}

/** @param {import('./protocol.js').Message} m */
function notify(m) {
  if (!('Notification' in window) || Notification.permission !== 'granted') return;
  try {
    const n = new Notification(`${m.author} mentioned you in #${m.channel}`, {
      body: m.content.length > 200 ? `${m.content.slice(0, 197)}…` : m.content,
      tag: `md-${m.id}`,
      icon: '/favicon.svg',
    });
    n.onclick = () => {
      window.focus();
      selectChannel(m.channel);
      n.close();
    };
  } catch {
    /* some platforms only allow notifications from a service worker */
  }
}

/** @param {string} name */
function selectChannel(name) {
  if (!name) return;
  const ch = state.channels.find((c) => c.name === name);
  if (!ch || ch.kind !== 'text') return;
  const switched = state.current !== name;
  state.current = name;
  if (switched) {
    state.replyTo = null;
    state.editing = null;
  }
  if (location.hash.slice(1) !== name) history.replaceState(null, '', `#${encodeURIComponent(name)}`);
  closeDrawers();
  const c = chan(state, name);
  if (!c.loaded) loadLatest(name);
  changed();
  requestAnimationFrame(() => {
    markReadIfVisible();
    if (!matchMedia('(max-width: 640px)').matches) composer.focus();
  });
}

function sessionExpired() {
  if (!state.me) return;
  teardown();
  auth.show('Your session has expired. Please sign in again.');
}

function teardown() {
  voice.leave(true);
  conn.stop();
  Object.assign(state, createState());
  appEl.hidden = true;
  document.body.classList.remove('has-banner');
  const banner = /** @type {HTMLElement} */ (document.getElementById('banner'));
  banner.hidden = true;
  banner.dataset.sig = '';
  document.title = 'mini-discord';
}

// ---------------------------------------------------------------- actions

/** @type {Actions} */
const actions = {
  selectChannel,
  joinVoice: (name) => voice.join(name),
  voiceChannel: () => voice.currentChannel(),
  voiceSettings: () => voice.openSettings(),
  openCreateChannel(kind) {
    const name = h('input', { id: 'new-channel-name', name: 'name', required: true, maxLength: 32, pattern: '[a-z0-9_\\-]{1,32}', autocomplete: 'off', placeholder: 'new-channel', spellcheck: false });
    const topic = h('input', { id: 'new-channel-topic', name: 'topic', maxLength: 200, autocomplete: 'off', placeholder: 'What is this channel about?' });
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
          if (!state.channels.some((c) => c.name === created.name)) state.channels.push(created);
          if (k === 'text') selectChannel(created.name);
          toast(`Created ${k === 'text' ? '#' : '🔊 '}${created.name}`, 'success');
        } catch (err) {
          if (err instanceof ApiError && err.code === 'conflict') throw new Error(`A channel named “${n}” already exists.`);
          throw err;
        }
      },
    });
  },
  enableNotifications() {
    if (!('Notification' in window)) return;
    Notification.requestPermission().then((p) => {
      toast(p === 'granted' ? 'You will be notified when someone mentions you.' : 'Notifications stay off.', p === 'granted' ? 'success' : 'info');
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
    try {
      localStorage.removeItem(storeKey('outbox'));
    } catch {
      /* ignore */
    }
    teardown();
    auth.show('You have signed out.');
  },
  send(content) {
    if (!state.current) return;
    state.outbox.push({
      nonce: newNonce(),
      channel: state.current,
      content,
      reply_to: state.replyTo?.messageId ?? null,
      status: 'queued',
      ts: Date.now(),
    });
    state.replyTo = null;
    saveOutbox();
    messagesView.scrollToBottom();
    flushOutbox();
    changed();
  },
  retry(nonce) {
    const e = state.outbox.find((x) => x.nonce === nonce);
    if (!e) return;
    e.status = 'queued';
    e.error = undefined;
    e.notBefore = undefined;
    flushOutbox();
    changed();
  },
  discard(nonce) {
    state.outbox = state.outbox.filter((e) => e.nonce !== nonce);
    saveOutbox();
    changed();
  },
  loadOlder: () => void loadOlder(),
  seenBottom: () => markReadIfVisible(),
  fetchQuoted(channel, id) {
    if (state.quoted.has(id) || quoting.has(id)) return;
    quoting.add(id);
    // `before=id+1, limit=1` returns exactly message `id` when it still exists in that channel.
    rest.history(channel, { before: id + 1, limit: 1 })
      .then((page) => state.quoted.set(id, page[0]?.id === id ? page[0] : 'missing'))
      .catch(() => state.quoted.set(id, 'missing'))
      .finally(() => {
        quoting.delete(id);
        changed();
      });
  },
  startReply(id) {
    state.replyTo = { messageId: id };
    state.editing = null;
    changed();
    composer.focus();
  },
  cancelReply() {
    state.replyTo = null;
    changed();
    composer.focus();
  },
  startEdit(id) {
    state.editing = id;
    state.replyTo = null;
    changed();
  },
  cancelEdit() {
    state.editing = null;
    changed();
    composer.focus();
  },
  saveEdit(id, content) {
    if (!conn.send({ type: 'edit', id, content })) {
      toast('Not connected — your edit was not saved. Try again when the connection is back.', 'error');
      return;
    }
    state.editing = null;
    changed();
    composer.focus();
  },
  editLast() {
    const m = lastOwnMessage(state, state.current);
    if (m) actions.startEdit(m.id);
  },
  async deleteMessage(id, skipConfirm) {
    const m = findMessage(state, id);
    if (!skipConfirm) {
      const preview = m ? (m.content.length > 140 ? `${m.content.slice(0, 137)}…` : m.content) : '';
      const ok = await confirmDialog('Delete message', `Are you sure you want to delete this message?${preview ? `\n\n“${preview}”` : ''}`, 'Delete');
      if (!ok) return;
    }
    if (!conn.send({ type: 'delete', id })) toast('Not connected — the message was not deleted.', 'error');
    if (state.editing === id) state.editing = null;
    changed();
  },
  react(id, emoji) {
    if (!conn.send({ type: 'react', id, emoji })) toast('Not connected — try again in a moment.', 'error');
  },
  typing() {
    if (state.current) conn.send({ type: 'typing', channel: state.current });
  },
};

// ---------------------------------------------------------------- layout controls

const appEl = /** @type {HTMLElement} */ (document.getElementById('app'));
const bootEl = /** @type {HTMLElement} */ (document.getElementById('boot'));
const menuBtn = /** @type {HTMLButtonElement} */ (document.getElementById('menu-btn'));
const membersBtn = /** @type {HTMLButtonElement} */ (document.getElementById('members-btn'));
const backdrop = /** @type {HTMLElement} */ (document.getElementById('drawer-backdrop'));

function closeDrawers() {
  appEl.classList.remove('sidebar-open', 'members-open');
  backdrop.hidden = true;
  menuBtn.setAttribute('aria-expanded', 'false');
}

menuBtn.addEventListener('click', () => {
  const open = !appEl.classList.contains('sidebar-open');
  closeDrawers();
  appEl.classList.toggle('sidebar-open', open);
  backdrop.hidden = !open;
  menuBtn.setAttribute('aria-expanded', String(open));
  if (open) /** @type {HTMLElement|null} */ (document.querySelector('#sidebar .chan.active, #sidebar .chan'))?.focus();
});
membersBtn.addEventListener('click', () => {
  if (matchMedia('(max-width: 1000px)').matches) {
    const open = !appEl.classList.contains('members-open');
    closeDrawers();
    appEl.classList.toggle('members-open', open);
    backdrop.hidden = !open;
  } else {
    const hidden = appEl.classList.toggle('members-hidden');
    membersBtn.setAttribute('aria-pressed', String(!hidden));
  }
});
backdrop.addEventListener('click', closeDrawers);
document.addEventListener('keydown', (ev) => {
  if (ev.key === 'Escape' && (appEl.classList.contains('sidebar-open') || appEl.classList.contains('members-open'))) {
    closeDrawers();
    menuBtn.focus();
  }
});
document.getElementById('invite-btn')?.addEventListener('click', async () => {
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
    handleRestError(err, 'Could not create an invite');
  }
});
document.getElementById('delete-channel-btn')?.addEventListener('click', async () => {
  const name = state.current;
  if (!name) return;
  const ok = await confirmDialog('Delete channel', `Delete #${name} and all of its messages? This cannot be undone.`, 'Delete channel');
  if (!ok) return;
  try {
    await rest.deleteChannel(name);
  } catch (err) {
    handleRestError(err, `Could not delete #${name}`);
  }
});
window.addEventListener('hashchange', () => {
  const name = decodeURIComponent(location.hash.slice(1));
  if (name && name !== state.current) selectChannel(name);
});
document.addEventListener('visibilitychange', () => requestAnimationFrame(markReadIfVisible));
window.addEventListener('online', () => conn.retryNow());

// ---------------------------------------------------------------- start

const messagesView = createMessagesView(actions);
const composer = createComposer(actions);
const auth = createAuthView((user) => start(user));

/** @param {import('./protocol.js').User} user */
function start(user) {
  state.me = user;
  loadLocal();
  state.current = pickChannel() || decodeURIComponent(location.hash.slice(1)) || 'general';
  auth.hide();
  bootEl.hidden = true;
  appEl.hidden = false;
  conn.start();
  refreshUsers();
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

fillIcons();
voice.configure({ username: () => state.me?.username ?? '', onChange: () => changed() });
setInterval(tick, TICK_MS);
boot();
