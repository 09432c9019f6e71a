// @ts-check
//! The wire protocol, browser side: the REST client (`api`, `Client`) and the realtime
//! WebSocket (`Connection`), both described in docs/API.md. This module never touches the DOM:
//! it turns HTTP responses and WebSocket frames into plain objects and events, and the UI
//! modules (app.js and its views) decide what to show. Reconnect policy lives here too, so the
//! rest of the app only sees "ready", frames, and status changes.

/** Timing constants for the realtime connection, in milliseconds. */
export const RECONNECT_BASE_MS = 500; // first retry comes quickly: a restart takes ~1 s
export const RECONNECT_MAX_MS = 15_000; // cap: a user waiting for a server should not wait long
export const PING_EVERY_MS = 25_000; // below the server's 30 s ping, so idle proxies stay open
export const SILENCE_LIMIT_MS = 65_000; // no frame for this long → the socket is dead; reopen
// WebSocket close codes of API.md v2: the session ended (logout, expiry), or the user was
// removed (kick, ban). A reconnect would only be refused.
export const SESSION_ENDED = 4001;
export const REMOVED = 4003;
/** History page size used for catch-up; the server's maximum. */
export const HISTORY_MAX = 200;

/**
 * @typedef {{id:number, username:string, admin:boolean}} User
 * @typedef {{name:string, kind:'text'|'voice', topic:string}} Channel
 * @typedef {{id:number, channel:string, author:string, content:string, ts:number,
 *   edited_ts:number|null, reply_to:number|null, reactions:Record<string,string[]>}} Message
 * @typedef {{user:string, status:'online'|'offline'}} Presence
 * @typedef {{channel:string, user:string, muted:boolean, deafened:boolean}} VoiceMember
 * @typedef {{type:'ready', user:User, channels:Channel[], presence:Presence[],
 *   voice:VoiceMember[], last_ids:Record<string,number>}} ReadyFrame
 * @typedef {Record<string, any> & {type:string}} Frame
 */

/** A minimal event emitter: `on(type, fn)` returns a function that unsubscribes. */
export class Emitter {
  constructor() {
    /** @type {Map<string, Set<(arg:any)=>void>>} */
    this.listeners = new Map();
  }
  /** @param {string} type @param {(arg:any)=>void} fn @returns {() => void} */
  on(type, fn) {
    let set = this.listeners.get(type);
    if (!set) this.listeners.set(type, (set = new Set()));
    set.add(fn);
    return () => set?.delete(fn);
  }
  /** @param {string} type @param {any} [arg] */
  emit(type, arg) {
    for (const fn of [...(this.listeners.get(type) ?? [])]) {
      try {
        fn(arg);
      } catch (err) {
        console.error(`listener for ${type} failed`, err);
      }
    }
  }
}

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
  /** @returns {Promise<{code:string, expires_ts:number}>} */
  createInvite: () => api('POST', '/api/invites'),
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
};

/** A random nonce; `crypto.randomUUID` needs a secure context, `getRandomValues` does not. */
export function newNonce() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * The realtime connection to `/ws`: opens, reconnects with exponential backoff and jitter,
 * keeps itself alive with pings, and emits:
 * - `status` `{state:'connecting'|'ready'|'waiting', attempt, retryInMs?, reason?}`
 * - `ready` (the ready frame), and every other server frame under its own `type`
 * - `unauthorized` when the session is gone (the page should show the login form)
 */
export class Connection extends Emitter {
  /** @param {string} url */
  constructor(url) {
    super();
    this.url = url;
    /** @type {WebSocket|null} */
    this.ws = null;
    this.attempt = 0;
    this.stopped = true;
    this.isReady = false;
    /** @type {ReturnType<typeof setTimeout>|undefined} */
    this.retryTimer = undefined;
    /** @type {ReturnType<typeof setInterval>|undefined} */
    this.pingTimer = undefined;
    this.lastFrameAt = 0;
  }

  /** The default URL for this page's origin. */
  static defaultUrl() {
    return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    this.open();
  }

  /** Close for good (sign out); no reconnect. */
  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.pingTimer);
    const ws = this.ws;
    this.ws = null;
    this.isReady = false;
    if (ws) ws.close(1000, 'bye');
  }

  /** Skip the remaining backoff and try now (the "Retry now" button). */
  retryNow() {
    if (this.stopped || this.ws) return;
    clearTimeout(this.retryTimer);
    this.open();
  }

  /**
   * Send one frame. Returns false (and sends nothing) unless the connection is ready, so the
   * caller keeps the frame and sends it again after the next `ready`.
   * @param {Frame} frame
   */
  send(frame) {
    if (!this.ws || !this.isReady || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  /** @private */
  open() {
    this.emit('status', { state: 'connecting', attempt: this.attempt });
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (err) {
      this.scheduleRetry('could not open a WebSocket');
      return;
    }
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      this.lastFrameAt = Date.now();
      clearInterval(this.pingTimer);
      this.pingTimer = setInterval(() => this.keepAlive(ws), 5_000);
    };
    ws.onmessage = (ev) => {
      this.lastFrameAt = Date.now();
      /** @type {Frame} */
      let frame;
      try {
        frame = JSON.parse(String(ev.data));
      } catch {
        console.warn('ignoring a frame that is not JSON');
        return;
      }
      if (!frame || typeof frame.type !== 'string') return;
      if (frame.type === 'ready') {
        this.attempt = 0;
        this.isReady = true;
        this.emit('status', { state: 'ready', attempt: 0 });
      }
      this.emit(frame.type, frame);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return; // an old socket we already replaced or stopped
      this.ws = null;
      this.isReady = false;
      clearInterval(this.pingTimer);
      if (this.stopped) return;
      this.emit('closed', { code: ev.code, opened });
      if (ev.code === SESSION_ENDED || ev.code === REMOVED) {
        // Logged out elsewhere, expired, kicked or banned: a retry would only be refused.
        this.checkSession();
      } else if (opened) {
        this.scheduleRetry(`connection closed (${ev.code})`);
      } else {
        // A refused handshake hides its HTTP status from scripts; ask /api/me whether the
        // session is still good before deciding between "log in again" and "retry later".
        this.checkSession();
      }
    };
    ws.onerror = () => {
      /* onclose follows and decides */
    };
  }

  /** @private @param {WebSocket} ws */
  keepAlive(ws) {
    if (ws !== this.ws || ws.readyState !== WebSocket.OPEN) return;
    const silent = Date.now() - this.lastFrameAt;
    if (silent > SILENCE_LIMIT_MS) {
      ws.close(4000, 'silent');
      return;
    }
    if (silent > PING_EVERY_MS && this.isReady) ws.send(JSON.stringify({ type: 'ping' }));
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

  /** @private @param {string} reason */
  scheduleRetry(reason) {
    if (this.stopped) return;
    this.ws = null;
    const exp = Math.min(RECONNECT_MAX_MS, RECONNECT_BASE_MS * 2 ** this.attempt);
    // "Equal jitter": half fixed, half random, so a restarted server is not hit by every
    // client in the same millisecond, and no client waits less than half the step.
    const delay = Math.round(exp / 2 + Math.random() * (exp / 2));
    this.attempt += 1;
    this.emit('status', { state: 'waiting', attempt: this.attempt, retryInMs: delay, reason });
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.open(), delay);
  }
}
