// User text is text: HTML and script in messages, edits, replies and channel topics render
// literally (a canary `window.__xss` that every payload tries to set stays 0), only http(s)
// links become links (with rel="noopener noreferrer"), and the markdown subset still works.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { openTwoUsers, closeTwoUsers, send, message } from './lib/browser.mjs';

const PAYLOADS = [
  '<img src=x onerror="window.__xss=1">',
  '<script>window.__xss=1</script>',
  '"><svg onload=window.__xss=1>',
  '<iframe srcdoc="<script>parent.__xss=1</script>"></iframe>',
  '<a href="javascript:window.__xss=1">plain html link</a>',
  '&lt;b&gt;entities stay entities&lt;/b&gt; &amp;',
];

describe('user text never becomes markup', { timeout: 90_000 }, () => {
  /** @type {Awaited<ReturnType<typeof openTwoUsers>>['server']} */
  let server;
  /** @type {Awaited<ReturnType<typeof openTwoUsers>>['browser']} */
  let browser;
  /** @type {Awaited<ReturnType<typeof openTwoUsers>>['alice']} */
  let alice;
  /** @type {Awaited<ReturnType<typeof openTwoUsers>>['bob']} */
  let bob;

  before(async () => {
    ({ server, browser, alice, bob } = await openTwoUsers({ SEND_RATE: '1000', SEND_BURST: '1000' }));
  });

  after(() => closeTwoUsers({ server, browser, alice, bob }));

  /** No script ran, and no markup came from user text, on either page. */
  async function assertInert() {
    for (const { page, username } of [alice, bob]) {
      await page.waitForTimeout(200); // let any onerror/onload fire
      assert.equal(await page.evaluate(() => /** @type {any} */ (window).__xss), 0, `canary untouched for ${username}`);
      const injected = await page.$$eval(
        '#messages .msg-content img, #messages .msg-content script, #messages .msg-content iframe, #messages svg:not(.icon), #chat-head img, #sidebar img',
        (els) => els.length,
      );
      assert.equal(injected, 0, `no injected elements for ${username}`);
      const links = await page.$$eval('#messages a, #chat-head a, #sidebar a', (els) =>
        els.map((a) => ({ href: a.getAttribute('href') ?? '', rel: a.getAttribute('rel'), target: a.getAttribute('target') })));
      for (const l of links) {
        assert.match(l.href, /^https?:\/\//, `only http(s) links (${l.href})`);
        assert.equal(l.rel, 'noopener noreferrer');
        assert.equal(l.target, '_blank');
      }
    }
  }

  it('renders HTML in messages as literal text', async () => {
    for (const p of PAYLOADS) await send(alice.page, p);
    for (const p of PAYLOADS) {
      const shown = message(bob.page, p);
      await shown.waitFor();
      assert.equal(await shown.locator('.msg-content').evaluate((el) => el.firstChild?.textContent), p);
    }
    await assertInert();
  });

  it('only makes http(s) links, never javascript: or data:', async () => {
    const bad = '[click me](javascript:window.__xss=1) and [data](data:text/html,<script>parent.__xss=1</script>)';
    const good = 'docs at [the site](https://example.com/a?b=1) or https://example.org/path.';
    await send(alice.page, bad);
    await send(alice.page, good);
    const badShown = message(bob.page, '[click me](javascript:window.__xss=1)');
    await badShown.waitFor();
    assert.equal(await badShown.locator('.msg-content').textContent(), bad);
    assert.equal(await badShown.locator('a').count(), 0);
    const goodShown = message(bob.page, 'docs at');
    const hrefs = await goodShown.locator('a').evaluateAll((els) => els.map((a) => [a.textContent, a.getAttribute('href')]));
    assert.deepEqual(hrefs, [['the site', 'https://example.com/a?b=1'], ['https://example.org/path', 'https://example.org/path']]);
    await badShown.locator('.msg-content').click(); // clicking the text does nothing
    await assertInert();
  });

  it('renders the markdown subset with markup inside it still inert', async () => {
    await send(alice.page, '**bold <img src=x onerror=window.__xss=1>** *it* `<b>code</b>` ```\n<script>window.__xss=1</script>\n```');
    const shown = message(bob.page, 'bold <img');
    await shown.waitFor();
    assert.equal(await shown.locator('strong').textContent(), 'bold <img src=x onerror=window.__xss=1>');
    assert.equal(await shown.locator('em').textContent(), 'it');
    assert.equal(await shown.locator(':not(pre) > code').textContent(), '<b>code</b>');
    assert.equal(await shown.locator('pre code').textContent(), '<script>window.__xss=1</script>');
    await assertInert();
  });

  it('keeps edits and reply previews inert too', async () => {
    const id = await send(alice.page, 'innocent');
    await message(bob.page, 'innocent').waitFor();
    const mine = alice.page.locator(`#messages li.msg[data-id="${id}"]`);
    await mine.hover();
    await mine.locator('.edit-btn').click();
    await alice.page.locator('.edit-input').fill('<img src=x onerror=window.__xss=1> edited');
    await alice.page.locator('.edit-input').press('Enter');
    const edited = bob.page.locator(`#messages li.msg[data-id="${id}"]`);
    await edited.locator('.edited').waitFor();
    assert.equal(await edited.locator('.msg-content').evaluate((el) => el.firstChild?.textContent), '<img src=x onerror=window.__xss=1> edited');
    await edited.hover();
    await edited.locator('.reply-btn').click();
    await send(bob.page, 'replying to that');
    const reply = message(alice.page, 'replying to that');
    await reply.locator('.reply-text', { hasText: '<img src=x' }).waitFor();
    await assertInert();
  });

  it('shows channel topics as text', async () => {
    const topic = '<img src=x onerror=window.__xss=1> <b>not bold</b>';
    const status = await alice.page.evaluate(async (topic) => {
      const res = await fetch('/api/channels', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ name: 'xss-topic', kind: 'text', topic }),
      });
      return res.status;
    }, topic);
    assert.equal(status, 201);
    await bob.page.locator('#sidebar .chan[data-channel="xss-topic"]').click();
    await bob.page.locator('#chat-topic').waitFor();
    assert.equal(await bob.page.locator('#chat-topic').textContent(), topic);
    assert.equal(await bob.page.locator('#chat-topic b').count(), 0);
    await bob.page.reload(); // and again from a fresh load (history + ready), not only live events
    await bob.page.locator('#chat-topic', { hasText: 'not bold' }).waitFor();
    await bob.page.locator('#sidebar .chan[data-channel="general"]').click();
    await message(bob.page, '<img src=x onerror="window.__xss=1">').waitFor();
    await assertInert();
  });

  // Issue 19, finding 7: a right-to-left override (U+202E) in a message must not escape the
  // text it came in and reorder what follows it (the "(edited)" note, the next formatted run).
  it('isolates bidi override characters to their own text', async () => {
    const text = 'invoice \u202Egnp.exe **then bold**';
    await send(alice.page, text);
    const m = message(bob.page, 'invoice');
    await m.waitFor();
    const where = await m.locator('.msg-content').evaluate((el) => {
      const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
      const out = [];
      for (let n = walker.nextNode(); n; n = walker.nextNode()) {
        if (/[\u202A-\u202E\u2066-\u2069]/.test(n.nodeValue ?? '')) out.push(n.parentElement?.tagName);
      }
      return out;
    });
    assert.deepEqual(where, ['BDI'], 'the text holding the override sits in its own <bdi>');
    // The bold run after it is outside the isolate, so the override cannot reach it.
    const boldInside = await m.locator('.msg-content bdi strong, .msg-content bdi b').count();
    assert.equal(boldInside, 0);
  });

  it('raised no page errors and no CSP violations', () => {
    assert.deepEqual(alice.problems, []);
    assert.deepEqual(bob.problems, []);
  });
});
