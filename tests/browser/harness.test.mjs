// The sign-in screen as the very first page a server shows, and the fixtures every other
// browser test stands on: a fixture that fails half-way must not leave a server or a browser
// running (one did, and the whole CI run waited for it until its time ran out).

import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { openTwoUsers, launchBrowser, openBrowserCount, signIn } from './lib/browser.mjs';
import { startServer, runningServerPids } from './lib/server.mjs';

describe('the sign-in screen and the test fixtures', { timeout: 120_000 }, () => {
  /** @type {Awaited<ReturnType<typeof startServer>>|undefined} */
  let server;
  /** @type {import('playwright-core').Browser|undefined} */
  let browser;

  after(async () => {
    await browser?.close().catch(() => {});
    await server?.dispose();
  });

  it('a fixture that fails half-way leaves no server and no browser running', async () => {
    // With invites required, alice (the first account) gets in and bob is refused.
    await assert.rejects(openTwoUsers({ REGISTRATION: 'invite' }), /bob did not get in after register/);
    assert.deepEqual(runningServerPids(), [], 'the fixture\'s server was stopped');
    assert.equal(openBrowserCount(), 0, 'the fixture\'s browser was closed');
  });

  it('a new server\'s sign-in screen turns to "Create account" before its switch can be clicked', async () => {
    server = await startServer();
    browser = await launchBrowser();
    const page = await browser.newPage();
    // Hold the server's answer to "are you new?" so the moment before it can be looked at.
    /** @type {() => void} */
    let release = () => {};
    const held = new Promise((resolve) => { release = () => resolve(undefined); });
    await page.route('**/api/setup', async (route) => { await held; await route.continue(); });
    await page.goto(server.url);
    const form = page.locator('#auth-form');
    const switchBtn = page.locator('#auth-switch');
    await page.locator('#auth').waitFor({ state: 'visible' });
    assert.equal(await page.locator('#auth-submit').textContent(), 'Sign in');
    // A click now would be undone when the answer turns the page to register: so no click yet.
    assert.equal(await switchBtn.isDisabled(), true, 'the switch waits for the answer');
    assert.equal(await form.getAttribute('data-ready'), null);
    release();
    await page.locator('#auth-form[data-ready]').waitFor({ state: 'attached' });
    assert.equal(await page.locator('#auth-submit').textContent(), 'Create account');
    assert.equal(await page.locator('#auth-title').textContent(), 'Create the first account');
    assert.equal(await switchBtn.isDisabled(), false);
    // And the helper every test uses gets in from here.
    await signIn(page, 'alice', 'register');
    await page.close();
  });

  it('an answer that never comes still leaves a usable sign-in screen', async () => {
    server ??= await startServer();
    browser ??= await launchBrowser();
    const page = await browser.newPage();
    await page.route('**/api/setup', (route) => route.abort('connectionrefused'));
    await page.goto(server.url);
    await page.locator('#auth-form[data-ready]').waitFor({ state: 'attached' });
    assert.equal(await page.locator('#auth-submit').textContent(), 'Sign in');
    assert.equal(await page.locator('#auth-switch').isDisabled(), false);
    await signIn(page, 'alice', 'login');
    await page.close();
  });
});
