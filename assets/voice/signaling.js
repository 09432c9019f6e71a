// @ts-check
//! The voice signaling socket, `/ws/voice?channel=NAME` (docs/API.md, "Voice signaling").
//! Like protocol.js it never touches the DOM: it opens the socket (the page's session cookie
//! authenticates it), keeps it alive, reopens it with backoff when it drops, and emits every
//! server frame under its `type`, plus `open`, `down` `{retryInMs, reason}` and `fatal`
//! `{code, message}` (an error after which reconnecting is pointless: the room is full, the
//! channel is gone, or the user joined voice elsewhere).
//!
//! The server forgets a peer when its socket closes, so every (re)connect is a fresh join:
//! a new `welcome` with a new peer id. The caller rebuilds its peer connections from it.

import { Emitter, REMOVED, SESSION_ENDED } from '../protocol.js';

export const VOICE_RECONNECT_BASE_MS = 500; // a server restart takes ~1 s
export const VOICE_RECONNECT_MAX_MS = 10_000; // someone in a call waits at most this long
export const VOICE_PING_MS = 25_000; // below the server's 75 s idle limit, with room to spare
/** Errors that end the session instead of reconnecting. */
const FATAL = new Set(['room_full', 'not_found', 'conflict', 'forbidden', 'unauthorized']);

export class VoiceSocket extends Emitter {
  /** @param {string} channel */
  constructor(channel) {
    super();
    this.channel = channel;
    /** @type {WebSocket|null} */
    this.ws = null;
    this.stopped = false;
    this.attempt = 0;
    /** @type {{code:string, message:string}|null} */
    this.lastError = null;
    /** @type {ReturnType<typeof setTimeout>|undefined} */
    this.retryTimer = undefined;
    /** @type {ReturnType<typeof setInterval>|undefined} */
    this.pingTimer = undefined;
    this.open();
  }

  get url() {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    return `${scheme}://${location.host}/ws/voice?channel=${encodeURIComponent(this.channel)}`;
  }

  /** @param {Record<string, any>} frame @returns {boolean} whether it went out */
  send(frame) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  /** Leave for good: closing the socket is how the server learns we left. */
  close() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.pingTimer);
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close(1000, 'leave');
  }

  /** Skip the remaining backoff (the "online" event, or the user asking). */
  retryNow() {
    if (this.stopped || this.ws) return;
    clearTimeout(this.retryTimer);
    this.open();
  }

  /** @private */
  open() {
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch {
      this.scheduleRetry('could not open a WebSocket');
      return;
    }
    this.ws = ws;
    this.lastError = null;
    ws.onopen = () => {
      clearInterval(this.pingTimer);
      this.pingTimer = setInterval(() => this.send({ type: 'ping' }), VOICE_PING_MS);
    };
    ws.onmessage = (ev) => {
      let frame;
      try {
        frame = JSON.parse(String(ev.data));
      } catch {
        return;
      }
      if (!frame || typeof frame.type !== 'string') return;
      if (frame.type === 'welcome') {
        this.attempt = 0;
        this.emit('open', frame);
      }
      if (frame.type === 'error') this.lastError = { code: String(frame.code), message: String(frame.message ?? '') };
      this.emit(frame.type, frame);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      clearInterval(this.pingTimer);
      if (this.stopped) return;
      const err = ev.code === SESSION_ENDED || ev.code === REMOVED
        ? { code: 'unauthorized', message: 'your session ended' }
        : this.lastError;
      if (err && FATAL.has(err.code)) {
        this.stopped = true;
        this.emit('fatal', err);
        return;
      }
      this.scheduleRetry(err ? err.message : `connection closed (${ev.code})`);
    };
    ws.onerror = () => {
      /* onclose follows and decides */
    };
  }

  /** @private @param {string} reason */
  scheduleRetry(reason) {
    if (this.stopped) return;
    const exp = Math.min(VOICE_RECONNECT_MAX_MS, VOICE_RECONNECT_BASE_MS * 2 ** this.attempt);
    const delay = Math.round(exp / 2 + Math.random() * (exp / 2)); // equal jitter, as protocol.js
    this.attempt += 1;
    this.emit('down', { retryInMs: delay, reason });
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.open(), delay);
  }
}
