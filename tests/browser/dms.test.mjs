// Direct messages (issue 14, docs/DMS.md) in real Chromium against the real server: alice
// opens a DM with bob from his profile card (opened from the member list), sends a file and
// a message; bob, with notifications granted and his tab hidden in #general, gets the DM in
// his DM list with an unread badge, and a desktop notification. Then: "New message" starts
// a group DM (search, chips), "Add people" turns the pair's DM into a new group, a group is
// left and a pair closed until a new message comes, and a DM's internal name (`dm.1.2`)
// shows nowhere: header, page title, address, composer, search, pins, switcher, lightbox,
// toasts.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { openTwoUsers, closeTwoUsers, openUser, closeQuietly, message, send, waitConnected } from './lib/browser.mjs';

/** Records every `new Notification(...)` and lets the test hide the page (headless Chromium
 * cannot), as in social.test.mjs. */
function instrument() {
  const w = /** @type {any} */ (window);
  w.__notes = [];
  w.__hidden = false;
  Object.defineProperty(document, 'visibilityState', { get: () => (w.__hidden ? 'hidden' : 'visible') });
  const Real = window.Notification;
  if (!Real) return;
  class Spy extends Real {
    /** @param {string} title @param {NotificationOptions} [opts] */
    constructor(title, opts) {
      w.__notes.push({ title, body: opts?.body ?? '' });
      super(title, opts);
    }
  }
  Object.defineProperty(Spy, 'permission', { get: () => Real.permission });
  w.Notification = Spy;
}

describe('direct messages', { timeout: 120_000 }, () => {
  /** @type {any} */
  let f;

  /** @type {any} */
  let carol;
  /** @type {any} */
  let dave;

  before(async () => {
    f = await openTwoUsers({});
    carol = await openUser(f.browser, f.server.url, 'carol');
    dave = await openUser(f.browser, f.server.url, 'dave');
    await f.bob.context.grantPermissions(['notifications'], { origin: f.server.url });
    await f.bob.context.addInitScript(instrument);
    await f.bob.page.reload();
    await waitConnected(f.bob.page);
  });

  after(async () => {
    await closeQuietly(carol);
    await closeQuietly(dave);
    await closeTwoUsers(f);
  });

  it('alice opens a DM with bob from his profile card; bob gets a badge and a notification', async () => {
    const { alice, bob } = f;
    await bob.page.click('#sidebar .chan.text[data-channel="general"]');
    await bob.page.evaluate(() => {
      /** @type {any} */ (window).__hidden = true;
      document.dispatchEvent(new Event('visibilitychange'));
    });

    await alice.page.locator('#members .member[data-user="bob"]').click();
    const card = alice.page.locator('#profile-card');
    await card.waitFor();
    await card.locator('button.profile-message').click();
    const dmRow = alice.page.locator('#sidebar .dm-row .chan.active');
    await dmRow.waitFor();
    assert.equal(await dmRow.locator('.chan-name').textContent(), 'bob');

    await alice.page.locator('#attach-input').setInputFiles([
      { name: 'plans.txt', mimeType: 'text/plain', buffer: Buffer.from('the plans') },
    ]);
    await alice.page.locator('.attach-chip.done[data-name="plans.txt"]').waitFor();
    await send(alice.page, 'here are the plans');
    await message(alice.page, 'here are the plans').locator('a', { hasText: 'plans.txt' }).first().waitFor();

    const bobsDm = bob.page.locator('#sidebar .dm-row .chan.unread');
    await bobsDm.waitFor();
    assert.equal(await bobsDm.locator('.chan-name').textContent(), 'alice');
    assert.equal(await bobsDm.locator('.badge').textContent(), '1');
    await bob.page.waitForFunction(() => /** @type {any} */ (window).__notes.length > 0, null, { timeout: 10_000 });
    const notes = await bob.page.evaluate(() => /** @type {any} */ (window).__notes);
    assert.equal(notes.length, 1);
    assert.equal(notes[0].title, 'alice (direct message)');
    assert.equal(notes[0].body, 'here are the plans');

    // Bob opens it: the message and the file are there, and the badge goes.
    await bob.page.evaluate(() => {
      /** @type {any} */ (window).__hidden = false;
      document.dispatchEvent(new Event('visibilitychange'));
    });
    await bobsDm.click();
    await message(bob.page, 'here are the plans').waitFor();
    await bob.page.locator('#sidebar .dm-row .badge').waitFor({ state: 'detached' });
  });

  /** The DM row named exactly `label` in `page`'s sidebar. @param {import('playwright-core').Page} page @param {string} label */
  const dmRow = (page, label) => page.locator('#sidebar .dm-row').filter({ has: page.locator('.chan-name', { hasText: new RegExp(`^${label}$`) }) });

  /** The names of the DM rows in `page`'s sidebar, each sorted (a group's order is join order). */
  async function dmRows(/** @type {import('playwright-core').Page} */ page) {
    const names = await page.locator('#sidebar .dm-row .chan-name').allTextContents();
    return names.map((n) => n.split(', ').sort().join(', '));
  }

  it('"New message" starts a group DM: search by name, chips, open', async () => {
    const { alice } = f;
    await alice.page.locator('#members .member[data-user="dave"]').waitFor();
    await alice.page.locator('#new-dm-btn').click();
    const dialog = alice.page.locator('dialog.dm-picker');
    await dialog.waitFor();
    const search = dialog.locator('#dm-picker-search');
    await search.fill('car');
    await dialog.locator('.dm-pick[data-user="carol"]').click();
    assert.deepEqual(await dialog.locator('.dm-pick').evaluateAll((els) => els.map((e) => /** @type {HTMLElement} */ (e).dataset.user)), ['carol']);
    await search.fill('dav');
    await search.press('Enter'); // takes the first match
    assert.deepEqual(await dialog.locator('.dm-chip').evaluateAll((els) => els.map((e) => /** @type {HTMLElement} */ (e).dataset.user)), ['carol', 'dave']);
    // A chip's × takes it off again; Backspace in the empty field too.
    await dialog.locator('.dm-chip[data-user="dave"] .dm-chip-remove').click();
    assert.equal(await dialog.locator('.dm-chip').count(), 1);
    await search.fill('dave');
    await search.press('Enter');
    await dialog.locator('button[type="submit"]').click();
    await dialog.waitFor({ state: 'detached' });
    const active = alice.page.locator('#sidebar .dm-row .chan.active .chan-name');
    await active.waitFor();
    assert.equal((await active.textContent())?.split(', ').sort().join(', '), 'carol, dave');
    await send(alice.page, 'hello you two');
    const carolsRow = carol.page.locator('#sidebar .dm-row .chan.unread');
    await carolsRow.waitFor();
    assert.equal((await carolsRow.locator('.chan-name').textContent())?.split(', ').sort().join(', '), 'alice, dave');
  });

  it('"Add people" on the pair\'s DM makes a new group of three; the pair\'s stays', async () => {
    const { alice } = f;
    await dmRow(alice.page, 'bob').locator('.chan').click();
    await dmRow(alice.page, 'bob').locator('.chan.active').waitFor();
    await alice.page.locator('#dm-add-btn').click();
    const dialog = alice.page.locator('dialog.dm-picker');
    await dialog.waitFor();
    // Who is in it already is not offered.
    assert.equal(await dialog.locator('.dm-pick[data-user="bob"]').count(), 0);
    await dialog.locator('.dm-pick[data-user="carol"]').click();
    await dialog.locator('button[type="submit"]').click();
    await dialog.waitFor({ state: 'detached' });
    await alice.page.waitForFunction(() => {
      const a = document.querySelector('#sidebar .dm-row .chan.active .chan-name');
      return !!a && a.textContent?.split(', ').sort().join(', ') === 'bob, carol';
    });
    assert.deepEqual((await dmRows(alice.page)).sort(), ['bob', 'bob, carol', 'carol, dave']);
    assert.deepEqual(alice.problems, []);
  });

  it('leaves a group DM from its row, in every tab; the others see the member go', async () => {
    const { alice } = f;
    const row = alice.page.locator('#sidebar .dm-row').filter({ has: alice.page.locator('.chan-name', { hasText: 'dave' }) });
    await row.locator('.chan').click();
    await row.locator('.dm-leave').click();
    const confirm = alice.page.locator('dialog.modal', { hasText: 'Leave group' });
    await confirm.waitFor();
    await confirm.locator('button[type="submit"]').click();
    await alice.page.locator('.toast', { hasText: 'You left the conversation with' }).waitFor();
    await row.waitFor({ state: 'detached' });
    // Carol's row now names dave only; her history is still there.
    await dmRow(carol.page, 'dave').locator('.chan').click();
    await message(carol.page, 'hello you two').waitFor();
  });

  it('closes a two-person DM until a new message arrives in it', async () => {
    const { alice, bob } = f;
    const pair = dmRow(alice.page, 'bob');
    await pair.locator('.dm-leave').click();
    await pair.waitFor({ state: 'detached' });
    // Still closed after a reload (this browser's choice).
    await alice.page.reload();
    await waitConnected(alice.page);
    assert.ok(!(await dmRows(alice.page)).includes('bob'));
    await dmRow(bob.page, 'alice').locator('.chan').click();
    await send(bob.page, 'are you still there?');
    await pair.locator('.chan.unread').waitFor();
  });

  it('never shows a DM\'s internal name: header, title, composer, search, pins, switcher, lightbox', async () => {
    const { alice } = f;
    const dms = await alice.page.evaluate(() => fetch('/api/channels').then((r) => r.json())
      .then((cs) => cs.filter((/** @type {any} */ c) => c.kind === 'dm').map((/** @type {any} */ c) => c.name)));
    assert.ok(dms.length >= 2, JSON.stringify(dms));
    /** Everything the page shows or says: text, titles, labels, placeholders, the tab
     * title and the address bar. */
    const shown = () => alice.page.evaluate(() => {
      const out = [document.title, decodeURIComponent(location.href)];
      const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
      for (let n = walk.nextNode(); n; n = walk.nextNode()) out.push(n.textContent ?? '');
      for (const el of document.querySelectorAll('*')) {
        for (const a of ['title', 'aria-label', 'placeholder', 'alt']) {
          const v = el.getAttribute(a);
          if (v) out.push(v);
        }
      }
      return out.join('\n');
    });
    const clean = async (/** @type {string} */ where) => {
      const text = await shown();
      for (const name of dms) assert.ok(!text.includes(name), `${where}: "${name}" is shown`);
    };

    // The pair's DM, with an image in it (the lightbox) and a pinned message… a DM has no
    // moderators, so pins stay empty: the dialog's title is what is checked.
    await dmRow(alice.page, 'bob').locator('.chan').click();
    await message(alice.page, 'are you still there?').waitFor();
    const png = Buffer.from(await alice.page.evaluate(async () => {
      const c = document.createElement('canvas');
      c.width = 64;
      c.height = 48;
      const g = /** @type {CanvasRenderingContext2D} */ (c.getContext('2d'));
      g.fillStyle = '#2e86de';
      g.fillRect(0, 0, 64, 48);
      return c.toDataURL('image/png').split(',')[1];
    }), 'base64');
    await alice.page.locator('#attach-input').setInputFiles([{ name: 'pic.png', mimeType: 'image/png', buffer: png }]);
    await alice.page.locator('.attach-chip.done[data-name="pic.png"]').waitFor();
    await send(alice.page, 'zebra crossing');
    await clean('the open DM (header, title, composer, notification control)');
    assert.equal(await alice.page.locator('#chat-title').textContent(), 'bob');
    assert.match(await alice.page.title(), /bob — mini-discord$/);

    await message(alice.page, 'zebra crossing').locator('.attachment-image').click();
    await alice.page.locator('dialog.lightbox').waitFor();
    await clean('the lightbox');
    await alice.page.keyboard.press('Escape');

    await alice.page.locator('#search-input').fill('zebra');
    await alice.page.locator('#search-input').press('Enter');
    const hit = alice.page.locator('#search-results .search-hit');
    await hit.first().waitFor();
    assert.match(await hit.first().locator('.search-meta').textContent() ?? '', /^bob · /);
    await clean('search results');
    await alice.page.keyboard.press('Escape');

    await alice.page.locator('#pins-btn').click();
    await alice.page.locator('#pins-list').waitFor();
    await clean('the pins dialog');
    await alice.page.keyboard.press('Escape');

    await alice.page.locator('#composer-input').press('Control+k');
    await alice.page.locator('#switcher-input').pressSequentially('bob');
    await alice.page.locator('#switcher-list li[data-channel]').first().waitFor();
    await clean('the quick switcher');
    await alice.page.keyboard.press('Escape');

    // The address does not name it either, yet a reload comes back to it (this tab remembers).
    await alice.page.reload();
    await waitConnected(alice.page);
    assert.equal(await alice.page.locator('#chat-title').textContent(), 'bob');
    await clean('after a reload');
    assert.deepEqual(alice.problems, []);
  });
});
