// Starts and stops a real coturn (Debian's `turnserver`) on loopback for the voice tests.
//
// The config is a temp copy of deploy/turnserver.conf with only test-owned lines replaced
// (listener, relay address, ports, log, pid, db, secret) and — in THIS COPY ONLY — loopback
// peers allowed: in a test both browsers' relay addresses are 127.0.0.1, which the shipped
// file (rightly) refuses. The shipped file itself is never changed.
//
// Ports are random per start (listening port and a small relay range), so the tests also
// run on a host's shared loopback; inside a loopback-only namespace they cannot collide.

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, rmSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { REPO } from './server.mjs';

export const TURNSERVER = process.env.TURNSERVER || '/usr/bin/turnserver';
const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 3_000;
/** Lines of the shipped config the test copy owns (dropped, then written again below). */
const OWNED = /^\s*(listening-port|listening-ip|relay-ip|external-ip|min-port|max-port|log-file|pidfile|userdb|static-auth-secret|verbose|Verbose|syslog|no-stdout-log|simple-log|allow-loopback-peers|allowed-peer-ip)([\s=]|$)/;

/** A port free for both TCP and UDP on 127.0.0.1 right now (the OS picks it). */
async function freePort() {
  for (let i = 0; i < 20; i++) {
    const port = await new Promise((resolve, reject) => {
      const srv = createServer();
      srv.once('error', reject);
      srv.listen(0, '127.0.0.1', () => {
        const p = /** @type {import('node:net').AddressInfo} */ (srv.address()).port;
        srv.close(() => resolve(p));
      });
    });
    const udpFree = await new Promise((resolve) => {
      const s = createSocket('udp4');
      s.once('error', () => resolve(false));
      s.bind(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (udpFree) return /** @type {number} */ (port);
  }
  throw new Error('no free port for coturn');
}

/**
 * Start coturn with shared-secret (TURN REST) authentication.
 * @param {{secret: string, maxBps?: number}} opts maxBps: replaces the shipped max-bps (bytes/s
 *   per session and direction), for a test that needs a slow relayed link
 * @returns {Promise<{port:number, pid:number, log:string[], stop:()=>Promise<void>}>}
 */
export async function startTurn(opts) {
  if (!existsSync(TURNSERVER)) throw new Error(`${TURNSERVER} not found: apt-get install coturn`);
  const dir = mkdtempSync(path.join(tmpdir(), 'md-turn-'));
  const port = await freePort();
  // A 40-port relay range somewhere in 30000-59999, away from the listener.
  const minPort = 30000 + Math.floor(Math.random() * 750) * 40;
  const shipped = readFileSync(path.join(REPO, 'deploy', 'turnserver.conf'), 'utf8');
  const kept = shipped.split('\n').filter((l) => !OWNED.test(l) && !(opts.maxBps && /^\s*max-bps[\s=]/.test(l)));
  const conf = [
    ...kept,
    '# ---- TEST-ONLY settings added by tests/browser/lib/turn.mjs ----',
    `listening-port=${port}`,
    'listening-ip=127.0.0.1',
    'relay-ip=127.0.0.1',
    `min-port=${minPort}`,
    `max-port=${minPort + 39}`,
    'log-file=stdout',
    'verbose',
    `pidfile=${path.join(dir, 'turnserver.pid')}`,
    `userdb=${path.join(dir, 'turndb')}`,
    `static-auth-secret=${opts.secret}`,
    ...(opts.maxBps ? [`max-bps=${opts.maxBps}`] : []),
    '# Both test browsers relay from 127.0.0.1. NEVER in deploy/turnserver.conf: in production',
    '# this lets anyone with credentials reach services on the TURN host\'s loopback.',
    'allow-loopback-peers',
    'allowed-peer-ip=127.0.0.1',
    '',
  ].join('\n');
  const confPath = path.join(dir, 'turnserver.conf');
  writeFileSync(confPath, conf, { mode: 0o600 });

  /** @type {string[]} */
  const log = [];
  const proc = spawn(TURNSERVER, ['-c', confPath], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  const ready = `UDP listener opened on: 127.0.0.1:${port}`;
  await new Promise((resolve, reject) => {
    let done = false;
    const finish = (/** @type {Error|null} */ err) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err) {
        proc.kill('SIGKILL');
        reject(err);
      } else resolve(undefined);
    };
    const timer = setTimeout(() => finish(new Error(`coturn did not open ${port} within ${START_TIMEOUT_MS} ms:\n${log.slice(-20).join('\n')}`)), START_TIMEOUT_MS);
    const onData = (/** @type {Buffer} */ chunk) => {
      for (const line of chunk.toString().split('\n')) {
        if (!line) continue;
        log.push(line);
        if (log.length > 5000) log.shift();
        if (line.includes(ready)) finish(null);
      }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    proc.on('exit', (code, signal) => finish(new Error(`coturn exited early (${code ?? signal}):\n${log.slice(-20).join('\n')}`)));
  });

  return {
    port,
    pid: /** @type {number} */ (proc.pid),
    log,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        await new Promise((resolve) => {
          const t = setTimeout(() => proc.kill('SIGKILL'), STOP_TIMEOUT_MS);
          proc.once('exit', () => {
            clearTimeout(t);
            resolve(undefined);
          });
          proc.kill('SIGTERM'); // by PID: this child only
        });
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
