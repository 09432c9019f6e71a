// The text client as a newcomer finds it (issue 18), in real Chromium against the real server:
// a burst of typing under a tight rate limit keeps its order and shows one notice, labels that
// say the truth while online, a 360×740 phone with mobile emulation where nothing widens the
// layout viewport, a long paste that is never cut, search, dialog focus, mentions of nobody,
// right-to-left text, the in-call indicator on the phone, the connection state during an
// outage, and drafts cleared at logout.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { startServer } from './lib/server.mjs';
import { ARGS, CHROMIUM, openUser, signIn, send, message, closeQuietly, waitConnected } from './lib/browser.mjs';

// A tight limit so a 50-message burst is refused many times and refills in between:
// 5 at once, then one every 200 ms. The burst is typed in about half a second; on a loaded
// machine its timers stretch, and with a looser limit (10/s) the whole burst could fit under
// it and the test would prove nothing: at 5/s typing would have to take 9 s.
const RATE = { SEND_RATE: '5', SEND_BURST: '5' };
const BURST = 50;
const PHONE = { viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 };

describe('the newcomer\'s text client', { timeout: 150_000 }, () => {
  /** @type {Awaited<ReturnType<typeof startServer>>} */
  let server;
  /** @type {import('playwright-core').Browser} */
  let browser;
  /** @type {Awaited<ReturnType<typeof openUser>>} */
  let alice;
  /** @type {Awaited<ReturnType<typeof openUser>>} */
  let bob;

  before(async () => {
    server = await startServer({ env: RATE });
    browser = await chromium.launch({
      executablePath: CHROMIUM, headless: true, timeout: 30_000,
      args: [...ARGS, '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream', '--allow-loopback-in-peer-connection'],
    });
    alice = await openUser(browser, server.url, 'alice');
    bob = await openUser(browser, server.url, 'bob');
  });

  after(async () => {
    await closeQuietly(alice);
    await closeQuietly(bob);
    await browser?.close().catch(() => {});
    await server?.dispose();
  });

  it('keeps 50 fast-typed messages in typed order through the rate limit, three runs in a row, with one notice', async () => {
    const page = alice.page;
    for (let run = 1; run <= 3; run++) {
      const prefix = `burst${run}`;
      const rec = await record(page);
      await typeFast(page, prefix, BURST);
      await page.locator('#messages li.outgoing').first().waitFor({ state: 'detached', timeout: 30_000 });
      const seen = await rec.stop();
      const stored = (await history(page, 'general')).filter((m) => m.content.startsWith(`${prefix} `));
      assert.deepEqual(stored.map((m) => Number(m.content.split(' ')[1])),
        Array.from({ length: BURST }, (_, i) => i + 1), `run ${run}: stored in typed order`);
      assert.ok(seen.refusedNotice, `run ${run}: the rate limit refused some (else this test proves nothing)`);
      assert.ok(seen.maxToasts <= 1, `run ${run}: one notice, updated in place (saw ${seen.maxToasts} at once)`);
      assert.equal(seen.zeroWait, 0, `run ${run}: no "waiting 0.0 s"`);
      assert.equal(seen.offlineLabel, 0, `run ${run}: never "Waiting for connection" while online`);
    }
    assert.deepEqual(alice.problems, []);
  });

  it('never drops a long paste: the text stays, the count shows, and it is not sent', async () => {
    const page = alice.page;
    const input = page.locator('#composer-input');
    const long = 'x'.repeat(5000);
    await input.focus();
    await page.evaluate((text) => {
      const ta = /** @type {HTMLTextAreaElement} */ (document.getElementById('composer-input'));
      const dt = new DataTransfer();
      dt.setData('text/plain', text);
      ta.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
    }, long);
    // Chromium does not insert on a synthetic paste event; type it the way a paste lands.
    if ((await input.inputValue()).length === 0) await page.keyboard.insertText(long);
    assert.equal((await input.inputValue()).length, 5000, 'all 5000 characters kept');
    assert.match(await page.locator('#char-count').textContent() ?? '', /5000 \/ 4000/);
    const before = (await history(page, 'general')).length;
    await input.press('Enter');
    await page.waitForTimeout(300);
    assert.equal((await input.inputValue()).length, 5000, 'Enter does not clear it');
    assert.equal(await page.locator('#messages li.outgoing').count(), 0, 'nothing queued');
    assert.equal((await history(page, 'general')).length, before, 'nothing sent');
    await input.fill('');

    // The inline edit box keeps a long paste whole too, and refuses to save it.
    const id = await send(page, 'short, for now');
    await input.press('ArrowUp');
    const edit = page.locator(`#messages li.msg[data-id="${id}"] .edit-input`);
    await edit.waitFor();
    await edit.fill('');
    await page.keyboard.insertText(long);
    assert.equal((await edit.inputValue()).length, 5000, 'the edit box keeps all 5000 too');
    await edit.press('Enter');
    assert.match(await page.locator(`#messages li.msg[data-id="${id}"] .edit-over`).textContent() ?? '', /5000 \/ 4000/);
    await edit.press('Escape');
    await message(page, 'short, for now').waitFor();
  });

  it('focuses the name field when the create-channel dialog opens', async () => {
    const page = alice.page;
    await page.click('#channel-lists button[aria-label="Create text channel"]');
    await page.locator('dialog[open] #new-channel-name').waitFor();
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'new-channel-name');
    await page.keyboard.press('Escape');
    await page.locator('dialog[open]').waitFor({ state: 'detached' });
  });

  it('highlights @name only for a user that exists', async () => {
    await send(bob.page, 'hello @alice and @nobody');
    const m = message(alice.page, 'hello @alice and @nobody');
    await m.waitFor();
    assert.equal(await m.locator('.mention').count(), 1);
    assert.equal(await m.locator('.mention').textContent(), '@alice');
  });

  it('lays out right-to-left text by its own direction', async () => {
    await send(bob.page, 'שלום עולם');
    const m = message(alice.page, 'שלום עולם');
    await m.waitFor();
    assert.equal(await m.locator('.msg-content').getAttribute('dir'), 'auto');
    assert.equal(await m.locator('.msg-content').evaluate((el) => getComputedStyle(el).direction), 'rtl');
    assert.equal(await alice.page.locator('#composer-input').getAttribute('dir'), 'auto');
  });

  it('searches messages from a search box and opens the channel of a result', async () => {
    const page = alice.page;
    await send(bob.page, 'the quokka is a small marsupial');
    await message(page, 'the quokka is a small marsupial').waitFor();
    await page.fill('#search-input', 'quokka');
    await page.press('#search-input', 'Enter');
    const result = page.locator('#search-results .search-hit', { hasText: 'the quokka is a small marsupial' });
    await result.waitFor();
    assert.equal(await page.locator('#search-results .search-hit').count(), 1);
    await result.click();
    await page.locator('#search-results').waitFor({ state: 'hidden' });
    assert.equal(await page.locator('#chat-title').textContent(), 'general');
    await page.fill('#search-input', 'zzzznothing');
    await page.press('#search-input', 'Enter');
    await page.locator('#search-results .search-empty').waitFor();
    await page.keyboard.press('Escape');
    await page.locator('#search-results').waitFor({ state: 'hidden' });
    assert.deepEqual(alice.problems, []);
  });

  it('on a 360×740 phone, nothing widens the layout viewport; dialogs and toasts stay on screen', async () => {
    const phone = await openPhone(browser, server.url, 'alice');
    const { page } = phone;
    try {
      await layoutFits(page, 'signed in');
      // Invite dialog (the button is in the channel drawer).
      await page.click('#menu-btn');
      await page.click('#invite-btn');
      await onScreen(page, 'dialog[open]', 'invite dialog');
      await page.keyboard.press('Escape');
      // Create-channel dialog.
      await page.click('#menu-btn');
      await page.click('#channel-lists button[aria-label="Create text channel"]');
      await onScreen(page, 'dialog[open]', 'create-channel dialog');
      await page.fill('#new-channel-name', 'phone-made');
      await page.click('dialog[open] button[type=submit]');
      await page.locator('dialog[open]').waitFor({ state: 'detached' });
      await onScreen(page, '#toasts .toast', 'toast');
      // User settings (voice is one section of them).
      await page.click('#menu-btn');
      await page.click('#user-settings-btn');
      await onScreen(page, 'dialog[open]', 'user settings');
      await page.keyboard.press('Escape');
      // Delete channel: tapping it must not slide the page sideways.
      await page.locator('dialog[open]').waitFor({ state: 'detached' });
      await page.tap('#delete-channel-btn');
      await onScreen(page, 'dialog[open]', 'delete dialog');
      assert.equal(await page.evaluate(() => window.scrollX), 0, 'no sideways slide');
      await page.keyboard.press('Escape');
    } finally {
      await closeQuietly(phone);
    }
  });

  it('on the phone, shows that you are in a call when the drawer is closed', async () => {
    await alice.page.click('#channel-lists button[aria-label="Create voice channel"]');
    await alice.page.fill('#new-channel-name', 'lounge');
    await alice.page.click('dialog[open] button[type=submit]');
    const phone = await openPhone(browser, server.url, 'bob');
    const { page } = phone;
    try {
      await page.click('#menu-btn');
      await page.click('#channel-lists .chan.voice[data-channel="lounge"]');
      await page.locator('#voice-panel .vp-leave').waitFor({ state: 'attached' });
      await page.click('#drawer-backdrop', { position: { x: 340, y: 300 } }); // beside the drawer
      const pill = page.locator('#call-pill');
      await pill.waitFor({ state: 'visible' });
      assert.match(await pill.textContent() ?? '', /lounge/);
      await onScreen(page, '#call-pill', 'in-call indicator');
      await pill.click();
      await page.locator('#app.sidebar-open').waitFor();
      await page.click('#voice-panel .vp-leave');
      await pill.waitFor({ state: 'hidden' });
    } finally {
      await closeQuietly(phone);
    }
  });

  // The server closes the socket (4001) as soon as it has ended the session, so the page can
  // tear itself down (`sessionExpired`) before the logout request's answer arrives; the drafts
  // were then looked up under no user and left behind (a CI run saw 'md.draft.3.general').
  // Here the answer is held back for a second, so that order happens every time.
  it('clears message drafts at logout even when the socket closes before the answer', async () => {
    const dave = await openUser(browser, server.url, 'dave');
    try {
      await dave.page.fill('#composer-input', 'a draft written just before signing out');
      const drafts = () => dave.page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('md.draft.')));
      assert.equal((await drafts()).length, 1);
      await dave.page.route('**/api/logout', async (route) => {
        const response = await route.fetch();
        await new Promise((r) => setTimeout(r, 1_000));
        await route.fulfill({ response });
      });
      await dave.page.click('#logout-btn');
      await dave.page.locator('#auth').waitFor({ state: 'visible' });
      await dave.page.waitForFunction(() => !Object.keys(localStorage).some((k) => k.startsWith('md.draft.')), null, { timeout: 5_000 })
        .catch(() => {});
      assert.deepEqual(await drafts(), []);
    } finally {
      await closeQuietly(dave);
    }
  });

  it('clears message drafts from localStorage at logout', async () => {
    const carol = await openUser(browser, server.url, 'carol');
    try {
      await carol.page.fill('#composer-input', 'a draft nobody else should read');
      const drafts = () => carol.page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('md.draft.')));
      assert.equal((await drafts()).length, 1);
      await carol.page.click('#logout-btn');
      await carol.page.locator('#auth').waitFor({ state: 'visible' });
      assert.deepEqual(await drafts(), []);
    } finally {
      await closeQuietly(carol);
    }
  });

  it('shows the connection state, not stale presence, during an outage', async () => {
    const page = alice.page;
    await page.locator('#members .member.online[data-user="bob"]').waitFor();
    await server.stop();
    await page.locator('#banner').waitFor({ state: 'visible' });
    await page.locator('#members .members-offline').waitFor();
    assert.equal(await page.locator('#members .member.online').count(), 0, 'nobody shown online while we cannot know');
    await server.start(`127.0.0.1:${server.port}`);
    await waitConnected(page);
    await page.locator('#members .member.online[data-user="alice"]').waitFor();
    assert.equal(await page.locator('#members .members-offline').count(), 0);
  });
});

/**
 * Type "<prefix> 1".."<prefix> n" into the composer with Enter after each, 20 ms apart (faster
 * than the rate limit refills, as a fast typist or a paste of lines would), through the
 * composer's own input and keydown handlers. Driving it key by key over CDP is too slow to
 * outrun the limit. @param {import('playwright-core').Page} page @param {string} prefix @param {number} n
 */
async function typeFast(page, prefix, n) {
  await page.evaluate(async ({ prefix, n }) => {
    const input = /** @type {HTMLTextAreaElement} */ (document.getElementById('composer-input'));
    input.focus();
    for (let i = 1; i <= n; i++) {
      input.value = `${prefix} ${i}`;
      input.dispatchEvent(new Event('input', { bubbles: true }));
      input.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true, cancelable: true }));
      await new Promise((r) => setTimeout(r, 10));
    }
  }, { prefix, n });
}

/** Every message of a channel, oldest first, from the server (the reference). @param {import('playwright-core').Page} page @param {string} channel */
async function history(page, channel) {
  return page.evaluate(async (channel) => {
    /** @type {{id:number, content:string}[]} */
    let all = [];
    let after = 0;
    for (;;) {
      const res = await fetch(`/api/history?channel=${channel}&after=${after}&limit=200`);
      const pageOf = await res.json();
      all = all.concat(pageOf);
      if (pageOf.length < 200) return all;
      after = pageOf[pageOf.length - 1].id;
    }
  }, channel);
}

/**
 * Samples the page every 10 ms while a burst goes out: how many toasts are up at once, whether
 * one says "waiting 0.0 s", and whether a held message says "Waiting for connection" while the
 * connection banner is hidden (online). @param {import('playwright-core').Page} page
 */
async function record(page) {
  await page.evaluate(() => {
    const rec = { maxToasts: 0, zeroWait: 0, offlineLabel: 0, refusedNotice: false };
    /** @type {any} */ (window).__rec = rec;
    /** @type {any} */ (window).__recTimer = setInterval(() => {
      const toasts = [...document.querySelectorAll('#toasts .toast:not(.leaving)')];
      rec.maxToasts = Math.max(rec.maxToasts, toasts.length);
      if (toasts.some((t) => /too fast|slow down/i.test(t.textContent ?? ''))) rec.refusedNotice = true;
      if (toasts.some((t) => /waiting 0\.0 s/.test(t.textContent ?? ''))) rec.zeroWait += 1;
      const online = /** @type {HTMLElement} */ (document.getElementById('banner')).hidden;
      const labels = [...document.querySelectorAll('#messages li.outgoing .send-state')].map((e) => e.textContent ?? '');
      if (online && labels.some((t) => /Waiting for connection/.test(t))) rec.offlineLabel += 1;
    }, 10);
  });
  return {
    stop: () => page.evaluate(() => {
      clearInterval(/** @type {any} */ (window).__recTimer);
      return /** @type {any} */ (window).__rec;
    }),
  };
}

/** A phone: 360×740 with mobile emulation (a real layout viewport, touch, DPR 2). */
async function openPhone(/** @type {import('playwright-core').Browser} */ browser, /** @type {string} */ url, /** @type {string} */ username) {
  const context = await browser.newContext(PHONE);
  context.setDefaultTimeout(10_000);
  const page = await context.newPage();
  await page.goto(`${url}/`);
  await signIn(page, username, 'login');
  return { context, page };
}

/** The layout viewport is still the device's width. @param {import('playwright-core').Page} page @param {string} when */
async function layoutFits(page, when) {
  const m = await page.evaluate(() => ({
    inner: window.innerWidth,
    doc: document.documentElement.scrollWidth,
    body: document.body.scrollWidth,
  }));
  assert.ok(m.inner <= 360 && m.doc <= 360 && m.body <= 360, `${when}: layout viewport stays 360 px (${JSON.stringify(m)})`);
}

/** The element is wholly on the 360×740 screen, and the layout viewport did not widen. */
async function onScreen(/** @type {import('playwright-core').Page} */ page, /** @type {string} */ selector, /** @type {string} */ what) {
  const el = page.locator(selector).last();
  await el.waitFor({ state: 'visible' });
  await page.waitForTimeout(250); // past the toast's entry animation
  const r = await el.evaluate((e) => {
    const b = e.getBoundingClientRect();
    return { left: b.left, right: b.right, top: b.top, bottom: b.bottom };
  });
  assert.ok(r.left >= 0 && r.right <= 360 && r.top >= 0 && r.bottom <= 740, `${what} on screen: ${JSON.stringify(r)}`);
  await layoutFits(page, what);
}
