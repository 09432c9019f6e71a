// "Run a community" (issue 13), the browser side, in real Chromium against the real server:
// the owner makes a Moderator role and gives it to bob, makes a channel only that role can
// see (carol finds no trace of it, bob sees it with a lock), bob times carol out from the
// Members page (carol sees the countdown and cannot send; it lifts live), a kick shows carol
// why in every tab and stays put, and the settings dialogs fit a 360×740 phone.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/server.mjs';
import { launchBrowser, openUser, closeQuietly, send, message, waitConnected, PASSWORD } from './lib/browser.mjs';

/** @typedef {Awaited<ReturnType<typeof openUser>>} User */

describe('run a community', { timeout: 120_000 }, () => {
  /** @type {Awaited<ReturnType<typeof startServer>>} */
  let server;
  /** @type {import('playwright-core').Browser} */
  let browser;
  /** @type {User} */
  let alice;
  /** @type {User} */
  let bob;
  /** @type {User} */
  let carol;

  before(async () => {
    server = await startServer();
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

  /** Open the server settings on `page`, at the tab named `tab`. @param {import('playwright-core').Page} page @param {string} tab */
  async function openSettings(page, tab) {
    await page.locator('#server-settings-btn').click();
    await page.locator('#server-settings').waitFor();
    await page.locator(`#server-settings .settings-tab`, { hasText: tab }).click();
  }

  it('shows the settings gear only to those who may moderate', async () => {
    await alice.page.locator('#server-settings-btn').waitFor({ state: 'visible' });
    assert.equal(await bob.page.locator('#server-settings-btn').isVisible(), false);
    assert.equal(await carol.page.locator('#server-settings-btn').isVisible(), false);
  });

  it('lets the owner create a Moderator role with a colour and moderate_members, and give it to bob', async () => {
    const page = alice.page;
    await openSettings(page, 'Roles');
    await page.locator('#role-create').click();
    await page.fill('#new-role-name', 'Moderator');
    await page.locator('dialog.modal:has(#new-role-name) button[type=submit]').click();
    await page.locator('#role-list .role-item.active[data-name="Moderator"]').waitFor();
    // Every permission in the checklist says what it does.
    const rows = await page.locator('#role-editor .perm-row').count();
    assert.equal(rows, 17);
    assert.match(await page.locator('#role-editor .perm-row:has(#perm-moderate_members) small').innerText(), /Time members out/);
    await page.locator('#perm-moderate_members').check();
    await page.locator('#role-color').fill('#e67e22');
    await page.locator('#role-hoist').check();
    await page.locator('#role-save').click();
    await page.locator('.toast', { hasText: 'Saved Moderator' }).waitFor();
    const roles = await page.evaluate(async () => (await fetch('/api/roles')).json());
    const mod = roles.find((/** @type {any} */ r) => r.name === 'Moderator');
    assert.ok(mod, 'the role exists on the server');
    assert.equal(mod.color, '#e67e22');
    assert.equal(mod.hoist, true);
    assert.ok(mod.permissions.includes('moderate_members'));

    await page.locator('#server-settings .settings-tab', { hasText: 'Members' }).click();
    const bobRow = page.locator('#member-admin-list .member-admin[data-member="bob"]');
    await bobRow.locator('select.add-role').selectOption({ label: 'Moderator' });
    await page.locator('#member-admin-list .member-admin[data-member="bob"] .role-chip', { hasText: 'Moderator' }).waitFor();
    await page.keyboard.press('Escape');
    await page.locator('#server-settings').waitFor({ state: 'detached' });

    // Live for everyone: bob is listed under the hoisted role, in its colour, and now has the gear.
    for (const u of [alice, bob, carol]) {
      await u.page.locator('#members h3.members-head', { hasText: 'Moderator — 1' }).waitFor();
      const color = await u.page.locator('#members .member[data-user="bob"] .member-name').evaluate((el) => getComputedStyle(el).color);
      assert.equal(color, 'rgb(230, 126, 34)', `bob's name in the role colour for ${u.username}`);
    }
    await bob.page.locator('#server-settings-btn').waitFor({ state: 'visible' });
    assert.equal(await carol.page.locator('#server-settings-btn').isVisible(), false);

    // The profile card shows the role.
    await carol.page.locator('#members .member[data-user="bob"]').click();
    await carol.page.locator('#profile-card .role-chip', { hasText: 'Moderator' }).waitFor();
    await carol.page.keyboard.press('Escape');
  });

  it('makes a private channel for the Moderator role: bob sees it with a lock, carol finds no trace', async () => {
    const page = alice.page;
    await page.locator('#sidebar button[data-focus="add-text"]').click();
    await page.fill('#new-channel-name', 'staff');
    await page.locator('dialog.modal button[type=submit]').click();
    await page.locator('#sidebar .chan[data-channel="staff"]').waitFor();

    const row = page.locator('#sidebar .chan-row', { has: page.locator('.chan[data-channel="staff"]') });
    await row.hover();
    await row.locator('button[aria-label="Channel settings for staff"]').click();
    const dialog = page.locator('dialog.modal:has(#ow-grid)');
    await dialog.locator('.ow-role[data-name="everyone"]').click();
    await dialog.locator('.ow-row[data-perm="view_channel"] .tri-opt.deny input').check();
    await dialog.locator('.ow-role[data-name="Moderator"]').click();
    await dialog.locator('.ow-row[data-perm="view_channel"] .tri-opt.allow input').check();
    await dialog.locator('#chan-topic').fill('Moderators only');
    await dialog.locator('button[type=submit]').click();
    await dialog.waitFor({ state: 'detached' });

    await bob.page.locator('#sidebar .chan[data-channel="staff"] .chan-lock').waitFor();
    await page.locator('#sidebar .chan[data-channel="staff"] .chan-lock').waitFor();
    await carol.page.locator('#sidebar .chan[data-channel="staff"]').waitFor({ state: 'detached' });

    await bob.page.locator('#sidebar .chan[data-channel="staff"]').click();
    await send(bob.page, 'the moderators plan quietly');

    // No trace for carol: not in the page, not in the API, not in search.
    const seen = await carol.page.evaluate(async () => ({
      text: document.body.innerText,
      channels: (await (await fetch('/api/channels')).json()).map((/** @type {any} */ c) => c.name),
      history: (await fetch('/api/history?channel=staff')).status,
      search: await (await fetch('/api/search?q=quietly')).json(),
    }));
    assert.ok(!seen.text.includes('staff'), 'the word "staff" appears nowhere on carol\'s page');
    assert.ok(!seen.channels.includes('staff'));
    assert.equal(seen.history, 404);
    assert.deepEqual(seen.search, []);
    await bob.page.locator('#sidebar .chan[data-channel="general"]').click();
  });

  it('lets bob time carol out from the Members page: carol sees the countdown and cannot send, until it lifts', async () => {
    await send(carol.page, 'before the timeout');
    await openSettings(bob.page, 'Members');
    await bob.page.fill('#member-search', 'car');
    const row = bob.page.locator('#member-admin-list .member-admin[data-member="carol"]');
    assert.equal(await bob.page.locator('#member-admin-list .member-admin').count(), 1, 'search narrows the list');
    await row.locator('button.timeout-btn').click();
    const dialog = bob.page.locator('dialog.modal:has(#timeout-length)');
    assert.deepEqual(await dialog.locator('#timeout-length option').allInnerTexts(),
      ['60 seconds', '5 minutes', '1 hour', '1 day', '1 week']);
    await dialog.locator('#timeout-length').selectOption('300');
    await dialog.locator('#timeout-reason').fill('cool down');
    await dialog.locator('button[type=submit]').click();
    await row.locator('.timed-out').waitFor();

    const notice = carol.page.locator('#timeout-notice');
    await notice.waitFor({ state: 'visible' });
    const first = await notice.innerText();
    assert.match(first, /You can talk again in (4:5\d|5:00)/);
    assert.equal(await carol.page.locator('#composer-input').isDisabled(), true);
    assert.equal(await carol.page.locator('#send-btn').isDisabled(), true);
    // The countdown runs.
    await carol.page.waitForFunction((t) => document.getElementById('timeout-notice')?.textContent !== t, first, { timeout: 3_000 });
    // No reacting either.
    const m = message(carol.page, 'before the timeout');
    await m.hover();
    assert.equal(await m.locator('.react-btn').isVisible(), false);
    // And the server agrees: a send over a socket of carol's own is refused.
    const refused = await carol.page.evaluate(() => new Promise((resolve) => {
      const ws = new WebSocket(`ws://${location.host}/ws`);
      const timer = setTimeout(() => resolve('no answer'), 5_000);
      ws.onmessage = (ev) => {
        const f = JSON.parse(ev.data);
        if (f.type === 'ready') ws.send(JSON.stringify({ type: 'send', channel: 'general', content: 'sneaky', nonce: 'n-sneaky' }));
        else if (f.type === 'error' || f.type === 'message') {
          clearTimeout(timer);
          ws.close();
          resolve(f.type === 'error' ? f.code : 'sent');
        }
      };
    }));
    assert.equal(refused, 'forbidden');

    // bob lifts it: carol can talk again without a reload.
    await row.locator('button.lift-btn').click();
    await notice.waitFor({ state: 'hidden' });
    assert.equal(await carol.page.locator('#composer-input').isDisabled(), false);
    await send(carol.page, 'thanks, I will behave');
    await bob.page.keyboard.press('Escape');
  });

  it('lets those with manage_messages pin, list pins and delete anyone\'s message; others get no such buttons', async () => {
    await alice.page.locator('#sidebar .chan[data-channel="general"]').click(); // alice was left in #staff
    const id = await send(carol.page, 'pin me please');
    const onAlice = alice.page.locator(`#messages li.msg[data-id="${id}"]`);
    await onAlice.waitFor();
    await onAlice.hover();
    await onAlice.locator('.pin-btn').click();
    await carol.page.locator(`#messages li.msg.pinned[data-id="${id}"] .pinned-flag`).waitFor();
    const onBob = bob.page.locator(`#messages li.msg[data-id="${id}"]`);
    await onBob.hover();
    assert.equal(await onBob.locator('.pin-btn').count(), 0, 'bob (no manage_messages) cannot pin');
    assert.equal(await onBob.locator('.delete-btn').count(), 0, 'nor delete carol\'s message');

    await carol.page.locator('#pins-btn').click();
    await carol.page.locator('#pins-list .pin-item', { hasText: 'pin me please' }).waitFor();
    assert.equal(await carol.page.locator('#pins-list .unpin-btn').count(), 0);
    await carol.page.keyboard.press('Escape');

    await onAlice.hover();
    await onAlice.locator('.delete-btn').click({ modifiers: ['Shift'] });
    await carol.page.locator(`#messages li.msg[data-id="${id}"]`).waitFor({ state: 'detached' });
  });

  it('shows a kicked user why, in every tab, and does not reconnect', async () => {

    const second = await carol.context.newPage();
    await second.goto(server.url + '/');
    await waitConnected(second);

    await openSettings(alice.page, 'Members');
    await alice.page.locator('#member-admin-list .member-admin[data-member="carol"] button.kick-btn').click();
    const dialog = alice.page.locator('dialog.modal:has(#kick-reason)');
    await dialog.locator('#kick-reason').fill('spamming the general channel');
    await dialog.locator('button[type=submit]').click();
    await dialog.waitFor({ state: 'detached' });

    for (const page of [carol.page, second]) {
      await page.locator('#removed-title', { hasText: 'You were kicked' }).waitFor();
      assert.equal(await page.locator('#removed-reason').innerText(), 'Reason: spamming the general channel');
      assert.equal(await page.locator('#app').isVisible(), false);
    }
    // No reconnect loop: nothing tries /ws again.
    let sockets = 0;
    carol.page.on('websocket', () => { sockets += 1; });
    await carol.page.waitForTimeout(2_500);
    assert.equal(sockets, 0);
    assert.equal(await carol.page.locator('#removed').isVisible(), true);

    // The audit log has it, with the reason.
    await alice.page.locator('#server-settings .settings-tab', { hasText: 'Audit log' }).click();
    await alice.page.locator('#audit-list .audit-item[data-action="kick"]', { hasText: 'spamming the general channel' }).waitFor();
    await alice.page.keyboard.press('Escape');
    await second.close();
  });

  it('bans with a reason and a message wipe, shows the banned page, refuses sign-in, and unbans from the Bans page', async () => {
    const dave = await openUser(browser, server.url, 'dave');
    try {
      await send(dave.page, 'dave was here');
      await message(alice.page, 'dave was here').waitFor();
      await openSettings(alice.page, 'Members');
      await alice.page.locator('#member-admin-list .member-admin[data-member="dave"] button.ban-btn').click();
      const dialog = alice.page.locator('dialog.modal:has(#ban-reason)');
      assert.deepEqual(await dialog.locator('#ban-delete option').allInnerTexts(),
        ['Don’t delete any', 'The last hour', 'The last day', 'The last week']);
      await dialog.locator('#ban-reason').fill('raiding');
      await dialog.locator('#ban-delete').selectOption('3600');
      await dialog.locator('button[type=submit]').click();
      await dave.page.locator('#removed-title', { hasText: 'You were banned' }).waitFor();
      assert.equal(await dave.page.locator('#removed-reason').innerText(), 'Reason: raiding');
      await message(alice.page, 'dave was here').waitFor({ state: 'detached' });

      await dave.page.locator('#removed-signin').click();
      await dave.page.locator('#auth').waitFor({ state: 'visible' });
      if ((await dave.page.locator('#auth-submit').textContent()) !== 'Sign in') await dave.page.click('#auth-switch');
      await dave.page.fill('#auth-username', 'dave');
      await dave.page.fill('#auth-password', PASSWORD);
      await dave.page.locator('#auth-submit').click();
      await dave.page.locator('#auth-error').waitFor({ state: 'visible' });

      await alice.page.locator('#server-settings .settings-tab', { hasText: 'Bans' }).click();
      const ban = alice.page.locator('#ban-list .ban-item[data-user="dave"]');
      assert.match(await ban.innerText(), /raiding/);
      await ban.locator('.unban-btn').click();
      await ban.waitFor({ state: 'detached' });
      await alice.page.keyboard.press('Escape');
      await dave.page.locator('#auth-submit').click();
      await waitConnected(dave.page);
    } finally {
      await closeQuietly(dave);
    }
  });

  it('reorders channels by drag and groups them under a category, live for everyone', async () => {
    const page = alice.page;
    await page.evaluate(async () => {
      for (const name of ['aaa', 'bbb']) {
        await fetch('/api/channels', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name, kind: 'text' }) });
      }
    });
    const order = (/** @type {import('playwright-core').Page} */ p) =>
      p.$$eval('#sidebar .chan.text', (els) => els.map((e) => /** @type {HTMLElement} */ (e).dataset.channel));
    await bob.page.locator('#sidebar .chan[data-channel="bbb"]').waitFor();
    assert.deepEqual(await order(bob.page), ['general', 'staff', 'aaa', 'bbb']);
    await page.locator('#sidebar .chan-row[data-row="bbb"]').dragTo(page.locator('#sidebar .chan-row[data-row="general"]'));
    await bob.page.waitForFunction(() => document.querySelector('#sidebar .chan.text')?.getAttribute('data-channel') === 'bbb');
    assert.deepEqual(await order(bob.page), ['bbb', 'general', 'staff', 'aaa']);

    const row = page.locator('#sidebar .chan-row[data-row="aaa"]');
    await row.hover();
    await row.locator('button[aria-label="Channel settings for aaa"]').click();
    const dialog = page.locator('dialog.modal:has(#chan-category)');
    await dialog.locator('#chan-category').fill('Projects');
    await dialog.locator('#chan-slowmode').selectOption('30');
    await dialog.locator('button[type=submit]').click();
    await dialog.waitFor({ state: 'detached' });
    await bob.page.locator('#sidebar .chan-group.category[data-category="Projects"]').waitFor();
    assert.deepEqual(await order(bob.page), ['bbb', 'general', 'staff', 'aaa'], 'the category comes after the loose channels');
    const ch = await bob.page.evaluate(async () => (await (await fetch('/api/channels')).json()).find((/** @type {any} */ c) => c.name === 'aaa'));
    assert.equal(ch.category, 'Projects');
    assert.equal(ch.slowmode_s, 30);
  });

  it('fits the settings dialogs on a 360×740 phone', async () => {
    const phone = await openUser(browser, server.url, 'alice', { mode: 'login', viewport: { width: 360, height: 740 } });
    try {
      const page = phone.page;
      const fits = async (/** @type {string} */ sel) => {
        const box = await page.locator(sel).boundingBox();
        assert.ok(box, `${sel} is shown`);
        assert.ok(box.x >= 0 && box.y >= 0 && box.x + box.width <= 360 && box.y + box.height <= 740,
          `${sel} fits in 360×740: ${JSON.stringify(box)}`);
        assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 360), 'nothing widens the page');
      };
      await page.locator('#menu-btn').click(); // the gear is in the channel drawer
      await page.locator('#server-settings-btn').click();
      await page.locator('#server-settings').waitFor();
      for (const tab of ['Roles', 'Members', 'Bans', 'Audit log', 'Channels']) {
        await page.locator('#server-settings .settings-tab', { hasText: tab }).click();
        await page.waitForTimeout(150);
        await fits('#server-settings');
        // The page scrolls inside the dialog rather than pushing it off the screen.
        const panel = await page.locator('#settings-panel').evaluate((el) => getComputedStyle(el).overflowY);
        assert.equal(panel, 'auto');
      }
      await page.locator('#server-settings .settings-tab', { hasText: 'Members' }).click();
      await page.locator('#member-admin-list .member-admin[data-member="bob"] button.timeout-btn').click();
      await fits('dialog.modal:has(#timeout-length)');
      await page.keyboard.press('Escape');
      await page.locator('#server-settings .settings-tab', { hasText: 'Channels' }).click();
      await page.locator('#server-settings button[data-channel="staff"]').click();
      await fits('dialog.modal:has(#ow-grid)');
    } finally {
      await closeQuietly(phone);
    }
    assert.deepEqual([...alice.problems, ...bob.problems], []);
  });
});
