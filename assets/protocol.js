// @ts-check
//! The wire protocol, browser side (docs/API.md): the REST client (`api`, `rest`), every
//! outgoing WebSocket frame (`frames`, for `/ws` and `/ws/voice`), and the realtime `/ws`
//! `Connection`, built on the one reconnecting socket in socket.js. This module never touches
//! the DOM: it turns HTTP responses and WebSocket frames into plain objects and events, and the
//! UI modules decide what to show.

import { ReconnectingSocket, wsUrl } from './socket.js';

/** Timing constants for the realtime connection, in milliseconds. */
export const RECONNECT_BASE_MS = 500; // first retry comes quickly: a restart takes ~1 s
export const RECONNECT_MAX_MS = 15_000; // cap: a user waiting for a server should not wait long
export const PING_EVERY_MS = 25_000; // below the server's 30 s ping, so idle proxies stay open
export const SILENCE_LIMIT_MS = 65_000; // no frame for this long → the socket is dead; reopen
// WebSocket close codes of API.md v2: the session ended (logout, expiry), or the user was
// removed (kick, ban). A reconnect would only be refused.
export const SESSION_ENDED = 4001;
export const REMOVED = 4003;
/** A message's content is 1–4000 Unicode scalar values after trimming (docs/API.md). */
export const MAX_CONTENT_CHARS = 4000;
/** History page size used for catch-up; the server's maximum. */
export const HISTORY_MAX = 200;

/**
 * @typedef {{id:number, username:string, admin:boolean, avatar_url?:string|null,
 *   display_name?:string|null, status_text?:string|null}} User
 * @typedef {{name:string, kind:'text'|'voice'|'dm', topic:string, members?:string[], slowmode_s?:number, position?:number,
 *   category?:string|null, private?:boolean, permissions?:string[],
 *   overwrites?:Overwrite[], voice_mode?:VoiceMode}} Channel  `permissions`: this user's effective ones in it (v2);
 *   `voice_mode`: a voice channel's effective mode (issue 16)
 * @typedef {'mesh'|'sfu'} VoiceMode
 * @typedef {{role_id?:number, role?:number, allow:string[], deny:string[]}} Overwrite
 * @typedef {{id:number, name:string, color:string|null, position:number, hoist:boolean,
 *   permissions:string[]}} Role
 * @typedef {{user:User|string, roles:number[], timeout_until_ts:number|null}} Member
 * @typedef {{username?:string, user?:User|string, reason?:string|null, ts?:number}} Ban
 * @typedef {{id:number, ts:number, actor:string, action:string, target:string|null,
 *   reason:string|null}} AuditEntry
 * @typedef {{code:string, expires_ts:number, max_uses:number, uses:number, created_ts:number}} Invite
 * @typedef {{id:number, channel:string, author:string, content:string, ts:number,
 *   edited_ts:number|null, reply_to:number|null, reactions:Record<string,string[]>,
 *   attachments?:import('./views/attachments.js').Attachment[], pinned?:boolean,
 *   mention_everyone?:boolean, mention_roles?:number[]}} Message
 * @typedef {'online'|'idle'|'dnd'|'offline'} PresenceStatus
 * @typedef {'online'|'idle'|'dnd'|'invisible'} ChosenStatus what a user sets with `status`
 * @typedef {{user:string, status:PresenceStatus}} Presence
 * @typedef {{last_read_id:number, mentions:number}} UnreadState
 * @typedef {'all'|'mentions'|'nothing'} NotifyLevel
 * @typedef {{default:NotifyLevel, channels:Record<string, NotifyLevel>}} NotifySettings
 * @typedef {{channel:string, user:string, muted:boolean, deafened:boolean, video?:boolean, screen?:boolean}} VoiceMember
 * @typedef {{type:'ready', user:User, channels:Channel[], presence:Presence[],
 *   voice:VoiceMember[], last_ids:Record<string,number>, roles?:Role[], members?:Member[],
 *   permissions?:string[], unread?:Record<string, UnreadState>, status?:ChosenStatus,
 *   media_server?:boolean}} ReadyFrame  `media_server`: the server has a media port (issue 16)
 * @typedef {Record<string, any> & {type:string}} Frame
 */

/** An HTTP or network failure, with the API's error code when the server sent one. */
export class ApiError extends Error {
  /**
   * @param {number} status 0 when the server could not be reached at all
   * @param {string} code e.g. `unauthorized`, `rate_limited`, `network`
   * @param {string} message human text
   * @param {number|null} [retryAfterMs]
   */
  constructor(status, code, message, retryAfterMs = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfterMs = retryAfterMs;
  }
}

/**
 * One REST call. Resolves to the parsed JSON body (or null for 204); rejects with ApiError.
 * @param {string} method
 * @param {string} path
 * @param {any} [body]
 * @returns {Promise<any>}
 */
export async function api(method, path, body) {
  /** @type {RequestInit} */
  const init = { method, credentials: 'same-origin', headers: {} };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers = { 'Content-Type': 'application/json' };
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    throw new ApiError(0, 'network', 'The server could not be reached.');
  }
  if (res.status === 204) return null;
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON: keep null, handled below */
  }
  if (res.ok) return json;
  const err = json && json.error ? json.error : null;
  const retryAfter = res.headers.get('Retry-After');
  throw new ApiError(
    res.status,
    err?.code ?? httpCode(res.status),
    err?.message ?? `${res.status} ${res.statusText || 'error'}`,
    retryAfter ? Number(retryAfter) * 1000 : null,
  );
}

/** @param {number} status */
function httpCode(status) {
  return (
    { 400: 'bad_request', 401: 'unauthorized', 403: 'forbidden', 404: 'not_found', 409: 'conflict',
      413: 'too_large', 429: 'rate_limited' }[status] ?? 'internal'
  );
}

/** The REST endpoints the app uses, by what they are for. */
export const rest = {
  /** @returns {Promise<{user:User}>} */
  me: () => api('GET', '/api/me'),
  /** Unauthenticated: whether the server has no account yet. @returns {Promise<{first_run:boolean}>} */
  setup: () => api('GET', '/api/setup'),
  /** @param {string} username @param {string} password */
  login: (username, password) => api('POST', '/api/login', { username, password }),
  /** @param {string} username @param {string} password @param {string} [invite] */
  register: (username, password, invite) =>
    api('POST', '/api/register', invite ? { username, password, invite } : { username, password }),
  logout: () => api('POST', '/api/logout'),
  /** @returns {Promise<User[]>} */
  users: () => api('GET', '/api/users'),
  /** @returns {Promise<Channel[]>} */
  channels: () => api('GET', '/api/channels'),
  /** @param {string} name @param {'text'|'voice'} kind @param {string} topic */
  createChannel: (name, kind, topic) => api('POST', '/api/channels', { name, kind, topic }),
  /** @param {string} name */
  deleteChannel: (name) => api('DELETE', `/api/channels/${encodeURIComponent(name)}`),
  /**
   * No options means the v1 defaults (one use, a week).
   * @param {{max_uses?:number, expires_in_s?:number}} [opts] @returns {Promise<Invite>}
   */
  createInvite: (opts) => api('POST', '/api/invites', opts),
  /** The admin's live invites, newest first. @returns {Promise<Invite[]>} */
  invites: () => api('GET', '/api/invites'),
  /** @param {string} code */
  revokeInvite: (code) => api('DELETE', `/api/invites/${encodeURIComponent(code)}`),
  /**
   * Full-text search over the channels the user can read, newest first.
   * @param {string} q words @param {{channel?:string, limit?:number}} [opts]
   * @returns {Promise<Message[]>}
   */
  search(q, opts = {}) {
    const p = new URLSearchParams({ q, limit: String(opts.limit ?? 25) });
    if (opts.channel) p.set('channel', opts.channel);
    return api('GET', `/api/search?${p}`);
  },
  ...community(),
  /**
   * One page of history, oldest first.
   * @param {string} channel
   * @param {{before?:number, after?:number, limit?:number}} [opts]
   * @returns {Promise<Message[]>}
   */
  history(channel, opts = {}) {
    const q = new URLSearchParams({ channel, limit: String(opts.limit ?? 50) });
    if (opts.before != null) q.set('before', String(opts.before));
    if (opts.after != null) q.set('after', String(opts.after));
    return api('GET', `/api/history?${q}`);
  },
  /**
   * Sets this user's profile; a field left out is unchanged, null or '' clears it.
   * @param {{display_name?:string|null, status_text?:string|null}} fields @returns {Promise<{user:User}>}
   */
  updateProfile: (fields) => api('PATCH', '/api/me', fields),
  /** @returns {Promise<NotifySettings>} */
  notifySettings: () => api('GET', '/api/me/notify'),
  /**
   * One channel's level (null: follow the default), or with no channel the server-wide default.
   * @param {string|null} channel @param {NotifyLevel|null} level @returns {Promise<NotifySettings>}
   */
  setNotify: (channel, level) => api('PUT', '/api/me/notify', channel ? { channel, level } : { level }),
  /** The server's VAPID public key, base64url. @returns {Promise<{key:string}>} */
  vapidKey: () => api('GET', '/api/push/vapid-key'),
  /** @param {PushSubscriptionJSON} sub */
  subscribePush: (sub) => api('POST', '/api/push/subscriptions', sub),
  /** @param {string} endpoint */
  unsubscribePush: (endpoint) => api('DELETE', '/api/push/subscriptions', { endpoint }),
};

/** Roles, members, moderation, channel settings and pins (API.md v2, "Run a community"). */
function community() {
  const u = (/** @type {string} */ name) => encodeURIComponent(name);
  return {
    /** @returns {Promise<Role[]>} */
    roles: () => api('GET', '/api/roles'),
    /** @param {{name:string, color?:string|null, hoist?:boolean, permissions?:string[]}} role @returns {Promise<Role>} */
    createRole: (role) => api('POST', '/api/roles', role),
    /** @param {number} id @param {Partial<Omit<Role, 'id'>>} patch @returns {Promise<Role>} */
    patchRole: (id, patch) => api('PATCH', `/api/roles/${id}`, patch),
    /** @param {number} id */
    deleteRole: (id) => api('DELETE', `/api/roles/${id}`),
    /** @returns {Promise<Member[]>} */
    members: () => api('GET', '/api/members'),
    /** @param {string} username @param {number} roleId */
    addMemberRole: (username, roleId) => api('PUT', `/api/members/${u(username)}/roles/${roleId}`),
    /** @param {string} username @param {number} roleId */
    removeMemberRole: (username, roleId) => api('DELETE', `/api/members/${u(username)}/roles/${roleId}`),
    /** @param {string} channel @param {number} roleId @param {string[]} allow @param {string[]} deny */
    setOverwrite: (channel, roleId, allow, deny) => api('PUT', `/api/channels/${u(channel)}/overwrites/${roleId}`, { allow, deny }),
    /** @param {string} channel @param {number} roleId */
    clearOverwrite: (channel, roleId) => api('DELETE', `/api/channels/${u(channel)}/overwrites/${roleId}`),
    /** @param {string} channel @param {{name?:string, topic?:string, slowmode_s?:number, position?:number, category?:string|null, voice_mode?:VoiceMode}} patch
     * @returns {Promise<Channel>} */
    patchChannel: (channel, patch) => api('PATCH', `/api/channels/${u(channel)}`, patch),
    /** @param {string} username @param {string} reason */
    kick: (username, reason) => api('POST', `/api/members/${u(username)}/kick`, reason ? { reason } : {}),
    /** @param {string} username @param {string} reason @param {number} deleteMessagesS */
    ban: (username, reason, deleteMessagesS) =>
      api('POST', '/api/bans', { username, ...(reason ? { reason } : {}), ...(deleteMessagesS ? { delete_messages_s: deleteMessagesS } : {}) }),
    /** @returns {Promise<Ban[]>} */
    bans: () => api('GET', '/api/bans'),
    /** @param {string} username */
    unban: (username) => api('DELETE', `/api/bans/${u(username)}`),
    /** @param {string} username @param {number|null} untilTs null lifts it @param {string} [reason] */
    timeout: (username, untilTs, reason) =>
      api('POST', `/api/members/${u(username)}/timeout`, { until_ts: untilTs, ...(reason ? { reason } : {}) }),
    /** Newest first. @param {{limit?:number, before?:number}} [opts] @returns {Promise<AuditEntry[]>} */
    auditLog(opts = {}) {
      const q = new URLSearchParams({ limit: String(opts.limit ?? 50) });
      if (opts.before != null) q.set('before', String(opts.before));
      return api('GET', `/api/audit-log?${q}`);
    },
    /** @param {string} channel @returns {Promise<Message[]>} */
    pins: (channel) => api('GET', `/api/pins?${new URLSearchParams({ channel })}`),
  };
}

/** A random nonce; `crypto.randomUUID` needs a secure context, `getRandomValues` does not. */
export function newNonce() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * Every frame the app sends, on `/ws` and on `/ws/voice`, is built here (docs/API.md). Nothing
 * else writes a `{type: …}` literal, so a new op is one new line here and a type error where
 * it is used wrongly.
 */
export const frames = {
  /** @param {string} channel @param {string} content @param {string} nonce @param {number|null} replyTo
   * @param {string[]} [attachments] ids of this user's uploads */
  send(channel, content, nonce, replyTo, attachments) {
    /** @type {{type:'send', channel:string, content:string, nonce:string, reply_to?:number, attachments?:string[]}} */
    const f = { type: 'send', channel, content, nonce };
    if (replyTo != null) f.reply_to = replyTo;
    if (attachments?.length) f.attachments = attachments;
    return f;
  },
  /** @param {number} id @param {string} content */
  edit: (id, content) => ({ type: 'edit', id, content }),
  /** @param {number} id */
  delete: (id) => ({ type: 'delete', id }),
  /** @param {number} id @param {string} emoji */
  react: (id, emoji) => ({ type: 'react', id, emoji }),
  /** @param {string} channel */
  typing: (channel) => ({ type: 'typing', channel }),
  /** Pin or unpin a message (`manage_messages`). @param {number} id @param {boolean} on */
  pin: (id, on) => ({ type: 'pin', id, on }),
  /** Marks `channel` read up to message `id`, on the server (every device of this user). @param {string} channel @param {number} id */
  read: (channel, id) => ({ type: 'read', channel, id }),
  /** @param {ChosenStatus} status */
  status: (status) => ({ type: 'status', status }),
  /** The keep-alive on both sockets; the server answers `pong`. */
  ping: () => ({ type: 'ping' }),
  // ---- /ws/voice
  /** @param {boolean} muted @param {boolean} deafened @param {boolean} [video] @param {boolean} [screen] */
  voiceState: (muted, deafened, video = false, screen = false) => ({ type: 'state', muted, deafened, video, screen }),
  /** Ask peer `id` to send (or stop sending) us its screen share. @param {string} id @param {boolean} on */
  watch: (id, on) => ({ type: 'watch', id, on }),
  /** An SDP offer or answer for one peer. @param {string} to @param {{type:'offer'|'answer', sdp:string}} d */
  description: (to, d) => ({ type: d.type, to, sdp: d.sdp }),
  /** @param {string} to @param {RTCIceCandidateInit} candidate */
  candidate: (to, candidate) => ({ type: 'candidate', to, candidate }),
};

/**
 * The realtime connection to `/ws` (the shared {@link ReconnectingSocket}). It emits:
 * - `status` `{state:'connecting'|'ready'|'waiting', attempt, retryInMs?, reason?}`
 * - `ready` (the ready frame), and every other server frame under its own `type`
 * - `unauthorized` when the session is gone (the page should show the login form)
 * - `removed` `{reason}` when the server closed the socket with 4003 (kicked or banned)
 */
export class Connection extends ReconnectingSocket {
  /** @param {string} url */
  constructor(url) {
    super({
      url: () => url,
      readyType: 'ready',
      baseMs: RECONNECT_BASE_MS,
      maxMs: RECONNECT_MAX_MS,
      pingEveryMs: PING_EVERY_MS,
      silenceLimitMs: SILENCE_LIMIT_MS,
      ping: frames.ping,
    });
  }

  /** The default URL for this page's origin. */
  static defaultUrl() {
    return wsUrl('/ws');
  }

  /** @protected @param {number} code @param {boolean} opened */
  dropped(code, opened) {
    if (code === REMOVED) {
      // Kicked or banned (API.md v2): the close reason says why ("kicked: spam"). Stop for
      // good: every retry would be refused, and the page must say why, not spin.
      this.stopped = true;
      this.emit('removed', { reason: this.closeReason });
    } else if (code === SESSION_ENDED) {
      // Logged out elsewhere or expired: a retry would only be refused.
      this.checkSession();
    } else if (opened) {
      this.scheduleRetry(`connection closed (${code})`);
    } else {
      // A refused handshake hides its HTTP status from scripts; ask /api/me whether the
      // session is still good before deciding between "log in again" and "retry later".
      this.checkSession();
    }
  }

  /** @private */
  async checkSession() {
    try {
      await rest.me();
      this.scheduleRetry('the server refused the connection');
    } catch (err) {
      if (this.stopped) return;
      if (err instanceof ApiError && err.status === 401) {
        this.stopped = true;
        this.emit('unauthorized', {});
      } else {
        this.scheduleRetry(
          err instanceof ApiError && err.status === 0 ? 'server unreachable' : 'server error',
        );
      }
    }
  }
}
