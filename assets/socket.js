// @ts-check
//! The one reconnecting WebSocket of the app, used by the chat connection (protocol.js
//! `Connection`, `/ws`) and the voice signaling socket (voice/signaling.js `VoiceSocket`,
//! `/ws/voice`). It opens the socket, parses JSON frames and emits each under its `type`,
//! keeps the socket alive with `ping` frames and reopens a silent one, and reconnects with
//! exponential backoff and equal jitter. What a drop *means* (log in again, give up on a full
//! room, retry) is decided by the subclass in `dropped()`. No DOM here.

/** How often the keep-alive looks at a socket; well below every ping and silence limit. */
const KEEPALIVE_CHECK_MS = 5_000;

/** The WebSocket URL of `path` on this page's origin (`wss:` under `https:`). @param {string} path */
export function wsUrl(path) {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${path}`;
}

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

/**
 * @typedef {'connecting'|'ready'|'waiting'} SocketState
 * @typedef {{state:SocketState, attempt:number, retryInMs?:number, reason?:string}} SocketStatus
 * @typedef {object} SocketOptions
 * @property {() => string} url          asked again before every attempt
 * @property {string} readyType          the server frame that means "ready to send" (`ready`, `welcome`)
 * @property {number} baseMs             first backoff step
 * @property {number} maxMs              backoff cap
 * @property {number} pingEveryMs        send a `ping` after this long without a frame from the server
 * @property {number} silenceLimitMs     no frame for this long (a `pong` included): the socket is dead
 * @property {() => Record<string, any>} ping  the keep-alive frame (built by protocol.js)
 */

/**
 * Emits `status` {@link SocketStatus} on every change, every server frame under its own
 * `type`, and `closed` `{code, opened}` when a socket drops (before `dropped()` decides).
 */
export class ReconnectingSocket extends Emitter {
  /** @param {SocketOptions} opts */
  constructor(opts) {
    super();
    this.opts = opts;
    /** @type {WebSocket|null} */
    this.ws = null;
    this.attempt = 0;
    this.stopped = true;
    this.isReady = false;
    this.lastFrameAt = 0;
    /** The reason of the last close frame the server sent ('' if none). */
    this.closeReason = '';
    /** @type {ReturnType<typeof setTimeout>|undefined} */
    this.retryTimer = undefined;
    /** @type {ReturnType<typeof setInterval>|undefined} */
    this.pingTimer = undefined;
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    this.open();
  }

  /** Close for good; no reconnect. @param {string} [reason] */
  stop(reason = 'bye') {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.pingTimer);
    const ws = this.ws;
    this.ws = null;
    this.isReady = false;
    if (ws) ws.close(1000, reason);
  }

  /** Skip the remaining backoff and try now ("Retry now", the browser's `online` event). */
  retryNow() {
    if (this.stopped || this.ws) return;
    clearTimeout(this.retryTimer);
    this.open();
  }

  /**
   * Send one frame. Returns false (and sends nothing) unless the socket is ready, so the
   * caller keeps what matters and sends it again after the next ready frame.
   * @param {Record<string, any>} frame
   */
  send(frame) {
    if (!this.ws || !this.isReady || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  /** @protected */
  open() {
    this.emit('status', { state: 'connecting', attempt: this.attempt });
    let ws;
    try {
      ws = new WebSocket(this.opts.url());
    } catch {
      this.scheduleRetry('could not open a WebSocket');
      return;
    }
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      this.lastFrameAt = Date.now();
      clearInterval(this.pingTimer);
      this.pingTimer = setInterval(() => this.keepAlive(ws), KEEPALIVE_CHECK_MS);
    };
    ws.onmessage = (ev) => {
      this.lastFrameAt = Date.now();
      /** @type {Record<string, any>} */
      let frame;
      try {
        frame = JSON.parse(String(ev.data));
      } catch {
        console.warn('ignoring a frame that is not JSON');
        return;
      }
      if (!frame || typeof frame.type !== 'string') return;
      if (frame.type === this.opts.readyType) {
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
      this.closeReason = ev.reason;
      this.emit('closed', { code: ev.code, opened, reason: ev.reason });
      this.dropped(ev.code, opened);
    };
    ws.onerror = () => {
      /* onclose follows and decides */
    };
  }

  /**
   * A socket closed without `stop()`. The default reconnects; subclasses decide otherwise
   * (a refused handshake may mean the session is gone; some errors make retrying pointless).
   * @protected @param {number} code @param {boolean} opened
   */
  dropped(code, opened) {
    this.scheduleRetry(opened ? `connection closed (${code})` : 'the server refused the connection');
  }

  /** @private @param {WebSocket} ws */
  keepAlive(ws) {
    if (ws !== this.ws || ws.readyState !== WebSocket.OPEN) return;
    const silent = Date.now() - this.lastFrameAt;
    if (silent > this.opts.silenceLimitMs) {
      ws.close(4000, 'silent');
      return;
    }
    if (silent > this.opts.pingEveryMs && this.isReady) ws.send(JSON.stringify(this.opts.ping()));
  }

  /** @protected @param {string} reason */
  scheduleRetry(reason) {
    if (this.stopped) return;
    this.ws = null;
    const exp = Math.min(this.opts.maxMs, this.opts.baseMs * 2 ** this.attempt);
    // "Equal jitter": half fixed, half random, so a restarted server is not hit by every
    // client in the same millisecond, and no client waits less than half the step.
    const delay = Math.round(exp / 2 + Math.random() * (exp / 2));
    this.attempt += 1;
    this.emit('status', { state: 'waiting', attempt: this.attempt, retryInMs: delay, reason });
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.open(), delay);
  }
}
