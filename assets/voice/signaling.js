// @ts-check
//! The voice signaling socket, `/ws/voice?channel=NAME` (docs/API.md, "Voice signaling"): the
//! app's one reconnecting socket (socket.js) with the voice rules on top. Like protocol.js it
//! never touches the DOM. Besides every server frame under its `type` (`welcome` included) and
//! `status`, it emits `fatal` `{code, message}`: an error after which reconnecting is pointless
//! (the room is full, the channel is gone, or the user joined voice elsewhere).
//!
//! The server forgets a peer when its socket closes, so every (re)connect is a fresh join:
//! a new `welcome` with a new peer id. The caller rebuilds its peer connections from it.

import { ReconnectingSocket, wsUrl } from '../socket.js';
import { frames, REMOVED, SESSION_ENDED } from '../protocol.js';

export const VOICE_RECONNECT_BASE_MS = 500; // a server restart takes ~1 s
export const VOICE_RECONNECT_MAX_MS = 10_000; // someone in a call waits at most this long
export const VOICE_PING_MS = 25_000; // below the server's 75 s idle limit, with room to spare
const VOICE_SILENCE_MS = 65_000; // pings are answered with `pong`: this long without one is a dead socket
/** Errors that end the session instead of reconnecting. */
const FATAL = new Set(['room_full', 'not_found', 'conflict', 'forbidden', 'unauthorized']);

export class VoiceSocket extends ReconnectingSocket {
  /** @param {string} channel */
  constructor(channel) {
    super({
      url: () => wsUrl(`/ws/voice?channel=${encodeURIComponent(channel)}`),
      readyType: 'welcome',
      baseMs: VOICE_RECONNECT_BASE_MS,
      maxMs: VOICE_RECONNECT_MAX_MS,
      pingEveryMs: VOICE_PING_MS,
      silenceLimitMs: VOICE_SILENCE_MS,
      ping: frames.ping,
    });
    this.channel = channel;
    /** The last `error` on the current socket: it says why the server closed it. */
    /** @type {{code:string, message:string}|null} */
    this.lastError = null;
    this.on('status', (st) => {
      if (st.state === 'connecting') this.lastError = null;
    });
    this.on('error', (f) => {
      this.lastError = { code: String(f.code), message: String(f.message ?? '') };
    });
  }

  /** Leave for good: closing the socket is how the server learns we left. */
  close() {
    this.stop('leave');
  }

  /** @protected @param {number} code */
  dropped(code) {
    const err = code === SESSION_ENDED || code === REMOVED
      ? { code: 'unauthorized', message: 'your session ended' }
      : this.lastError;
    if (err && FATAL.has(err.code)) {
      this.stopped = true;
      this.emit('fatal', err);
      return;
    }
    this.scheduleRetry(err ? err.message : `connection closed (${code})`);
  }
}
