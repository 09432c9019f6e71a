// Two people chatting in real Chromium against the real server: accounts, messages both ways,
// edit / delete / react / reply, typing and presence, mentions, unread markers, channels made
// and removed by the admin, invite links, and scroll-back through more than two pages.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { openTwoUsers, closeTwoUsers, send, message, shownIds, seed } from './lib/browser.mjs';

describe('chat between two browsers', { timeout: 120_000 }, () => {
  /** @type {Awaited<ReturnType<typeof openTwoUsers>>['server']} */
  let server;
  /** @type {Awaited<ReturnType<typeof openTwoUsers>>['browser']} */
  let browser;
  /** @type {Awaited<ReturnType<typeof openTwoUsers>>['alice']} */
  let alice;
  /** @type {Awaited<ReturnType<typeof openTwoUsers>>['bob']} */
  let bob;

  before(async () => {
    // Seeding history goes faster than the default per-user send rate allows.
    ({ server, browser, alice, bob } = await openTwoUsers({ SEND_RATE: '1000', SEND_BURST: '1000' }));
  });

  after(() => closeTwoUsers({ server, browser, alice, bob }));

  it('makes the first account admin, and shows both people online', async () => {
    await alice.page.locator('#invite-btn').waitFor({ state: 'visible' });
    assert.equal(await bob.page.locator('#invite-btn').isVisible(), false, 'bob is no admin');
    assert.equal(await bob.page.locator('#channel-lists button[aria-label^="Create"]').count(), 0);
    for (const { page } of [alice, bob]) {
      await page.locator('#members .member.online[data-user="alice"]').waitFor();
      await page.locator('#members .member.online[data-user="bob"]').waitFor();
    }
  });

  it('delivers messages both ways', async () => {
    await send(alice.page, 'hello bob');
    await message(bob.page, 'hello bob').waitFor();
    await send(bob.page, 'hi alice, how are you?');
    await message(alice.page, 'hi alice, how are you?').waitFor();
    const author = await message(alice.page, 'hi alice, how are you?').locator('.author').textContent();
    assert.equal(author, 'bob');
  });

  it('gives the tests the id of the message just sent, even when the page paints late', async () => {
    // The app renders on the next animation frame. The `send` helper once returned the last
    // id shown before that frame came, so a test pinned the previous message (the community
    // suite's pins list then missed 'pin me please'). Late frames make that race certain.
    await alice.page.evaluate(() => {
      const w = /** @type {any} */ (window);
      w.realRaf = window.requestAnimationFrame;
      window.requestAnimationFrame = (cb) => setTimeout(() => w.realRaf.call(window, cb), 300);
    });
    try {
      await send(alice.page, 'first of two');
      const id = await send(alice.page, 'second of two');
      const li = alice.page.locator(`#messages li.msg[data-id="${id}"] .msg-content`);
      assert.equal(await li.innerText(), 'second of two');
    } finally {
      await alice.page.evaluate(() => { window.requestAnimationFrame = (/** @type {any} */ (window)).realRaf; });
    }
  });

  it('shows who is typing', async () => {
    // Keep typing like a person would; the server forwards one typing event per 2.5 s.
    const indicator = alice.page.locator('#typing', { hasText: 'bob is typing' });
    const input = bob.page.locator('#composer-input');
    for (let i = 0; i < 40 && !(await indicator.isVisible()); i++) await input.pressSequentially('ab', { delay: 100 });
    await indicator.waitFor();
    await input.fill('');
    // It goes away by itself when bob stops.
    await indicator.waitFor({ state: 'hidden', timeout: 12_000 });
  });

  it('edits the last message with the Up arrow, and the other side sees it', async () => {
    await send(alice.page, 'this has a tpyo');
    const input = alice.page.locator('#composer-input');
    await input.focus();
    await input.press('ArrowUp');
    const editor = alice.page.locator('.edit-input');
    await editor.waitFor();
    assert.equal(await editor.inputValue(), 'this has a tpyo');
    await editor.fill('this has no typo');
    await editor.press('Enter');
    const edited = message(bob.page, 'this has no typo');
    await edited.locator('.edited').waitFor();
    assert.equal(await message(bob.page, 'this has a tpyo').count(), 0);
  });

  it('deletes your own message after confirming', async () => {
    await send(alice.page, 'delete me please');
    await message(bob.page, 'delete me please').waitFor();
    const msg = message(alice.page, 'delete me please');
    await msg.hover();
    await msg.locator('.delete-btn').click();
    await alice.page.locator('dialog.modal button.danger').click();
    await message(bob.page, 'delete me please').waitFor({ state: 'detached' });
    await message(alice.page, 'delete me please').waitFor({ state: 'detached' });
    // bob can't delete alice's messages: no delete button for him
    const other = message(bob.page, 'hello bob');
    await other.hover();
    assert.equal(await other.locator('.delete-btn').count(), 0);
  });

  it('toggles reactions and shows who reacted', async () => {
    const target = message(bob.page, 'hello bob');
    await target.hover();
    await target.locator('.react-btn').click();
    await bob.page.locator('.picker button[aria-label="React with 👍"]').click();
    const chip = message(alice.page, 'hello bob').locator('.reaction[data-emoji="👍"]');
    await chip.locator('.r-count', { hasText: '1' }).waitFor();
    assert.match(await chip.getAttribute('title') ?? '', /bob reacted with 👍/);
    await chip.click(); // alice adds hers
    const bobChip = message(bob.page, 'hello bob').locator('.reaction[data-emoji="👍"]');
    await bobChip.locator('.r-count', { hasText: '2' }).waitFor();
    assert.match(await bobChip.getAttribute('title') ?? '', /bob, alice|alice, bob/);
    await bobChip.click(); // bob takes his back
    await chip.locator('.r-count', { hasText: '1' }).waitFor();
    assert.equal(await chip.getAttribute('aria-pressed'), 'true', 'alice still reacted');
  });

  it('replies with a quoted preview', async () => {
    const target = message(bob.page, 'this has no typo');
    await target.hover();
    await target.locator('.reply-btn').click();
    await bob.page.locator('#reply-bar', { hasText: 'Replying to alice' }).waitFor();
    await send(bob.page, 'good catch');
    const reply = message(alice.page, 'good catch');
    await reply.locator('.reply-ref', { hasText: '@alice' }).waitFor();
    assert.match(await reply.locator('.reply-text').textContent() ?? '', /this has no typo/);
    assert.equal(await bob.page.locator('#reply-bar').isVisible(), false);
  });

  it('highlights mentions of me', async () => {
    await send(bob.page, 'hey @alice, look at this');
    await alice.page.locator('#messages li.msg.mentioned', { hasText: 'look at this' }).waitFor();
    const own = bob.page.locator('#messages li.msg', { hasText: 'look at this' });
    assert.equal(await own.evaluate((el) => el.classList.contains('mentioned')), false);
  });

  it('notifies about a mention while the tab is hidden, once allowed', async () => {
    // Stand-ins for the Notification API (permission already granted) and a hidden tab.
    await alice.page.evaluate(() => {
      const w = /** @type {any} */ (window);
      w.__notes = [];
      w.Notification = class {
        static permission = 'granted';
        static requestPermission() { return Promise.resolve('granted'); }
        /** @param {string} title @param {{body?: string}} [opts] */
        constructor(title, opts) { w.__notes.push({ title, body: opts?.body }); }
        close() {}
      };
      Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
    });
    await send(bob.page, '@alice are you there?');
    await send(bob.page, 'no mention here');
    await alice.page.waitForFunction(() => /** @type {any} */ (window).__notes.length > 0);
    await message(alice.page, 'no mention here').waitFor();
    const notes = await alice.page.evaluate(() => /** @type {any} */ (window).__notes);
    assert.deepEqual(notes, [{ title: 'bob mentioned you in #general', body: '@alice are you there?' }]);
    await alice.page.evaluate(() => { delete (/** @type {any} */ (document)).visibilityState; });
  });

  it('lets the admin create a channel the other user sees, with unread marker', async () => {
    await alice.page.locator('#channel-lists button[aria-label="Create text channel"]').click();
    await alice.page.fill('#new-channel-name', 'random');
    await alice.page.fill('#new-channel-topic', 'anything goes');
    await alice.page.locator('dialog.modal button[type=submit]').click();
    await alice.page.locator('#sidebar .chan.active[data-channel="random"]').waitFor();
    await alice.page.locator('#chat-topic', { hasText: 'anything goes' }).waitFor();
    const bobRandom = bob.page.locator('#sidebar .chan[data-channel="random"]');
    await bobRandom.waitFor();
    assert.equal(await bobRandom.evaluate((el) => el.classList.contains('unread')), false);
    await send(alice.page, 'first in random');
    await bob.page.locator('#sidebar .chan.unread[data-channel="random"]').waitFor();
    await bobRandom.click();
    await message(bob.page, 'first in random').waitFor();
    await bob.page.locator('#sidebar .chan.active:not(.unread)[data-channel="random"]').waitFor();
  });

  it('lets the admin delete a channel, and it disappears for everyone', async () => {
    await alice.page.locator('#sidebar .chan[data-channel="random"]').click();
    await alice.page.locator('#delete-channel-btn').click();
    await alice.page.locator('dialog.modal button.danger').click();
    await bob.page.locator('#sidebar .chan[data-channel="random"]').waitFor({ state: 'detached' });
    await bob.page.locator('#sidebar .chan.active[data-channel="general"]').waitFor();
    await alice.page.locator('#sidebar .chan.active[data-channel="general"]').waitFor();
  });

  it('creates invite links that open the register form with the code filled in', async () => {
    await alice.page.locator('#invite-btn').click();
    const field = alice.page.locator('#invite-link');
    await field.waitFor();
    const link = await field.inputValue();
    assert.match(link, new RegExp(`^${server.url.replace(/[.]/g, '\\.')}/\\?invite=[^&]+$`));
    await alice.page.keyboard.press('Escape');
    const ctx = await browser.newContext();
    try {
      const page = await ctx.newPage();
      await page.goto(link);
      await page.locator('#auth-invite').waitFor({ state: 'visible' });
      assert.equal(await page.locator('#auth-invite').inputValue(), new URL(link).searchParams.get('invite'));
      assert.equal(await page.locator('#auth-submit').textContent(), 'Create account');
    } finally {
      await ctx.close();
    }
  });

  it('loads older messages when scrolling back, with no gap or duplicate', async () => {
    await alice.page.locator('#channel-lists button[aria-label="Create text channel"]').click();
    await alice.page.fill('#new-channel-name', 'history');
    await alice.page.locator('dialog.modal button[type=submit]').click();
    await alice.page.locator('#sidebar .chan.active[data-channel="history"]').waitFor();
    const SEEDED = 130;
    await seed(alice.page, 'history', SEEDED, 'old');
    await bob.page.locator('#sidebar .chan[data-channel="history"]').click();
    await message(bob.page, `old ${SEEDED}`).waitFor();
    const firstPage = (await shownIds(bob.page)).length;
    assert.ok(firstPage < SEEDED, `first page is a page (${firstPage}), not everything`);
    const scroller = bob.page.locator('#messages-scroll');
    for (let i = 0; i < 20 && !(await bob.page.locator('.channel-start').count()); i++) {
      await scroller.evaluate((el) => { el.scrollTop = 0; });
      await bob.page.waitForTimeout(150);
    }
    await bob.page.locator('.channel-start').waitFor();
    await message(bob.page, 'old 1').waitFor();
    const ids = await shownIds(bob.page);
    assert.equal(ids.length, SEEDED);
    for (let i = 1; i < ids.length; i++) assert.ok(ids[i] > ids[i - 1], 'strictly increasing ids');
    const texts = await bob.page.$$eval('#messages li.msg[data-id] .msg-content', (els) => els.map((e) => e.textContent));
    assert.deepEqual(texts, Array.from({ length: SEEDED }, (_, i) => `old ${i + 1}`));
    // Far from the bottom: "jump to present" is offered and brings the newest back.
    const jump = bob.page.locator('#jump-present');
    await jump.waitFor({ state: 'visible' });
    await jump.click();
    await jump.waitFor({ state: 'hidden' });
    assert.ok(await message(bob.page, `old ${SEEDED}`).isVisible());
  });

  it('raised no page errors and no CSP violations', () => {
    assert.deepEqual(alice.problems, []);
    assert.deepEqual(bob.problems, []);
  });
});
