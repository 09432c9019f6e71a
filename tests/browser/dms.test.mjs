// Direct messages (issue 14, docs/DMS.md) in real Chromium against the real server: alice
// opens a DM with bob from his profile card (opened from the member list), sends a file and
// a message; bob, with notifications granted and his tab hidden in #general, gets the DM in
// his DM list with an unread badge, and a desktop notification.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { openTwoUsers, closeTwoUsers, message, send, waitConnected } from './lib/browser.mjs';

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

  before(async () => {
    f = await openTwoUsers({});
    await f.bob.context.grantPermissions(['notifications'], { origin: f.server.url });
    await f.bob.context.addInitScript(instrument);
    await f.bob.page.reload();
    await waitConnected(f.bob.page);
  });

  after(() => closeTwoUsers(f));

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
});
