// Reconnect and catch-up in real Chromium: the server restarts on the same port with the same
// data, pages come back by themselves, what was typed while disconnected goes out exactly once,
// and a page that was away while hundreds of messages arrived shows all of them, once each,
// in id order (the server's history is the reference).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/server.mjs';
import { launchBrowser, openUser, send, message, shownIds, seed, closeQuietly, waitConnected } from './lib/browser.mjs';

describe('reconnect and catch-up', { timeout: 120_000 }, () => {
  /** @type {Awaited<ReturnType<typeof startServer>>} */
  let server;
  /** @type {import('playwright-core').Browser} */
  let browser;
  /** @type {Awaited<ReturnType<typeof openUser>>} */
  let alice;
  /** @type {Awaited<ReturnType<typeof openUser>>} */
  let bob;
  /** @type {Awaited<ReturnType<typeof openUser>>} */
  let carol;

  before(async () => {
    server = await startServer({ env: { SEND_RATE: '1000', SEND_BURST: '1000' } });
    browser = await launchBrowser();
    alice = await openUser(browser, server.url, 'alice');
    bob = await openUser(browser, server.url, 'bob');
    carol = await openUser(browser, server.url, 'carol');
  });

  after(async () => {
    for (const u of [alice, bob, carol]) await closeQuietly(u);
    await browser?.close().catch(() => {});
    await server?.dispose();
  });

  it('reconnects after a restart, and sends what was typed meanwhile exactly once', async () => {
    await send(alice.page, 'before the restart');
    await message(bob.page, 'before the restart').waitFor();

    await server.stop();
    for (const { page } of [alice, bob]) await page.locator('#banner').waitFor({ state: 'visible' });
    const input = alice.page.locator('#composer-input');
    await input.fill('typed while the server was down');
    await input.press('Enter');
    const queued = alice.page.locator('#messages li.outgoing.queued', { hasText: 'typed while the server was down' });
    await queued.waitFor();
    assert.match(await queued.textContent() ?? '', /Waiting for connection/);

    await server.start(`127.0.0.1:${server.port}`);
    for (const { page } of [alice, bob]) await waitConnected(page);
    await message(bob.page, 'typed while the server was down').waitFor();
    await alice.page.locator('#messages li.outgoing').waitFor({ state: 'detached' });
    await bob.page.waitForTimeout(300);
    assert.equal(await message(bob.page, 'typed while the server was down').count(), 1);
    const truth = await allHistory(alice.page, 'general');
    assert.equal(truth.filter((m) => m.content === 'typed while the server was down').length, 1, 'stored once');
  });

  it('a page that was away catches up with no gap and no duplicate', async () => {
    const before = await shownIds(bob.page);
    await bob.context.setOffline(true); // bob cannot reconnect until we say so
    await server.restart();
    await waitConnected(alice.page);
    await waitConnected(carol.page);
    await bob.page.locator('#banner').waitFor({ state: 'visible' });

    // More than one catch-up page (200) arrives while bob is away.
    await seed(carol.page, 'general', 230, 'gap');
    await send(alice.page, 'alice, during the gap');
    assert.equal(await message(bob.page, 'gap 1').count(), 0, 'bob really was away');

    await bob.context.setOffline(false);
    await waitConnected(bob.page);
    await message(bob.page, 'alice, during the gap').waitFor();
    await bob.page.waitForTimeout(300);

    const ids = await shownIds(bob.page);
    assert.equal(new Set(ids).size, ids.length, 'no duplicate');
    for (let i = 1; i < ids.length; i++) assert.ok(ids[i] > ids[i - 1], 'id order');
    assert.equal(ids[0], before[0], 'what bob had is still there');
    const truth = (await allHistory(alice.page, 'general')).map((m) => m.id).filter((id) => id >= ids[0]);
    assert.deepEqual(ids, truth, 'exactly the server history: no gap');
    const texts = await bob.page.$$eval('#messages li.msg[data-id] .msg-content', (els) => els.map((e) => e.textContent ?? ''));
    const gap = texts.filter((t) => /^gap \d+$/.test(t));
    assert.deepEqual(gap, Array.from({ length: 230 }, (_, i) => `gap ${i + 1}`));
  });

  it('raised no page errors and no CSP violations', () => {
    for (const u of [alice, bob, carol]) assert.deepEqual(u.problems, [], u.username);
  });
});

/**
 * The server's whole history of a channel, fetched by the page itself (its cookie), oldest first.
 * @param {import('playwright-core').Page} page @param {string} channel
 * @returns {Promise<{id:number, content:string}[]>}
 */
async function allHistory(page, channel) {
  return page.evaluate(async (channel) => {
    /** @type {{id:number, content:string}[]} */
    const all = [];
    let after = 0;
    for (;;) {
      const res = await fetch(`/api/history?channel=${channel}&after=${after}&limit=200`);
      const page = await res.json();
      all.push(...page);
      if (page.length < 200) return all;
      after = page[page.length - 1].id;
    }
  }, channel);
}
