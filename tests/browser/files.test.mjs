// Files in chat in real Chromium against the real server: alice attaches an image and a text
// file with the attach button (progress, then ready), pastes an image, drops a file, sends;
// an upload slowed down shows its progress and can be cancelled; bob sees the
// thumbnail at its size, opens the lightbox and has a download link; a file URL without a
// session is 401; an avatar set from the user panel shows for the others.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { openTwoUsers, closeTwoUsers, message } from './lib/browser.mjs';

/** A PNG of `w`×`h` drawn on a canvas in the page, as bytes. @param {import('playwright-core').Page} page */
async function pngFrom(page, w, h) {
  const b64 = await page.evaluate(({ w, h }) => {
    const c = document.createElement('canvas');
    c.width = w;
    c.height = h;
    const g = /** @type {CanvasRenderingContext2D} */ (c.getContext('2d'));
    g.fillStyle = '#3a7';
    g.fillRect(0, 0, w, h);
    g.fillStyle = '#fff';
    g.fillRect(w / 4, h / 4, w / 2, h / 2);
    return c.toDataURL('image/png').split(',')[1];
  }, { w, h });
  return Buffer.from(b64, 'base64');
}

describe('files and images in chat', { timeout: 120_000 }, () => {
  /** @type {any} */
  let f;

  before(async () => {
    f = await openTwoUsers({});
  });

  after(() => closeTwoUsers(f));

  it('uploads with the attach button, sends, and the other side sees thumbnail and file', async () => {
    const { alice, bob } = f;
    const png = await pngFrom(alice.page, 800, 400);
    await alice.page.locator('#attach-input').setInputFiles([
      { name: 'sunset.png', mimeType: 'image/png', buffer: png },
      { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('some notes\n') },
    ]);
    await alice.page.locator('.attach-chip.done[data-name="sunset.png"]').waitFor();
    await alice.page.locator('.attach-chip.done[data-name="notes.txt"]').waitFor();
    const input = alice.page.locator('#composer-input');
    await input.fill('look at this');
    await input.press('Enter');
    await alice.page.locator('.attach-chip').first().waitFor({ state: 'detached' });

    const msg = message(bob.page, 'look at this');
    const img = msg.locator('.attachment-image img');
    await img.waitFor();
    // Shown at its known aspect ratio (no layout jump), from the thumbnail, and loaded.
    const size = await img.evaluate((el) => {
      const i = /** @type {HTMLImageElement} */ (el);
      return { w: i.width, h: i.height, src: i.getAttribute('src') };
    });
    assert.deepEqual([size.w, size.h], [400, 200]);
    assert.match(size.src ?? '', /^\/api\/attachments\/[0-9a-f]+\/thumb$/);
    await bob.page.waitForFunction(() => {
      const i = /** @type {HTMLImageElement|null} */ (document.querySelector('.attachment-image img'));
      return !!i && i.complete && i.naturalWidth > 0;
    });
    const link = msg.locator('.attachment-file a.attachment-name');
    assert.equal(await link.textContent(), 'notes.txt');

    // The lightbox shows the full image, with a download link.
    await msg.locator('.attachment-image').click();
    const full = bob.page.locator('dialog.lightbox img');
    await full.waitFor();
    await bob.page.waitForFunction(() => {
      const i = /** @type {HTMLImageElement|null} */ (document.querySelector('dialog.lightbox img'));
      return !!i && i.complete && i.naturalWidth === 800;
    });
    assert.match(await bob.page.locator('dialog.lightbox a.lightbox-download').getAttribute('href') ?? '', /^\/api\/attachments\/[0-9a-f]+$/);
    await bob.page.keyboard.press('Escape');
    await full.waitFor({ state: 'detached' });

    // Bob's browser can fetch the file with its cookie; without a session (and past the
    // browser's cache, which keeps these immutable files) it is 401.
    const href = /** @type {string} */ (await link.getAttribute('href'));
    assert.equal(await bob.page.evaluate(async (u) => (await fetch(u)).status, href), 200);
    assert.equal(await bob.page.evaluate(async (u) => (await fetch(u, { credentials: 'omit', cache: 'no-store' })).status, href), 401);
  });

  it('pastes an image into the composer and sends it without text', async () => {
    const { alice, bob } = f;
    const png = await pngFrom(alice.page, 120, 90);
    await alice.page.locator('#composer-input').focus();
    await alice.page.evaluate((b64) => {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const dt = new DataTransfer();
      dt.items.add(new File([bytes], 'image.png', { type: 'image/png' }));
      document.getElementById('composer-input')?.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true }));
    }, png.toString('base64'));
    await alice.page.locator('.attach-chip.done').waitFor();
    await alice.page.locator('#composer-input').press('Enter');
    await bob.page.waitForFunction(() => [...document.querySelectorAll('.attachment-image img')]
      .some((i) => /** @type {HTMLImageElement} */ (i).width === 120));
  });

  it('shows upload progress and cancels an upload', async () => {
    const { alice } = f;
    // Slow this page's uploads down (Chromium's own network emulation) so progress is seen.
    const cdp = await alice.context.newCDPSession(alice.page);
    await cdp.send('Network.enable');
    await cdp.send('Network.emulateNetworkConditions', {
      offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 256 * 1024,
    });
    try {
      await alice.page.locator('#attach-input').setInputFiles([
        { name: 'slow.bin', mimeType: 'application/octet-stream', buffer: Buffer.alloc(4_000_000, 7) },
      ]);
      const chip = alice.page.locator('.attach-chip.uploading[data-name="slow.bin"]');
      await chip.waitFor();
      await alice.page.waitForFunction(() => {
        const p = /** @type {HTMLProgressElement|null} */ (document.querySelector('.attach-chip.uploading progress'));
        return !!p && p.value > 0 && p.value < 100;
      });
      // Enter waits for uploads rather than sending without them.
      await alice.page.locator('#composer-input').fill('not yet');
      await alice.page.locator('#composer-input').press('Enter');
      assert.equal(await alice.page.locator('#messages li.outgoing').count(), 0);
      await chip.locator('.attach-cancel').click();
      await chip.waitFor({ state: 'detached' });
      await alice.page.locator('#composer-input').fill('');
    } finally {
      await cdp.send('Network.emulateNetworkConditions', {
        offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1,
      });
      await cdp.detach();
    }
  });

  it('takes a file dropped onto the channel', async () => {
    const { alice, bob } = f;
    await alice.page.evaluate(() => {
      const dt = new DataTransfer();
      dt.items.add(new File(['dropped bytes'], 'dropped.txt', { type: 'text/plain' }));
      const zone = /** @type {HTMLElement} */ (document.getElementById('messages-scroll'));
      zone.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true }));
      zone.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    });
    await alice.page.locator('.attach-chip.done[data-name="dropped.txt"]').waitFor();
    await alice.page.locator('#composer-input').fill('dropped one');
    await alice.page.locator('#composer-input').press('Enter');
    const card = message(bob.page, 'dropped one').locator('.attachment-file a.attachment-name');
    assert.equal(await card.textContent(), 'dropped.txt');
    assert.equal(await card.getAttribute('download'), 'dropped.txt');
  });

  it('sets an avatar, and the others see it on messages and in the member list', async () => {
    const { alice, bob } = f;
    const png = await pngFrom(alice.page, 300, 300);
    const chooser = alice.page.waitForEvent('filechooser');
    await alice.page.locator('#avatar-btn').click();
    await (await chooser).setFiles({ name: 'me.png', mimeType: 'image/png', buffer: png });
    await alice.page.locator('#user-panel img.avatar-img').waitFor();
    // Bob's page learns it with the user list (on load; there is no user_update event yet).
    await bob.page.reload();
    await bob.page.locator('#members .member[data-user="alice"] img.avatar-img').waitFor();
    const src = await message(bob.page, 'look at this').locator('img.avatar-img').getAttribute('src');
    assert.match(src ?? '', /^\/api\/attachments\/[0-9a-f]+\/thumb$/);
    await bob.page.waitForFunction(() => {
      const i = /** @type {HTMLImageElement|null} */ (document.querySelector('#members img.avatar-img'));
      return !!i && i.complete && i.naturalWidth === 300;
    });
    // The letter avatar stays for people without a picture.
    await bob.page.locator('#members .member[data-user="bob"] span.avatar').waitFor();
    assert.deepEqual(alice.problems, []);
    assert.deepEqual(bob.problems, []);
  });
});
