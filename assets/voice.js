// @ts-check
//! Voice channels: a WebRTC mesh (one RTCPeerConnection per other participant) signalled over
//! `/ws/voice?channel=…` (docs/API.md, "Voice signaling"; docs/VOICE.md explains the design).
//! The rest of the app relies on `join(channel)`, `leave()`, `isInVoice()`, plus
//! `configure()` (who is signed in, and a callback when the voice channel changes) and
//! `currentChannel()`. Who is in which voice channel is shown by the sidebar from `ready.voice`
//! and `voice_state` events, whether or not this module is connected.
//!
//! Pieces: voice/signaling.js (the socket, reconnecting), voice/peer.js (one peer connection:
//! perfect negotiation, ICE restarts, stats), voice/audio.js (microphone, level meters,
//! <audio> playback, cues), voice/settings.js (stored settings, dialog, TURN self-test),
//! voice/panel.js (the sidebar panel), voice/video.js (camera, screen share, the call window).
//!
//! Media server mode (issue 16): when `welcome` says `"mode":"sfu"`, one RTCPeerConnection
//! with the server (voice/sfu.js) replaces the mesh; each Remote's `link` is then a view of
//! it, so everything below (panel, tiles, meters, stats) works the same in both modes.
//!
//! Video (issue 15): the camera goes to every peer; a screen share goes only to peers that
//! sent `watch` on for it (others see a LIVE tile with a Watch button). Our `state` frame
//! carries `video` and `screen`, so everyone knows what to expect before any track arrives.
//!
//! One owner for voice state: who is in which voice channel (everyone's, from the server's
//! `ready.voice` and `voice_state`) is app state and changes only through state.js. This
//! page's own call (the `Session`, mute, deafen, push-to-talk, the last failure) lives here
//! alone, in the module variables below; nothing outside reads them but through the
//! functions exported here, and every change to them ends in `render()`.

import { toast } from './ui.js';
import { frames } from './protocol.js';
import { VoiceSocket } from './voice/signaling.js';
import { PeerLink } from './voice/peer.js';
import { SfuConnection, SfuRemote, SFU_ID } from './voice/sfu.js';
import { openMic, LevelMeter, createPlayer, setSink, playCue } from './voice/audio.js';
import {
  loadSettings, userVolume, setUserVolume, keyLabel, fetchIceServers, hasTurn, voiceSettingsSection,
} from './voice/settings.js';
import { applyVolume, releaseVolume } from './voice/volume.js';
import { VoicePanel } from './voice/panel.js';
import {
  VideoStage, openCamera, openScreen, screenQuality, setScreenQuality, capBitrate, cameraBitrate, screenBitrate,
  videoStatsLine,
} from './voice/video.js';

/** Level meters are sampled this often (speaking rings). */
const METER_MS = 100;
/** Connection facts (path, RTT, loss) are refreshed this often. */
const STATS_MS = 2_000;

/**
 * @typedef {{id:string, user:string, muted:boolean, deafened:boolean, video?:boolean, screen?:boolean}} PeerInfo
 * @typedef {PeerInfo & {link:PeerLink|SfuRemote, audio:HTMLAudioElement|null, meter:LevelMeter|null,
 *   speaking:boolean, connectedAfterMs:number|null, offered:boolean,
 *   camera:MediaStream|null, screenIn:MediaStream|null, watching:boolean, watchedBy:boolean,
 *   camSender:RTCRtpSender|null, screenSender:RTCRtpSender|null}} Remote
 */

class Session {
  /** @param {string} channel */
  constructor(channel) {
    this.channel = channel;
    /** @type {'joining'|'connected'|'reconnecting'} */
    this.phase = 'joining';
    this.startedAt = performance.now();
    this.myId = '';
    /** @type {Map<string, Remote>} */
    this.remotes = new Map();
    /** Who the server says is in the room (welcome, peer_joined, peer_left), by peer id. */
    /** @type {Map<string, PeerInfo>} */
    this.members = new Map();
    /** @type {VoiceSocket|null} */
    this.sock = null;
    /** The one connection with the media server, in an `sfu` room (else null: a mesh). */
    /** @type {SfuConnection|null} */
    this.sfu = null;
    /** @type {MediaStream|null} */
    this.stream = null;
    /** The stream id our microphone and camera are sent under (stable across a microphone
     * change): a receiver knows a video track is a camera because it shares a stream with
     * audio, and a screen share because it does not. */
    this.callStream = new MediaStream();
    /** The stream id every screen share of ours is sent under (one per session, like
     * `callStream`): the screen's transceiver is re-used from share to share (peer.js). */
    this.shareStream = new MediaStream();
    /** @type {LevelMeter|null} */
    this.meter = null;
    this.speaking = false;
    /** @type {RTCIceServer[]} */
    this.iceServers = [];
    this.notice = '';
    this.autoplayBlocked = false;
    this.ended = false;
    this.everConnected = false;
  }
}

let settings = loadSettings();
let muted = false;
let deafened = false;
let pttHeld = false;
/** @type {MediaStreamTrack|null} our camera, while it is on */
let camTrack = null;
/** @type {MediaStream|null} our screen share, while it is on */
let screenStream = null;
/** @type {MediaStream|null} the camera for our own tile */
let camPreview = null;
/** @type {Session|null} */
let session = null;
/** Why the last join failed or the call ended by itself; shown until dismissed. */
/** @type {{channel:string, message:string, title:string}|null} */
let failure = null;
/** @type {AudioContext|null} */
let audioCtx = null;
let username = () => '';
let onChannelChange = () => {};
/** Opens the user settings dialog at its Voice section (app.js: one gear for everything). */
let openUserSettings = () => {};
/** The channel object of a name, as the app has it (for its `permissions`). */
/** @type {(name:string) => Record<string, unknown>|undefined} */
let channelInfo = () => undefined;
let renderQueued = false;

const audioBox = document.createElement('div');
audioBox.id = 'voice-audio';
audioBox.hidden = true;
document.body.append(audioBox);

const stage = new VideoStage({
  watch: (id, on) => {
    const s = session;
    const r = s?.remotes.get(id);
    if (!s || !r) return;
    r.watching = on;
    if (!on) r.screenIn = null;
    s.sock?.send(frames.watch(id, on));
    if (on) reattach(s, r); // sfu: the share's m-line (and track) outlive a Stop watching
    render();
  },
});

const panelRoot = /** @type {HTMLElement} */ (document.getElementById('voice-panel'));
const panel = new VoicePanel(panelRoot, {
  leave: () => leave(),
  retry: () => {
    const ch = failure?.channel;
    failure = null;
    if (ch) join(ch);
  },
  dismiss: () => {
    failure = null;
    render();
  },
  toggleMute,
  toggleDeafen,
  settings: () => openSettings(),
  volume: (user, v) => {
    setUserVolume(user, v);
    for (const r of session?.remotes.values() ?? []) if (r.user === user && r.audio) applyVolume(r.audio, audioCtx, v, deafened);
  },
  toggleCamera: () => toggleCamera(),
  toggleScreen: () => toggleScreen(),
  quality: (q) => {
    setScreenQuality(q);
    render();
  },
  enableSound: () => {
    audioCtx?.resume();
    for (const r of session?.remotes.values() ?? []) r.audio?.play().catch(() => {});
    if (session) session.autoplayBlocked = false;
    render();
  },
});

// ---------------------------------------------------------------- public interface

/**
 * Tell the module who is signed in, what to call when the current voice channel changes, how
 * to open the user settings (the voice panel's gear opens them at Voice), and (optionally) how
 * to look up a channel object, whose `permissions` decide whether the camera and screen share
 * are offered.
 * @param {{username:()=>string, onChange:()=>void, openSettings:()=>void, channel?:(name:string)=>Record<string, unknown>|undefined}} opts
 */
export function configure(opts) {
  username = opts.username;
  onChannelChange = opts.onChange;
  openUserSettings = opts.openSettings;
  if (opts.channel) channelInfo = opts.channel;
}

/**
 * Whether we may use the camera and share the screen in `channel` ("Run a community": the
 * `stream` permission). A channel object without `permissions` (a server without roles)
 * allows it, as v1 did. The server decides in the end: it refuses `state` with video or
 * screen on without `stream` (see the `forbidden` handling in `join`).
 * @param {string} channel
 */
export function mayStream(channel) {
  const perms = channelInfo(channel)?.permissions;
  return !Array.isArray(perms) || perms.includes('stream');
}

/** The voice panel's gear: the user settings, at their Voice section. */
export function openSettings() {
  openUserSettings();
}

/** The Voice section of the user settings (devices, push-to-talk, relay only, TURN self-test). */
export function settingsSection() {
  return voiceSettingsSection({
    settings,
    onChange: settingsChanged,
    inputLevel: () => session?.meter?.level ?? 0,
  });
}

/** @returns {boolean} */
export function isInVoice() {
  return !!session;
}

/** The voice channel this page is in, or ''. */
export function currentChannel() {
  return session?.channel ?? '';
}

/** Join a voice channel (leaving the current one). Called from a click: audio may start. @param {string} channel */
export async function join(channel) {
  if (session?.channel === channel) return;
  if (session) leave(true);
  failure = null;
  const s = new Session(channel);
  session = s;
  performance.mark('voice:join');
  ensureAudioContext();
  onChannelChange();
  render();

  const iceServers = fetchIceServers().catch((err) => {
    console.warn('voice: no ICE servers from the server; direct connections only', err);
    return /** @type {RTCIceServer[]} */ ([]);
  });
  let stream;
  try {
    stream = await openMic(settings.inputId);
  } catch (err) {
    if (session !== s) return;
    end(s);
    failure = { channel, title: `Could not join ${channel}`, message: err instanceof Error ? err.message : String(err) };
    toast(failure.message, 'error', 8000);
    render();
    return;
  }
  if (session !== s) {
    for (const t of stream.getTracks()) t.stop();
    return;
  }
  s.stream = stream;
  if (audioCtx) s.meter = new LevelMeter(audioCtx, stream);
  applyMic();
  s.iceServers = await iceServers;
  if (session !== s) return;
  if (settings.relayOnly && !hasTurn(s.iceServers)) {
    s.notice = 'Relay only is on, but this server has no TURN relay: nobody can be reached. Turn it off in the voice settings.';
  }
  const sock = new VoiceSocket(channel);
  s.sock = sock;
  sock.on('welcome', (f) => onWelcome(s, f));
  sock.on('peer_joined', (f) => {
    if (!f.peer || typeof f.peer.id !== 'string') return;
    s.members.set(f.peer.id, f.peer);
    addRemote(s, f.peer, false);
    playCue(audioCtx, 'peer-join');
    render();
  });
  sock.on('peer_left', (f) => {
    s.members.delete(f.id);
    if (removeRemote(s, f.id)) playCue(audioCtx, 'peer-leave');
    render();
  });
  sock.on('peer_state', (f) => {
    const flags = { muted: !!f.muted, deafened: !!f.deafened, video: !!f.video, screen: !!f.screen };
    const m = s.members.get(f.id);
    if (m) Object.assign(m, flags);
    const r = s.remotes.get(f.id);
    if (r) {
      Object.assign(r, flags);
      if (!r.video) r.camera = null;
      if (!r.screen) {
        // The share ended: a new one is watched only on a new request.
        r.watching = false;
        r.screenIn = null;
      }
      reattach(s, r);
      render();
    }
  });
  sock.on('watch', (f) => {
    const r = s.remotes.get(f.from);
    if (!r) return;
    // A request counts only for the share that exists now: one that arrives between a stop
    // and the next share must not send that next share unasked.
    r.watchedBy = !!f.on && !!screenStream;
    syncVideo(s, r);
  });
  /** @param {any} f */
  const onDescription = (f) => {
    if (f.from === SFU_ID) {
      if (f.type === 'offer') s.sfu?.onOffer(f);
      return;
    }
    const r = remoteFor(s, f.from);
    r?.link.onDescription({ type: f.type, sdp: f.sdp })
      .then(() => syncVideo(s, r)) // the answering side adds its video once the call exists
      .catch((err) => console.warn('voice: negotiation failed', err));
  };
  sock.on('offer', onDescription);
  sock.on('answer', onDescription);
  sock.on('candidate', (f) => remoteFor(s, f.from)?.link.onCandidate(f.candidate));
  sock.on('error', (f) => {
    if (f.code === 'forbidden' && s.phase === 'connected') {
      // A refused `state` (video or screen without `stream`): the call goes on without them.
      // Not the end of the call, so it must not count as the socket's closing reason.
      sock.lastError = null;
      streamRefused(s, String(f.message ?? ''));
      return;
    }
    if (f.code === 'rate_limited') console.warn('voice: signaling rate limited', f);
    else if (f.code !== 'not_found' || s.phase !== 'connected') console.warn('voice: server error', f);
  });
  sock.on('status', (f) => {
    if (session !== s || f.state !== 'waiting') return;
    s.phase = 'reconnecting';
    s.notice = `Voice connection lost (${f.reason}); reconnecting in ${(f.retryInMs / 1000).toFixed(1)} s…`;
    // The server forgot us with the socket: the others drop our peer connections too.
    for (const id of [...s.remotes.keys()]) removeRemote(s, id);
    render();
  });
  sock.on('fatal', (f) => {
    if (session !== s) return;
    const message = f.code === 'room_full' ? `${channel} is full.`
      : f.code === 'conflict' ? 'You joined voice in another tab or window.'
        : f.message ? `${f.message[0].toUpperCase()}${f.message.slice(1)}.` : f.code;
    end(s);
    failure = { channel, title: s.everConnected ? `Disconnected from ${channel}` : `Could not join ${channel}`, message };
    toast(`Voice: ${message}`, 'error', 6000);
    render();
  });
  sock.start();
}

/** Leave the voice channel. @param {boolean} [quiet] no cue (switching channels) */
export function leave(quiet = false) {
  const s = session;
  if (!s) return;
  end(s);
  if (!quiet) playCue(audioCtx, 'leave');
  render();
}

// ---------------------------------------------------------------- session internals

/** @param {Session} s */
function end(s) {
  s.ended = true;
  s.sock?.close();
  for (const id of [...s.remotes.keys()]) removeRemote(s, id);
  s.sfu?.close();
  s.sfu = null;
  s.meter?.close();
  for (const t of s.stream?.getTracks() ?? []) t.stop();
  stopCamera();
  stopScreen();
  if (session === s) {
    session = null;
    pttHeld = false;
    onChannelChange();
  }
}

/** @param {Session} s @param {{id:string, peers:PeerInfo[], voice_mode?:string}} f */
function onWelcome(s, f) {
  if (session !== s) return;
  for (const id of [...s.remotes.keys()]) removeRemote(s, id);
  s.sfu?.close();
  s.sfu = f.voice_mode === 'sfu' ? newSfu(s) : null;
  s.myId = String(f.id);
  s.phase = 'connected';
  s.notice = s.notice.startsWith('Voice connection lost') ? '' : s.notice;
  if (muted || deafened || camTrack || screenStream) sendState();
  // API.md: the newcomer offers to everyone already in the room.
  s.members = new Map((f.peers ?? []).filter((p) => typeof p?.id === 'string').map((p) => [p.id, p]));
  for (const p of s.members.values()) addRemote(s, p, true);
  if (!s.everConnected) playCue(audioCtx, 'join');
  s.everConnected = true;
  syncSfu(s);
  render();
}

/** The media server connection of an `sfu` room. @param {Session} s */
function newSfu(s) {
  /** @type {RTCConfiguration} */
  const config = { iceServers: s.iceServers };
  if (settings.relayOnly) config.iceTransportPolicy = 'relay';
  const conn = new SfuConnection({
    config,
    signal: (frame) => s.sock?.send(frame),
    onTrack: (t) => {
      const r = s.remotes.get(t.peer);
      if (!r) return; // attached by addRemote once the server announces the peer
      if (t.kind === 'audio') attachAudio(s, r, t.stream);
      else if (t.kind === 'camera' || r.watching) attachVideo(s, r, t.stream, t.track, t.kind === 'camera');
    },
    onChange: () => {
      capSfu(s);
      for (const r of s.remotes.values()) {
        if (conn.state === 'connected' && r.connectedAfterMs == null) r.connectedAfterMs = Math.round(performance.now() - s.startedAt);
      }
      render();
    },
  });
  return conn;
}

/** What we send to the media server: microphone, camera, screen. @param {Session} s */
function syncSfu(s) {
  if (!s.sfu) return;
  const screen = screenStream?.getVideoTracks()[0] ?? null;
  s.sfu.setTracks({ audio: s.stream?.getAudioTracks()[0] ?? null, camera: camTrack, screen }).then(() => capSfu(s));
}

/** One upload each to the media server, whatever the room's size: the caps of a single
 * receiver (the camera's split into its simulcast layers). Again after every answer: the
 * layers exist once negotiated. @param {Session} s */
function capSfu(s) {
  const cam = s.sfu?.sender('camera');
  if (cam) capBitrate(cam, cameraBitrate(1));
  const scr = s.sfu?.sender('screen');
  if (scr) capBitrate(scr, screenBitrate(screenQuality(), 1));
}

/**
 * In sfu mode a source's m-lines stay for the whole call, so a camera switched back on or a
 * share watched again brings no new `track` event: show the kept track again.
 * @param {Session} s @param {Remote} r
 */
function reattach(s, r) {
  if (!s.sfu) return;
  for (const t of s.sfu.tracksOf(r.id)) {
    if (t.kind === 'camera' && r.video && !r.camera) attachVideo(s, r, t.stream, t.track, true);
    if (t.kind === 'screen' && r.screen && r.watching && !r.screenIn) attachVideo(s, r, t.stream, t.track, false);
  }
}

/** @param {Session} s @param {PeerInfo} p @param {boolean} offer */
function addRemote(s, p, offer) {
  if (!s.myId || !p || typeof p.id !== 'string') return null;
  removeRemote(s, p.id);
  /** @type {RTCConfiguration} */
  const config = { iceServers: s.iceServers };
  if (settings.relayOnly) config.iceTransportPolicy = 'relay';
  /** @type {Remote} */
  const r = {
    id: p.id, user: String(p.user ?? '?'), muted: !!p.muted, deafened: !!p.deafened,
    video: !!p.video, screen: !!p.screen, offered: offer,
    camera: null, screenIn: null, watching: false, watchedBy: false, camSender: null, screenSender: null,
    audio: null, meter: null, speaking: false, connectedAfterMs: null,
    link: s.sfu ? new SfuRemote(s.sfu, p.id) : new PeerLink({
      id: p.id,
      myId: s.myId,
      config,
      signal: (frame) => s.sock?.send(frame),
      onTrack: (stream, track) => {
        if (track.kind === 'audio') attachAudio(s, r, stream);
        else attachVideo(s, r, stream, track);
      },
      onChange: () => {
        if (r.link.state === 'connected' && r.connectedAfterMs == null) {
          r.connectedAfterMs = Math.round(performance.now() - s.startedAt);
          performance.mark(`voice:connected:${r.user}`);
          r.link.readStats().then(render); // show the path at once, not at the next stats tick
        }
        render();
      },
    }),
  };
  s.remotes.set(p.id, r);
  if (s.sfu) {
    // Tracks of this peer that arrived before the server announced it.
    for (const t of s.sfu.tracksOf(p.id)) if (t.kind === 'audio') attachAudio(s, r, t.stream);
    reattach(s, r);
    return r;
  }
  const track = s.stream?.getAudioTracks()[0];
  if (track) r.link.setTrack(track, s.callStream, offer);
  syncVideo(s, r);
  return r;
}

/**
 * The remote a signaling frame is from. A room member without a link yet gets one (answering
 * side); frames from anyone the server has not announced in this room are ignored.
 * @param {Session} s @param {string} id
 */
function remoteFor(s, id) {
  if (typeof id !== 'string' || !id) return null;
  const known = s.remotes.get(id);
  if (known) return known;
  const member = s.members.get(id);
  return member ? addRemote(s, member, false) : null;
}

/** @param {Session} s @param {string} id */
function removeRemote(s, id) {
  const r = s.remotes.get(id);
  if (!r) return false;
  s.remotes.delete(id);
  r.link.close();
  r.meter?.close();
  if (r.audio) {
    releaseVolume(r.audio);
    r.audio.srcObject = null;
    r.audio.remove();
  }
  return true;
}

/** @param {Session} s @param {Remote} r @param {MediaStream} stream */
function attachAudio(s, r, stream) {
  if (s.remotes.get(r.id) !== r) return;
  if (r.audio) {
    r.audio.srcObject = stream;
  } else {
    r.audio = createPlayer(audioBox, stream, settings.outputId);
    r.audio.dataset.peer = r.id;
    r.audio.dataset.user = r.user;
    r.audio.play().catch(() => {
      s.autoplayBlocked = true;
      render();
    });
  }
  applyVolume(r.audio, audioCtx, userVolume(r.user), deafened);
  r.meter?.close();
  r.meter = audioCtx ? new LevelMeter(audioCtx, stream) : null;
}

/** A remote video track: camera (in a mesh: it shares a stream with audio; in sfu mode the
 * server says) or screen share.
 * @param {Session} s @param {Remote} r @param {MediaStream} stream @param {MediaStreamTrack} track
 * @param {boolean} [isCamera] */
function attachVideo(s, r, stream, track, isCamera = stream.getAudioTracks().length > 0) {
  if (s.remotes.get(r.id) !== r) return;
  // Show exactly the video track: a camera's stream also carries the audio that plays elsewhere.
  const only = new MediaStream([track]);
  if (isCamera) r.camera = only;
  else r.screenIn = only;
  const gone = () => {
    if (isCamera && r.camera === only) r.camera = null;
    if (!isCamera && r.screenIn === only) r.screenIn = null;
    render();
  };
  track.addEventListener('ended', gone);
  stream.addEventListener('removetrack', (ev) => {
    if (ev.track === track) gone();
  });
  render();
}

/**
 * Makes what we send to `r` match what we want to: our camera while it is on, our screen
 * while it is on and `r` watches it. The answering side waits for the call to exist (the
 * peer's first offer), so the newcomer's offer and ours do not collide.
 * @param {Session} s @param {Remote} r
 */
function syncVideo(s, r) {
  if (s.sfu) return syncSfu(s);
  if (s.remotes.get(r.id) !== r || (!r.offered && !r.link.pc.remoteDescription)) return;
  r.camSender = r.link.setVideo('camera', camTrack, s.callStream);
  const screenTrack = screenStream?.getVideoTracks()[0] ?? null;
  r.screenSender = r.link.setVideo('screen', r.watchedBy ? screenTrack : null, s.shareStream);
  applyCaps(s);
}

/** Bitrate caps by receiver count: in a mesh each receiver costs one more upload. @param {Session} s */
function applyCaps(s) {
  const rs = [...s.remotes.values()];
  const cams = rs.filter((r) => r.camSender).length;
  const watchers = rs.filter((r) => r.screenSender).length;
  const q = screenQuality();
  for (const r of rs) {
    if (r.camSender) capBitrate(r.camSender, cameraBitrate(cams));
    if (r.screenSender) capBitrate(r.screenSender, screenBitrate(q, watchers));
  }
}

function ensureAudioContext() {
  if (!audioCtx || audioCtx.state === 'closed') {
    try {
      audioCtx = new AudioContext();
      if (settings.outputId) setSink(audioCtx, settings.outputId);
    } catch {
      audioCtx = null;
    }
  }
  audioCtx?.resume().catch(() => {});
}

// ---------------------------------------------------------------- mute, deafen, push-to-talk

/** The microphone sends only when not muted, not deafened, and (with push-to-talk) the key is held. */
function applyMic() {
  const on = !muted && !deafened && (!settings.ptt || pttHeld);
  for (const t of session?.stream?.getAudioTracks() ?? []) t.enabled = on;
  for (const r of session?.remotes.values() ?? []) if (r.audio) applyVolume(r.audio, audioCtx, userVolume(r.user), deafened);
}

function sendState() {
  session?.sock?.send(frames.voiceState(muted || deafened, deafened, !!camTrack, !!screenStream));
}

// ---------------------------------------------------------------- camera and screen share

async function toggleCamera() {
  const s = session;
  if (!s) return;
  if (!camTrack && !mayStream(s.channel)) return; // the button is disabled; a stale click
  if (camTrack) {
    stopCamera();
  } else {
    try {
      const t = await openCamera();
      if (session !== s || camTrack) {
        t.stop();
        return;
      }
      camTrack = t;
      camPreview = new MediaStream([t]);
      t.addEventListener('ended', () => {
        if (camTrack === t) toggleCamera(); // unplugged
      });
    } catch (err) {
      toast(err instanceof Error ? err.message : String(err), 'error');
      return;
    }
  }
  for (const r of s.remotes.values()) syncVideo(s, r);
  syncSfu(s);
  sendState();
  render();
}

/** The server refused our camera or screen share here: stop both, and say so where the user
 * looks (the panel's notice, and a toast). @param {Session} s @param {string} why */
function streamRefused(s, why) {
  if (session !== s) return;
  const had = !!camTrack || !!screenStream;
  stopCamera();
  stopScreen();
  if (had) sendState();
  s.notice = `You are not allowed to use the camera or share your screen in ${s.channel}${why ? ` (${why})` : ''}.`;
  toast(s.notice, 'error', 8000);
  render();
}

function stopCamera() {
  camTrack?.stop();
  camTrack = null;
  camPreview = null;
  const s = session;
  if (s) for (const r of s.remotes.values()) syncVideo(s, r);
  if (s) syncSfu(s);
}

async function toggleScreen() {
  const s = session;
  if (!s) return;
  if (!screenStream && !mayStream(s.channel)) return;
  if (screenStream) {
    stopScreen();
  } else {
    try {
      const st = await openScreen(screenQuality());
      if (!st) return; // picker cancelled
      if (session !== s || screenStream) {
        for (const t of st.getTracks()) t.stop();
        return;
      }
      screenStream = st;
      // The browser's own "Stop sharing" bar ends the track.
      st.getVideoTracks()[0]?.addEventListener('ended', () => {
        if (screenStream === st) toggleScreen();
      });
    } catch (err) {
      toast(err instanceof Error ? err.message : String(err), 'error');
      return;
    }
  }
  for (const r of s.remotes.values()) syncVideo(s, r); // sends only to those who watch
  syncSfu(s); // the media server forwards it only to those who watch
  sendState();
  render();
}

function stopScreen() {
  for (const t of screenStream?.getTracks() ?? []) t.stop();
  screenStream = null;
  const s = session;
  for (const r of s?.remotes.values() ?? []) {
    r.watchedBy = false;
    if (s) syncVideo(s, r);
  }
  if (s) syncSfu(s);
}

function toggleMute() {
  if (deafened) {
    // Unmuting while deafened undeafens too: you cannot talk without hearing.
    deafened = false;
    muted = false;
  } else {
    muted = !muted;
  }
  applyMic();
  sendState();
  playCue(audioCtx, muted ? 'mute' : 'unmute');
  render();
}

function toggleDeafen() {
  deafened = !deafened;
  applyMic();
  sendState();
  playCue(audioCtx, deafened ? 'mute' : 'unmute');
  render();
}

/** @param {KeyboardEvent} ev */
function typingInField(ev) {
  const t = /** @type {HTMLElement|null} */ (ev.target);
  const field = !!t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName));
  return field && ev.key.length === 1; // a printable key in a text field is typing, not talking
}

window.addEventListener('keydown', (ev) => {
  if (!session || !settings.ptt || ev.code !== settings.pttKey || ev.repeat || typingInField(ev)) return;
  if (document.querySelector('dialog[open]')) return; // e.g. while picking a new key
  pttHeld = true;
  applyMic();
  render();
});
window.addEventListener('keyup', (ev) => {
  if (!pttHeld || ev.code !== settings.pttKey) return;
  pttHeld = false;
  applyMic();
  render();
});
window.addEventListener('blur', () => {
  // Push-to-talk works only while the tab is focused: a key released elsewhere never arrives.
  if (!pttHeld) return;
  pttHeld = false;
  applyMic();
  render();
});
window.addEventListener('online', () => session?.sock?.retryNow());

// ---------------------------------------------------------------- settings

/** @param {import('./voice/settings.js').VoiceSettings} next @param {string} what */
async function settingsChanged(next, what) {
  settings = next;
  const s = session;
  if (what === 'outputId') {
    for (const r of s?.remotes.values() ?? []) if (r.audio) setSink(r.audio, settings.outputId);
    if (audioCtx) setSink(audioCtx, settings.outputId);
  } else if (what === 'inputId' && s?.stream) {
    try {
      const stream = await openMic(settings.inputId);
      if (session !== s) {
        for (const t of stream.getTracks()) t.stop();
        return;
      }
      const old = s.stream;
      s.stream = stream;
      const track = stream.getAudioTracks()[0];
      for (const r of s.remotes.values()) r.link.setTrack(track, s.callStream, false);
      syncSfu(s);
      s.meter?.close();
      s.meter = audioCtx ? new LevelMeter(audioCtx, stream) : null;
      for (const t of old.getTracks()) t.stop();
      applyMic();
    } catch (err) {
      toast(err instanceof Error ? err.message : String(err), 'error');
    }
  } else if (what === 'relayOnly' && s) {
    // The ICE policy is fixed per peer connection: join again so every link uses the new one.
    const ch = s.channel;
    leave(true);
    join(ch);
    toast(settings.relayOnly ? 'Relay only: voice now goes through the TURN relay.' : 'Relay only is off: direct connections are allowed again.', 'info');
  } else if (what === 'ptt' || what === 'pttKey') {
    pttHeld = false;
    applyMic();
  }
  render();
}

// ---------------------------------------------------------------- rendering and meters

/** @param {Remote} r */
function connectionLine(r) {
  const st = r.link.state;
  if (st !== 'connected') {
    const err = r.link.iceErrors.find((e) => e.code === 401);
    if (err) return 'TURN refused the credentials (401)';
    if (r.link.restarts && (st === 'failed' || st === 'disconnected')) return 'Reconnecting…';
    return { new: 'Connecting…', connecting: 'Connecting…', disconnected: 'Interrupted…', failed: 'Failed', closed: 'Closed' }[st] ?? st;
  }
  const x = r.link.stats;
  if (!x || !x.path) return 'Connected';
  const parts = [x.path === 'relayed' ? 'Relayed' : 'Direct'];
  if (x.rttMs != null) parts.push(`${x.rttMs} ms`);
  if (x.lossPct != null) parts.push(`${x.lossPct > 0 && x.lossPct < 10 ? x.lossPct.toFixed(1) : Math.round(x.lossPct)}% loss`);
  return parts.join(' · ');
}

/** The per-stream video lines of the connection info: what we receive from `r` (camera or
 * screen) and what we send them. @param {Remote} r */
function videoLines(r) {
  const x = r.link.stats;
  if (!x || r.link.state !== 'connected') return [];
  const camId = r.camera?.getVideoTracks()[0]?.id;
  const screenId = r.screenIn?.getVideoTracks()[0]?.id;
  return [
    ...x.videoIn.map((v) => videoStatsLine(v.track === camId ? 'Camera' : v.track === screenId ? 'Screen' : 'Video', v)),
    ...x.videoOut.map((v) => videoStatsLine(v.purpose === 'camera' ? 'Sending camera' : 'Sending screen', v)),
  ];
}

function render() {
  if (renderQueued) return;
  renderQueued = true;
  queueMicrotask(() => {
    renderQueued = false;
    renderNow();
  });
}

function renderNow() {
  const s = session;
  if (!s) {
    panel.update(/** @type {any} */ ({ phase: failure ? 'error' : 'idle', channel: failure?.channel ?? '', error: failure?.message ?? '', errorTitle: failure?.title ?? '' }));
    stage.update(null);
    return;
  }
  const me = username();
  /** @type {import('./voice/panel.js').PersonView[]} */
  const people = [{
    id: 'self', user: me || 'you', self: true, muted: muted || deafened, deafened,
    speaking: s.speaking, state: s.phase, path: '', title: '', volume: 1, video: [],
    line: s.phase !== 'connected' ? (s.phase === 'joining' ? 'Joining…' : 'Reconnecting…')
      : settings.ptt ? (pttHeld ? 'Talking' : `Push to talk (${keyLabel(settings.pttKey)})`) : 'Connected',
  }];
  const remotes = [...s.remotes.values()].sort((a, b) => a.user.localeCompare(b.user));
  for (const r of remotes) {
    const x = r.link.stats;
    people.push({
      id: r.id, user: r.user, self: false, muted: r.muted, deafened: r.deafened, speaking: r.speaking,
      state: r.link.state, path: r.link.state === 'connected' ? x?.path ?? '' : '', line: connectionLine(r),
      title: x && x.path ? `${x.path === 'relayed' ? 'Relayed through TURN' : 'Direct'} (local ${x.local}, remote ${x.remote})${r.connectedAfterMs != null ? `; connected ${r.connectedAfterMs} ms after joining` : ''}` : '',
      volume: userVolume(r.user), video: videoLines(r),
    });
  }
  panel.update({
    phase: s.phase, channel: s.channel, error: '', notice: s.notice, muted, deafened,
    relayOnly: settings.relayOnly, ptt: settings.ptt, pttHeld, pttLabel: keyLabel(settings.pttKey),
    autoplayBlocked: s.autoplayBlocked, people,
    camera: !!camTrack, screen: !!screenStream, quality: screenQuality(), streamAllowed: mayStream(s.channel),
  });
  stage.update({
    tiles: [
      { id: 'self', user: me || 'you', self: true, camera: camPreview, speaking: s.speaking },
      ...remotes.map((r) => ({ id: r.id, user: r.user, self: false, camera: r.video ? r.camera : null, speaking: r.speaking })),
    ],
    shares: [
      ...(screenStream ? [{ id: 'self', user: me || 'you', self: true, stream: screenStream, watching: true }] : []),
      ...remotes.filter((r) => r.screen).map((r) => ({ id: r.id, user: r.user, self: false, stream: r.watching ? r.screenIn : null, watching: r.watching })),
    ],
  });
}

setInterval(() => {
  const s = session;
  if (!s) return;
  if (s.meter) {
    const live = s.stream?.getAudioTracks().some((t) => t.enabled) ?? false;
    s.meter.sample();
    const speaking = live && s.meter.speaking;
    if (speaking !== s.speaking) {
      s.speaking = speaking;
      panel.speaking('self', speaking);
    }
  }
  for (const r of s.remotes.values()) {
    if (!r.meter) continue;
    r.meter.sample();
    const speaking = r.meter.speaking && !r.muted;
    if (speaking !== r.speaking) {
      r.speaking = speaking;
      panel.speaking(r.id, speaking);
    }
  }
}, METER_MS);

setInterval(async () => {
  const s = session;
  if (s && (camTrack || screenStream) && !mayStream(s.channel)) streamRefused(s, 'the permission was taken away');
  if (s && !s.remotes.size) render(); // permissions may have changed; with peers the render below does it
  if (!s || !s.remotes.size) return;
  await Promise.all([...s.remotes.values()].map((r) => r.link.readStats()));
  if (session !== s) return;
  applyCaps(s); // encodings exist only once negotiated: caps set before then are set now
  rewatch(s);
  render();
}, STATS_MS);

/**
 * Asks again for every share we watch but do not receive. `watch` is a wish, and the sharer
 * forgets it when the share stops; the server folds `peer_state` per 500 ms, so a share
 * stopped and restarted within that window never looks stopped here, and without this we
 * would show "Stop watching" over a blank tile. Repeating is harmless: the sharer ignores a
 * request for a share it already sends, or for one that does not exist.
 * @param {Session} s
 */
function rewatch(s) {
  for (const r of s.remotes.values()) {
    if (r.screen && r.watching && !r.screenIn && r.link.state === 'connected') s.sock?.send(frames.watch(r.id, true));
  }
}
