// @ts-check
//! Voice: a placeholder until the WebRTC client lands. The rest of the app only relies on this
//! interface: `join(channel)`, `leave()`, `isInVoice()`. The real module opens
//! `/ws/voice?channel=…` (see docs/API.md), and renders its controls (mute, deafen, leave) into
//! `<section id="voice-panel">` in the sidebar, which the layout keeps free for it. Who is in
//! which voice channel is shown by the sidebar from `ready.voice` and `voice_state` events,
//! whether or not this module is connected.

import { toast } from './ui.js';

/** @param {string} channel */
export function join(channel) {
  toast(`Voice is coming soon — #${channel} is not connected yet.`, 'info');
}

export function leave() {}

/** @returns {boolean} */
export function isInVoice() {
  return false;
}
