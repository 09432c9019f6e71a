// @ts-check
//! Audio plumbing for voice: opening the microphone (and saying clearly why it failed),
//! level meters (an AnalyserNode per stream: speaking indicators are computed locally, so
//! they cost no server traffic), remote playback through <audio> elements (Chromium's echo
//! cancellation only hears what plays through media elements, not Web Audio), output device
//! selection, and the join / leave cues, made with oscillators (no sound files).

/** RMS level (0..1) above which a stream counts as speaking (about -36 dBFS). */
export const SPEAKING_RMS = 0.016;
/** Speaking stays on this long after the level drops, so words do not flicker. */
export const SPEAKING_HOLD_MS = 300;

/** The constraints for the microphone; echo cancellation etc. stay on (browser defaults). */
/** @param {string} deviceId '' for the default device */
export function micConstraints(deviceId) {
  /** @type {MediaTrackConstraints} */
  const audio = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };
  if (deviceId) audio.deviceId = { exact: deviceId };
  return { audio, video: false };
}

/**
 * Open the microphone. A remembered device that is gone falls back to the default one.
 * Rejects with an Error whose message is meant for the user.
 * @param {string} deviceId
 * @returns {Promise<MediaStream>}
 */
export async function openMic(deviceId) {
  if (!navigator.mediaDevices?.getUserMedia) {
    throw new Error(window.isSecureContext
      ? 'This browser cannot capture audio.'
      : 'Voice needs a secure page: open this server over https:// (or http://localhost).');
  }
  try {
    return await navigator.mediaDevices.getUserMedia(micConstraints(deviceId));
  } catch (err) {
    const name = err instanceof Error ? err.name : '';
    if (deviceId && (name === 'OverconstrainedError' || name === 'NotFoundError')) return openMic('');
    throw new Error(micErrorMessage(name), { cause: err });
  }
}

/** @param {string} name a DOMException name from getUserMedia */
export function micErrorMessage(name) {
  switch (name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return 'Microphone access was denied. Allow the microphone for this site (the icon at the left of the address bar), then join again.';
    case 'NotFoundError':
    case 'OverconstrainedError':
      return 'No microphone was found. Plug one in (or enable it in your system settings), then join again.';
    case 'NotReadableError':
    case 'AbortError':
      return 'The microphone is busy or could not be started. Close other apps that use it, then join again.';
    default:
      return `The microphone could not be opened${name ? ` (${name})` : ''}.`;
  }
}

/** Follows one stream's level and turns it into a debounced "speaking" flag. */
export class LevelMeter {
  /** @param {AudioContext} ctx @param {MediaStream} stream */
  constructor(ctx, stream) {
    this.source = ctx.createMediaStreamSource(stream);
    this.analyser = ctx.createAnalyser();
    this.analyser.fftSize = 1024;
    this.buf = new Float32Array(this.analyser.fftSize);
    this.source.connect(this.analyser); // not to the destination: analysis only
    this.level = 0;
    this.speaking = false;
    this.lastLoud = 0;
  }

  /** Sample now; returns true when `speaking` changed. */
  sample() {
    this.analyser.getFloatTimeDomainData(this.buf);
    let sum = 0;
    for (const v of this.buf) sum += v * v;
    this.level = Math.sqrt(sum / this.buf.length);
    const now = performance.now();
    if (this.level > SPEAKING_RMS) this.lastLoud = now;
    const speaking = now - this.lastLoud < SPEAKING_HOLD_MS;
    const changed = speaking !== this.speaking;
    this.speaking = speaking;
    return changed;
  }

  close() {
    try {
      this.source.disconnect();
    } catch {
      /* already disconnected */
    }
  }
}

/** Whether this browser lets a page pick the output device. */
export const canPickOutput = typeof HTMLMediaElement !== 'undefined' && 'setSinkId' in HTMLMediaElement.prototype;

/**
 * Plays one participant's audio through an <audio> element.
 * @param {HTMLElement} container where the (hidden) element lives
 * @param {MediaStream} stream
 * @param {string} sinkId '' for the default output
 */
export function createPlayer(container, stream, sinkId) {
  const el = document.createElement('audio');
  el.autoplay = true;
  el.srcObject = stream;
  container.append(el);
  if (sinkId) setSink(el, sinkId);
  el.play().catch(() => {
    /* autoplay refused: voice.js shows "click to enable sound" */
  });
  return el;
}

/** @param {HTMLMediaElement|AudioContext} target @param {string} sinkId */
export function setSink(target, sinkId) {
  const t = /** @type {any} */ (target);
  if (typeof t.setSinkId !== 'function') return Promise.resolve();
  return t.setSinkId(sinkId).catch((/** @type {unknown} */ err) => console.warn('voice: setSinkId', err));
}

/**
 * A short two-note cue: rising for join, falling for leave; quieter for others than for you.
 * @param {AudioContext|null} ctx @param {'join'|'leave'|'peer-join'|'peer-leave'|'mute'|'unmute'} kind
 */
export function playCue(ctx, kind) {
  if (!ctx || ctx.state === 'closed') return;
  /** @type {Record<string, [number, number, number]>} freq1, freq2, gain */
  const cues = {
    join: [523.25, 783.99, 0.12],
    leave: [783.99, 523.25, 0.12],
    'peer-join': [659.25, 880, 0.07],
    'peer-leave': [880, 659.25, 0.07],
    mute: [440, 330, 0.05],
    unmute: [330, 440, 0.05],
  };
  const [f1, f2, peak] = cues[kind];
  const t = ctx.currentTime + 0.01;
  const gain = ctx.createGain();
  gain.gain.setValueAtTime(0, t);
  gain.gain.linearRampToValueAtTime(peak, t + 0.015);
  gain.gain.setValueAtTime(peak, t + 0.2);
  gain.gain.exponentialRampToValueAtTime(0.0001, t + 0.32);
  gain.connect(ctx.destination);
  const osc = ctx.createOscillator();
  osc.type = 'sine';
  osc.frequency.setValueAtTime(f1, t);
  osc.frequency.setValueAtTime(f2, t + 0.11);
  osc.connect(gain);
  osc.start(t);
  osc.stop(t + 0.34);
  osc.onended = () => gain.disconnect();
}
