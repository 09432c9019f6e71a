// @ts-check
//! The app's plain state and the only functions that change it. No DOM and no network here:
//! app.js feeds in what protocol.js delivers, and the views (views/*.js) read the state and
//! render it. `store.changed()` batches re-renders into one animation frame.
//!
//! Message order and de-duplication live in `mergeMessages`: every message, from history or a
//! live frame, goes in by id, so a catch-up after a reconnect can overlap what we already have
//! without ever showing a message twice, and the list is always sorted by id (commit order).

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
 * @property {OutboxStatus} status
 * @property {number} ts             when it was typed
 * @property {number} [sentAt]
 * @property {number} [notBefore]    rate limited: do not send again before this time
 * @property {string} [error]
 *
 * @typedef {'connecting'|'ready'|'waiting'} ConnState
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
    /** @type {Map<string, 'online'|'offline'>} */
    presence: new Map(),
    /** @type {Map<string, Map<string, {muted:boolean, deafened:boolean}>>} channel → user → state */
    voice: new Map(),
    /** @type {Map<string, Map<string, number>>} channel → user → shown until (ms) */
    typing: new Map(),
    /** @type {Map<string, ChannelState>} */
    chans: new Map(),
    /** @type {Map<string, number>} channel → newest id the user has seen */
    readIds: new Map(),
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
  const esc = username.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&');
  return new RegExp(`(^|[^A-Za-z0-9_.-])@${esc}(?![A-Za-z0-9_-])`, 'i').test(content) ||
    /(^|\s)@(everyone|here)\b/.test(content);
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
