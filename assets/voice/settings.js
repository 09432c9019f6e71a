// @ts-check
//! Voice settings kept in this browser (localStorage): input and output device, push-to-talk
//! and its key, "relay only", and each participant's volume. Also the settings dialog and
//! the TURN self-test it offers (gather candidates through the server's TURN entry only and
//! say what came back), so a user can check their relay without a second person. The
//! controls are the Voice section of the user settings dialog (views/settings.js).

import { h } from '../dom.js';
import { api } from '../protocol.js';
import { canPickOutput } from './audio.js';

const KEY = 'md.voice.settings';
const VOLUME_KEY = 'md.voice.volume';
/** How long the TURN self-test waits for a relay candidate. */
export const RELAY_TEST_MS = 6_000;

/** @typedef {{inputId:string, outputId:string, relayOnly:boolean, ptt:boolean, pttKey:string}} VoiceSettings */

/** @returns {VoiceSettings} */
export function loadSettings() {
  /** @type {VoiceSettings} */
  const d = { inputId: '', outputId: '', relayOnly: false, ptt: false, pttKey: 'Backquote' };
  try {
    const s = JSON.parse(localStorage.getItem(KEY) ?? '{}');
    return {
      inputId: typeof s.inputId === 'string' ? s.inputId : d.inputId,
      outputId: typeof s.outputId === 'string' ? s.outputId : d.outputId,
      relayOnly: s.relayOnly === true,
      ptt: s.ptt === true,
      pttKey: typeof s.pttKey === 'string' && s.pttKey ? s.pttKey : d.pttKey,
    };
  } catch {
    return d;
  }
}

/** @param {VoiceSettings} s */
export function saveSettings(s) {
  try {
    localStorage.setItem(KEY, JSON.stringify(s));
  } catch {
    /* storage disabled: the settings last for this page */
  }
}

/** A participant's volume can go to 200 %, as in Discord: a quiet microphone on the other
 * side is the common case, and more than twice the gain mostly adds clipping. */
export const MAX_USER_VOLUME = 2;

/** A participant's volume, 0..MAX_USER_VOLUME (default 1), remembered per username.
 * @param {string} user */
export function userVolume(user) {
  try {
    const v = JSON.parse(localStorage.getItem(VOLUME_KEY) ?? '{}')[user];
    return typeof v === 'number' && v >= 0 && v <= MAX_USER_VOLUME ? v : 1;
  } catch {
    return 1;
  }
}

/** @param {string} user @param {number} volume 0..MAX_USER_VOLUME */
export function setUserVolume(user, volume) {
  try {
    const all = JSON.parse(localStorage.getItem(VOLUME_KEY) ?? '{}');
    if (volume === 1) delete all[user];
    else all[user] = Math.round(volume * 100) / 100;
    localStorage.setItem(VOLUME_KEY, JSON.stringify(all));
  } catch {
    /* ignore */
  }
}

/** "Backquote" → "`", "KeyV" → "V", "F8" → "F8". @param {string} code */
export function keyLabel(code) {
  const named = { Backquote: '`', Space: 'Space', Backslash: '\\', Minus: '-', Equal: '=' };
  if (code in named) return named[/** @type {keyof typeof named} */ (code)];
  return code.replace(/^Key|^Digit/, '');
}

/** The ICE servers of this server, as GET /api/webrtc-config gives them. */
export async function fetchIceServers() {
  const cfg = await api('GET', '/api/webrtc-config');
  return /** @type {RTCIceServer[]} */ (Array.isArray(cfg?.iceServers) ? cfg.iceServers : []);
}

/** @param {RTCIceServer[]} servers */
export function hasTurn(servers) {
  return servers.some((s) => [s.urls].flat().some((u) => /^turns?:/.test(String(u))));
}

/**
 * The TURN self-test: one peer connection with iceTransportPolicy 'relay' gathers
 * candidates; a relay candidate means the TURN server answered and accepted our credentials.
 * @param {RTCIceServer[]} servers
 * @returns {Promise<{ok:boolean, text:string}>}
 */
export async function testRelay(servers) {
  if (!hasTurn(servers)) {
    return { ok: false, text: 'This server has no TURN relay configured (TURN_HOST is not set), so only direct connections are possible.' };
  }
  const pc = new RTCPeerConnection({ iceServers: servers, iceTransportPolicy: 'relay' });
  /** @type {string[]} */
  const errors = [];
  const started = performance.now();
  try {
    const result = await new Promise((resolve) => {
      const timer = setTimeout(() => resolve(null), RELAY_TEST_MS);
      pc.onicecandidate = ({ candidate }) => {
        if (candidate?.type === 'relay') {
          clearTimeout(timer);
          resolve(candidate);
        }
      };
      pc.onicegatheringstatechange = () => {
        if (pc.iceGatheringState === 'complete') {
          clearTimeout(timer);
          resolve(null);
        }
      };
      pc.addEventListener('icecandidateerror', (ev) => {
        const e = /** @type {RTCPeerConnectionIceErrorEvent} */ (ev);
        errors.push(`${e.errorCode}${e.errorText ? ` ${e.errorText}` : ''}${e.url ? ` (${e.url})` : ''}`);
      });
      pc.createDataChannel('relay-test');
      pc.createOffer().then((o) => pc.setLocalDescription(o)).catch(() => resolve(null));
    });
    const ms = Math.round(performance.now() - started);
    if (result) {
      return { ok: true, text: `The TURN relay works: got a relay address ${result.address ?? ''}:${result.port ?? ''} in ${ms} ms.` };
    }
    if (errors.some((e) => e.startsWith('401'))) {
      return { ok: false, text: `The TURN server refused the credentials (401). The app's TURN_SECRET and coturn's static-auth-secret must be the same. ${errors.join('; ')}` };
    }
    return { ok: false, text: errors.length ? `No relay address: ${errors.join('; ')}` : 'No relay address: the TURN server did not answer (is its port open?).' };
  } finally {
    pc.close();
  }
}

/**
 * The voice settings, as the Voice section of the user settings dialog (views/settings.js):
 * one gear for everything (issue 18). Every change applies at once through `onChange`;
 * `stop` ends the input meter when the dialog closes.
 * @param {{settings:VoiceSettings, onChange:(s:VoiceSettings, what:keyof VoiceSettings)=>void,
 *   inputLevel:()=>number}} opts
 * @returns {Promise<{nodes:import('../dom.js').Child[], stop:()=>void}>}
 */
export async function voiceSettingsSection(opts) {
  const s = { ...opts.settings };
  /** @type {MediaDeviceInfo[]} */
  let devices = [];
  try {
    devices = await navigator.mediaDevices.enumerateDevices();
  } catch {
    /* no device list: only the defaults */
  }
  /** @param {'audioinput'|'audiooutput'} kind @param {string} current @param {string} id */
  const select = (kind, current, id) => {
    const el = h('select', { id, class: 'vs-select' },
      h('option', { value: '' }, 'Default'),
      devices.filter((d) => d.kind === kind && d.deviceId && d.deviceId !== 'default')
        .map((d, i) => h('option', { value: d.deviceId, selected: d.deviceId === current },
          d.label || `${kind === 'audioinput' ? 'Microphone' : 'Speaker'} ${i + 1}`)));
    el.value = devices.some((d) => d.deviceId === current) ? current : '';
    return el;
  };
  const change = (/** @type {keyof VoiceSettings} */ what) => {
    saveSettings(s);
    opts.onChange({ ...s }, what);
  };

  const input = select('audioinput', s.inputId, 'voice-input');
  input.addEventListener('change', () => {
    s.inputId = input.value;
    change('inputId');
  });
  const meterBar = h('span', { class: 'vs-meter-bar' });
  const meter = h('span', { class: 'vs-meter', role: 'meter', 'aria-label': 'Input level' }, meterBar);

  const output = canPickOutput ? select('audiooutput', s.outputId, 'voice-output') : null;
  output?.addEventListener('change', () => {
    s.outputId = output.value;
    change('outputId');
  });

  const ptt = h('input', { type: 'checkbox', id: 'voice-ptt', checked: s.ptt });
  const keyBtn = h('button', { class: 'btn small', type: 'button', id: 'voice-ptt-key' }, `Key: ${keyLabel(s.pttKey)}`);
  ptt.addEventListener('change', () => {
    s.ptt = ptt.checked;
    change('ptt');
  });
  keyBtn.addEventListener('click', () => {
    keyBtn.textContent = 'Press a key…';
    const onKey = (/** @type {KeyboardEvent} */ ev) => {
      ev.preventDefault();
      ev.stopPropagation();
      window.removeEventListener('keydown', onKey, true);
      if (ev.code !== 'Escape') {
        s.pttKey = ev.code;
        change('pttKey');
      }
      keyBtn.textContent = `Key: ${keyLabel(s.pttKey)}`;
    };
    window.addEventListener('keydown', onKey, true);
  });

  const relay = h('input', { type: 'checkbox', id: 'voice-relay-only', checked: s.relayOnly });
  relay.addEventListener('change', () => {
    s.relayOnly = relay.checked;
    change('relayOnly');
  });
  const testResult = h('p', { class: 'vs-test-result', id: 'voice-relay-test-result', role: 'status' });
  const testBtn = h('button', { class: 'btn small', type: 'button', id: 'voice-relay-test' }, 'Test TURN relay');
  testBtn.addEventListener('click', async () => {
    testBtn.disabled = true;
    testResult.className = 'vs-test-result';
    testResult.textContent = 'Testing…';
    try {
      const r = await testRelay(await fetchIceServers());
      testResult.textContent = r.text;
      testResult.classList.add(r.ok ? 'ok' : 'bad');
    } catch (err) {
      testResult.textContent = `The test could not run: ${err instanceof Error ? err.message : String(err)}`;
      testResult.classList.add('bad');
    } finally {
      testBtn.disabled = false;
    }
  });

  const nodes = [
    h('label', { for: 'voice-input' }, 'Input device'), input, meter,
    output ? h('label', { for: 'voice-output' }, 'Output device') : null,
    output ?? h('p', { class: 'hint' }, 'This browser plays voice on its default output device.'),
    h('div', { class: 'vs-row' },
      h('label', { class: 'vs-check', for: 'voice-ptt' }, ptt, h('span', null, 'Push to talk')), keyBtn),
    h('p', { class: 'hint' }, 'Hold the key to talk while this tab is focused; the microphone is off otherwise.'),
    h('div', { class: 'vs-row' },
      h('label', { class: 'vs-check', for: 'voice-relay-only' }, relay, h('span', null, 'Relay only')), testBtn),
    h('p', { class: 'hint' }, 'Send all audio through this server\'s TURN relay. Use it to check that TURN works: each participant then shows “Relayed”.'),
    testResult,
  ];
  const timer = setInterval(() => {
    meterBar.style.width = `${Math.min(100, Math.round(opts.inputLevel() * 400))}%`;
  }, 100);
  return { nodes, stop: () => clearInterval(timer) };
}
