// Handing an imported Discord author to a real account (issue 17, docs/DATA.md) in real
// Chromium against the real server: an export is imported into the stopped server, john
// registers and reads the imported message (shown under the imported author), the owner
// merges the imported account into john, and john's open page shows the message as his at
// once (`user_merge`), with no reload.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startServer, BIN } from './lib/server.mjs';
import { launchBrowser, openUser, closeQuietly, message, waitConnected } from './lib/browser.mjs';

/** One DiscordChatExporter channel with one message by "Jöhn Doe" (nickname Johnny). */
function exportDoc() {
  const author = {
    id: '100000000000000001', name: 'Jöhn Doe', discriminator: '0000', nickname: 'Johnny',
    color: null, isBot: false, roles: [], avatarUrl: '',
  };
  return {
    guild: { id: '81384788765712384', name: 'Test Guild', iconUrl: '' },
    channel: { id: '200000000000000001', type: 'GuildTextChat', categoryId: '1', category: 'Text', name: 'old-times', topic: '' },
    dateRange: { after: null, before: null },
    exportedAt: '2024-05-01T10:00:00+00:00',
    messages: [{
      id: '300000000000000001', type: 'Default', timestamp: '2024-04-01T10:00:00+00:00', timestampEdited: null,
      callEndedTimestamp: null, isPinned: false, content: 'a message from the Discord days', author,
      attachments: [], embeds: [], stickers: [], reactions: [], mentions: [],
    }],
    messageCount: 1,
  };
}

describe('merging an imported author into a real account', { timeout: 90_000 }, () => {
  /** @type {Awaited<ReturnType<typeof startServer>>} */
  let server;
  /** @type {import('playwright-core').Browser} */
  let browser;
  /** @type {Awaited<ReturnType<typeof openUser>>|undefined} */
  let alice;
  /** @type {Awaited<ReturnType<typeof openUser>>|undefined} */
  let john;
  const dir = mkdtempSync(path.join(tmpdir(), 'md-merge-'));

  before(async () => {
    server = await startServer();
    browser = await launchBrowser();
    alice = await openUser(browser, server.url, 'alice'); // the owner
    await server.stop();
    const file = path.join(dir, 'old-times.json');
    writeFileSync(file, JSON.stringify(exportDoc()));
    execFileSync(BIN, ['import-discord', file], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', DATA_DIR: server.dataDir }, stdio: 'pipe', timeout: 30_000,
    });
    await server.start(`127.0.0.1:${server.port}`);
    await alice.page.reload();
    await waitConnected(alice.page);
    john = await openUser(browser, server.url, 'john');
  });

  after(async () => {
    await closeQuietly(alice);
    await closeQuietly(john);
    await browser?.close().catch(() => {});
    await server?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('shows the moved message under john on his open page as soon as the owner merges', async () => {
    const page = /** @type {NonNullable<typeof john>} */ (john).page;
    await page.locator('#sidebar .chan.text[data-channel="old-times"]').click();
    const m = message(page, 'a message from the Discord days');
    await m.waitFor();
    const author = page.locator('#messages .msg .author').first();
    assert.equal(await author.textContent(), 'Johnny');
    const owner = /** @type {NonNullable<typeof alice>} */ (alice).page;
    const r = await owner.evaluate(() => fetch('/api/admin/merge-account', {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ from: 'J_hn_Doe', into: 'john' }),
    }).then(async (x) => ({ status: x.status, body: await x.json() })));
    assert.equal(r.status, 200, JSON.stringify(r.body));
    // No reload: the event re-labels what the page holds.
    await page.waitForFunction(() => document.querySelector('#messages .msg .author')?.textContent === 'john');
    await page.locator('#members .member[data-user="J_hn_Doe"]').waitFor({ state: 'detached' });
    assert.deepEqual(/** @type {NonNullable<typeof john>} */ (john).problems, []);
  });
});
