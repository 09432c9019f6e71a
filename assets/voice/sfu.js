// @ts-check
//! Media server mode (issue 16, docs/VOICE.md "Media server mode"): in a room whose
//! `welcome` says `"voice_mode":"sfu"`, the browser holds ONE RTCPeerConnection, with the server.
//! The server makes every offer (`{"type":"offer","from":"sfu","sdp","send","recv"}`); we only
//! answer, so offers never collide and no perfect negotiation is needed; an answer too big
//! for one /ws/voice frame (64 KiB) goes in parts (`answerFrames`). `send` names the
//! three m-lines we send on (`audio`, `camera`, `screen`: their tracks are swapped with
//! `replaceTrack`, never renegotiated); `recv` says whose audio, camera or screen each other
//! m-line carries. A share is sent to the server whenever it is on: the server forwards it
//! only to those who `watch` it.
//!
//! voice.js keeps one `Remote` per participant in both modes, so the panel, the call window
//! and the buttons do not care which mode runs: here each Remote's `link` is an `SfuRemote`, a
//! view of the one connection with the same surface as a mesh `PeerLink` (state, stats,
//! readStats, close). No DOM here.

import { frames } from '../protocol.js';

/** The peer id the media server signals as. */
export const SFU_ID = 'sfu';

/**
 * @typedef {'audio'|'camera'|'screen'} Slot
 * @typedef {{peer:string, kind:Slot}} RecvInfo
 * @typedef {{peer:string, kind:Slot, stream:MediaStream, track:MediaStreamTrack}} RecvTrack
 * @typedef {import('./peer.js').LinkStats} LinkStats
 */

/** How much of an answer's SDP, counted as it is escaped in the JSON frame (UTF-8 bytes),
 * goes in one part: the server closes any /ws/voice frame over 64 KiB (1009), and a full
 * room's answer is up to 224 KiB (server: `signaling::PART_SDP_BYTES`). */
export const PART_SDP_BYTES = 60000;

/** The frames that carry our answer: one if it is small, else parts
 * `{type:'answer', to:'sfu', sdp, part, more:true}` … and the last one without `more`
 * (docs/VOICE.md "Media server mode").
 * @param {string} sdp @param {number} [max] bytes of escaped SDP per part
 * @returns {Record<string, any>[]} */
export function answerFrames(sdp, max = PART_SDP_BYTES) {
  /** @type {string[]} */
  const parts = [];
  let start = 0;
  let bytes = 0;
  let i = 0;
  // Walks code points (SDP is ASCII; this holds for any text), so a part never splits one.
  for (const ch of sdp) {
    const c = /** @type {number} */ (ch.codePointAt(0));
    const cost =
      c === 0x22 || c === 0x5c || c === 0x08 || c === 0x0c || c === 0x0a || c === 0x0d || c === 0x09
        ? 2
        : c < 0x20
          ? 6
          : c < 0x80
            ? 1
            : c < 0x800
              ? 2
              : c < 0x10000
                ? 3
                : 4;
    if (bytes + cost > max && i > start) {
      parts.push(sdp.slice(start, i));
      start = i;
      bytes = 0;
    }
    bytes += cost;
    i += ch.length;
  }
  parts.push(sdp.slice(start));
  if (parts.length === 1) return [frames.description(SFU_ID, { type: 'answer', sdp })];
  return parts.map((part, n) =>
    n < parts.length - 1
      ? { type: 'answer', to: SFU_ID, sdp: part, part: n, more: true }
      : { type: 'answer', to: SFU_ID, sdp: part, part: n },
  );
}

export class SfuConnection {
  /**
   * @param {{config:RTCConfiguration, signal:(frame:Record<string, any>)=>void,
   *   onTrack:(t:RecvTrack)=>void, onChange:()=>void}} opts
   */
  constructor(opts) {
    this.signal = opts.signal;
    this.onTrack = opts.onTrack;
    this.onChange = opts.onChange;
    this.closed = false;
    /** What each receiving m-line carries, by mid (from the offers' `recv`). */
    /** @type {Map<string, RecvInfo>} */
    this.recv = new Map();
    /** The tracks we received, by mid (kept so a camera or share that comes back is shown
     * again: its m-line, and so its track, stays for the life of the call). */
    /** @type {Map<string, RecvTrack>} */
    this.tracks = new Map();
    /** Our three sending m-lines, by slot (from the offers' `send`). */
    /** @type {Record<Slot, string>} */
    this.sendMids = { audio: '', camera: '', screen: '' };
    /** What we want to send on each. */
    /** @type {Record<Slot, MediaStreamTrack|null>} */
    this.local = { audio: null, camera: null, screen: null };
    /** @type {{code:number, text:string, url:string}[]} */
    this.iceErrors = [];
    /** Per remote peer id, its part of the last stats reading. */
    /** @type {Map<string, LinkStats>} */
    this.statsByPeer = new Map();
    /** @type {Promise<void>|null} the stats reading in flight */
    this.reading = null;
    /** Offers are answered one at a time, in order. */
    /** @type {Promise<void>} */
    this.queue = Promise.resolve();
    const pc = new RTCPeerConnection(opts.config);
    this.pc = pc;
    pc.ontrack = ({ track, transceiver }) => {
      const mid = transceiver.mid ?? '';
      const info = this.recv.get(mid);
      if (!info) return;
      const t = { peer: info.peer, kind: info.kind, stream: new MediaStream([track]), track };
      this.tracks.set(mid, t);
      this.onTrack(t);
    };
    pc.addEventListener('icecandidateerror', (ev) => {
      const e = /** @type {RTCPeerConnectionIceErrorEvent} */ (ev);
      if (e.errorCode && e.errorCode !== 701 && this.iceErrors.length < 10) {
        this.iceErrors.push({ code: e.errorCode, text: e.errorText ?? '', url: e.url ?? '' });
        this.onChange();
      }
    });
    pc.onicecandidate = ({ candidate }) => {
      // The server is ICE-lite and learns each of our paths (a relayed one too) from our
      // checks; it takes trickled candidates all the same (one small frame each).
      if (candidate) this.signal(frames.candidate(SFU_ID, candidate.toJSON()));
    };
    pc.onconnectionstatechange = () => this.onChange();
  }

  get state() {
    return this.pc.connectionState;
  }

  /** The server's offer: apply it, put our tracks on our three m-lines, answer.
   * @param {{sdp:string, send?:Record<string, string>, recv?:Record<string, RecvInfo>}} f */
  onOffer(f) {
    this.queue = this.queue.then(() => this.answer(f)).catch((err) => console.warn('voice: media server offer', err));
    return this.queue;
  }

  /** @private @param {{sdp:string, send?:Record<string, string>, recv?:Record<string, RecvInfo>}} f */
  async answer(f) {
    if (this.closed) return;
    // Before setRemoteDescription: its `track` events look the m-lines up here.
    for (const [mid, info] of Object.entries(f.recv ?? {})) {
      if (info && typeof info.peer === 'string') this.recv.set(mid, { peer: info.peer, kind: info.kind });
    }
    for (const slot of /** @type {Slot[]} */ (['audio', 'camera', 'screen'])) {
      const mid = f.send?.[slot];
      if (typeof mid === 'string') this.sendMids[slot] = mid;
    }
    const pc = this.pc;
    await pc.setRemoteDescription({ type: 'offer', sdp: f.sdp });
    for (const slot of /** @type {Slot[]} */ (['audio', 'camera', 'screen'])) {
      const t = this.transceiver(slot);
      if (!t) continue;
      if (t.direction !== 'sendonly') t.direction = 'sendonly';
      if (t.sender.track !== this.local[slot]) await t.sender.replaceTrack(this.local[slot]);
    }
    await pc.setLocalDescription();
    // m-lines the server parked (their source left; `inactive` until the next source of
    // that kind takes one over, and `recv` then names it) carry nobody now. The server
    // never stops an m-line, and never parks one of ours.
    for (const t of pc.getTransceivers()) {
      if (t.mid && t.currentDirection === 'inactive') {
        this.recv.delete(t.mid);
        this.tracks.delete(t.mid);
      }
    }
    const d = pc.localDescription;
    if (d && !this.closed) for (const frame of answerFrames(d.sdp)) this.signal(frame);
    this.onChange();
  }

  /** @private @param {Slot} slot */
  transceiver(slot) {
    const mid = this.sendMids[slot];
    return mid ? this.pc.getTransceivers().find((t) => t.mid === mid) ?? null : null;
  }

  /**
   * What we send: the microphone, the camera, the screen (null: nothing). Swapped in without
   * renegotiating; before the first offer they are kept and go into the first answer.
   * Resolves once the senders carry them.
   * @param {Record<Slot, MediaStreamTrack|null>} tracks
   */
  setTracks(tracks) {
    this.local = { ...tracks };
    /** @type {Promise<void>[]} */
    const swaps = [];
    for (const slot of /** @type {Slot[]} */ (['audio', 'camera', 'screen'])) {
      const t = this.transceiver(slot);
      if (t && t.sender.track !== this.local[slot]) {
        swaps.push(t.sender.replaceTrack(this.local[slot]).catch((e) => console.warn('voice: replaceTrack', e)));
      }
    }
    return Promise.all(swaps).then(() => {});
  }

  /** The sender of our camera or screen (for bitrate caps), while it sends. @param {'camera'|'screen'} slot */
  sender(slot) {
    const t = this.transceiver(slot);
    return t?.sender.track ? t.sender : null;
  }

  /** The tracks received from `peer`. @param {string} peer */
  tracksOf(peer) {
    return [...this.tracks.values()].filter((t) => t.peer === peer);
  }

  /** Reads getStats() once for the whole room and splits it per remote peer (every remote
   * asks at each stats tick: they share one reading). */
  readStats() {
    if (!this.reading) this.reading = this.read().finally(() => { this.reading = null; });
    return this.reading;
  }

  /** @private */
  async read() {
    if (this.closed) return;
    let report;
    try {
      report = await this.pc.getStats();
    } catch {
      return;
    }
    /** @type {Map<string, any>} */
    const byId = new Map();
    report.forEach((s) => byId.set(s.id, s));
    let pair = null;
    for (const s of byId.values()) {
      if (s.type === 'transport' && s.selectedCandidatePairId) pair = byId.get(s.selectedCandidatePairId);
    }
    const local = pair ? byId.get(pair.localCandidateId)?.candidateType ?? '' : '';
    const remote = pair ? byId.get(pair.remoteCandidateId)?.candidateType ?? '' : '';
    const rtt = pair?.currentRoundTripTime;
    /** @type {Map<string, LinkStats>} */
    const per = new Map();
    /** @param {string} peer */
    const of = (peer) => {
      let x = per.get(peer);
      if (!x) {
        x = {
          path: pair ? (local === 'relay' || remote === 'relay' ? 'relayed' : 'direct') : '', local, remote,
          rttMs: typeof rtt === 'number' ? Math.round(rtt * 1000) : null, lossPct: null,
          bytesReceived: 0, packetsReceived: 0, audioEnergy: 0, videoBytesReceived: 0, framesDecoded: 0,
          videoIn: [], videoOut: [],
        };
        per.set(peer, x);
      }
      return x;
    };
    for (const s of byId.values()) {
      if (s.type !== 'inbound-rtp' || s.mid == null) continue;
      const info = this.recv.get(String(s.mid));
      if (!info) continue;
      const x = of(info.peer);
      if (s.kind === 'audio') {
        x.bytesReceived += s.bytesReceived ?? 0;
        x.packetsReceived += s.packetsReceived ?? 0;
        x.audioEnergy += s.totalAudioEnergy ?? 0;
        const lost = Math.max(0, s.packetsLost ?? 0);
        const n = (s.packetsReceived ?? 0) + lost;
        x.lossPct = n > 0 ? (100 * lost) / n : null;
      } else if (s.frameWidth) {
        x.videoBytesReceived += s.bytesReceived ?? 0;
        x.framesDecoded += s.framesDecoded ?? 0;
        x.videoIn.push({
          track: String(this.tracks.get(String(s.mid))?.track.id ?? ''), purpose: '',
          width: s.frameWidth ?? 0, height: s.frameHeight ?? 0,
          fps: typeof s.framesPerSecond === 'number' ? Math.round(s.framesPerSecond) : null,
          kbps: null, lost: Math.max(0, s.packetsLost ?? 0),
        });
      }
    }
    // Peers we receive nothing from yet still get the path.
    for (const info of this.recv.values()) of(info.peer);
    this.statsByPeer = per;
  }

  close() {
    this.closed = true;
    this.pc.ontrack = null;
    this.pc.onicecandidate = null;
    this.pc.onconnectionstatechange = null;
    this.pc.close();
  }
}

/**
 * One remote participant as voice.js sees it in sfu mode: the surface of a mesh `PeerLink`
 * over the shared connection. Sending is the connection's business (`setTracks`), so
 * `setTrack` and `setVideo` do nothing here.
 */
export class SfuRemote {
  /** @param {SfuConnection} conn @param {string} id */
  constructor(conn, id) {
    this.conn = conn;
    this.id = id;
    this.restarts = 0;
    this.pc = conn.pc;
  }

  get state() {
    return this.conn.closed ? 'closed' : this.conn.pc.connectionState;
  }

  get iceErrors() {
    return this.conn.iceErrors;
  }

  /** @returns {LinkStats|null} */
  get stats() {
    return this.conn.statsByPeer.get(this.id) ?? null;
  }

  /** The connection reads its stats once for everyone (voice.js's stats tick). */
  async readStats() {
    await this.conn.readStats();
    return this.stats;
  }

  /** @param {MediaStreamTrack} _track @param {MediaStream} _stream @param {boolean} _addNow */
  setTrack(_track, _stream, _addNow) {}

  /** @param {'camera'|'screen'} _purpose @param {MediaStreamTrack|null} _track @param {MediaStream} _stream
   * @returns {RTCRtpSender|null} */
  setVideo(_purpose, _track, _stream) {
    return null;
  }

  /** @param {import('./peer.js').Description} _desc */
  async onDescription(_desc) {}

  /** @param {RTCIceCandidateInit|null} _candidate */
  async onCandidate(_candidate) {}

  close() {}
}
