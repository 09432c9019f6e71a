// @ts-check
//! Per-participant playback volume from 0 to 200 % (issue 18). Up to 100 % it is the
//! `<audio>` element's own `volume`, so the voice keeps playing through a media element,
//! which is what Chromium's echo canceller listens to (voice/audio.js). Above 100 % a media
//! element cannot go, so that participant's stream is routed through a Web Audio `GainNode`
//! (source → gain → the page's AudioContext, whose output device follows the settings) and
//! the element is muted: it stays attached because Chromium delivers a remote WebRTC
//! stream to Web Audio only while a media element plays it. The price of a boost is that
//! the echo canceller may not hear that one participant; at 100 % or less nothing changes.

import { MAX_USER_VOLUME } from './settings.js';

/** @typedef {{source:MediaStreamAudioSourceNode, gain:GainNode, stream:MediaStream, ctx:AudioContext}} Boost */

/** The boost graph of each element that has one. @type {WeakMap<HTMLAudioElement, Boost>} */
const boosts = new WeakMap();

/** @param {HTMLAudioElement} el */
function unboost(el) {
  const b = boosts.get(el);
  if (!b) return;
  boosts.delete(el);
  try {
    b.source.disconnect();
    b.gain.disconnect();
  } catch {
    /* already disconnected */
  }
}

/**
 * Plays `el`'s stream at `volume` (0..MAX_USER_VOLUME), silent while `deafened`. Call it whenever the
 * volume, the deafen state or the element's stream changes.
 * @param {HTMLAudioElement} el
 * @param {AudioContext|null} ctx
 * @param {number} volume
 * @param {boolean} deafened
 */
export function applyVolume(el, ctx, volume, deafened) {
  const v = Math.max(0, Math.min(MAX_USER_VOLUME, volume));
  const stream = el.srcObject instanceof MediaStream ? el.srcObject : null;
  const boost = v > 1 && !!ctx && ctx.state !== 'closed' && !!stream && stream.getAudioTracks().length > 0;
  const b = boosts.get(el);
  if (b && (!boost || b.stream !== stream || b.ctx !== ctx)) unboost(el);
  if (boost && ctx && stream) {
    let nb = boosts.get(el);
    if (!nb) {
      const source = ctx.createMediaStreamSource(stream);
      const gain = ctx.createGain();
      source.connect(gain).connect(ctx.destination);
      nb = { source, gain, stream, ctx };
      boosts.set(el, nb);
    }
    nb.gain.gain.value = deafened ? 0 : v;
    el.volume = 1;
    el.muted = true;
  } else {
    // Without an AudioContext a boost cannot be had: 100 % is the most an element plays
    // (and a volume above 1 would throw).
    el.volume = Math.min(1, v);
    el.muted = deafened;
  }
}

/** Ends `el`'s boost graph (the participant left). @param {HTMLAudioElement} el */
export function releaseVolume(el) {
  unboost(el);
}
