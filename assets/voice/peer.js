// @ts-check
//! One peer connection of the voice mesh: "perfect negotiation" (the W3C pattern: either
//! side may offer at any time; on a collision the polite side rolls back and the impolite
//! side ignores the other's offer), ICE restarts, and the connection facts the panel shows
//! (direct or relayed, round-trip time, packet loss) read from `getStats()`.
//! No DOM here: remote tracks go to the `onTrack` callback (audio to <audio>, video to the
//! call window). Camera and screen tracks go out on one transceiver each (`setVideo`): each
//! start or stop renegotiates through the same perfect negotiation.

import { frames } from '../protocol.js';

/**
 * The video codecs we offer, in this order of preference: VP8 (every browser, cheap to
 * encode in software, Chromium's own first choice), VP9 profile 0, and H.264 constrained
 * baseline with packetization mode 1 (what hardware encoders and Safari have), plus the
 * retransmission and redundancy entries that go with them. Chromium offers 19 entries by
 * default; each video m-line then takes ~4 KB of SDP, and an offer with a microphone and three
 * video m-lines passed the server's 16 KiB `sdp` limit (voice/signaling.rs MAX_SDP_BYTES),
 * after which nothing on that link could be renegotiated. This list halves each video m-line.
 */
const VIDEO_CODECS = [
  /^video\/VP8$/i,
  /^video\/VP9$/i,
  /^video\/H264$/i,
  /^video\/(rtx|red|ulpfec)$/i,
];
/** @param {RTCRtpCodec} c */
function keepVideoCodec(c) {
  if (/^video\/VP9$/i.test(c.mimeType)) return /profile-id=0/.test(c.sdpFmtpLine ?? '') || !c.sdpFmtpLine;
  if (/^video\/H264$/i.test(c.mimeType)) return /packetization-mode=1/.test(c.sdpFmtpLine ?? '') && /profile-level-id=42e01f/i.test(c.sdpFmtpLine ?? '');
  return VIDEO_CODECS.some((re) => re.test(c.mimeType));
}

/** Restricts `t` to VIDEO_CODECS, in their order; a browser without the API keeps its defaults.
 * @param {RTCRtpTransceiver} t */
function preferVideoCodecs(t) {
  const all = typeof RTCRtpReceiver.getCapabilities === 'function' ? RTCRtpReceiver.getCapabilities('video')?.codecs ?? [] : [];
  const rank = (/** @type {RTCRtpCodec} */ c) => VIDEO_CODECS.findIndex((re) => re.test(c.mimeType));
  const keep = all.filter(keepVideoCodec).sort((a, b) => rank(a) - rank(b));
  if (!keep.length || typeof t.setCodecPreferences !== 'function') return;
  try {
    t.setCodecPreferences(keep);
  } catch (err) {
    console.warn('voice: setCodecPreferences', err);
  }
}

/** A peer `disconnected` this long gets an ICE restart (`failed` gets one at once). */
export const DISCONNECTED_RESTART_MS = 3_000;
/** An ICE restart that does not reconnect within this long is tried again. */
const RESTART_RETRY_MS = 10_000;

/**
 * @typedef {{type:'offer'|'answer', sdp:string}} Description
 * @typedef {{path:'direct'|'relayed'|'', local:string, remote:string, rttMs:number|null,
 *   lossPct:number|null, bytesReceived:number, packetsReceived:number, audioEnergy:number,
 *   videoBytesReceived:number, framesDecoded:number, videoIn:VideoStreamStats[],
 *   videoOut:VideoStreamStats[]}} LinkStats
 * @typedef {{track:string, purpose:'camera'|'screen'|'', width:number, height:number,
 *   fps:number|null, kbps:number|null, lost:number}} VideoStreamStats
 *   One video stream of this link, as the connection info shows it: `track` is the receiving
 *   track's id (inbound; the caller knows which is a camera), `purpose` is ours (outbound);
 *   `kbps` is over the last interval; `lost` counts packets lost so far (inbound: as we
 *   count them; outbound: as the peer reports them).
 */

/**
 * Whether we are the polite side towards `other`. Peer ids are the server's connection
 * numbers; the lower id is polite. Both sides compute the same answer, so exactly one is.
 * @param {string} me @param {string} other
 */
export function isPolite(me, other) {
  const a = /^\d+$/.test(me) && /^\d+$/.test(other);
  if (a) return BigInt(me) < BigInt(other);
  return me < other;
}

export class PeerLink {
  /**
   * @param {{id:string, myId:string, config:RTCConfiguration,
   *   signal:(frame:Record<string, any>)=>void,
   *   onTrack:(stream:MediaStream, track:MediaStreamTrack)=>void, onChange:()=>void}} opts
   */
  constructor(opts) {
    this.id = opts.id;
    this.polite = isPolite(opts.myId, opts.id);
    this.signal = opts.signal;
    this.onChange = opts.onChange;
    this.makingOffer = false;
    this.ignoreOffer = false;
    this.closed = false;
    /** @type {LinkStats|null} */
    this.stats = null;
    /** @type {{inRecv:number, inLost:number}|null} */
    this.lastCounters = null;
    /** Bytes and time of each video RTP stream at the last reading (bitrate = the difference). */
    /** @type {Map<string, {bytes:number, at:number}>} */
    this.lastVideoBytes = new Map();
    /** ICE errors seen while gathering (e.g. 401 from a TURN server with bad credentials). */
    /** @type {{code:number, text:string, url:string}[]} */
    this.iceErrors = [];
    this.restarts = 0;
    /** @type {ReturnType<typeof setTimeout>|undefined} */
    this.restartTimer = undefined;
    /** @type {MediaStreamTrack|null} */
    this.track = null;
    /** @type {MediaStream|null} */
    this.stream = null;
    /** @type {RTCRtpSender|null} */
    this.sender = null;
    /** The transceiver our camera and our screen share go out on (see `setVideo`). */
    /** @type {{camera: RTCRtpTransceiver|null, screen: RTCRtpTransceiver|null}} */
    this.video = { camera: null, screen: null };

    const pc = new RTCPeerConnection(opts.config);
    this.pc = pc;
    pc.onnegotiationneeded = async () => {
      try {
        this.makingOffer = true;
        await pc.setLocalDescription();
        const d = pc.localDescription;
        if (d) this.signal(frames.description(this.id, /** @type {Description} */ (d)));
      } catch (err) {
        console.warn('voice: could not make an offer', err);
      } finally {
        this.makingOffer = false;
      }
    };
    pc.onicecandidate = ({ candidate }) => {
      // End-of-candidates (null) is implied by the SDP; not worth a frame.
      if (candidate) this.signal(frames.candidate(this.id, candidate.toJSON()));
    };
    pc.addEventListener('icecandidateerror', (ev) => {
      const e = /** @type {RTCPeerConnectionIceErrorEvent} */ (ev);
      // 701 is "could not reach this STUN/TURN server" and is normal for unreachable STUN
      // URLs (e.g. no internet); authentication (401) and other TURN answers are worth showing.
      if (e.errorCode && e.errorCode !== 701 && this.iceErrors.length < 10) {
        this.iceErrors.push({ code: e.errorCode, text: e.errorText ?? '', url: e.url ?? '' });
        this.onChange();
      }
    });
    pc.ontrack = ({ track, streams }) => {
      opts.onTrack(streams[0] ?? new MediaStream([track]), track);
    };
    pc.onconnectionstatechange = () => {
      this.watchConnection();
      this.onChange();
    };
  }

  get state() {
    return this.pc.connectionState;
  }

  /**
   * Our microphone for this peer. With `addNow` it is added at once (the offering side: this
   * triggers negotiation); otherwise it is kept until the peer's offer arrives and goes into
   * the answer. Once sending, a new track is swapped in without renegotiating.
   * @param {MediaStreamTrack} track @param {MediaStream} stream @param {boolean} addNow
   */
  setTrack(track, stream, addNow) {
    if (this.closed) return;
    this.track = track;
    this.stream = stream;
    if (this.sender) {
      if (this.sender.track !== track) this.sender.replaceTrack(track).catch((e) => console.warn('voice: replaceTrack', e));
    } else if (addNow) {
      this.sender = this.pc.addTrack(track, stream);
    }
  }

  /**
   * Sends `track` as our camera or our screen share to this peer, or stops sending it (null).
   * Returns the sender while it sends, else null. Each purpose has one transceiver for the
   * life of the link, re-used on every restart: a stopped track leaves its m-line in the SDP
   * for good (addTrack never re-uses a transceiver that has sent), so toggling a camera with
   * addTrack/removeTrack grew every offer by ~4 KB until it passed the server's 16 KiB `sdp`
   * limit, and from then on the link could not renegotiate at all (no picture after a
   * restart). Each purpose keeps its own stream id too (`stream` is the same object every
   * time), so the receiver tells camera from screen by the stream, as before.
   * @param {'camera'|'screen'} purpose @param {MediaStreamTrack|null} track @param {MediaStream} stream
   */
  setVideo(purpose, track, stream) {
    if (this.closed) return null;
    const t = this.video[purpose];
    if (!track) {
      if (t?.sender.track) this.removeSender(t.sender);
      return null;
    }
    if (t && t.currentDirection !== 'stopped') {
      if (t.sender.track !== track) {
        t.direction = 'sendrecv'; // removeTrack had made it recvonly; this renegotiates
        t.sender.replaceTrack(track).catch((e) => console.warn('voice: replaceTrack', e));
      }
      return t.sender;
    }
    const sender = this.pc.addTrack(track, stream);
    const made = this.pc.getTransceivers().find((x) => x.sender === sender) ?? null;
    if (made) preferVideoCodecs(made);
    this.video[purpose] = made;
    return sender;
  }

  /** @private @param {RTCRtpSender} sender */
  removeSender(sender) {
    try {
      this.pc.removeTrack(sender);
    } catch (err) {
      console.warn('voice: removeTrack', err);
    }
  }

  /** @param {Description} desc */
  async onDescription(desc) {
    const pc = this.pc;
    const collision = desc.type === 'offer' && (this.makingOffer || pc.signalingState !== 'stable');
    this.ignoreOffer = !this.polite && collision;
    if (this.ignoreOffer) return;
    await pc.setRemoteDescription(desc); // a polite side in collision rolls back implicitly
    if (desc.type === 'offer') {
      // Answering side: add our microphone now, so the answer already sends it (addTrack
      // reuses the transceiver the offer created: no second round of negotiation).
      if (this.track && this.stream && !this.sender) this.sender = pc.addTrack(this.track, this.stream);
      await pc.setLocalDescription();
      const d = pc.localDescription;
      if (d) this.signal(frames.description(this.id, /** @type {Description} */ (d)));
    }
  }

  /** @param {RTCIceCandidateInit|null} candidate */
  async onCandidate(candidate) {
    if (!candidate) return;
    try {
      await this.pc.addIceCandidate(candidate);
    } catch (err) {
      if (!this.ignoreOffer) console.warn('voice: bad ICE candidate', err);
    }
  }

  /** @private */
  watchConnection() {
    const st = this.pc.connectionState;
    clearTimeout(this.restartTimer);
    if (this.closed) return;
    if (st === 'failed') this.restartIce();
    else if (st === 'disconnected') {
      this.restartTimer = setTimeout(() => {
        if (this.pc.connectionState === 'disconnected') this.restartIce();
      }, DISCONNECTED_RESTART_MS);
    }
  }

  /** Gather fresh candidates and renegotiate (the offer goes out via onnegotiationneeded). */
  restartIce() {
    if (this.closed) return;
    this.restarts += 1;
    this.pc.restartIce();
    this.onChange();
    clearTimeout(this.restartTimer);
    this.restartTimer = setTimeout(() => {
      const st = this.pc.connectionState;
      if (st === 'failed' || st === 'disconnected') this.restartIce();
    }, RESTART_RETRY_MS);
  }

  /** Refresh `this.stats` from getStats(). */
  async readStats() {
    if (this.closed) return this.stats;
    let report;
    try {
      report = await this.pc.getStats();
    } catch {
      return this.stats;
    }
    /** @type {Map<string, any>} */
    const byId = new Map();
    report.forEach((s) => byId.set(s.id, s));
    let pair = null;
    for (const s of byId.values()) {
      if (s.type === 'transport' && s.selectedCandidatePairId) pair = byId.get(s.selectedCandidatePairId);
    }
    if (!pair) {
      for (const s of byId.values()) if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s;
    }
    const local = pair ? byId.get(pair.localCandidateId)?.candidateType ?? '' : '';
    const remote = pair ? byId.get(pair.remoteCandidateId)?.candidateType ?? '' : '';
    let inRecv = 0, inLost = 0, bytes = 0, energy = 0, videoBytes = 0, framesDecoded = 0;
    for (const s of byId.values()) {
      if (s.type === 'inbound-rtp' && s.kind === 'video') {
        videoBytes += s.bytesReceived ?? 0;
        framesDecoded += s.framesDecoded ?? 0;
      }
      if (s.type === 'inbound-rtp' && s.kind === 'audio') {
        inRecv += s.packetsReceived ?? 0;
        inLost += Math.max(0, s.packetsLost ?? 0);
        bytes += s.bytesReceived ?? 0;
        energy += s.totalAudioEnergy ?? 0;
      }
    }
    const { videoIn, videoOut } = this.videoStreams(byId);
    // Loss over the last interval (since the previous reading; the first reading: so far).
    const prev = this.lastCounters ?? { inRecv: 0, inLost: 0 };
    const recv = inRecv - prev.inRecv, lost = inLost - prev.inLost;
    const lossPct = recv + lost > 0 ? (100 * Math.max(0, lost)) / (recv + lost) : this.stats?.lossPct ?? null;
    this.lastCounters = { inRecv, inLost };
    const rtt = pair?.currentRoundTripTime;
    this.stats = {
      path: pair ? (local === 'relay' || remote === 'relay' ? 'relayed' : 'direct') : '',
      local,
      remote,
      rttMs: typeof rtt === 'number' ? Math.round(rtt * 1000) : null,
      lossPct,
      bytesReceived: bytes,
      packetsReceived: inRecv,
      audioEnergy: energy,
      videoBytesReceived: videoBytes,
      framesDecoded,
      videoIn,
      videoOut,
    };
    return this.stats;
  }

  /**
   * Resolution, frame rate, bitrate and packets lost of every video stream we receive on this
   * link and every one we send (issue 15: the connection info shows them per stream). Only
   * streams that carry something: a stopped camera's m-line stays, without bytes.
   * @private @param {Map<string, any>} byId
   */
  videoStreams(byId) {
    /** @type {VideoStreamStats[]} */
    const videoIn = [];
    /** @type {VideoStreamStats[]} */
    const videoOut = [];
    const seen = new Map();
    /** @param {any} s @param {number} bytes */
    const kbps = (s, bytes) => {
      const prev = this.lastVideoBytes.get(s.id);
      seen.set(s.id, { bytes, at: s.timestamp });
      if (!prev || s.timestamp <= prev.at || bytes < prev.bytes) return null;
      return Math.round(((bytes - prev.bytes) * 8) / (s.timestamp - prev.at)); // bits per ms = kbit/s
    };
    for (const s of byId.values()) {
      if (s.type === 'inbound-rtp' && s.kind === 'video') {
        const rate = kbps(s, s.bytesReceived ?? 0);
        const t = this.pc.getTransceivers().find((x) => x.mid != null && x.mid === s.mid);
        const receiving = t ? t.currentDirection === 'sendrecv' || t.currentDirection === 'recvonly' : true;
        if (!receiving || !s.frameWidth) continue;
        videoIn.push({
          track: String(s.trackIdentifier ?? t?.receiver.track.id ?? ''), purpose: '',
          width: s.frameWidth ?? 0, height: s.frameHeight ?? 0,
          fps: typeof s.framesPerSecond === 'number' ? Math.round(s.framesPerSecond) : null,
          kbps: rate, lost: Math.max(0, s.packetsLost ?? 0),
        });
      }
      if (s.type === 'outbound-rtp' && s.kind === 'video') {
        const rate = kbps(s, s.bytesSent ?? 0);
        /** @type {'camera'|'screen'|''} */
        const purpose = s.mid != null && s.mid === this.video.camera?.mid && this.video.camera?.sender.track ? 'camera'
          : s.mid != null && s.mid === this.video.screen?.mid && this.video.screen?.sender.track ? 'screen' : '';
        if (!purpose || !s.frameWidth) continue;
        const remote = byId.get(s.remoteId) ?? [...byId.values()].find((x) => x.type === 'remote-inbound-rtp' && x.localId === s.id);
        videoOut.push({
          track: '', purpose, width: s.frameWidth ?? 0, height: s.frameHeight ?? 0,
          fps: typeof s.framesPerSecond === 'number' ? Math.round(s.framesPerSecond) : null,
          kbps: rate, lost: Math.max(0, remote?.packetsLost ?? 0),
        });
      }
    }
    this.lastVideoBytes = seen;
    return { videoIn, videoOut };
  }

  close() {
    this.closed = true;
    clearTimeout(this.restartTimer);
    this.pc.onnegotiationneeded = null;
    this.pc.onicecandidate = null;
    this.pc.ontrack = null;
    this.pc.onconnectionstatechange = null;
    this.pc.close();
  }
}
