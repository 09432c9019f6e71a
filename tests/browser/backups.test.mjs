// The admin's server settings in real Chromium against the real server: the scheduled
// backups panel (GET /api/admin/backups) shows BACKUP_DIR, the newest backup and the next
// run to the admin only, with the folder's name rendered as text, never as markup.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openTwoUsers, closeTwoUsers } from './lib/browser.mjs';

describe('server settings: scheduled backups', { timeout: 60_000 }, () => {
  /** @type {Awaited<ReturnType<typeof openTwoUsers>>} */
  let f;
  const root = mkdtempSync(path.join(tmpdir(), 'md-backups-'));
  // A folder name that would be markup if it were ever parsed as HTML.
  const dir = path.join(root, '<img src=x onerror="window.__xss=1">');
  mkdirSync(dir);

  before(async () => {
    f = await openTwoUsers({ BACKUP_DIR: dir, BACKUP_EVERY_H: '0.0003', BACKUP_KEEP: '3' });
  });

  after(async () => {
    await closeTwoUsers(f);
    rmSync(root, { recursive: true, force: true });
  });

  it('shows the admin the folder, the last backup and the next run; nobody else sees it', async () => {
    const { alice, bob } = f;
    assert.equal(await bob.page.locator('#server-settings-btn').isVisible(), false, 'bob is no admin');
    const finished = () => readdirSync(dir).filter((n) => /^backup-\d+\.tar$/.test(n)).sort();
    const deadline = Date.now() + 20_000;
    while (!finished().length) {
      assert.ok(Date.now() < deadline, 'a scheduled backup was written');
      await new Promise((r) => setTimeout(r, 100));
    }
    await alice.page.locator('#server-settings-btn').click();
    await alice.page.locator('#server-settings .settings-tab[data-page="backups"]').click();
    const panel = alice.page.locator('#backup-status');
    await panel.locator('[data-k="last"] dd').waitFor();
    assert.equal(await panel.locator('[data-k="dir"] dd').textContent(), dir);
    const last = /** @type {string} */ (await panel.locator('[data-k="last"] dd').textContent());
    const shown = last.split(' · ')[0];
    assert.ok(finished().includes(shown), `${shown} is one of ${finished()}`);
    assert.ok(statSync(path.join(dir, shown)).size > 0);
    assert.match(last, /\d+(\.\d)? (B|KiB|MiB)/);
    assert.match(/** @type {string} */ (await panel.locator('[data-k="every"] dd').textContent()), /0\.0003 h, keeping the newest 3/);
    assert.notEqual(await panel.locator('[data-k="next"] dd').textContent(), 'Not scheduled');
    assert.equal(await panel.locator('img').count(), 0, 'the folder name is text');
    assert.equal(await alice.page.evaluate(() => /** @type {any} */ (window).__xss), 0);
    await alice.page.getByRole('button', { name: 'Close' }).click();
    await panel.waitFor({ state: 'detached' });
    assert.deepEqual(alice.problems, []);
  });
});
