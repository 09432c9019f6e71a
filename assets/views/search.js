// @ts-check
//! The search box in the channel header and its results panel (`GET /api/search`, newest
//! first). Enter searches, Escape closes, a result opens its channel. What is typed and the
//! last results are this view's own (like the message list's open picker), not app state; the
//! request itself is `actions.search`.

import { h, setChildren, formatTime } from '../dom.js';
import { channelLabel, shownName } from '../state.js';

/**
 * @typedef {import('../app.js').Actions} Actions
 * @typedef {import('../protocol.js').Message} Message
 */

/** Characters of a hit's text shown in the list. */
const HIT_CHARS = 200;

/** @param {Actions} actions @param {import('../state.js').State} state */
export function createSearch(actions, state) {
  const form = /** @type {HTMLFormElement} */ (document.getElementById('search-form'));
  const input = /** @type {HTMLInputElement} */ (document.getElementById('search-input'));
  const panel = /** @type {HTMLElement} */ (document.getElementById('search-results'));
  let asked = 0; // answers to older questions are dropped

  function close() {
    panel.hidden = true;
    panel.replaceChildren();
  }

  /** @param {string} q */
  async function run(q) {
    const mine = ++asked;
    panel.hidden = false;
    setChildren(panel, h('p', { class: 'search-summary' }, 'Searching…'));
    /** @type {Message[]} */
    let hits;
    try {
      hits = await actions.search(q);
    } catch (err) {
      if (mine !== asked) return;
      setChildren(panel, h('p', { class: 'search-empty', role: 'alert' },
        `Search failed: ${err instanceof Error ? err.message : String(err)}`));
      return;
    }
    if (mine !== asked || panel.hidden) return;
    if (!hits.length) {
      setChildren(panel, h('p', { class: 'search-empty' }, `No messages match “${q}”.`));
      return;
    }
    setChildren(panel,
      h('p', { class: 'search-summary' }, `${hits.length} result${hits.length === 1 ? '' : 's'} for “${q}”`),
      h('ul', { class: 'search-list' }, hits.map((m) => h('li', null,
        h('button', {
          class: 'search-hit', type: 'button', dataset: { id: String(m.id), channel: m.channel },
          onclick: () => {
            close();
            actions.selectChannel(m.channel);
          },
        },
        h('span', { class: 'search-meta' }, `${channelLabel(state, m.channel)} · ${shownName(state, m.author)} · ${formatTime(m.ts)}`),
        h('span', { class: 'search-text', dir: 'auto' },
          m.content.length > HIT_CHARS ? `${m.content.slice(0, HIT_CHARS - 1)}…` : m.content))))));
  }

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const q = input.value.trim();
    if (q) run(q);
    else close();
  });
  document.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && !panel.hidden) {
      ev.preventDefault();
      close();
      input.blur();
    }
  });
  return { close };
}
