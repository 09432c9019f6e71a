// The media server through coturn (issue 16, "Relay only through coturn to the media
// server"): coturn from the shipped deploy/turnserver.conf (adapted by lib/turn.mjs only where a
// test must: loopback listener and relay, loopback peers allowed — the media server is on
// 127.0.0.1 here), the server with SFU_UDP_PORT and minted TURN credentials, and two
// contexts with the app's "Relay only" setting in one `sfu` room. Each hears the other, over
// one peer connection whose selected pair is relay (ours) to the media port (theirs).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/server.mjs';
import { startTurn } from './lib/turn.mjs';
import { closeQuietly } from './lib/browser.mjs';
import {
  launchMediaBrowser, openVideoUser, joinVoice, connectedTo, sleep, freeUdpPort,
} from './lib/video.mjs';

/** Audio energy received so far, and the selected pairs, of `u`'s open peer connections.
 * @param {import('./lib/video.mjs').VideoUser} u */
function audioAndPaths(u) {
  return u.page.evaluate(async () => {
    /** @type {RTCPeerConnection[]} */
    const pcs = /** @type {any} */ (window).__video.pcs.filter((/** @type {RTCPeerConnection} */ p) => p.signalingState !== 'closed');
    let energy = 0;
    /** @type {{local:string, remote:string, port:number}[]} */
    const pairs = [];
    for (const pc of pcs) {
      /** @type {Map<string, any>} */
      const byId = new Map();
      (await pc.getStats()).forEach((/** @type {any} */ s) => byId.set(s.id, s));
      for (const s of byId.values()) {
        if (s.type === 'inbound-rtp' && s.kind === 'audio') energy += s.totalAudioEnergy ?? 0;
        if (s.type === 'transport' && s.selectedCandidatePairId) {
          const pair = byId.get(s.selectedCandidatePairId);
          const remote = byId.get(pair?.remoteCandidateId);
          pairs.push({ local: byId.get(pair?.localCandidateId)?.candidateType ?? '', remote: remote?.candidateType ?? '', port: remote?.port ?? 0 });
        }
      }
    }
    return { pcs: pcs.length, energy, pairs };
  });
}

describe('media server through coturn (relay only)', { timeout: 90_000 }, () => {
  const secret = `sfu-test-${Math.random().toString(36).slice(2)}`;
  /** @type {Awaited<ReturnType<typeof startTurn>>} */
  let turn;
  /** @type {Awaited<ReturnType<typeof startServer>>} */
  let server;
  /** @type {import('playwright-core').Browser} */
  let browser;
  /** @type {import('./lib/video.mjs').VideoUser[]} */
  const users = [];
  let port = 0;

  before(async () => {
    port = await freeUdpPort();
    turn = await startTurn({ secret });
    server = await startServer({
      env: { SFU_UDP_PORT: String(port), TURN_HOST: '127.0.0.1', TURN_PORT: String(turn.port), TURN_SECRET: secret },
    });
    browser = await launchMediaBrowser();
  });
  after(async () => {
    for (const u of users) await closeQuietly(u);
    await browser?.close().catch(() => {});
    await server?.dispose();
    await turn?.stop();
  });

  it('two relay-only people hear each other through coturn and the media port', async () => {
    const alice = await openVideoUser(browser, server.url, 'alice', { relayOnly: true });
    const bob = await openVideoUser(browser, server.url, 'bob', { relayOnly: true });
    users.push(alice, bob);
    await joinVoice(alice);
    await joinVoice(bob);
    await connectedTo(alice, 'bob', 'relayed');
    await connectedTo(bob, 'alice', 'relayed');
    for (const u of users) {
      const deadline = Date.now() + 15_000;
      let a = await audioAndPaths(u);
      let b = a;
      while (Date.now() < deadline) {
        await sleep(1_500);
        b = await audioAndPaths(u);
        if (b.energy > a.energy) break;
        a = b;
      }
      assert.ok(b.energy > a.energy, `${u.username} hears the other through the relay: ${JSON.stringify(b)}`);
      assert.equal(b.pcs, 1, `${u.username}: one peer connection`);
      assert.deepEqual(b.pairs, [{ local: 'relay', remote: 'host', port }], `${u.username}: relayed to the media port`);
      assert.deepEqual(u.problems, [], `${u.username}: no page errors`);
    }
  });
});
