// "Run a community" (issue 13), the last browser gaps, in real Chromium against the real
// server: the channel settings dialog starts from the stored overwrites, dragging a role
// reorders it on the server, a rename reaches the other page live with its history, a
// timed-out member cannot join voice, and a voice channel's mode (issue 16) is chosen in
// the same dialog: disabled with the reason on a server without a media port, saved and
// shown again on one with it.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/server.mjs';
import { launchBrowser, openUser, closeQuietly, send, message } from './lib/browser.mjs';

/** @typedef {Awaited<ReturnType<typeof openUser>>} User */

/** A same-origin API call from `page` (its session cookie). @param {import('playwright-core').Page} page */
function api(page, method, path, body) {
  return page.evaluate(async ([m, p, b]) => {
    const r = await fetch(p, { method: m, headers: { 'Content-Type': 'application/json' }, body: b === undefined ? undefined : JSON.stringify(b) });
    const t = await r.text();
    return { status: r.status, body: t ? JSON.parse(t) : null };
  }, /** @type {[string, string, any]} */ ([method, path, body]));
}

/** @param {User} u @param {string} name */
async function openChannelSettings(u, name) {
  const row = u.page.locator('#sidebar .chan-row', { has: u.page.locator(`.chan[data-channel="${name}"]`) });
  await row.hover();
  await row.locator(`button[aria-label="Channel settings for ${name}"]`).click();
  return u.page.locator('dialog.modal:has(#chan-name)');
}

describe('run a community, the rest', { timeout: 90_000 }, () => {
  /** @type {Awaited<ReturnType<typeof startServer>>} */
  let server;
  /** @type {import('playwright-core').Browser} */
  let browser;
  /** @type {User} */
  let alice;
  /** @type {User} */
  let bob;

  before(async () => {
    server = await startServer();
    browser = await launchBrowser();
    alice = await openUser(browser, server.url, 'alice');
    bob = await openUser(browser, server.url, 'bob');
  });

  after(async () => {
    for (const u of [alice, bob]) await closeQuietly(u);
    await browser?.close().catch(() => {});
    await server?.dispose();
  });

  it('shows the stored allow / deny of a role in the channel settings dialog', async () => {
    const role = await api(alice.page, 'POST', '/api/roles', { name: 'helpers', permissions: [] });
    assert.equal(role.status, 201);
    assert.equal((await api(alice.page, 'POST', '/api/channels', { name: 'plans', kind: 'text' })).status, 201);
    const ow = await api(alice.page, 'PUT', `/api/channels/plans/overwrites/${role.body.id}`, { allow: ['attach_files'], deny: ['add_reactions'] });
    assert.equal(ow.status, 200);
    await alice.page.locator('#sidebar .chan[data-channel="plans"]').waitFor();
    // The overwrite reached this page live (channel_update), with no reload.
    const dialog = await openChannelSettings(alice, 'plans');
    await dialog.locator('.ow-role[data-name="helpers"]').click();
    const grid = dialog.locator('#ow-grid');
    await grid.locator('.ow-row[data-perm="attach_files"] .tri-opt.allow input:checked').waitFor();
    await grid.locator('.ow-row[data-perm="add_reactions"] .tri-opt.deny input:checked').waitFor();
    assert.equal(await grid.locator('.ow-row[data-perm="view_channel"] .tri-opt.neutral input').isChecked(), true);
    await alice.page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
  });

  it('renames a channel: the other page sees the new name live, with its history', async () => {
    await bob.page.locator('#sidebar .chan[data-channel="plans"]').click();
    await send(bob.page, 'the plan before the rename');
    const dialog = await openChannelSettings(alice, 'plans');
    await dialog.locator('#chan-name').fill('roadmap');
    await dialog.locator('button[type=submit]').click();
    await dialog.waitFor({ state: 'detached' });
    await bob.page.locator('#sidebar .chan.active[data-channel="roadmap"]').waitFor();
    assert.equal(await bob.page.locator('#sidebar .chan[data-channel="plans"]').count(), 0);
    await message(bob.page, 'the plan before the rename').waitFor();
    await alice.page.locator('#sidebar .chan[data-channel="roadmap"]').click();
    await message(alice.page, 'the plan before the rename').waitFor();
  });

  it('reorders roles by dragging, on the server and for everyone', async () => {
    assert.equal((await api(alice.page, 'POST', '/api/roles', { name: 'seniors', permissions: [] })).status, 201);
    const before = (await api(alice.page, 'GET', '/api/roles')).body.filter((/** @type {any} */ r) => r.name !== 'everyone');
    const [top, low] = [before[0], before[before.length - 1]];
    await alice.page.locator('#server-settings-btn').click();
    await alice.page.locator('#server-settings .settings-tab', { hasText: 'Roles' }).click();
    const list = alice.page.locator('#role-list');
    await list.locator(`.role-item[data-name="${low.name}"]`).dragTo(list.locator(`.role-item[data-name="${top.name}"]`));
    const deadline = Date.now() + 10_000;
    let after = before;
    while (Date.now() < deadline) {
      after = (await api(alice.page, 'GET', '/api/roles')).body.filter((/** @type {any} */ r) => r.name !== 'everyone');
      if (after[0].name === low.name) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(after[0].name, low.name, `dragged role is now the highest: ${JSON.stringify(after)}`);
    await list.locator('.role-item').first().and(list.locator(`[data-name="${low.name}"]`)).waitFor();
    await alice.page.keyboard.press('Escape');
  });

  it('shows the voice mode choice disabled, with the reason, without a media port', async () => {
    const dialog = await openChannelSettings(alice, 'lounge');
    const mode = dialog.locator('#chan-voice-mode');
    assert.equal(await mode.isDisabled(), true);
    assert.equal(await mode.inputValue(), 'mesh');
    await dialog.locator('#chan-voice-mode-hint', { hasText: 'SFU_UDP_PORT' }).waitFor();
    await alice.page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
  });

  it('refuses voice to a timed-out member', async () => {
    const until = Date.now() + 60_000;
    assert.equal((await api(alice.page, 'POST', '/api/members/bob/timeout', { until_ts: until, reason: 'cool down' })).status, 204);
    await bob.page.getByText('You are timed out.').first().waitFor();
    await bob.page.locator('#sidebar .chan.voice[data-channel="lounge"]').click();
    await bob.page.locator('.toast', { hasText: 'You are timed out' }).waitFor();
    await bob.page.waitForTimeout(1000);
    assert.equal(await bob.page.locator('#voice-panel[data-phase="connected"]').count(), 0);
    // The server's own refusal (403 on /ws/voice) is tested in tests/community.rs.
  });
});

describe('voice mode with a media server', { timeout: 60_000 }, () => {
  /** @type {Awaited<ReturnType<typeof startServer>>} */
  let server;
  /** @type {import('playwright-core').Browser} */
  let browser;
  /** @type {User} */
  let alice;

  before(async () => {
    // 0: any free port. The choice only needs the setting; no call is made here.
    server = await startServer({ env: { SFU_UDP_PORT: '0' } });
    browser = await launchBrowser();
    alice = await openUser(browser, server.url, 'alice');
  });

  after(async () => {
    await closeQuietly(alice);
    await browser?.close().catch(() => {});
    await server?.dispose();
  });

  it('picks mesh for a voice channel, stores it, and shows it again', async () => {
    const dialog = await openChannelSettings(alice, 'lounge');
    const mode = dialog.locator('#chan-voice-mode');
    assert.equal(await mode.isDisabled(), false);
    assert.equal(await mode.inputValue(), 'sfu', 'the default with a media port');
    await mode.selectOption('mesh');
    await dialog.locator('button[type=submit]').click();
    await dialog.waitFor({ state: 'detached' });
    const lounge = (await api(alice.page, 'GET', '/api/channels')).body.find((/** @type {any} */ c) => c.name === 'lounge');
    assert.equal(lounge.voice_mode, 'mesh');
    const log = (await api(alice.page, 'GET', '/api/audit-log?limit=1')).body[0];
    assert.equal(`${log.action} ${log.target}`, 'channel_update #lounge');
    const again = await openChannelSettings(alice, 'lounge');
    assert.equal(await again.locator('#chan-voice-mode').inputValue(), 'mesh');
    // A text channel's dialog has no voice mode.
    await alice.page.keyboard.press('Escape');
    await again.waitFor({ state: 'detached' });
    const text = await openChannelSettings(alice, 'general');
    assert.equal(await text.locator('#chan-voice-mode').count(), 0);
    await alice.page.keyboard.press('Escape');
  });
});
