// Error states a person can run into, in real Chromium: sending too fast (rate limited: the
// app says how long to wait and sends everything, in order, by itself), a message the server
// refuses (failed, with Retry reusing the nonce, and Discard), an expired session (back to the
// sign-in form), and signing out.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { openTwoUsers, closeTwoUsers, message, waitConnected } from './lib/browser.mjs';

describe('error states', { timeout: 90_000 }, () => {
  /** @type {Awaited<ReturnType<typeof openTwoUsers>>['server']} */
  let server;
  /** @type {Awaited<ReturnType<typeof openTwoUsers>>['browser']} */
  let browser;
  /** @type {Awaited<ReturnType<typeof openTwoUsers>>['alice']} */
  let alice;
  /** @type {Awaited<ReturnType<typeof openTwoUsers>>['bob']} */
  let bob;

  before(async () => {
    // A tight limit so the test can hit it: 3 at once, then 2 per second.
    ({ server, browser, alice, bob } = await openTwoUsers({ SEND_RATE: '2', SEND_BURST: '3' }));
  });

  after(() => closeTwoUsers({ server, browser, alice, bob }));

  it('when rate limited, says how long to wait and then sends everything in order', async () => {
    const input = alice.page.locator('#composer-input');
    for (let i = 1; i <= 6; i++) {
      await input.fill(`burst ${i}`);
      await input.press('Enter');
    }
    await alice.page.locator('#messages li.outgoing .send-state.waiting', { hasText: /sending again in \d+ s/ }).first().waitFor();
    await alice.page.locator('.toast', { hasText: 'too fast' }).first().waitFor();
    await message(bob.page, 'burst 6').waitFor({ timeout: 15_000 });
    await alice.page.locator('#messages li.outgoing').first().waitFor({ state: 'detached' });
    const texts = await bob.page.$$eval('#messages li.msg[data-id] .msg-content', (els) => els.map((e) => e.textContent));
    assert.deepEqual(texts.filter((t) => t?.startsWith('burst')), ['burst 1', 'burst 2', 'burst 3', 'burst 4', 'burst 5', 'burst 6']);
  });

  it('shows a refused message as failed, with Retry and Discard', async () => {
    const input = alice.page.locator('#composer-input');
    await input.fill('bell \u0007 character');
    await input.press('Enter');
    const failed = alice.page.locator('#messages li.outgoing.failed', { hasText: 'bell' });
    await failed.waitFor();
    const nonce = await failed.getAttribute('data-nonce');
    await failed.locator('.retry-btn').click();
    await alice.page.locator('#messages li.outgoing.failed', { hasText: 'bell' }).waitFor();
    assert.equal(await failed.getAttribute('data-nonce'), nonce, 'retry keeps the nonce');
    assert.equal(await message(bob.page, 'bell').count(), 0);
    await failed.locator('.discard-btn').click();
    await failed.waitFor({ state: 'detached' });
  });

  it('goes back to the sign-in form when the session has expired', async () => {
    await bob.context.clearCookies();
    await server.restart(); // the socket drops; reconnecting without a session must not loop
    await bob.page.locator('#auth-notice', { hasText: 'session has expired' }).waitFor({ timeout: 15_000 });
    assert.equal(await bob.page.locator('#app').isVisible(), false);
    await waitConnected(alice.page);
  });

  it('signs out', async () => {
    await alice.page.locator('#logout-btn').click();
    await alice.page.locator('#auth-notice', { hasText: 'signed out' }).waitFor();
    await alice.page.reload();
    await alice.page.locator('#auth').waitFor({ state: 'visible' });
    const me = await alice.page.evaluate(async () => (await fetch('/api/me')).status);
    assert.equal(me, 401);
  });

  it('raised no page errors and no CSP violations', () => {
    assert.deepEqual(alice.problems, []);
    assert.deepEqual(bob.problems.filter((p) => !/401/.test(p)), []);
  });
});
