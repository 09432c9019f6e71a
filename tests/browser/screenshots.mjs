// Takes the README's screenshots of the main screen, with a small realistic conversation:
//   docs/screenshot-desktop.png (1280×800), docs/screenshot-search.png (the search results),
//   docs/screenshot-dm-picker.png ("New message", the people picker of direct messages),
//   docs/screenshot-phone.png (360×740), and of the screens in docs/UI.md:
//   docs/screenshot-emoji.png and docs/screenshot-emoji-phone.png (the emoji picker),
//   docs/screenshot-settings.png (user settings), docs/screenshot-invites.png (the invite
//   dialog with its live invites), docs/screenshot-lightbox.png (an image opened from a
//   message) and docs/screenshot-video.png (the call window with two cameras, Chromium's
//   fake camera).
//   and for "Run a community" (issue 13) docs/screenshot-roles.png (server settings, Roles),
//   docs/screenshot-timeout.png (a timed-out member's countdown) and
//   docs/screenshot-members-phone.png (the Members page on a phone).
// Run: `cd tests/browser && node screenshots.mjs` (MD_BIN picks the server binary).

import path from 'node:path';
import { startServer, REPO } from './lib/server.mjs';
import { chromium } from 'playwright-core';
import { ARGS, CHROMIUM, launchBrowser, openUser, signIn, send, message, closeQuietly, waitConnected } from './lib/browser.mjs';

const OUT = path.join(REPO, 'docs');
const server = await startServer({ env: { SEND_RATE: '1000', SEND_BURST: '1000' } });
const browser = await launchBrowser();
/** @type {Awaited<ReturnType<typeof openUser>>[]} */
const users = [];
const deadline = setTimeout(() => {
  console.error('screenshots: timed out');
  process.exit(1);
}, 180_000); // generous: the shared build machine can be slow

try {
  const alice = await openUser(browser, server.url, 'alice');
  const bob = await openUser(browser, server.url, 'bob');
  const carol = await openUser(browser, server.url, 'carol');
  const dave = await openUser(browser, server.url, 'dave');
  users.push(alice, bob, carol, dave);

  // Channels, made by the admin through the API the dialog uses.
  await alice.page.evaluate(async () => {
    for (const c of [
      { name: 'dev', kind: 'text', topic: 'Builds, reviews and release planning' },
      { name: 'random', kind: 'text', topic: '' },
      { name: 'gaming', kind: 'voice', topic: '' },
    ]) {
      await fetch('/api/channels', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(c) });
    }
  });
  await bob.page.locator('#sidebar .chan[data-channel="dev"]').waitFor();

  await send(alice.page, 'Morning all! The new server is up 🎉');
  await send(bob.page, 'Nice, it feels really snappy. Is voice working yet?');
  await send(alice.page, 'Voice lands next week. Meanwhile try **bold**, *italics* and `inline code`.');
  await send(carol.page, 'Like this?\n```rust\nfn main() {\n    println!("hello, mini-discord");\n}\n```');
  const code = message(bob.page, 'hello, mini-discord');
  await code.hover();
  await code.locator('.reply-btn').click();
  await send(bob.page, 'Code blocks too 👌');
  await send(dave.page, 'Release notes for 0.1 are up: https://example.com/mini-discord/0.1');
  await send(carol.page, '@bob could you review my pull request when you have a minute?');
  await send(carol.page, 'It is the one that adds reactions.');

  for (const [who, text, emoji] of /** @type {const} */ ([
    [bob, 'Morning all!', '🎉'], [carol, 'Morning all!', '🎉'], [dave, 'Morning all!', '❤️'],
    [alice, 'hello, mini-discord', '🔥'], [bob, 'hello, mini-discord', '🔥'], [alice, 'Release notes', '👍'],
  ])) {
    const m = message(who.page, text);
    await m.hover();
    await m.locator('.react-btn').click();
    await who.page.locator(`.picker button[aria-label="React with ${emoji}"]`).click();
  }

  // Unread activity elsewhere, and someone in a voice channel (through the signaling socket).
  await alice.page.locator('#sidebar .chan[data-channel="random"]').click();
  await send(alice.page, 'Anyone up for lunch?');
  await carol.page.evaluate(() => {
    /** @type {any} */ (window).__voice = new WebSocket(`ws://${location.host}/ws/voice?channel=lounge`);
  });
  await dave.context.close(); // dave goes offline
  users.pop();

  // Alice is typing while bob looks.
  await bob.page.locator('#sidebar .chan[data-channel="general"]').click();
  await bob.page.locator('#sidebar .chan.unread[data-channel="random"]').waitFor();
  await bob.page.locator('#members .member.offline[data-user="dave"]').waitFor();
  await alice.page.locator('#sidebar .chan[data-channel="general"]').click();
  const typing = bob.page.locator('#typing', { hasText: 'alice is typing' });
  for (const word of ['sure, ', 'I ', 'can ', 'take ', 'a ', 'look ', 'after ', 'lunch']) {
    if (await typing.isVisible()) break;
    await alice.page.locator('#composer-input').pressSequentially(word, { delay: 120 });
  }
  await typing.waitFor({ timeout: 8000 });
  await bob.page.mouse.move(1270, 790);
  await bob.page.waitForTimeout(300);
  await bob.page.screenshot({ path: path.join(OUT, 'screenshot-desktop.png') });

  // The search box and its results (docs/UI.md).
  await bob.page.fill('#search-input', 'review');
  await bob.page.press('#search-input', 'Enter');
  await bob.page.locator('#search-results .search-hit').first().waitFor();
  await bob.page.screenshot({ path: path.join(OUT, 'screenshot-search.png') });
  await bob.page.keyboard.press('Escape');

  // "New message": the people picker of direct messages (docs/DMS.md), two people chosen.
  await bob.page.locator('#new-dm-btn').click();
  const picker = bob.page.locator('dialog.dm-picker');
  await picker.locator('.dm-pick[data-user="carol"]').click();
  await picker.locator('#dm-picker-search').fill('da');
  await picker.locator('.dm-pick[data-user="dave"]').click();
  await bob.page.waitForTimeout(200);
  await bob.page.screenshot({ path: path.join(OUT, 'screenshot-dm-picker.png') });
  await picker.locator('button[value="cancel"]').click();
  await picker.waitFor({ state: 'detached' });

  // Run a community: roles for bob and carol, a channel only moderators see.
  await alice.page.evaluate(async () => {
    const call = async (/** @type {string} */ method, /** @type {string} */ url, /** @type {any} */ body) => {
      const r = await fetch(url, { method, headers: { 'Content-Type': 'application/json' }, body: body ? JSON.stringify(body) : undefined });
      if (!r.ok) throw new Error(`${method} ${url}: ${r.status}`);
      return r.status === 204 ? null : r.json();
    };
    const mod = await call('POST', '/api/roles', { name: 'Moderator', color: '#e67e22', hoist: true, permissions: ['moderate_members', 'kick_members', 'manage_messages'] });
    const regulars = await call('POST', '/api/roles', { name: 'Regulars', color: '#1abc9c', hoist: false, permissions: ['create_invites'] });
    await call('PUT', `/api/members/bob/roles/${mod.id}`);
    await call('PUT', `/api/members/carol/roles/${regulars.id}`);
    await call('POST', '/api/channels', { name: 'staff', kind: 'text', topic: 'Moderators only' });
    const everyone = (await call('GET', '/api/roles')).find((/** @type {any} */ r) => r.name === 'everyone');
    await call('PUT', `/api/channels/staff/overwrites/${everyone.id}`, { allow: [], deny: ['view_channel'] });
    await call('PUT', `/api/channels/staff/overwrites/${mod.id}`, { allow: ['view_channel'], deny: [] });
  });
  // Alice's own access did not change, so no event told her page the channel is private now.
  await alice.page.reload();
  await waitConnected(alice.page);
  await alice.page.locator('#sidebar .chan[data-channel="staff"] .chan-lock').waitFor();
  await alice.page.locator('#server-settings-btn').click();
  await alice.page.locator('#role-list .role-item[data-name="Moderator"] .role-pick').click();
  await alice.page.locator('#role-editor #perm-moderate_members:checked').waitFor();
  await alice.page.waitForTimeout(300);
  await alice.page.screenshot({ path: path.join(OUT, 'screenshot-roles.png') });
  await alice.page.keyboard.press('Escape');

  // bob times carol out for five minutes; carol sees the countdown.
  await bob.page.evaluate(() => fetch('/api/members/carol/timeout', {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ until_ts: Date.now() + 5 * 60_000, reason: 'cool down' }),
  }));
  await carol.page.locator('#timeout-notice', { hasText: 'You can talk again' }).waitFor();
  await carol.page.mouse.move(1270, 790);
  await carol.page.waitForTimeout(300);
  await carol.page.screenshot({ path: path.join(OUT, 'screenshot-timeout.png') });

  const phone = await openUser(browser, server.url, 'bob', { mode: 'login', viewport: { width: 360, height: 740 } });
  users.push(phone);
  await message(phone.page, 'It is the one that adds reactions.').waitFor();
  await phone.page.mouse.move(200, 24); // no hover toolbar over a message
  await phone.page.waitForTimeout(300);
  await phone.page.screenshot({ path: path.join(OUT, 'screenshot-phone.png') });

  // The emoji picker, on the phone (a bottom sheet) and on the desktop (next to its button).
  await phone.page.click('#emoji-btn');
  await phone.page.locator('.emoji-picker').waitFor();
  await phone.page.screenshot({ path: path.join(OUT, 'screenshot-emoji-phone.png') });
  await phone.page.keyboard.press('Escape');
  await alice.page.fill('#composer-input', '');
  await alice.page.click('#emoji-btn');
  await alice.page.keyboard.type('heart');
  await alice.page.locator('.emoji-picker .ep-emoji').nth(3).hover();
  await alice.page.screenshot({ path: path.join(OUT, 'screenshot-emoji.png') });
  await alice.page.keyboard.press('Escape');

  // User settings (one gear): account, sessions, appearance, notifications, voice.
  await alice.page.click('#user-settings-btn');
  await alice.page.locator('dialog.user-settings #us-sessions .us-session').first().waitFor();
  await alice.page.waitForTimeout(200);
  await alice.page.screenshot({ path: path.join(OUT, 'screenshot-settings.png') });
  await alice.page.keyboard.press('Escape');

  // The invite dialog, with a few live invites below the new link.
  await alice.page.evaluate(async () => {
    for (const b of [{ max_uses: 25, expires_in_s: 86_400 }, { max_uses: 100, expires_in_s: 7 * 86_400 }]) {
      await fetch('/api/invites', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(b) });
    }
  });
  await alice.page.click('#invite-btn');
  await alice.page.locator('#invite-list li.invite-item').nth(2).waitFor();
  await alice.page.screenshot({ path: path.join(OUT, 'screenshot-invites.png') });
  await alice.page.keyboard.press('Escape');

  // An image in a message, opened in the lightbox.
  const png = Buffer.from(await alice.page.evaluate(() => {
    const c = document.createElement('canvas');
    c.width = 1200;
    c.height = 700;
    const g = /** @type {CanvasRenderingContext2D} */ (c.getContext('2d'));
    const sky = g.createLinearGradient(0, 0, 0, 700);
    sky.addColorStop(0, '#1d2b64');
    sky.addColorStop(0.6, '#f8a65b');
    sky.addColorStop(1, '#f86b5b');
    g.fillStyle = sky;
    g.fillRect(0, 0, 1200, 700);
    g.fillStyle = '#ffe9a8';
    g.beginPath();
    g.arc(600, 470, 110, 0, Math.PI * 2);
    g.fill();
    g.fillStyle = '#20203a';
    g.fillRect(0, 520, 1200, 180);
    return c.toDataURL('image/png').split(',')[1];
  }), 'base64');
  await alice.page.locator('#attach-input').setInputFiles([{ name: 'sunset.png', mimeType: 'image/png', buffer: png }]);
  await alice.page.locator('.attach-chip.done[data-name="sunset.png"]').waitFor();
  await alice.page.fill('#composer-input', 'Sunset from the office roof');
  await alice.page.press('#composer-input', 'Enter');
  const photo = message(bob.page, 'Sunset from the office roof');
  await photo.locator('.attachment-image img').waitFor();
  await photo.locator('.attachment-image').click();
  await bob.page.waitForFunction(() => {
    const i = /** @type {HTMLImageElement|null} */ (document.querySelector('dialog.lightbox img'));
    return !!i && i.complete && i.naturalWidth > 0;
  });
  await bob.page.screenshot({ path: path.join(OUT, 'screenshot-lightbox.png') });
  await bob.page.keyboard.press('Escape');

  // The call window: two people with their cameras on in the `gaming` voice channel.
  const media = await chromium.launch({
    executablePath: CHROMIUM, headless: true, timeout: 30_000,
    args: [...ARGS, '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream', '--allow-loopback-in-peer-connection'],
  });
  try {
    /** @type {import('playwright-core').Page[]} */
    const pages = [];
    for (const name of ['alice', 'bob']) {
      const ctx = await media.newContext({ viewport: { width: 1280, height: 800 }, permissions: ['microphone', 'camera'] });
      const page = await ctx.newPage();
      page.setDefaultTimeout(15_000);
      await page.goto(server.url + '/');
      await signIn(page, name, 'login');
      await page.click('#sidebar .chan.voice[data-channel="gaming"]');
      await page.locator('#voice-panel[data-phase="connected"]').waitFor();
      pages.push(page);
    }
    for (const page of pages) {
      await page.click('#voice-panel .vp-camera');
      await page.locator('#voice-panel .vp-camera[aria-pressed="true"]').waitFor();
    }
    await pages[0].locator('#voice-video .vv-tile[data-user="bob"][data-video="true"]').waitFor();
    await pages[0].waitForTimeout(1500); // a few frames, so the tiles show a picture
    await pages[0].mouse.move(1270, 790);
    await pages[0].screenshot({ path: path.join(OUT, 'screenshot-video.png') });
  } finally {
    await media.close().catch(() => {});
  }
  await phone.page.locator('#menu-btn').click();
  await phone.page.locator('#server-settings-btn').click();
  await phone.page.locator('#member-admin-list .member-admin[data-member="carol"]').waitFor();
  await phone.page.waitForTimeout(300);
  await phone.page.screenshot({ path: path.join(OUT, 'screenshot-members-phone.png') });
  console.log(`screenshots written to ${OUT}`);
} finally {
  clearTimeout(deadline);
  for (const u of users) await closeQuietly(u);
  await browser.close().catch(() => {});
  await server.dispose();
}
