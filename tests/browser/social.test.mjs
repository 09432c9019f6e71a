// Profiles, server read state, notifications and the installable app (issue 14) in real
// Chromium against the real server:
// - a mention made while bob had no tab open shows as a mention badge when he comes back
//   (issue 18, bug 6: the count comes from the server), reading in one tab clears the other,
//   and the "new messages" line sits above the first unread message;
// - with notifications granted and the tab hidden, a mention makes a desktop notification;
// - the profile card opens from a name, and a display name set there shows for the others;
// - the service worker registers and controls the page, and the manifest is valid: Chromium
//   itself reports no installability errors.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { openTwoUsers, closeTwoUsers, message, send, waitConnected, CHROMIUM, ARGS } from './lib/browser.mjs';

/** Chromium's own console error when a page asks for a push subscription in an incognito-like
 * context (every Playwright context is one): it is about the test browser, not the app. */
const INCOGNITO_PUSH = /does not support the Push API in incognito mode/;

/** Records every `new Notification(...)` of the page (the real one still runs) and lets the
 * test say whether the page is hidden, which headless Chromium cannot do by itself. */
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

describe('profiles, read state, notifications, the installable app', { timeout: 120_000 }, () => {
  /** @type {any} */
  let f;

  before(async () => {
    f = await openTwoUsers({});
    await f.bob.context.grantPermissions(['notifications'], { origin: f.server.url });
    await f.bob.context.addInitScript(instrument);
    await f.bob.page.reload();
    await waitConnected(f.bob.page);
    // A second channel, so bob can be in one while things happen in the other.
    const r = await f.alice.page.evaluate(() => fetch('/api/channels', {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'random', kind: 'text' }),
    }).then((x) => x.status));
    assert.equal(r, 201);
    await f.alice.page.locator('#sidebar .chan.text[data-channel="random"]').waitFor();
    await f.bob.page.locator('#sidebar .chan.text[data-channel="random"]').waitFor();
  });

  after(() => closeTwoUsers(f));

  it('a mention made while bob was away shows as a badge from the server, and reading clears it everywhere', async () => {
    const { alice, bob } = f;
    await bob.page.close();
    await alice.page.click('#sidebar .chan.text[data-channel="random"]');
    await send(alice.page, 'first, before the mention');
    await send(alice.page, 'hey @bob, are you there?');

    // Bob comes back in two tabs: both show the unread channel and its mention count.
    const tab1 = await bob.context.newPage();
    bob.page = tab1;
    const tab2 = await bob.context.newPage();
    for (const tab of [tab1, tab2]) {
      // A loaded shared test machine can take a while for every module of the app.
      await tab.goto(f.server.url + '/#general', { waitUntil: 'domcontentloaded', timeout: 30_000 });
      await waitConnected(tab);
      const random = tab.locator('#sidebar .chan.text[data-channel="random"]');
      await random.and(tab.locator('.unread')).waitFor();
      assert.equal(await random.locator('.badge').textContent(), '1');
    }
    // Reading in one tab clears the other.
    await tab1.click('#sidebar .chan.text[data-channel="random"]');
    await message(tab1, 'hey @bob, are you there?').waitFor();
    // The "new messages" line sits above the first message bob had not read.
    const line = tab1.locator('#messages li.new-divider + li.msg');
    await line.waitFor();
    assert.match(await line.locator('.msg-content').textContent() ?? '', /first, before the mention/);
    const random2 = tab2.locator('#sidebar .chan.text[data-channel="random"]');
    await random2.locator('.badge').waitFor({ state: 'detached' });
    await tab2.locator('#sidebar .chan.text.unread[data-channel="random"]').waitFor({ state: 'detached' });
    await tab2.close();
  });

  it('with the tab hidden, a mention makes a desktop notification', async () => {
    const { alice, bob } = f;
    await bob.page.click('#sidebar .chan.text[data-channel="general"]');
    await bob.page.evaluate(() => {
      /** @type {any} */ (window).__hidden = true;
      document.dispatchEvent(new Event('visibilitychange'));
    });
    await alice.page.click('#sidebar .chan.text[data-channel="general"]');
    await send(alice.page, 'just a message');
    await send(alice.page, '@bob lunch at noon?');
    await bob.page.waitForFunction(() => /** @type {any} */ (window).__notes.length > 0, null, { timeout: 10_000 });
    const notes = await bob.page.evaluate(() => /** @type {any} */ (window).__notes);
    assert.equal(notes.length, 1, 'only the mention notifies (the default level)');
    assert.match(notes[0].title, /alice mentioned you in #general/);
    assert.equal(notes[0].body, '@bob lunch at noon?');
    await bob.page.evaluate(() => {
      /** @type {any} */ (window).__hidden = false;
      document.dispatchEvent(new Event('visibilitychange'));
    });
  });

  it('the profile card opens from a name, and a display name set on it shows for others', async () => {
    const { alice, bob } = f;
    await alice.page.click('#me-profile-btn');
    const card = alice.page.locator('#profile-card');
    await card.waitFor();
    await card.locator('#profile-display-name').fill('Alice Liddell');
    await card.locator('#profile-status-text').fill('down the rabbit hole');
    await card.locator('#profile-save').click();
    await card.waitFor({ state: 'hidden' });

    // The first message of alice's group carries her name ('@bob lunch' is grouped under it).
    const author = message(bob.page, 'just a message').locator('.author');
    await bob.page.waitForFunction(() => [...document.querySelectorAll('#messages .author')].some((e) => e.textContent === 'Alice Liddell'));
    await author.click();
    const bobsCard = bob.page.locator('#profile-card');
    await bobsCard.waitFor();
    assert.equal(await bobsCard.locator('.profile-name').textContent(), 'Alice Liddell');
    assert.equal(await bobsCard.locator('.profile-username').textContent(), '@alice');
    assert.equal(await bobsCard.locator('.profile-status-text').textContent(), 'down the rabbit hole');
    await bob.page.keyboard.press('Escape');
    await bobsCard.waitFor({ state: 'hidden' });
    await bob.page.locator('#members .member[data-user="alice"] .member-status-text', { hasText: 'down the rabbit hole' }).waitFor();
    // Do not disturb, chosen on her own card, shows to bob.
    await alice.page.click('#me-profile-btn');
    await alice.page.locator('#profile-status').selectOption('dnd');
    await bob.page.locator('#members .member[data-user="alice"] .status-dot.dnd').waitFor();
    assert.deepEqual(alice.problems.filter((p) => !INCOGNITO_PUSH.test(p)), []);
    assert.deepEqual(bob.problems.filter((p) => !INCOGNITO_PUSH.test(p)), []);
  });

  it('a new avatar shows on the others\' open pages without a reload (user_update)', async () => {
    const { alice, bob } = f;
    const url = await alice.page.evaluate(async () => {
      const canvas = document.createElement('canvas');
      canvas.width = canvas.height = 48;
      const g = /** @type {CanvasRenderingContext2D} */ (canvas.getContext('2d'));
      g.fillStyle = '#c0392b';
      g.fillRect(0, 0, 48, 48);
      const png = await new Promise((resolve) => canvas.toBlob(resolve, 'image/png'));
      const r = await fetch('/api/me/avatar', { method: 'PUT', body: /** @type {Blob} */ (png), headers: { 'Content-Type': 'image/png' } });
      return (await r.json()).user.avatar_url;
    });
    assert.match(url, /^\/api\/attachments\//);
    // Bob's member list and alice's messages in his open page, with no reload.
    await bob.page.locator(`#members .member[data-user="alice"] img.avatar-img[src="${url}"]`).waitFor();
    await bob.page.locator(`#messages img.avatar-img[src="${url}"]`).first().waitFor();
    assert.deepEqual(bob.problems.filter((p) => !INCOGNITO_PUSH.test(p)), []);
  });

  it('the notification control fits the header at 1280 px and on a 360 px phone', async () => {
    const { alice } = f;
    /** What the header's notification control shows, and whether it is cut off. */
    const measure = () => alice.page.evaluate(() => {
      const wrap = /** @type {HTMLElement} */ (document.getElementById('notify-wrap'));
      const select = /** @type {HTMLSelectElement} */ (document.getElementById('notify-level'));
      const head = /** @type {HTMLElement} */ (document.getElementById('chat-head'));
      const box = wrap.getBoundingClientRect();
      const st = getComputedStyle(select);
      // A select that shows its text must have room for it (the arrow takes about 20 px).
      const g = /** @type {CanvasRenderingContext2D} */ (document.createElement('canvas').getContext('2d'));
      g.font = `${st.fontWeight} ${st.fontSize} ${st.fontFamily}`;
      const text = select.selectedOptions[0]?.text ?? '';
      const textShown = Number(st.opacity) > 0;
      const cut = textShown && g.measureText(text).width > select.clientWidth - 20;
      return {
        w: box.width, right: box.right, vw: innerWidth, cut, text,
        overflow: head.scrollWidth > head.clientWidth + 1, title: select.title,
        level: document.getElementById('notify-icon')?.dataset.level,
      };
    });
    for (const size of [{ width: 1280, height: 800 }, { width: 360, height: 740 }]) {
      await alice.page.setViewportSize(size);
      await alice.page.waitForTimeout(100);
      const m = await measure();
      assert.ok(!m.cut, `${size.width} px: "${m.text}" is cut off`);
      assert.ok(!m.overflow, `${size.width} px: the header overflows`);
      assert.ok(m.w <= 40 && m.right <= m.vw, `${size.width} px: ${JSON.stringify(m)}`);
      assert.match(m.title, /^Notifications for #/);
    }
    await alice.page.setViewportSize({ width: 1280, height: 800 });
    // It still works, and the icon says the level in effect.
    await alice.page.locator('#notify-level').selectOption('nothing');
    await alice.page.locator('#notify-icon[data-level="nothing"]').waitFor();
    await alice.page.locator('#notify-level').selectOption('default');
    await alice.page.locator('#notify-icon[data-level="mentions"]').waitFor();
  });

  it('the service worker registers and the manifest makes the app installable', async () => {
    const { bob } = f;
    const script = await bob.page.evaluate(async () => {
      const reg = await navigator.serviceWorker.ready;
      return reg.active?.scriptURL ?? '';
    });
    assert.equal(new URL(script).pathname, '/sw.js');
    const res = await bob.page.evaluate(async () => {
      const r = await fetch('/manifest.webmanifest');
      return { type: r.headers.get('content-type'), json: await r.json() };
    });
    assert.equal(res.type, 'application/manifest+json');
    assert.equal(res.json.display, 'standalone');
    for (const icon of res.json.icons) {
      const size = await bob.page.evaluate(async (src) => {
        const r = await fetch(src);
        const b = await createImageBitmap(await r.blob());
        return { type: r.headers.get('content-type'), w: b.width, h: b.height };
      }, icon.src);
      assert.equal(size.type, 'image/png');
      assert.equal(`${size.w}x${size.h}`, icon.sizes);
    }
    // Chromium's own verdict on the manifest and installability, in a normal (not incognito)
    // profile: incognito windows are never installable.
    const profile = mkdtempSync(path.join(tmpdir(), 'md-pwa-'));
    const ctx = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, args: ARGS, headless: true, timeout: 30_000 });
    try {
      const page = ctx.pages()[0] ?? await ctx.newPage();
      await page.goto(f.server.url + '/');
      await page.evaluate(() => navigator.serviceWorker.ready.then(() => undefined));
      const cdp = await ctx.newCDPSession(page);
      const manifest = await cdp.send('Page.getAppManifest');
      assert.deepEqual(manifest.errors, [], JSON.stringify(manifest.errors));
      const inst = await cdp.send('Page.getInstallabilityErrors');
      assert.deepEqual(inst.installabilityErrors, [], JSON.stringify(inst.installabilityErrors));
      await cdp.detach();
    } finally {
      await ctx.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    }
  });
});
