// Voice in real Chromium against the real server, and through a real coturn: people join
// `lounge` and hear each other (direct, then forced through the relay with credentials the
// server mints), a third joins and leaves, mute/deafen/push-to-talk/volume, the signaling
// socket reconnecting by itself, a denied or missing microphone, and a TURN server that
// refuses the credentials. Timings (click → connected, click → first audio) are measured and
// logged, never asserted. Read ../../../shared/notes/browser-and-turn-testing.md first.
//
// The app is not changed for testing: an init script wraps RTCPeerConnection to keep every
// instance (and its ICE errors) in `window.__voice`, so tests can call getStats() on the
// app's own peer connections.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { startServer } from './lib/server.mjs';
import { startTurn } from './lib/turn.mjs';
import { ARGS, CHROMIUM, signIn, closeQuietly } from './lib/browser.mjs';

const MEDIA_ARGS = ['--use-fake-device-for-media-stream', '--allow-loopback-in-peer-connection'];
const SAMPLE_MS = 1_000; // between two getStats() snapshots
const RUNS = 3; // timing runs per path (medians are logged)

/** @param {boolean} fakeUi auto-grant the microphone (without it, permission decides) */
function launch(fakeUi) {
  const args = [...ARGS, ...MEDIA_ARGS, ...(fakeUi ? ['--use-fake-ui-for-media-stream'] : [])];
  return chromium.launch({ executablePath: CHROMIUM, args, headless: true, timeout: 30_000 });
}

const sleep = (/** @type {number} */ ms) => new Promise((r) => setTimeout(r, ms));

/** Runs in the page before the app: keeps the app's peer connections reachable for getStats(). */
function instrument() {
  const Orig = window.RTCPeerConnection;
  /** @type {RTCPeerConnection[]} */
  const pcs = [];
  /** @type {{code:number, url:string, text:string}[]} */
  const iceErrors = [];
  /** @type {string[]} */
  const localTypes = [];
  // @ts-ignore
  window.RTCPeerConnection = class extends Orig {
    /** @param {any[]} a */
    constructor(...a) {
      super(...a);
      pcs.push(this);
      this.addEventListener('icecandidateerror', (/** @type {any} */ e) => iceErrors.push({ code: e.errorCode, url: e.url, text: e.errorText }));
      this.addEventListener('icecandidate', (/** @type {any} */ e) => {
        if (e.candidate) localTypes.push(e.candidate.type);
      });
    }
  };
  /** One entry per open peer connection: state, inbound audio counters, selected path. */
  async function snapshot() {
    const live = pcs.filter((pc) => pc.signalingState !== 'closed');
    return Promise.all(live.map(async (pc) => {
      const report = await pc.getStats();
      /** @type {Map<string, any>} */
      const byId = new Map();
      report.forEach((s) => byId.set(s.id, s));
      let bytes = 0, packets = 0, energy = 0, pair = null;
      for (const s of byId.values()) {
        if (s.type === 'inbound-rtp' && s.kind === 'audio') {
          bytes += s.bytesReceived ?? 0;
          packets += s.packetsReceived ?? 0;
          energy += s.totalAudioEnergy ?? 0;
        }
        if (s.type === 'transport' && s.selectedCandidatePairId) pair = byId.get(s.selectedCandidatePairId);
      }
      return {
        state: pc.connectionState, bytes, packets, energy,
        local: pair ? byId.get(pair.localCandidateId)?.candidateType : null,
        remote: pair ? byId.get(pair.remoteCandidateId)?.candidateType : null,
      };
    }));
  }
  // @ts-ignore
  window.__voice = { pcs, iceErrors, localTypes, snapshot };
}

/**
 * A signed-in user in their own context.
 * @param {import('playwright-core').Browser} browser @param {string} url @param {string} name
 * @param {{mic?: boolean, missingMic?: boolean}} [opts]
 */
async function openVoiceUser(browser, url, name, opts = {}) {
  const context = await browser.newContext({
    viewport: { width: 1280, height: 800 },
    permissions: opts.mic === false ? [] : ['microphone'],
  });
  context.setDefaultTimeout(10_000);
  await context.addInitScript(instrument);
  if (opts.missingMic) {
    await context.addInitScript(() => {
      navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException('Requested device not found', 'NotFoundError'));
    });
  }
  const page = await context.newPage();
  /** @type {string[]} */
  const problems = [];
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    const text = msg.text();
    if (msg.type() === 'error' && !/WebSocket connection|Failed to load resource|ERR_CONNECTION_REFUSED/.test(text)) problems.push(`console: ${text}`);
    if (/Content Security Policy/i.test(text)) problems.push(`csp: ${text}`);
  });
  await page.goto(url);
  await signIn(page, name, 'register');
  return { context, page, problems, username: name };
}

/** @typedef {Awaited<ReturnType<typeof openVoiceUser>>} VoiceUser */

/** @param {VoiceUser} u @param {string} [channel] */
async function joinVoice(u, channel = 'lounge') {
  await u.page.click(`#sidebar .chan.voice[data-channel="${channel}"]`);
  await u.page.locator('#voice-panel[data-phase="connected"]').waitFor();
}

/** Wait until `u` shows `other` in the call with a connected peer connection. @param {VoiceUser} u @param {string} other @param {string} [path] */
function connectedTo(u, other, path) {
  const sel = `#voice-panel .vp-person[data-user="${other}"][data-state="connected"]${path ? `[data-path="${path}"]` : ''}`;
  return u.page.locator(sel).waitFor({ timeout: 10_000 });
}

/** @param {VoiceUser} u */
function snapshot(u) {
  return u.page.evaluate(() => /** @type {any} */ (window).__voice.snapshot());
}

/** Two snapshots SAMPLE_MS apart, for every user at once. @param {VoiceUser[]} users */
async function sampleAll(users) {
  const a = await Promise.all(users.map(snapshot));
  await sleep(SAMPLE_MS);
  const b = await Promise.all(users.map(snapshot));
  return users.map((u, i) => ({ user: u.username, before: a[i], after: b[i] }));
}

/** Every open peer connection of every user carries audio. @param {Awaited<ReturnType<typeof sampleAll>>} samples @param {number} perUser */
function assertAudioFlows(samples, perUser, type = 'host') {
  for (const { user, before, after } of samples) {
    assert.equal(after.length, perUser, `${user} has ${perUser} open peer connection(s)`);
    for (let i = 0; i < perUser; i++) {
      assert.equal(after[i].state, 'connected', `${user} pc ${i} connected`);
      assert.ok(after[i].bytes > before[i].bytes, `${user} pc ${i}: inbound bytes grow (${before[i].bytes} → ${after[i].bytes})`);
      assert.ok(after[i].energy > 0, `${user} pc ${i}: totalAudioEnergy > 0`);
      assert.equal(after[i].local, type, `${user} pc ${i}: local candidate ${type}`);
      assert.equal(after[i].remote, type, `${user} pc ${i}: remote candidate ${type}`);
    }
  }
}

/** Energy arriving at `u` (summed over its peer connections) during SAMPLE_MS. @param {VoiceUser} u */
async function energyDelta(u) {
  const a = await snapshot(u);
  await sleep(SAMPLE_MS);
  const b = await snapshot(u);
  return b.reduce((s, x) => s + x.energy, 0) - a.reduce((s, x) => s + x.energy, 0);
}

/**
 * Join by clicking (in the page, so no driver latency is counted) and time, on the joining
 * side, the first connected peer connection and the first decoded audio energy.
 * @param {VoiceUser} u
 */
function timedJoin(u, channel = 'lounge') {
  return u.page.evaluate(async (channel) => {
    const v = /** @type {any} */ (window).__voice;
    const known = new Set(v.pcs);
    const t0 = performance.now();
    /** @type {HTMLElement} */ (document.querySelector(`#sidebar .chan.voice[data-channel="${channel}"]`)).click();
    let connected = null, audio = null;
    while (performance.now() - t0 < 10_000 && audio == null) {
      const pc = v.pcs.find((/** @type {RTCPeerConnection} */ p) => !known.has(p) && p.signalingState !== 'closed');
      if (pc) {
        if (connected == null && pc.connectionState === 'connected') connected = performance.now() - t0;
        if (connected != null) {
          const stats = await pc.getStats();
          stats.forEach((/** @type {any} */ s) => {
            if (audio == null && s.type === 'inbound-rtp' && s.kind === 'audio' && s.totalAudioEnergy > 0) audio = performance.now() - t0;
          });
        }
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    return { connected, audio };
  }, channel);
}

/** @param {number[]} xs */
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * `RUNS` times: `joiner` joins (where `host` already is), is timed, and leaves again.
 * @param {VoiceUser} joiner @param {VoiceUser} host @param {string} label @param {import('node:test').TestContext} t
 */
async function measureJoins(joiner, host, label, t) {
  /** @type {{connected:number|null, audio:number|null}[]} */
  const runs = [];
  if (await joiner.page.locator('#voice-panel .vp-leave').count()) {
    await joiner.page.click('#voice-panel .vp-leave');
    await host.page.locator(`#voice-panel .vp-person[data-user="${joiner.username}"]`).waitFor({ state: 'detached' });
  }
  for (let i = 0; i < RUNS; i++) {
    const r = await timedJoin(joiner);
    assert.ok(r.connected != null && r.audio != null, `${label} run ${i + 1} connected and got audio: ${JSON.stringify(r)}`);
    runs.push(r);
    await joiner.page.click('#voice-panel .vp-leave');
    await host.page.locator(`#voice-panel .vp-person[data-user="${joiner.username}"]`).waitFor({ state: 'detached' });
    await sleep(200);
  }
  const conn = median(runs.map((r) => /** @type {number} */ (r.connected)));
  const audio = median(runs.map((r) => /** @type {number} */ (r.audio)));
  const line = `voice timing ${label}: click→connected median ${conn.toFixed(0)} ms, click→first audio median ${audio.toFixed(0)} ms ` +
    `(runs: ${runs.map((r) => `${r.connected?.toFixed(0)}/${r.audio?.toFixed(0)}`).join(', ')} ms)`;
  t.diagnostic(line);
  console.log(line);
}

/** @param {VoiceUser} u */
function enableRelayOnly(u) {
  return (async () => {
    await u.page.click('#user-settings-btn');
    await u.page.check('#voice-relay-only');
    await u.page.click('dialog.voice-settings .modal-actions button');
    await u.page.locator('dialog.voice-settings').waitFor({ state: 'detached' });
  })();
}

describe('voice: direct calls', { timeout: 90_000 }, () => {
  /** @type {Awaited<ReturnType<typeof startServer>>} */
  let server;
  /** @type {import('playwright-core').Browser} */
  let browser;
  /** @type {VoiceUser} */ let alice;
  /** @type {VoiceUser} */ let bob;
  /** @type {VoiceUser|undefined} */ let carol;

  before(async () => {
    server = await startServer();
    browser = await launch(true);
    alice = await openVoiceUser(browser, server.url, 'alice');
    bob = await openVoiceUser(browser, server.url, 'bob');
  });

  after(async () => {
    for (const u of [alice, bob, carol]) await closeQuietly(u);
    await browser?.close().catch(() => {});
    await server?.dispose();
  });

  it('two people join lounge and hear each other directly', async () => {
    await joinVoice(alice);
    await joinVoice(bob);
    await connectedTo(alice, 'bob', 'direct');
    await connectedTo(bob, 'alice', 'direct');
    assertAudioFlows(await sampleAll([alice, bob]), 1, 'host');
    for (const u of [alice, bob]) {
      // The connection facts: path, RTT, loss (loss needs a stats reading with packets in it).
      await u.page.locator('#voice-panel .vp-person:not(.self) .vp-line', { hasText: /^Direct · \d+ ms · [\d.]+% loss$/ }).waitFor();
      for (const who of ['alice', 'bob']) await u.page.locator(`#sidebar .voice-member .vm-name:text-is("${who}")`).waitFor();
      assert.equal(await u.page.locator('#sidebar .chan.voice.connected[data-channel="lounge"]').count(), 1);
    }
  });

  it('mute stops the energy arriving at the others, unmute brings it back', async () => {
    const baseline = await energyDelta(bob);
    assert.ok(baseline > 0, `audio energy arrives before muting (${baseline})`);
    await alice.page.click('#voice-panel .vp-mute');
    assert.equal(await alice.page.getAttribute('#voice-panel .vp-mute', 'aria-pressed'), 'true');
    // The `state` frame reaches bob's panel (peer_state) and sidebar (voice_state).
    await bob.page.locator('#voice-panel .vp-person[data-user="alice"] .vp-flag[title="Muted"]').waitFor();
    await bob.page.locator('#sidebar .voice-member:has(.vm-name:text-is("alice")) .vm-flag[title="Muted"]').waitFor();
    await sleep(500); // let the jitter buffer drain
    const muted = await energyDelta(bob);
    await alice.page.click('#voice-panel .vp-mute');
    await bob.page.locator('#voice-panel .vp-person[data-user="alice"] .vp-flag').waitFor({ state: 'detached' });
    await sleep(300);
    const unmuted = await energyDelta(bob);
    console.log(`energy per ${SAMPLE_MS} ms at bob: before ${baseline.toExponential(2)}, muted ${muted.toExponential(2)}, unmuted ${unmuted.toExponential(2)}`);
    assert.ok(muted < baseline / 100, `muted: energy delta ≈ 0 (${muted} vs ${baseline})`);
    assert.ok(unmuted > baseline / 10, `unmuted: energy grows again (${unmuted} vs ${baseline})`);
  });

  it('deafen silences everyone and mutes you; per-user volume is remembered', async () => {
    await bob.page.click('#voice-panel .vp-deafen');
    assert.deepEqual(await bob.page.$$eval('#voice-audio audio', (els) => els.map((e) => /** @type {HTMLAudioElement} */ (e).muted)), [true]);
    assert.equal(await bob.page.getAttribute('#voice-panel .vp-mute', 'aria-pressed'), 'true', 'deafened means muted too');
    await alice.page.locator('#voice-panel .vp-person[data-user="bob"] .vp-flag[title="Deafened"]').waitFor();
    await alice.page.locator('#voice-panel .vp-person[data-user="bob"] .vp-flag[title="Muted"]').waitFor();
    await bob.page.click('#voice-panel .vp-deafen');
    // Both flags go (a locator matching two elements cannot wait for "detached"): the server
    // folds state changes that come within half a second, so this one may take that long.
    await alice.page.waitForFunction(() => !document.querySelector('#voice-panel .vp-person[data-user="bob"] .vp-flag'));
    assert.deepEqual(await bob.page.$$eval('#voice-audio audio', (els) => els.map((e) => /** @type {HTMLAudioElement} */ (e).muted)), [false]);

    await alice.page.click('#voice-panel .vp-person[data-user="bob"] .vp-voltoggle');
    await alice.page.locator('#voice-panel .vp-person[data-user="bob"] .vp-volume').fill('30');
    assert.equal(await alice.page.$eval('#voice-audio audio[data-user="bob"]', (e) => /** @type {HTMLAudioElement} */ (e).volume), 0.3);
    const stored = await alice.page.evaluate(() => JSON.parse(localStorage.getItem('md.voice.volume') ?? '{}'));
    assert.deepEqual(stored, { bob: 0.3 });
    // MD_VOICE_SCREENSHOT=docs/screenshot-voice.png refreshes the picture in docs/VOICE.md.
    if (process.env.MD_VOICE_SCREENSHOT) {
      await sleep(2_100); // one more stats tick, so the connection line is complete
      await alice.page.screenshot({ path: process.env.MD_VOICE_SCREENSHOT });
    }
  });

  it('push-to-talk sends audio only while the key is held', async () => {
    await alice.page.click('#user-settings-btn');
    await alice.page.check('#voice-ptt');
    await alice.page.click('dialog.voice-settings .modal-actions button');
    await alice.page.locator('#voice-panel .vp-ptt', { hasText: 'hold `' }).waitFor();
    await alice.page.locator('#messages-scroll').focus(); // not a text field
    await sleep(500);
    const idle = await energyDelta(bob);
    await alice.page.keyboard.down('Backquote');
    await alice.page.locator('#voice-panel .vp-ptt.on').waitFor();
    await sleep(300);
    const held = await energyDelta(bob);
    await alice.page.keyboard.up('Backquote');
    console.log(`push-to-talk energy at bob: idle ${idle.toExponential(2)}, key held ${held.toExponential(2)}`);
    assert.ok(held > 0 && idle < held / 100, `energy only while held (idle ${idle}, held ${held})`);
    await alice.page.click('#user-settings-btn');
    await alice.page.uncheck('#voice-ptt');
    await alice.page.click('dialog.voice-settings .modal-actions button');
  });

  it('a third person joins: all three pairs carry audio; leaving removes the peer everywhere', async () => {
    carol = await openVoiceUser(browser, server.url, 'carol');
    await joinVoice(carol);
    for (const [u, others] of /** @type {const} */ ([[alice, ['bob', 'carol']], [bob, ['alice', 'carol']], [carol, ['alice', 'bob']]])) {
      for (const o of others) await connectedTo(u, o, 'direct');
    }
    assertAudioFlows(await sampleAll([alice, bob, carol]), 2, 'host');

    await carol.page.click('#voice-panel .vp-leave');
    for (const u of [alice, bob]) {
      await u.page.locator('#voice-panel .vp-person[data-user="carol"]').waitFor({ state: 'detached' });
      await u.page.locator('#sidebar .voice-member .vm-name:text-is("carol")').waitFor({ state: 'detached' });
      assert.equal((await snapshot(u)).length, 1, `${u.username} closed the peer connection to carol`);
      assert.equal(await u.page.locator('#voice-audio audio').count(), 1);
    }
    assert.equal((await snapshot(carol)).length, 0, 'carol has no peer connection left');
    assert.equal(await carol.page.locator('#voice-panel > *').count(), 0, 'carol\'s panel is gone');
    assert.equal(await carol.page.locator('#voice-audio audio').count(), 0);
  });

  it('rejoins by itself after the signaling socket reconnects', async () => {
    await server.restart();
    for (const [u, other] of [[alice, 'bob'], [bob, 'alice']]) {
      await u.page.locator('#voice-panel[data-phase="connected"]').waitFor({ timeout: 15_000 });
      await connectedTo(u, other, 'direct');
    }
    assertAudioFlows(await sampleAll([alice, bob]), 1, 'host');
  });

  it('measures click → connected and click → first audio, direct (logged, not asserted)', async (t) => {
    await measureJoins(bob, alice, 'direct', t);
    for (const u of [alice, bob, carol]) assert.deepEqual(u?.problems ?? [], [], `${u?.username}: no page errors`);
  });

  it('leaves the call when its voice channel was deleted while the page was away', async () => {
    /** @param {string} method @param {string} path @param {object} [body] */
    const api = (method, path, body) => alice.page.evaluate(async ([method, path, body]) => {
      const res = await fetch(path, { method, headers: { 'Content-Type': 'application/json' }, body: body ? JSON.stringify(body) : undefined });
      return res.status;
    }, /** @type {const} */ ([method, path, body]));
    assert.equal(await api('POST', '/api/channels', { name: 'attic', kind: 'voice' }), 201);
    await joinVoice(bob, 'attic');
    await bob.context.setOffline(true); // bob cannot reconnect until we say so
    await server.restart();
    await alice.page.locator('#banner').waitFor({ state: 'hidden', timeout: 15_000 });
    assert.equal(await api('DELETE', '/api/channels/attic'), 204);
    await bob.context.setOffline(false);
    // Without the leave, the voice socket would retry its 404 handshake for as long as the page lives.
    await bob.page.locator('#toasts .toast', { hasText: 'Voice channel attic was deleted' }).waitFor({ timeout: 20_000 });
    await bob.page.waitForTimeout(1500);
    assert.equal(await bob.page.locator('#voice-panel > *').count(), 0, 'bob is out of the call');
    assert.equal(await bob.page.locator('#sidebar .chan.voice[data-channel="attic"]').count(), 0);
    assert.deepEqual(bob.problems, []);
  });
});

describe('voice: microphone problems', { timeout: 30_000 }, () => {
  /** @type {Awaited<ReturnType<typeof startServer>>} */
  let server;
  /** @type {import('playwright-core').Browser} */
  let browser;
  /** @type {VoiceUser[]} */
  const users = [];

  before(async () => {
    server = await startServer();
    browser = await launch(false); // no auto-granting fake UI: the context's permission decides
  });
  after(async () => {
    for (const u of users) await closeQuietly(u);
    await browser?.close().catch(() => {});
    await server?.dispose();
  });

  it('says clearly when the microphone is denied or missing, and does not join', async () => {
    const dave = await openVoiceUser(browser, server.url, 'dave', { mic: false });
    const erin = await openVoiceUser(browser, server.url, 'erin', { missingMic: true });
    users.push(dave, erin);
    for (const [u, text] of [[dave, 'Microphone access was denied'], [erin, 'No microphone was found']]) {
      await u.page.click('#sidebar .chan.voice[data-channel="lounge"]');
      await u.page.locator('#voice-panel .vp-error', { hasText: text }).waitFor();
      await u.page.locator('#toasts .toast.error', { hasText: text }).waitFor();
      assert.equal(await u.page.locator('#sidebar .voice-member').count(), 0, 'nobody joined lounge');
    }
    await dave.page.click('#voice-panel .vp-error button:text-is("Dismiss")');
    assert.equal(await dave.page.locator('#voice-panel > *').count(), 0);
  });
});

describe('voice: through coturn (relay only)', { timeout: 60_000 }, () => {
  const secret = `voice-test-${Math.random().toString(36).slice(2)}`;
  /** @type {Awaited<ReturnType<typeof startTurn>>} */
  let turn;
  /** @type {Awaited<ReturnType<typeof startServer>>} */
  let good;
  /** @type {Awaited<ReturnType<typeof startServer>>} */
  let wrong;
  /** @type {import('playwright-core').Browser} */
  let browser;
  /** @type {VoiceUser[]} */
  const users = [];

  before(async () => {
    turn = await startTurn({ secret });
    const env = { TURN_HOST: '127.0.0.1', TURN_PORT: String(turn.port) };
    good = await startServer({ env: { ...env, TURN_SECRET: secret } });
    wrong = await startServer({ env: { ...env, TURN_SECRET: `${secret}-wrong` } });
    browser = await launch(true);
  });

  after(async () => {
    for (const u of users) await closeQuietly(u);
    await browser?.close().catch(() => {});
    await good?.dispose();
    await wrong?.dispose();
    await turn?.stop();
  });

  it('relays the call through coturn with credentials minted by the server', async (t) => {
    const alice = await openVoiceUser(browser, good.url, 'alice');
    const bob = await openVoiceUser(browser, good.url, 'bob');
    users.push(alice, bob);
    for (const u of [alice, bob]) await enableRelayOnly(u);
    await joinVoice(alice);
    await joinVoice(bob);
    await connectedTo(alice, 'bob', 'relayed');
    await connectedTo(bob, 'alice', 'relayed');
    assert.match(await alice.page.locator('#voice-panel .vp-sub').textContent() ?? '', /relay only/);
    const samples = await sampleAll([alice, bob]);
    for (const { after: a } of samples) assert.equal(a[0]?.local, 'relay', 'the selected local candidate is a relay candidate');
    for (const { user, before: b, after: a } of samples) {
      assert.ok(a[0].bytes > b[0].bytes && a[0].energy > 0, `${user} hears the other through the relay`);
    }
    assert.ok(turn.log.some((l) => /ALLOCATE processed, success/.test(l)), 'coturn allocated');
    assert.ok(turn.log.some((l) => /username <\d+:alice>/.test(l) || /\d+:alice/.test(l)), 'with the server-minted "<expiry>:alice" username');

    await measureJoins(bob, alice, 'relayed', t);

    // The self-test in the settings dialog agrees.
    await alice.page.click('#user-settings-btn');
    await alice.page.click('#voice-relay-test');
    await alice.page.locator('#voice-relay-test-result.ok', { hasText: 'The TURN relay works' }).waitFor();
    await alice.page.click('dialog.voice-settings .modal-actions button');
    for (const u of users) assert.deepEqual(u.problems, [], `${u.username}: no page errors`);
  });

  it('with a wrong secret there is no relay candidate, a 401, and the app says so', async () => {
    const carol = await openVoiceUser(browser, wrong.url, 'carol');
    const dan = await openVoiceUser(browser, wrong.url, 'dan');
    users.push(carol, dan);
    for (const u of [carol, dan]) await enableRelayOnly(u);
    await joinVoice(carol);
    await joinVoice(dan);
    await carol.page.locator('#voice-panel .vp-person[data-user="dan"] .vp-line', { hasText: 'TURN refused the credentials (401)' }).waitFor();
    for (const u of [carol, dan]) {
      await u.page.waitForFunction(() => /** @type {any} */ (window).__voice.iceErrors.some((/** @type {any} */ e) => e.code === 401));
      const v = await u.page.evaluate(() => {
        const w = /** @type {any} */ (window).__voice;
        return { types: w.localTypes, states: w.pcs.map((/** @type {RTCPeerConnection} */ p) => p.connectionState) };
      });
      assert.ok(!v.types.includes('relay'), `${u.username}: no relay candidate (${v.types.join(',')})`);
      assert.ok(!v.states.includes('connected'), `${u.username}: never connected (${v.states.join(',')})`);
    }
    await carol.page.click('#user-settings-btn');
    await carol.page.click('#voice-relay-test');
    await carol.page.locator('#voice-relay-test-result.bad', { hasText: '401' }).waitFor();
    for (const u of [carol, dan]) assert.deepEqual(u.problems, [], `${u.username}: no page errors`);
  });
});
