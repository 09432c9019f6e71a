// The rest of issue 18 (the text client as a newcomer finds it), in real Chromium against the
// real server: the first-run sign-in screen, deleting voice channels from the app, invites
// with uses/expiry and revoke, Discord-style markdown, composer autocomplete and keyboard
// shortcuts.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { startServer } from './lib/server.mjs';
import { ARGS, CHROMIUM, openUser, closeQuietly, send, message } from './lib/browser.mjs';

describe('the newcomer\'s text client, part 2', { timeout: 90_000 }, () => {
  /** @type {Awaited<ReturnType<typeof startServer>>} */
  let server;
  /** @type {import('playwright-core').Browser} */
  let browser;
  /** @type {Awaited<ReturnType<typeof openUser>>} */
  let alice;
  /** @type {Awaited<ReturnType<typeof openUser>>} */
  let bob;

  before(async () => {
    server = await startServer();
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, timeout: 30_000, args: ARGS });
  });

  after(async () => {
    await closeQuietly(alice);
    await closeQuietly(bob);
    await browser?.close().catch(() => {});
    await server?.dispose();
  });

  it('says "create the first account" on an empty server, and "welcome back" once it has one', async () => {
    const ctx = await browser.newContext();
    try {
      const page = await ctx.newPage();
      await page.goto(server.url + '/');
      await page.locator('#auth-title', { hasText: 'Create the first account' }).waitFor({ timeout: 5_000 });
      assert.match(await page.locator('#auth-sub').innerText(), /admin/);
      assert.equal(await page.locator('#auth-submit').innerText(), 'Create account');
    } finally {
      await ctx.close();
    }
    alice = await openUser(browser, server.url, 'alice');
    const later = await browser.newContext();
    try {
      const page = await later.newPage();
      await page.goto(server.url + '/');
      await page.locator('#auth').waitFor({ state: 'visible' });
      // Give the first-run question time to answer (wrongly) before checking it did not switch.
      await page.waitForResponse((r) => r.url().endsWith('/api/setup'), { timeout: 5_000 }).catch(() => {});
      assert.equal(await page.locator('#auth-title').innerText(), 'Welcome back!');
    } finally {
      await later.close();
    }
    bob = await openUser(browser, server.url, 'bob');
  });

  it('lets the admin delete a voice channel from the sidebar, and it disappears for everyone', async () => {
    const status = await alice.page.evaluate(async () => (await fetch('/api/channels', {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'doomed', kind: 'voice' }),
    })).status);
    assert.equal(status, 201);
    const row = alice.page.locator('#sidebar .chan-row', { has: alice.page.locator('.chan[data-channel="doomed"]') });
    await row.waitFor();
    await bob.page.locator('#sidebar .chan[data-channel="doomed"]').waitFor();
    assert.equal(await bob.page.locator('#sidebar button[aria-label="Delete voice channel doomed"]').count(), 0,
      'no delete button for a non-admin');
    await row.hover();
    await row.locator('button[aria-label="Delete voice channel doomed"]').click();
    await alice.page.locator('dialog.modal button.danger').click();
    await bob.page.locator('#sidebar .chan[data-channel="doomed"]').waitFor({ state: 'detached' });
    await alice.page.locator('#sidebar .chan[data-channel="doomed"]').waitFor({ state: 'detached' });
    assert.deepEqual([...alice.problems, ...bob.problems], []);
  });

  it('makes invites with more uses and a shorter expiry, lists the live ones and revokes one', async () => {
    const page = alice.page;
    await page.locator('#invite-btn').click();
    await page.locator('#invite-link').waitFor();
    assert.match(await page.locator('#invite-about').innerText(), /once/);
    await page.locator('#invite-list li.invite-item').first().waitFor();
    await page.selectOption('#invite-uses', '5');
    await page.selectOption('#invite-expiry', '3600');
    await page.click('#invite-new');
    await page.locator('#invite-about', { hasText: '5 times' }).waitFor();
    const link = await page.locator('#invite-link').inputValue();
    const code = new URL(link).searchParams.get('invite');
    assert.ok(code);
    const item = page.locator(`#invite-list li[data-code="${code}"]`);
    await item.waitFor();
    assert.match(await item.innerText(), /0 of 5 uses/);
    const live = await page.evaluate(async () => (await fetch('/api/invites')).json());
    const mine = live.find((/** @type {any} */ i) => i.code === code);
    assert.equal(mine.max_uses, 5);
    assert.ok(Math.abs(mine.expires_ts - Date.now() - 3600_000) < 60_000, 'one hour');
    await item.locator('button', { hasText: 'Revoke' }).click();
    await item.waitFor({ state: 'detached' });
    const after = await page.evaluate(async () => (await fetch('/api/invites')).json());
    assert.ok(!after.some((/** @type {any} */ i) => i.code === code), 'revoked on the server');
    await page.keyboard.press('Escape');
    await page.locator('dialog.modal').waitFor({ state: 'detached' });
    assert.deepEqual(alice.problems, []);
  });

  it('renders Discord markdown as DOM: strike, spoiler, quote, heading, lists, #channel links', async () => {
    const made = await alice.page.evaluate(async () => (await fetch('/api/channels', {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'side', kind: 'text' }),
    })).status);
    assert.equal(made, 201);
    await alice.page.locator('#sidebar .chan[data-channel="side"]').click();
    await bob.page.locator('#sidebar .chan[data-channel="side"]').click();
    const text = [
      'mdtest ~~gone~~ ||secret|| go to #general not #nope',
      '> quoted **b**',
      '> second <img src=x onerror="window.__xss=1">',
      '## Title',
      '- one',
      '- two',
      '3. third',
    ].join('\n');
    const id = await send(alice.page, text);
    const body = bob.page.locator(`#messages li.msg[data-id="${id}"] .msg-content`);
    await body.waitFor();
    assert.equal(await body.locator('s').innerText(), 'gone');
    const spoiler = body.locator('.spoiler');
    assert.equal(await spoiler.getAttribute('role'), 'button');
    assert.equal(await spoiler.evaluate((el) => getComputedStyle(el).color), 'rgba(0, 0, 0, 0)', 'hidden until clicked');
    await spoiler.click();
    assert.ok(await spoiler.evaluate((el) => el.classList.contains('revealed')));
    assert.equal(await body.locator('a.channel-link').count(), 1, '#nope is not a channel');
    assert.equal(await body.locator('blockquote').count(), 1, 'consecutive quote lines are one quote');
    assert.equal(await body.locator('blockquote strong').innerText(), 'b');
    assert.match(await body.locator('blockquote').innerText(), /<img src=x/);
    assert.equal(await body.locator('h4.md-heading').innerText(), 'Title');
    assert.deepEqual(await body.locator('ul > li').allInnerTexts(), ['one', 'two']);
    assert.equal(await body.locator('ol').getAttribute('start'), '3');
    assert.equal(await body.locator('img').count(), 0);
    await body.locator('a.channel-link[data-channel="general"]').click();
    await bob.page.locator('#sidebar .chan.active[data-channel="general"]').waitFor();
    assert.equal(await bob.page.evaluate(() => /** @type {any} */ (window).__xss), 0);
    assert.deepEqual([...alice.problems, ...bob.problems], []);
  });

  it('completes @mentions, #channels and :emoji: in the composer with Tab, Enter and the arrows', async () => {
    const page = alice.page;
    await page.locator('#sidebar .chan[data-channel="general"]').click();
    const input = page.locator('#composer-input');
    const list = page.locator('#autocomplete');
    await input.fill('');
    await input.pressSequentially('hi @bo');
    await list.locator('[role=option]', { hasText: '@bob' }).waitFor();
    await input.press('Tab');
    assert.equal(await input.inputValue(), 'hi @bob ');
    assert.ok(await list.isHidden());
    await input.pressSequentially('see #si');
    await list.locator('[role=option][aria-selected=true]', { hasText: '#side' }).waitFor();
    await input.press('Enter');
    assert.equal(await input.inputValue(), 'hi @bob see #side ', 'Enter took the suggestion and did not send');
    await input.pressSequentially(':thumbs');
    await list.locator('[role=option]').nth(1).waitFor();
    await input.press('ArrowDown');
    await list.locator('[role=option][aria-selected=true]', { hasText: 'thumbsdown' }).waitFor();
    await input.press('Enter');
    assert.equal(await input.inputValue(), 'hi @bob see #side 👎 ');
    await input.pressSequentially('at 10:30 :x');
    assert.ok(await list.isHidden(), 'one letter after a colon opens nothing');
    await input.pressSequentially('yz');
    await input.press('Escape');
    await input.press('Enter');
    await message(page, 'hi @bob see #side 👎 at 10:30 :xyz').waitFor();
    assert.deepEqual(alice.problems, []);
  });

  it('moves between channels with Alt+Up/Down, jumps with Ctrl+K, and lists shortcuts on ?', async () => {
    const page = bob.page;
    await page.locator('#sidebar .chan[data-channel="general"]').click();
    await page.locator('#composer-input').focus();
    await page.keyboard.press('Alt+ArrowDown');
    await page.locator('#sidebar .chan.active[data-channel="side"]').waitFor();
    await page.keyboard.press('Alt+ArrowDown');
    await page.locator('#sidebar .chan.active[data-channel="general"]').waitFor({ timeout: 3_000 });
    await page.keyboard.press('Alt+ArrowUp');
    await page.locator('#sidebar .chan.active[data-channel="side"]').waitFor();
    await page.keyboard.press('Control+k');
    const field = page.locator('#switcher-input');
    await field.waitFor();
    assert.ok(await field.evaluate((el) => el === document.activeElement), 'the switcher field has the focus');
    await field.pressSequentially('gen');
    await page.locator('#switcher-list li[aria-selected=true][data-channel="general"]').waitFor();
    await field.press('Enter');
    await page.locator('#sidebar .chan.active[data-channel="general"]').waitFor();
    await page.locator('dialog.modal').waitFor({ state: 'detached' });
    // `?` typed in the composer is text, not a shortcut.
    await page.locator('#composer-input').fill('');
    await page.locator('#composer-input').press('?');
    assert.equal(await page.locator('#composer-input').inputValue(), '?');
    assert.equal(await page.locator('#shortcut-list').count(), 0);
    await page.locator('#composer-input').fill('');
    await page.locator('#messages-scroll').click({ position: { x: 5, y: 5 } });
    await page.keyboard.press('?');
    const sheet = page.locator('#shortcut-list');
    await sheet.waitFor();
    const text = await sheet.innerText();
    for (const k of ['Ctrl+K', 'Alt+↑', '?']) assert.ok(text.includes(k), `sheet lists ${k}`);
    await page.keyboard.press('Escape');
    await sheet.waitFor({ state: 'detached' });
    assert.deepEqual(bob.problems, []);
  });

  it('jumps to the next unread channel with Alt+Shift+Down, skipping read ones', async () => {
    const made = await alice.page.evaluate(async () => (await fetch('/api/channels', {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'third', kind: 'text' }),
    })).status);
    assert.equal(made, 201);
    await alice.page.locator('#sidebar .chan[data-channel="third"]').click();
    await send(alice.page, 'unread for bob');
    const page = bob.page;
    await page.locator('#sidebar .chan.unread[data-channel="third"]').waitFor();
    assert.equal(await page.locator('#sidebar .chan.unread[data-channel="side"]').count(), 0);
    await page.locator('#sidebar .chan[data-channel="general"]').click();
    await page.locator('#composer-input').focus();
    await page.keyboard.press('Alt+Shift+ArrowDown');
    await page.locator('#sidebar .chan.active[data-channel="third"]').waitFor();
    await page.keyboard.press('Alt+Shift+ArrowDown');
    await page.waitForTimeout(200);
    assert.equal(await page.locator('#sidebar .chan.active').getAttribute('data-channel'), 'third', 'nothing else unread: stay');
  });

  it('offers to send an over-long text as a file instead of losing it', async () => {
    const page = alice.page;
    await page.locator('#sidebar .chan[data-channel="general"]').click();
    const long = 'long paste '.repeat(410); // 4510 characters
    await page.locator('#composer-input').fill(long);
    const btn = page.locator('#send-as-file');
    await btn.waitFor();
    await btn.click();
    assert.equal(await page.locator('#composer-input').inputValue(), '');
    assert.ok(await btn.isHidden());
    // Wait for the upload, then send the message that carries it.
    await page.waitForFunction(() => !document.querySelector('.attach-progress'), null, { timeout: 10_000 });
    await page.waitForTimeout(300);
    await page.locator('#composer-input').press('Enter');
    const got = await page.waitForFunction(async () => {
      const res = await fetch('/api/history?channel=general&limit=5');
      const list = await res.json();
      const m = list.find((/** @type {any} */ x) => x.attachments?.some((/** @type {any} */ a) => a.filename === 'message.txt'));
      return m ? m.attachments[0] : null;
    }, null, { timeout: 10_000, polling: 300 });
    const att = await got.jsonValue();
    const text = await page.evaluate(async (url) => (await fetch(url)).text(), att.url);
    assert.equal(text, long, 'the file holds every character typed');
    assert.deepEqual(alice.problems, []);
  });
});
