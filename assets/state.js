// @ts-check
//! The app's plain state and the only functions that change it. No DOM and no network here:
//! the controller modules (app.js, events.js, outbox.js, history.js, unread.js, dialogs.js)
//! feed in what protocol.js delivers by calling the named functions below, and the views
//! (views/*.js) only read the state and render it. Nothing outside this file assigns to the
//! state; after a change the caller asks for one re-render (`changed()` in app.js).
//!
//! Message order and de-duplication live in `mergeMessages`: every message, from history or a
//! live frame, goes in by id, so a catch-up after a reconnect can overlap what we already have
//! without ever showing a message twice, and the list is always sorted by id (commit order).
//!
//! Voice: who is in which voice channel (everyone's, from the server) is here; this page's own
//! call (mute, deafen, the peer connections) is owned by voice.js alone.

/**
 * @typedef {import('./protocol.js').Message} Message
 * @typedef {import('./protocol.js').Channel} Channel
 * @typedef {import('./protocol.js').User} User
 *
 * @typedef {object} ChannelState
 * @property {Map<number, Message>} byId
 * @property {number[]} ids          sorted ascending
 * @property {boolean} loaded        the newest page has been fetched at least once
 * @property {boolean} reachedStart  scroll-back found the first message
 * @property {boolean} loadingOlder
 * @property {number} lastId         newest id known to exist (from ready.last_ids or frames)
 * @property {number} mentions       unread mentions of me
 *
 * @typedef {'queued'|'pending'|'failed'} OutboxStatus
 * @typedef {object} OutboxEntry     a message typed here that the server has not acknowledged
 * @property {string} nonce
 * @property {string} channel
 * @property {string} content
 * @property {number|null} reply_to
 * @property {string[]} [attachments] ids of uploads sent with it
 * @property {OutboxStatus} status
 * @property {number} ts             when it was typed
 * @property {number} [sentAt]
 * @property {number} [notBefore]    rate limited: do not send again before this time
 * @property {string} [error]
 *
 * @typedef {'connecting'|'ready'|'waiting'} ConnState
 * @typedef {import('./socket.js').SocketStatus} SocketStatus
 */

export const TYPING_SHOW_MS = 6_000; // a `typing` frame keeps a name shown this long

export function createState() {
  return {
    /** @type {User|null} */
    me: null,
    /** @type {Channel[]} */
    channels: [],
    /** @type {string} */
    current: '',
    /** @type {Map<string, User>} username → user (all accounts) */
    users: new Map(),
    /** @type {Map<string, import('./protocol.js').PresenceStatus>} */
    presence: new Map(),
    /** @type {import('./protocol.js').ChosenStatus} the status this user chose (issue 14) */
    myStatus: /** @type {import('./protocol.js').ChosenStatus} */ ('online'),
    /** @type {Map<string, Map<string, {muted:boolean, deafened:boolean, video:boolean, screen:boolean}>>} channel → user → state */
    voice: new Map(),
    /** @type {Map<string, Map<string, number>>} channel → user → shown until (ms) */
    typing: new Map(),
    /** @type {Map<string, ChannelState>} */
    chans: new Map(),
    /** @type {Map<string, number>} channel → newest id the user has read, from the server's read markers */
    readIds: new Map(),
    /** @type {import('./protocol.js').NotifySettings} the user's notification levels (`GET /api/me/notify`) */
    notify: /** @type {import('./protocol.js').NotifySettings} */ ({ default: 'mentions', channels: {} }),
    /** @type {Map<string, number>} channel → the read marker when the user opened it: the "new messages" line goes after it */
    newLine: new Map(),
    /** @type {OutboxEntry[]} */
    outbox: [],
    conn: /** @type {{state: ConnState, attempt: number, retryAt?: number, reason?: string}} */ ({
      state: 'connecting',
      attempt: 0,
    }),
    /** @type {{messageId:number}|null} */
    replyTo: null,
    /** @type {number|null} the message being edited inline */
    editing: null,
    /** @type {Map<number, Message|'missing'>} reply previews fetched for messages not loaded */
    quoted: new Map(),
    /** @type {import('./protocol.js').Role[]} every role, `everyone` included (v2) */
    roles: [],
    /** @type {Map<string, import('./protocol.js').Member>} username → roles and timeout (v2) */
    members: new Map(),
    /** @type {string[]|null} server-wide permissions from `ready` (perms.js works them out from roles when it can) */
    serverPermissions: null,
    /** whether the server has a media server (`ready.media_server`, issue 16): voice channels may use it */
    mediaServer: false,
  };
}

/** @typedef {ReturnType<typeof createState>} State */

/** @returns {ChannelState} */
export function emptyChannel() {
  return {
    byId: new Map(),
    ids: [],
    loaded: false,
    reachedStart: false,
    loadingOlder: false,
    lastId: 0,
    mentions: 0,
  };
}

/** @param {State} s @param {string} name */
export function chan(s, name) {
  let c = s.chans.get(name);
  if (!c) s.chans.set(name, (c = emptyChannel()));
  return c;
}

/**
 * Put messages into a channel by id: new ids are inserted in order, known ids replaced.
 * Returns the messages that were new.
 * @param {ChannelState} c
 * @param {Message[]} messages
 */
export function mergeMessages(c, messages) {
  /** @type {Message[]} */
  const added = [];
  for (const m of messages) {
    if (!c.byId.has(m.id)) added.push(m);
    c.byId.set(m.id, m);
    if (m.id > c.lastId) c.lastId = m.id;
  }
  if (added.length) {
    const last = c.ids.length ? c.ids[c.ids.length - 1] : 0;
    if (added.every((m) => m.id > last) && isSorted(added)) {
      for (const m of added) c.ids.push(m.id); // the common case: appended at the end
    } else {
      c.ids = [...c.byId.keys()].sort((a, b) => a - b);
    }
  }
  return added;
}

/** @param {Message[]} ms */
function isSorted(ms) {
  for (let i = 1; i < ms.length; i++) if (ms[i].id <= ms[i - 1].id) return false;
  return true;
}

/** @param {ChannelState} c @param {number} id */
export function removeMessage(c, id) {
  if (!c.byId.delete(id)) return false;
  const i = c.ids.indexOf(id);
  if (i >= 0) c.ids.splice(i, 1);
  return true;
}

/**
 * Make the id range covered by `page` (a fresh server page, oldest first) match it exactly:
 * messages deleted while we were away disappear, edits and reactions are refreshed.
 * @param {ChannelState} c @param {Message[]} page
 */
export function reconcileRange(c, page) {
  if (!page.length) return;
  const lo = page[0].id;
  const hi = page[page.length - 1].id;
  const present = new Set(page.map((m) => m.id));
  for (const id of [...c.ids]) if (id >= lo && id <= hi && !present.has(id)) removeMessage(c, id);
  mergeMessages(c, page);
}

/** @param {ChannelState} c */
export function oldestId(c) {
  return c.ids.length ? c.ids[0] : 0;
}

/** @param {ChannelState} c */
export function newestId(c) {
  return c.ids.length ? c.ids[c.ids.length - 1] : 0;
}

/** @param {State} s @param {string} name */
export function isUnread(s, name) {
  const c = s.chans.get(name);
  if (!c || !c.lastId) return false;
  return c.lastId > (s.readIds.get(name) ?? 0);
}

/**
 * Does this text mention the user? `@name` with the name not followed by a name character.
 * @param {string} content @param {string} username
 */
export function mentions(content, username) {
  return mentionsName(content, username) || /(^|\s)@(everyone|here)\b/.test(content);
}

/** `@name` alone. @param {string} content @param {string} username */
function mentionsName(content, username) {
  const esc = username.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&');
  return new RegExp(`(^|[^A-Za-z0-9_.-])@${esc}(?![A-Za-z0-9_-])`, 'i').test(content);
}

/**
 * Does this message notify me? `@me`, or (v2) an `@everyone`/`@here`/`@role` the server let
 * through (`mention_everyone`, `mention_roles`: only with the author's `mention_everyone`);
 * a v1 server's messages carry neither, and any `@everyone` counts.
 * @param {State} s @param {Message} m
 */
export function mentionsMe(s, m) {
  const me = s.me?.username ?? '';
  if (!me) return false;
  // Every message in a DM is for its members (docs/DMS.md: DMs notify like mentions).
  if (m.author !== me && s.channels.some((c) => c.name === m.channel && c.kind === 'dm')) return true;
  if (m.mention_everyone === undefined) return mentions(m.content, me);
  const mine = new Set(s.members.get(me)?.roles ?? []);
  return mentionsName(m.content, me) || m.mention_everyone || (m.mention_roles ?? []).some((id) => mine.has(id));
}

/** Names typing in a channel right now (expired entries are dropped). @param {State} s @param {string} channel */
export function typingNames(s, channel) {
  const m = s.typing.get(channel);
  if (!m) return [];
  const now = Date.now();
  for (const [u, until] of m) if (until <= now) m.delete(u);
  return [...m.keys()].sort();
}

/** The user's own newest message in a channel, for Up-arrow editing. @param {State} s @param {string} channel */
export function lastOwnMessage(s, channel) {
  const c = s.chans.get(channel);
  if (!c || !s.me) return null;
  for (let i = c.ids.length - 1; i >= 0; i--) {
    const m = c.byId.get(c.ids[i]);
    if (m && m.author === s.me.username) return m;
  }
  return null;
}

/** Find a message anywhere we have it. @param {State} s @param {number} id */
export function findMessage(s, id) {
  for (const c of s.chans.values()) {
    const m = c.byId.get(id);
    if (m) return m;
  }
  const q = s.quoted.get(id);
  return q && q !== 'missing' ? q : null;
}

// ---------------------------------------------------------------- changes: session and connection

/** Back to the signed-out state. @param {State} s */
export function resetState(s) {
  Object.assign(s, createState());
}

/** Signed in: the outbox the page restored from localStorage goes in with the user (read
 * markers come from the server, in `ready`).
 * @param {State} s @param {User} me @param {OutboxEntry[]} outbox */
export function signIn(s, me, outbox) {
  s.me = me;
  s.outbox = outbox;
}

/** @param {State} s @param {User[]} users */
export function setUsers(s, users) {
  s.users = new Map(users.map((u) => [u.username, u]));
}

/** A status change of the `/ws` socket. @param {State} s @param {SocketStatus} st @param {number} now */
export function setConnStatus(s, st, now) {
  s.conn = {
    state: st.state, attempt: st.attempt, reason: st.reason,
    retryAt: st.retryInMs != null ? now + st.retryInMs : undefined,
  };
  if (st.state !== 'ready') {
    // Not acknowledged before the socket went: send again after `ready` (same nonce).
    for (const e of s.outbox) if (e.status === 'pending') e.status = 'queued';
    s.typing.clear();
  }
}

/**
 * A `ready` frame (first connect or reconnect): who we are, the channels, presence, voice
 * rooms and the newest id of every channel. `hash` is the page's `#channel`, a fallback pick.
 * @param {State} s @param {import('./protocol.js').ReadyFrame} f @param {string} hash
 */
export function applyReady(s, f, hash) {
  s.me = f.user;
  s.channels = f.channels;
  s.presence = new Map(f.presence.map((p) => [p.user, p.status]));
  if (f.status) s.myStatus = f.status;
  // Read state lives on the server (issue 14): its markers and mention counts replace ours.
  for (const [name, u] of Object.entries(f.unread ?? {})) {
    s.readIds.set(name, u.last_read_id);
    chan(s, name).mentions = u.mentions;
  }
  s.voice = new Map();
  for (const v of f.voice ?? []) setVoiceMember(s, v.channel, v.user, true, v.muted, v.deafened, v.video, v.screen);
  const names = new Set(f.channels.map((c) => c.name));
  for (const name of [...s.chans.keys()]) if (!names.has(name)) s.chans.delete(name);
  for (const [name, id] of Object.entries(f.last_ids ?? {})) {
    const c = chan(s, name);
    if (id > c.lastId) c.lastId = id;
  }
  if (!s.channels.some((c) => c.name === s.current && c.kind !== 'voice')) s.current = pickChannel(s, hash);
  if (f.roles) s.roles = f.roles;
  if (f.members) setMembers(s, f.members);
  s.serverPermissions = f.permissions ?? null;
  s.mediaServer = f.media_server === true;
  if (!s.newLine.has(s.current)) s.newLine.set(s.current, s.readIds.get(s.current) ?? 0);
}

/** Another device of this user read `channel` up to `id`; `mentions` are still unread after it.
 * @param {State} s @param {string} channel @param {number} id @param {number} mentions */
export function applyRead(s, channel, id, mentions) {
  if ((s.readIds.get(channel) ?? 0) < id) s.readIds.set(channel, id);
  chan(s, channel).mentions = mentions;
}

/** A user's profile changed (`user_update`). @param {State} s @param {User} user */
export function applyUserUpdate(s, user) {
  s.users.set(user.username, user);
  if (s.me?.id === user.id) s.me = user;
}

/** @param {State} s @param {import('./protocol.js').NotifySettings} n */
export function setNotifySettings(s, n) {
  s.notify = n;
}

/** @param {State} s @param {import('./protocol.js').ChosenStatus} status */
export function setMyStatus(s, status) {
  s.myStatus = status;
}

/** The name to show for `username`: the display name where set (issue 14). @param {State} s @param {string} username */
export function shownName(s, username) {
  return s.users.get(username)?.display_name || username;
}

/** The text channel to show: the page's `#hash`, else #general, else the first. @param {State} s @param {string} hash */
export function pickChannel(s, hash) {
  const text = s.channels.filter((c) => c.kind === 'text');
  return (text.find((c) => c.name === hash) ?? text.find((c) => c.name === 'general') ?? text[0])?.name ?? '';
}

// ---------------------------------------------------------------- changes: server events

/**
 * A live `message`. It acknowledges our outbox entry with the same nonce, goes into its
 * channel if loaded, stops its author's typing line, and counts toward unread or mentions.
 * `seeing`: the user is looking at the bottom of that channel right now.
 * @param {State} s @param {Message} m @param {string|undefined} nonce @param {boolean} seeing
 * @returns {{acked:boolean, own:boolean, mention:boolean}}
 */
export function applyMessage(s, m, nonce, seeing) {
  const me = s.me?.username ?? '';
  let acked = false;
  if (nonce) {
    const i = s.outbox.findIndex((e) => e.nonce === nonce);
    if (i >= 0 && m.author === me) {
      s.outbox.splice(i, 1);
      acked = true;
    }
  }
  const c = chan(s, m.channel);
  if (c.loaded) mergeMessages(c, [m]);
  else if (m.id > c.lastId) c.lastId = m.id;
  s.typing.get(m.channel)?.delete(m.author);
  const own = !!me && m.author === me;
  let mention = false;
  if (own) {
    // Your own message never makes a channel unread.
    if ((s.readIds.get(m.channel) ?? 0) < m.id) s.readIds.set(m.channel, m.id);
  } else if (me && mentionsMe(s, m)) {
    mention = true;
    if (!seeing) c.mentions += 1;
  }
  return { acked, own, mention };
}

/** @param {State} s @param {Message} m */
export function applyMessageUpdate(s, m) {
  const c = s.chans.get(m.channel);
  if (c?.byId.has(m.id)) mergeMessages(c, [m]);
  if (s.quoted.has(m.id)) s.quoted.set(m.id, m);
}

/** @param {State} s @param {string} channel @param {number} id */
export function applyMessageDelete(s, channel, id) {
  const c = s.chans.get(channel);
  if (c) removeMessage(c, id);
  if (s.quoted.has(id)) s.quoted.set(id, 'missing');
  if (s.editing === id) s.editing = null;
  if (s.replyTo?.messageId === id) s.replyTo = null;
}

/** @param {State} s @param {{channel:string, id:number, emoji:string, user:string, on:boolean}} f */
export function applyReaction(s, f) {
  const c = s.chans.get(f.channel);
  const m = c?.byId.get(f.id);
  if (!c || !m) return false;
  const reactions = { ...(m.reactions ?? {}) };
  const users = (reactions[f.emoji] ?? []).filter((u) => u !== f.user);
  if (f.on) users.push(f.user);
  if (users.length) reactions[f.emoji] = users;
  else delete reactions[f.emoji];
  mergeMessages(c, [{ ...m, reactions }]);
  return true;
}

/** @param {State} s @param {string} channel @param {string} user @param {number} now */
export function applyTyping(s, channel, user, now) {
  let m = s.typing.get(channel);
  if (!m) s.typing.set(channel, (m = new Map()));
  m.set(user, now + TYPING_SHOW_MS);
}

/** @param {State} s @param {string} user @param {'online'|'offline'} status */
export function setPresence(s, user, status) {
  s.presence.set(user, status);
}

/**
 * @param {State} s @param {string} channel @param {string} user @param {boolean} joined
 * @param {boolean} muted @param {boolean} deafened @param {boolean} [video] @param {boolean} [screen]
 */
export function setVoiceMember(s, channel, user, joined, muted, deafened, video = false, screen = false) {
  // A user is in at most one voice channel.
  for (const [name, m] of s.voice) if (name !== channel) m.delete(user);
  let m = s.voice.get(channel);
  if (!m) s.voice.set(channel, (m = new Map()));
  if (joined) m.set(user, { muted: !!muted, deafened: !!deafened, video: !!video, screen: !!screen });
  else m.delete(user);
}

/** A channel created (`channel_create`, or our own POST's answer); a known name is replaced. @param {State} s @param {Channel} ch */
export function addChannel(s, ch) {
  if (!s.channels.some((c) => c.name === ch.name)) s.channels.push(ch);
  else s.channels = s.channels.map((c) => (c.name === ch.name ? ch : c));
}

/** A channel deleted: it goes with its messages, voice room and unsent messages.
 * @param {State} s @param {string} name @returns {number} how many unsent messages went with it */
export function removeChannel(s, name) {
  s.channels = s.channels.filter((c) => c.name !== name);
  s.chans.delete(name);
  s.voice.delete(name);
  const before = s.outbox.length;
  s.outbox = s.outbox.filter((e) => e.channel !== name);
  return before - s.outbox.length;
}

// ---------------------------------------------------------------- changes: the outbox

/** A message typed in the current channel (replying to whatever the reply bar shows).
 * @param {State} s @param {string} content @param {string} nonce @param {number} now
 * @param {string[]} [attachments] */
export function queueMessage(s, content, nonce, now, attachments) {
  s.outbox.push({
    nonce, channel: s.current, content, reply_to: s.replyTo?.messageId ?? null, status: 'queued', ts: now,
    ...(attachments?.length ? { attachments } : {}),
  });
  s.replyTo = null;
}

/** @param {OutboxEntry} e @param {number} now */
export function markSent(e, now) {
  e.status = 'pending';
  e.sentAt = now;
  e.notBefore = undefined;
  e.error = undefined;
}

/** Refused by the rate limit: queued again, not before `until`. @param {State} s @param {string} nonce @param {number} until */
export function holdMessage(s, nonce, until) {
  const e = s.outbox.find((x) => x.nonce === nonce);
  if (!e) return null;
  e.status = 'queued';
  e.notBefore = until;
  e.error = undefined;
  return e;
}

/** @param {State} s @param {string} nonce @param {string} error */
export function failMessage(s, nonce, error) {
  const e = s.outbox.find((x) => x.nonce === nonce);
  if (!e) return null;
  e.status = 'failed';
  e.error = error;
  return e;
}

/** Pending for longer than `timeoutMs`: failed. @param {State} s @param {number} now @param {number} timeoutMs */
export function expireUnanswered(s, now, timeoutMs) {
  let any = false;
  for (const e of s.outbox) {
    if (e.status === 'pending' && e.sentAt && now - e.sentAt > timeoutMs) {
      e.status = 'failed';
      e.error = 'the server did not answer';
      any = true;
    }
  }
  return any;
}

/** @param {State} s @param {string} nonce */
export function retryMessage(s, nonce) {
  const e = s.outbox.find((x) => x.nonce === nonce);
  if (!e) return false;
  e.status = 'queued';
  e.error = undefined;
  e.notBefore = undefined;
  return true;
}

/** @param {State} s @param {string} nonce */
export function discardMessage(s, nonce) {
  s.outbox = s.outbox.filter((e) => e.nonce !== nonce);
}

// ---------------------------------------------------------------- changes: reading, history, selection

/** The user has seen the newest message of `name`. @param {State} s @param {string} name @returns {boolean} whether anything changed */
export function markRead(s, name) {
  const c = s.chans.get(name);
  if (!c) return false;
  const read = s.readIds.get(name) ?? 0;
  if (c.lastId <= read && !c.mentions) return false;
  s.readIds.set(name, c.lastId);
  c.mentions = 0;
  return true;
}

/** The newest page of a channel, fetched fresh. @param {ChannelState} c @param {Message[]} page @param {number} pageSize */
export function latestPageLoaded(c, page, pageSize) {
  reconcileRange(c, page);
  if (!c.loaded) c.reachedStart = page.length < pageSize;
  c.loaded = true;
}

/** An older page from scroll-back. @param {ChannelState} c @param {Message[]} page @param {number} pageSize */
export function olderPageLoaded(c, page, pageSize) {
  mergeMessages(c, page);
  if (page.length < pageSize) c.reachedStart = true;
}

/** @param {ChannelState} c @param {boolean} loading */
export function setLoadingOlder(c, loading) {
  c.loadingOlder = loading;
}

/** A reply preview fetched for a message not loaded. @param {State} s @param {number} id @param {Message|'missing'} m */
export function setQuoted(s, id, m) {
  s.quoted.set(id, m);
}

/** Show channel `name`; switching drops the reply bar and inline edit. @param {State} s @param {string} name @returns {boolean} whether it switched */
export function selectCurrent(s, name) {
  const switched = s.current !== name;
  s.current = name;
  if (switched) {
    s.replyTo = null;
    s.editing = null;
    // The "new messages" line stays where the marker was when the channel was opened.
    s.newLine.set(name, s.readIds.get(name) ?? 0);
  }
  return switched;
}

/** @param {State} s @param {number|null} id */
export function setReplyTo(s, id) {
  s.replyTo = id == null ? null : { messageId: id };
  if (id != null) s.editing = null;
}

/** @param {State} s @param {number|null} id */
export function setEditing(s, id) {
  s.editing = id;
  if (id != null) s.replyTo = null;
}

// ---------------------------------------------------------------- changes: roles and moderation (v2)

/** The full role list (`ready`, a `roles` event, or a REST answer). @param {State} s @param {import('./protocol.js').Role[]} roles */
export function setRoles(s, roles) {
  s.roles = roles;
}

/** @param {State} s @param {import('./protocol.js').Member[]} members */
export function setMembers(s, members) {
  s.members = new Map(members.map((m) => [typeof m.user === 'string' ? m.user : m.user.username, m]));
}

/** One member's roles or timeout changed (`member_update`). @param {State} s @param {import('./protocol.js').Member} m */
export function setMember(s, m) {
  const name = typeof m.user === 'string' ? m.user : m.user.username;
  s.members = new Map(s.members).set(name, m);
}

/**
 * A channel changed (`channel_update`): a rename moves its messages, read marker, unsent
 * messages and the selection to the new name.
 * @param {State} s @param {Channel} ch @param {string} [renamedFrom]
 */
export function updateChannel(s, ch, renamedFrom) {
  const old = renamedFrom && renamedFrom !== ch.name ? renamedFrom : ch.name;
  if (!s.channels.some((c) => c.name === old)) return addChannel(s, ch);
  s.channels = s.channels.map((c) => (c.name === old ? ch : c));
  if (old === ch.name) return;
  const cs = s.chans.get(old);
  if (cs) {
    s.chans.delete(old);
    s.chans.set(ch.name, cs);
    for (const m of cs.byId.values()) m.channel = ch.name;
  }
  const read = s.readIds.get(old);
  if (read != null) {
    s.readIds.delete(old);
    s.readIds.set(ch.name, read);
  }
  for (const e of s.outbox) if (e.channel === old) e.channel = ch.name;
  const voice = s.voice.get(old);
  if (voice) {
    s.voice.delete(old);
    s.voice.set(ch.name, voice);
  }
  if (s.current === old) s.current = ch.name;
}

/**
 * A fresh channel list from `GET /api/channels` after the user's roles changed: each known
 * channel gets its new permissions; the list itself changes only through create and delete.
 * @param {State} s @param {Channel[]} fresh
 */
export function refreshChannelPerms(s, fresh) {
  const byName = new Map(fresh.map((c) => [c.name, c]));
  s.channels = s.channels.map((c) => byName.get(c.name) ?? c);
}
