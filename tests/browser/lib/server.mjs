// Starts and stops the real mini-discord binary for browser tests.
//
// The binary comes from MD_BIN (default: <repo>/target/debug/mini-discord). Each server gets a
// fresh DATA_DIR, binds 127.0.0.1:0 and reports its port in a "listening on 127.0.0.1:<port>"
// log line (stdout or stderr). `restart()` stops it with SIGTERM and starts it again on the
// same port with the same DATA_DIR, as a deploy would.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(here, '..', '..', '..');
export const BIN = process.env.MD_BIN || path.join(REPO, 'target', 'debug', 'mini-discord');
const START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 5_000;

/** The servers this process started and has not stopped, by child process. */
const running = new Set();
// Whatever way this process ends (a test that leaked its server, `--test-force-exit`), the
// servers it started end with it: a leftover would hold its port and data directory.
process.on('exit', () => {
  for (const proc of running) proc.kill('SIGKILL');
});

/** PIDs of the servers this process started that are still running. */
export function runningServerPids() {
  return [...running].map((p) => p.pid);
}

/**
 * @param {{env?: Record<string,string>}} [opts]
 */
export async function startServer(opts = {}) {
  if (!existsSync(BIN)) throw new Error(`server binary not found at ${BIN} (build it, or set MD_BIN)`);
  const dataDir = mkdtempSync(path.join(tmpdir(), 'md-browser-'));
  const server = {
    dataDir,
    port: 0,
    url: '',
    /** @type {import('node:child_process').ChildProcess|null} */
    proc: null,
    log: /** @type {string[]} */ ([]),
    async start(listen = '127.0.0.1:0') {
      const { proc, port } = await launch(listen, dataDir, opts.env ?? {}, server.log);
      server.proc = proc;
      running.add(proc);
      proc.once('exit', () => running.delete(proc));
      server.port = port;
      server.url = `http://127.0.0.1:${port}`;
    },
    async stop() {
      const proc = server.proc;
      server.proc = null;
      if (proc) await terminate(proc);
    },
    async restart() {
      await server.stop();
      await server.start(`127.0.0.1:${server.port}`);
    },
    /** Stop for good and remove the data directory. */
    async dispose() {
      await server.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  await server.start();
  return server;
}

/**
 * @param {string} listen @param {string} dataDir @param {Record<string,string>} extraEnv @param {string[]} log
 * @returns {Promise<{proc: import('node:child_process').ChildProcess, port: number}>}
 */
function launch(listen, dataDir, extraEnv, log) {
  return new Promise((resolve, reject) => {
    const proc = spawn(BIN, [], {
      cwd: dataDir,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        LISTEN_ADDR: listen,
        DATA_DIR: dataDir,
        REGISTRATION: 'open',
        LOG_LEVEL: 'info',
        ...extraEnv,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`server did not report "listening on" within ${START_TIMEOUT_MS} ms:\n${log.slice(-20).join('\n')}`));
    }, START_TIMEOUT_MS);
    let done = false;
    const onData = (/** @type {Buffer} */ chunk) => {
      for (const line of chunk.toString().split('\n')) {
        if (!line) continue;
        log.push(line);
        if (log.length > 2000) log.shift();
        const m = /listening on (?:http:\/\/)?127\.0\.0\.1:(\d+)/.exec(line);
        if (m && !done) {
          done = true;
          clearTimeout(timer);
          resolve({ proc, port: Number(m[1]) });
        }
      }
    };
    proc.stdout?.on('data', onData);
    proc.stderr?.on('data', onData);
    proc.on('exit', (code, signal) => {
      if (!done) {
        done = true;
        clearTimeout(timer);
        reject(new Error(`server exited early (${code ?? signal}):\n${log.slice(-20).join('\n')}`));
      }
    });
  });
}

/** SIGTERM, then SIGKILL if it does not exit in time. @param {import('node:child_process').ChildProcess} proc */
function terminate(proc) {
  return new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve(undefined);
    const timer = setTimeout(() => proc.kill('SIGKILL'), STOP_TIMEOUT_MS);
    proc.once('exit', () => {
      clearTimeout(timer);
      resolve(undefined);
    });
    proc.kill('SIGTERM');
  });
}
