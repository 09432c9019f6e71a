// The last of issue 18's everyday basics, in real Chromium against the real server: the
// emoji picker (composer and reactions, keyboard, a 360 px phone), user settings behind one
// gear (change the password and the old one stops working, other devices signed out; the
// sessions list; 12/24 h timestamps), and per-user voice volume up to 200 % through a
// GainNode.
//
// The app is not changed for testing: the volume test wraps AudioContext.prototype.createGain
// in an init script to see the app's own gain nodes.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { startServer } from './lib/server.mjs';
import { ARGS, CHROMIUM, PASSWORD, openUser, signIn, closeQuietly, send, message } from './lib/browser.mjs';

const NEW_PASSWORD = 'a much newer password';

describe('the newcomer\'s text client, part 3', { timeout: 90_000 }, () => {
  /** @type {Awaited<ReturnType<typeof startServer>>} */
  let server;
  /** @type {import('playwright-core').Browser} */
  let browser;
  /** @type {Awaited<ReturnType<typeof openUser>>} */
  let alice;
  /** @type {Awaited<ReturnType<typeof openUser>>} */
  let bob;

  before(async () => {
    server = await startServer();
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, timeout: 30_000, args: ARGS });
    alice = await openUser(browser, server.url, 'alice');
    bob = await openUser(browser, server.url, 'bob');
  });

  after(async () => {
    await closeQuietly(alice);
    await closeQuietly(bob);
    await browser?.close().catch(() => {});
    await server?.dispose();
  });

  it('the composer\'s emoji picker finds an emoji by name and inserts it at the caret, by mouse and by keyboard', async () => {
    const { page } = alice;
    await page.fill('#composer-input', 'party ');
    await page.click('#emoji-btn');
    await page.locator('.emoji-picker').waitFor();
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'emoji-search', 'the search box has focus');
    await page.keyboard.type('tada');
    await page.locator('.emoji-picker .ep-emoji[data-emoji="🎉"]').waitFor();
    await page.keyboard.press('Enter'); // the first result
    await page.locator('.emoji-picker').waitFor({ state: 'detached' });
    assert.equal(await page.inputValue('#composer-input'), 'party 🎉');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'composer-input');

    // Keyboard only: open, ArrowDown into the grid (Recently used first: 🎉), Right, Enter.
    await page.click('#emoji-btn');
    await page.locator('.emoji-picker .ep-section[data-cat="recent"] .ep-emoji[data-emoji="🎉"]').waitFor();
    await page.keyboard.press('ArrowDown');
    assert.equal(await page.evaluate(() => /** @type {HTMLElement} */ (document.activeElement)?.dataset.emoji), '🎉');
    await page.keyboard.press('ArrowRight');
    const second = await page.evaluate(() => /** @type {HTMLElement} */ (document.activeElement)?.dataset.emoji);
    assert.ok(second && second !== '🎉', `moved to the next emoji (${second})`);
    await page.keyboard.press('Enter');
    assert.equal(await page.inputValue('#composer-input'), `party 🎉${second}`);
    // Escape closes without inserting, and focus goes back to the button.
    await page.click('#emoji-btn');
    await page.keyboard.press('Escape');
    await page.locator('.emoji-picker').waitFor({ state: 'detached' });
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'emoji-btn');
    await page.locator('#composer-input').press('End');
    await page.locator('#composer-input').press('Enter');
    await message(page, `party 🎉${second}`).waitFor();
    await message(bob.page, `party 🎉${second}`).waitFor();
    assert.deepEqual(alice.problems, []);
  });

  it('reacts with any emoji from the full picker, and everyone sees it', async () => {
    const id = await send(bob.page, 'react to me with a pizza');
    const { page } = alice;
    const li = page.locator(`#messages li.msg[data-id="${id}"]`);
    await li.waitFor();
    await li.hover();
    await li.locator('.react-btn').click();
    await li.locator('.picker .pick-more').click();
    await page.locator('.emoji-picker').waitFor();
    await page.keyboard.type('pizza');
    await page.locator('.emoji-picker .ep-emoji[data-emoji="🍕"]').click();
    await page.locator('.emoji-picker').waitFor({ state: 'detached' });
    await li.locator('.reaction.mine[data-emoji="🍕"] .r-count', { hasText: '1' }).waitFor();
    await bob.page.locator(`#messages li.msg[data-id="${id}"] .reaction[data-emoji="🍕"]`).waitFor();
    assert.deepEqual(alice.problems, []);
  });

  it('on a 360 px phone the picker is a sheet inside the screen and widens nothing', async () => {
    const ctx = await browser.newContext({
      viewport: { width: 360, height: 740 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true,
    });
    try {
      const page = await ctx.newPage();
      await page.goto(server.url + '/');
      await signIn(page, 'bob', 'login');
      await page.tap('#emoji-btn');
      const box = await page.locator('.emoji-picker').boundingBox();
      assert.ok(box && box.x >= 0 && box.x + box.width <= 360 && box.y >= 0 && box.y + box.height <= 740, `on screen: ${JSON.stringify(box)}`);
      assert.equal(await page.evaluate(() => document.documentElement.scrollWidth), 360, 'the layout viewport stays at the device width');
      await page.locator('.emoji-picker .ep-emoji[data-emoji="👍"]').tap();
      assert.equal(await page.inputValue('#composer-input'), '👍');
    } finally {
      await ctx.close();
    }
  });

  it('switches timestamps between 12 h and 24 h, without a leading zero', async () => {
    const { page } = alice;
    await page.click('#user-settings-btn');
    await page.locator('dialog.user-settings').waitFor();
    const ts = page.locator('#messages li.msg .ts').last();
    await page.check('#us-time-24');
    await ts.filter({ hasNotText: /AM|PM/i }).waitFor();
    assert.match(await ts.innerText(), /^Today at \d{1,2}:\d{2}$/);
    assert.equal(await page.evaluate(async () => (await import('/dom.js')).clockTime(new Date(2026, 0, 1, 9, 5).getTime())), '9:05');
    assert.match(await page.locator('#us-time-example').innerText(), /21:05/);
    await page.check('#us-time-12');
    await ts.filter({ hasText: /AM|PM/i }).waitFor();
    assert.match(await ts.innerText(), /^Today at \d{1,2}:\d{2}\s?(AM|PM)$/i);
    assert.match(await page.evaluate(async () => (await import('/dom.js')).clockTime(new Date(2026, 0, 1, 9, 5).getTime())), /^9:05\s?AM$/);
    assert.equal(await page.evaluate(() => localStorage.getItem('md.timeFormat')), '12');
    // It survives a reload.
    await page.keyboard.press('Escape');
    await page.reload();
    await page.locator('#messages li.msg .ts').last().filter({ hasText: /AM|PM/i }).waitFor();
  });

  it('changes the password in user settings: the old one stops working and the other device is signed out', async () => {
    const other = await openUser(browser, server.url, 'alice', { mode: 'login' });
    try {
      const { page } = alice;
      await page.click('#user-settings-btn');
      const dialog = page.locator('dialog.user-settings');
      await dialog.waitFor();
      // The sessions list: this device, and the other one, with no token in sight.
      await dialog.locator('#us-sessions .us-session.current', { hasText: 'This device' }).waitFor();
      await dialog.locator('#us-sessions .us-session:not(.current)').waitFor();
      assert.equal(await dialog.locator('#us-sessions .us-session').count(), 2);

      await page.fill('#us-current-password', 'not my password');
      await page.fill('#us-new-password', NEW_PASSWORD);
      await page.fill('#us-new-password-again', NEW_PASSWORD);
      await page.click('#us-password-submit');
      await page.locator('#us-password-status.bad', { hasText: 'current password is wrong' }).waitFor();
      assert.equal(await dialog.isVisible(), true, 'the dialog stays open');

      await page.fill('#us-current-password', PASSWORD);
      await page.locator('#us-current-password').press('Enter'); // Enter changes it, and keeps the dialog
      await page.locator('#us-password-status.ok', { hasText: 'Password changed' }).waitFor();
      // The other device is signed out at once (its socket closed with 4001)...
      await other.page.locator('#auth').waitFor({ state: 'visible' });
      // ...and the list now holds only this one.
      await dialog.locator('#us-sessions .us-session').nth(1).waitFor({ state: 'detached' });
      await page.keyboard.press('Escape');
      // This device stays signed in and connected.
      await send(page, 'still signed in after the change');

      // The old password no longer works; the new one does.
      await other.page.fill('#auth-username', 'alice');
      await other.page.fill('#auth-password', PASSWORD);
      await other.page.click('#auth-submit');
      await other.page.locator('#auth-error', { hasText: /do not match/ }).waitFor();
      await other.page.fill('#auth-password', NEW_PASSWORD);
      await other.page.click('#auth-submit');
      await other.page.locator('#app').waitFor({ state: 'visible' });

      // Sign the other device out from the sessions list.
      await page.click('#user-settings-btn');
      await dialog.locator('#us-sessions .us-session:not(.current) .us-end').click();
      await other.page.locator('#auth').waitFor({ state: 'visible' });
      await dialog.locator('#us-sessions .us-session:not(.current)').waitFor({ state: 'detached' });
      await page.keyboard.press('Escape');
      assert.deepEqual(alice.problems, []);
    } finally {
      await closeQuietly(other);
    }
  });
});

describe('voice: per-user volume up to 200 %', { timeout: 60_000 }, () => {
  /** @type {Awaited<ReturnType<typeof startServer>>} */
  let server;
  /** @type {import('playwright-core').Browser} */
  let browser;
  /** @type {import('playwright-core').BrowserContext[]} */
  const contexts = [];

  before(async () => {
    server = await startServer();
    browser = await chromium.launch({
      executablePath: CHROMIUM, headless: true, timeout: 30_000,
      args: [...ARGS, '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream', '--allow-loopback-in-peer-connection'],
    });
  });

  after(async () => {
    for (const c of contexts) await c.close().catch(() => {});
    await browser?.close().catch(() => {});
    await server?.dispose();
  });

  /** @param {string} name */
  async function voiceUser(name) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, permissions: ['microphone'] });
    contexts.push(context);
    context.setDefaultTimeout(10_000);
    // Keep the app's gain nodes reachable, to read the real GainNode's gain.
    await context.addInitScript(() => {
      const orig = AudioContext.prototype.createGain;
      /** @type {GainNode[]} */
      const gains = [];
      AudioContext.prototype.createGain = function () {
        const g = orig.call(this);
        gains.push(g);
        return g;
      };
      /** @type {any} */ (window).__gains = gains;
    });
    const page = await context.newPage();
    await page.goto(server.url + '/');
    await signIn(page, name, 'register');
    await page.click('#sidebar .chan.voice[data-channel="lounge"]');
    await page.locator('#voice-panel[data-phase="connected"]').waitFor();
    return page;
  }

  it('the slider goes to 200 %, the GainNode gain is 2, and it is remembered per user', async () => {
    const alice = await voiceUser('alice');
    await voiceUser('bob');
    await alice.locator('#voice-panel .vp-person[data-user="bob"][data-state="connected"]').waitFor();
    await alice.locator('#voice-audio audio[data-user="bob"]').waitFor({ state: 'attached' });
    await alice.click('#voice-panel .vp-person[data-user="bob"] .vp-voltoggle');
    const slider = alice.locator('#voice-panel .vp-person[data-user="bob"] .vp-volume');
    assert.equal(await slider.getAttribute('max'), '200');
    await slider.fill('200');
    await alice.locator('#voice-panel .vp-person[data-user="bob"] .vp-pct', { hasText: '200%' }).waitFor();
    const boosted = await alice.evaluate(() => ({
      gains: /** @type {GainNode[]} */ (/** @type {any} */ (window).__gains).map((g) => g.gain.value),
      el: (() => {
        const a = /** @type {HTMLAudioElement} */ (document.querySelector('#voice-audio audio[data-user="bob"]'));
        return { muted: a.muted, volume: a.volume };
      })(),
      stored: JSON.parse(localStorage.getItem('md.voice.volume') ?? '{}'),
    }));
    assert.ok(boosted.gains.includes(2), `a GainNode at 2: ${JSON.stringify(boosted.gains)}`);
    assert.deepEqual(boosted.el, { muted: true, volume: 1 }, 'the element only keeps the stream flowing');
    assert.deepEqual(boosted.stored, { bob: 2 });
    // Bob's voice really flows through the boost (the fake microphone beeps): tap the app's
    // GainNode with an analyser and look for sound within 3 s.
    const peak = await alice.evaluate(async () => {
      const g = /** @type {GainNode[]} */ (/** @type {any} */ (window).__gains).find((x) => x.gain.value === 2);
      if (!g) return -1;
      const an = g.context.createAnalyser();
      g.connect(an);
      const buf = new Float32Array(an.fftSize);
      let max = 0;
      for (const t0 = performance.now(); performance.now() - t0 < 3_000 && max < 0.01;) {
        await new Promise((r) => setTimeout(r, 50));
        an.getFloatTimeDomainData(buf);
        for (const v of buf) max = Math.max(max, Math.abs(v));
      }
      g.disconnect(an);
      return max;
    });
    assert.ok(peak >= 0.01, `sound comes out of the 200 % GainNode (peak ${peak})`);

    // Deafen silences the boosted voice too; undeafen brings back 2.
    await alice.click('#voice-panel .vp-deafen');
    await alice.waitForFunction(() => /** @type {GainNode[]} */ (/** @type {any} */ (window).__gains).some((g) => g.gain.value === 0)
      && !/** @type {GainNode[]} */ (/** @type {any} */ (window).__gains).some((g) => g.gain.value === 2));
    await alice.click('#voice-panel .vp-deafen');
    await alice.waitForFunction(() => /** @type {GainNode[]} */ (/** @type {any} */ (window).__gains).some((g) => g.gain.value === 2));

    // Back to 80 %: the element plays it again, at 0.8.
    await slider.fill('80');
    const plain = await alice.$eval('#voice-audio audio[data-user="bob"]', (e) => ({ muted: /** @type {HTMLAudioElement} */ (e).muted, volume: /** @type {HTMLAudioElement} */ (e).volume }));
    assert.deepEqual(plain, { muted: false, volume: 0.8 });
    await slider.fill('150');
    // Remembered per username: a reload restores 150 % for bob.
    await alice.reload();
    await alice.click('#sidebar .chan.voice[data-channel="lounge"]');
    await alice.locator('#voice-panel .vp-person[data-user="bob"][data-state="connected"]').waitFor();
    await alice.waitForFunction(() => /** @type {GainNode[]} */ (/** @type {any} */ (window).__gains).some((g) => g.gain.value === 1.5));
  });
});
