// Real Chromium (Debian's /usr/bin/chromium, never a downloaded browser) driven by
// playwright-core, plus the few page actions every browser test needs.

import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const ARGS = [
  '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
export const PASSWORD = 'correct horse battery';

/** Browsers launched and not yet closed, so a test can check that a fixture left none behind. */
const openBrowsers = new Set();

export async function launchBrowser() {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true, timeout: 30_000 });
  openBrowsers.add(browser);
  browser.on('disconnected', () => openBrowsers.delete(browser));
  return browser;
}

/** How many browsers this process launched that are still open. */
export function openBrowserCount() {
  return openBrowsers.size;
}

/**
 * A signed-in user in their own browser context (own cookies, own localStorage).
 * `problems` collects page errors, console errors and CSP violations: tests assert it stays empty.
 * @param {import('playwright-core').Browser} browser
 * @param {string} baseUrl
 * @param {string} username
 * @param {{mode?: 'register'|'login', viewport?: {width:number, height:number}, path?: string}} [opts]
 */
export async function openUser(browser, baseUrl, username, opts = {}) {
  const context = await browser.newContext({ viewport: opts.viewport ?? { width: 1280, height: 800 } });
  context.setDefaultTimeout(10_000);
  // The XSS canary: injected markup in any test would try to set it to 1.
  await context.addInitScript(() => {
    /** @type {any} */ (window).__xss = 0;
  });
  const page = await context.newPage();
  /** @type {string[]} */
  const problems = [];
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    const text = msg.text();
    // A refused WebSocket while the server restarts is expected and logged by Chromium itself.
    if (msg.type() === 'error' && !/WebSocket connection|Failed to load resource|ERR_CONNECTION_REFUSED/.test(text)) {
      problems.push(`console: ${text}`);
    }
    if (/Content Security Policy/i.test(text)) problems.push(`csp: ${text}`);
  });
  await page.goto(baseUrl + (opts.path ?? '/'));
  await signIn(page, username, opts.mode ?? 'register');
  return { context, page, problems, username };
}

/** @param {import('playwright-core').Page} page @param {string} username @param {'register'|'login'} mode */
export async function signIn(page, username, mode) {
  await page.locator('#auth').waitFor({ state: 'visible' });
  // Read the mode only once the page knows whether the server is new: it may still turn to
  // "Create account" by itself, and a click on the switch after that would turn it back.
  await page.locator('#auth-form[data-ready]').waitFor({ state: 'attached' });
  const submit = page.locator('#auth-submit');
  if (mode === 'register' && (await submit.textContent()) !== 'Create account') await page.click('#auth-switch');
  if (mode === 'login' && (await submit.textContent()) !== 'Sign in') await page.click('#auth-switch');
  await page.fill('#auth-username', username);
  await page.fill('#auth-password', PASSWORD);
  await submit.click();
  try {
    await waitConnected(page);
  } catch (err) {
    // Say what the page showed instead: a refusal, a banner, or the form still waiting.
    const shown = await page.evaluate(() => ['#auth-error', '#auth-notice', '#banner', '#auth-submit']
      .map((sel) => { const el = /** @type {HTMLElement|null} */ (document.querySelector(sel)); return `${sel}: ${el && !el.hidden ? JSON.stringify(el.innerText) : 'hidden'}`; })
      .join(', ')).catch(() => 'page gone');
    throw new Error(`${username} did not get in after ${mode} (${shown}): ${/** @type {Error} */ (err).message}`);
  }
}

/** The app is shown, connected, and a channel is open. @param {import('playwright-core').Page} page */
export async function waitConnected(page) {
  await page.locator('#app').waitFor({ state: 'visible' });
  // `attached`, not visible: on a phone the sidebar is a closed drawer.
  await page.locator('#sidebar .chan.text.active').waitFor({ state: 'attached' });
  await page.locator('#banner').waitFor({ state: 'hidden' });
  await page.locator('.user-panel .status-dot.online').waitFor({ state: 'attached' });
}

/**
 * Type and send a message through the composer; resolves with the acknowledged message's id
 * once the server's `message` event replaced the pending entry.
 * @param {import('playwright-core').Page} page @param {string} text
 */
export async function send(page, text) {
  // Our own acknowledged messages before this one. The page paints on the next animation
  // frame, so right after Enter neither the pending entry nor the new message need be shown
  // yet: wait for a message of ours that was not there before, with nothing still pending.
  const before = await page.$$eval('#messages li.msg.mine[data-id]', (els) => els.map((e) => /** @type {HTMLElement} */ (e).dataset.id));
  const input = page.locator('#composer-input');
  await input.fill(text);
  await input.press('Enter');
  const id = await page.waitForFunction((seen) => {
    if (document.querySelector('#messages li.outgoing')) return null;
    const fresh = [...document.querySelectorAll('#messages li.msg.mine[data-id]')]
      .map((e) => /** @type {HTMLElement} */ (e).dataset.id)
      .filter((i) => !seen.includes(i));
    return fresh.length ? Number(fresh[fresh.length - 1]) : null;
  }, before, { polling: 50 });
  return /** @type {number} */ (await id.jsonValue());
}

/**
 * An acknowledged message (not an outgoing/pending one) whose content is exactly `text`.
 * @param {import('playwright-core').Page} page @param {string} text
 */
export function message(page, text) {
  return page.locator('#messages li.msg[data-id]').filter({
    has: page.locator('.msg-content', { hasText: text }),
  }).last();
}

/** Ids of the messages currently shown, in page order. @param {import('playwright-core').Page} page */
export function shownIds(page) {
  return page.$$eval('#messages li.msg[data-id]', (els) => els.map((e) => Number(/** @type {HTMLElement} */ (e).dataset.id)));
}

/**
 * The usual fixture: a fresh server (with extra `env`), one browser, and alice (the first
 * account, so admin) and bob signed in, each in their own context.
 * @param {Record<string, string>} env
 */
export async function openTwoUsers(env) {
  const { startServer } = await import('./server.mjs');
  const server = await startServer({ env });
  /** @type {import('playwright-core').Browser|undefined} */
  let browser;
  try {
    browser = await launchBrowser();
    const alice = await openUser(browser, server.url, 'alice');
    const bob = await openUser(browser, server.url, 'bob');
    return { server, browser, alice, bob };
  } catch (err) {
    // The caller never gets hold of what was opened, so close it here: a server or browser
    // left running keeps the test file's process alive, and the whole run waits for it.
    await browser?.close().catch(() => {});
    await server.dispose();
    throw err;
  }
}

/** Tears down what `openTwoUsers` opened, whatever state it is in. */
export async function closeTwoUsers(/** @type {Partial<Awaited<ReturnType<typeof openTwoUsers>>>} */ f) {
  await closeQuietly(f.alice);
  await closeQuietly(f.bob);
  await f.browser?.close().catch(() => {});
  await f.server?.dispose();
}

/** Close a user's context, ignoring errors from an already-closed browser. */
export async function closeQuietly(/** @type {{context: import('playwright-core').BrowserContext}|undefined} */ user) {
  try {
    await user?.context.close();
  } catch {
    /* already gone */
  }
}

/**
 * Send `count` messages "<prefix> 1".."<prefix> count" over a WebSocket the page opens itself
 * (same cookie), and wait until the server acknowledged them all.
 * @param {import('playwright-core').Page} page @param {string} channel @param {number} count @param {string} prefix
 */
export async function seed(page, channel, count, prefix) {
  await page.evaluate(async ({ channel, count, prefix }) => {
    const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`);
    await new Promise((resolve, reject) => {
      let acked = 0;
      const tag = `${prefix}-${Math.random().toString(36).slice(2)}`;
      const timer = setTimeout(() => reject(new Error(`seeding: only ${acked} of ${count} acknowledged`)), 20_000);
      ws.onerror = () => reject(new Error('seeding socket failed'));
      ws.onmessage = (ev) => {
        const f = JSON.parse(ev.data);
        if (f.type === 'ready') {
          for (let i = 1; i <= count; i++) {
            ws.send(JSON.stringify({ type: 'send', channel, content: `${prefix} ${i}`, nonce: `${tag}-${i}` }));
          }
        } else if (f.type === 'message' && typeof f.nonce === 'string' && f.nonce.startsWith(tag)) {
          if (++acked === count) {
            clearTimeout(timer);
            resolve(undefined);
          }
        } else if (f.type === 'error') {
          clearTimeout(timer);
          reject(new Error(`seeding: ${f.code} ${f.message}`));
        }
      };
    });
    ws.close();
  }, { channel, count, prefix });
}
