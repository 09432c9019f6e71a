// @ts-check
//! The emoji picker (issue 18): a floating panel with a search box, category tabs, recently
//! used emoji first, and a grid of every emoji in emojidata.js. The composer's smiley button
//! inserts the pick at the caret; a message's "more reactions" button reacts with it. It is
//! keyboard navigable (type to search, arrows move in the grid, Enter picks, Escape closes
//! and gives focus back), works by touch on a 360 px phone (there it is a sheet across the
//! bottom of the screen) and fetches nothing: the data ships with the app.
//!
//! One picker is open at a time; it lives outside the re-rendered views (on <body>), so a
//! re-render of the message list cannot close it under the user's finger.

import { h } from '../dom.js';
import { EMOJI_CATEGORIES } from '../emojidata.js';

const RECENT_KEY = 'md.emoji.recent';
/** Recently used emoji kept and shown first: two rows of the grid. */
const RECENT_MAX = 16;
/** Below this width the picker is a bottom sheet instead of a popover. */
const SHEET_BELOW_PX = 520;
/** A sheet goes above its button only if this much height is left for it there. */
const SHEET_MIN_PX = 300;
/** Search results shown at most (the whole list is about 1,200 emoji). */
const MAX_RESULTS = 120;

/** @returns {string[]} */
export function recentEmoji() {
  try {
    const v = JSON.parse(localStorage.getItem(RECENT_KEY) ?? '[]');
    return Array.isArray(v) ? v.filter((e) => typeof e === 'string').slice(0, RECENT_MAX) : [];
  } catch {
    return [];
  }
}

/** @param {string} emoji */
function rememberEmoji(emoji) {
  try {
    const next = [emoji, ...recentEmoji().filter((e) => e !== emoji)].slice(0, RECENT_MAX);
    localStorage.setItem(RECENT_KEY, JSON.stringify(next));
  } catch {
    /* storage disabled: no recent list */
  }
}

/** Every emoji's search words, by emoji. @type {Map<string, string>} */
const NAMES = new Map(EMOJI_CATEGORIES.flatMap((c) => c.emoji.map(([e, w]) => /** @type {[string, string]} */ ([e, w]))));

/** Emoji whose words start with every word of `query`. @param {string} query */
export function searchEmoji(query) {
  const words = query.toLowerCase().split(/[\s_:]+/).filter(Boolean);
  if (!words.length) return [];
  /** @type {string[]} */
  const out = [];
  for (const [e, names] of NAMES) {
    const have = names.split(' ');
    if (words.every((w) => have.some((n) => n.startsWith(w)))) out.push(e);
    if (out.length >= MAX_RESULTS) break;
  }
  return out;
}

/** @type {{close:()=>void}|null} */
let open = null;

/** Whether a picker is open (app-wide keys such as Escape leave it alone then). */
export function pickerOpen() {
  return !!open;
}

/**
 * Opens the picker next to `anchor` (closing any other). `onPick` gets each chosen emoji;
 * the picker then closes, unless Shift was held (pick several into the composer).
 * @param {{anchor:HTMLElement, label:string, onPick:(emoji:string)=>void, onClose?:()=>void}} opts
 */
export function openEmojiPicker(opts) {
  open?.close();
  const search = h('input', {
    type: 'search', class: 'ep-search', id: 'emoji-search', placeholder: 'Find an emoji', autocomplete: 'off',
    'aria-label': 'Find an emoji', spellcheck: false,
  });
  const grid = h('div', { class: 'ep-grid', role: 'listbox', 'aria-label': opts.label, tabindex: '-1' });
  const preview = h('div', { class: 'ep-preview', 'aria-hidden': 'true' });
  const tabs = h('div', { class: 'ep-tabs', role: 'toolbar', 'aria-label': 'Emoji categories' });
  const panel = h('div', { class: 'emoji-picker', role: 'dialog', 'aria-label': opts.label }, search, tabs, grid, preview);

  /** @param {string} e @param {string} [section] */
  const cell = (e, section = '') => h('button', {
    class: 'ep-emoji', type: 'button', role: 'option', 'aria-selected': 'false', tabindex: '-1',
    title: NAMES.get(e) ?? e, 'aria-label': NAMES.get(e) ?? e,
    dataset: { emoji: e, section },
  }, e);

  const renderAll = () => {
    const recent = recentEmoji();
    grid.replaceChildren(
      recent.length ? h('section', { class: 'ep-section', dataset: { cat: 'recent' } },
        h('h4', { class: 'ep-head', id: 'ep-recent' }, 'Recently used'),
        h('div', { class: 'ep-cells' }, recent.map((e) => cell(e, 'recent')))) : '',
      ...EMOJI_CATEGORIES.map((c) => h('section', { class: 'ep-section', dataset: { cat: c.id } },
        h('h4', { class: 'ep-head', id: `ep-${c.id}` }, c.name),
        h('div', { class: 'ep-cells' }, c.emoji.map(([e]) => cell(e, c.id))))),
    );
    tabs.replaceChildren(...[
      ...(recent.length ? [['recent', 'Recently used', '🕘']] : []),
      ...EMOJI_CATEGORIES.map((c) => [c.id, c.name, c.emoji[0][0]]),
    ].map(([id, name, face]) => h('button', {
      class: 'ep-tab', type: 'button', title: name, 'aria-label': name, tabindex: '-1',
      onclick: () => grid.querySelector(`[data-cat="${id}"]`)?.scrollIntoView({ block: 'start' }),
    }, face)));
  };
  const renderResults = (/** @type {string} */ q) => {
    const found = searchEmoji(q);
    grid.replaceChildren(found.length
      ? h('section', { class: 'ep-section' }, h('h4', { class: 'ep-head' }, 'Results'),
        h('div', { class: 'ep-cells' }, found.map((e) => cell(e, 'results'))))
      : h('p', { class: 'ep-empty' }, 'No emoji matches that.'));
  };
  renderAll();

  const cells = () => /** @type {HTMLButtonElement[]} */ (Array.from(grid.querySelectorAll('.ep-emoji')));
  /** @type {HTMLButtonElement|null} */
  let active = null;
  /** @param {HTMLButtonElement|null} el @param {boolean} focus */
  const setActive = (el, focus) => {
    active?.setAttribute('aria-selected', 'false');
    active = el;
    if (!el) {
      preview.textContent = '';
      return;
    }
    el.setAttribute('aria-selected', 'true');
    preview.replaceChildren(h('span', { class: 'ep-preview-emoji' }, el.dataset.emoji ?? ''),
      h('span', { class: 'ep-preview-name' }, el.title));
    if (focus) el.focus();
    else el.scrollIntoView({ block: 'nearest' });
  };

  /** @param {string} emoji @param {boolean} keep */
  const pick = (emoji, keep) => {
    rememberEmoji(emoji);
    opts.onPick(emoji);
    if (!keep) close();
  };
  grid.addEventListener('click', (ev) => {
    const b = /** @type {HTMLElement|null} */ (ev.target instanceof Element ? ev.target.closest('.ep-emoji') : null);
    if (b?.dataset.emoji) pick(b.dataset.emoji, ev.shiftKey);
  });
  grid.addEventListener('pointerover', (ev) => {
    const b = ev.target instanceof Element ? ev.target.closest('.ep-emoji') : null;
    if (b instanceof HTMLButtonElement) setActive(b, false);
  });
  search.addEventListener('input', () => {
    const q = search.value.trim();
    if (q) renderResults(q);
    else renderAll();
    setActive(cells()[0] ?? null, false);
    grid.scrollTop = 0;
  });

  /** Cells per row of the grid, from the layout: the cells that share the first one's top. */
  const perRow = () => {
    const all = cells();
    const section = active?.parentElement ?? all[0]?.parentElement;
    const row = section ? Array.from(section.children) : [];
    const top = /** @type {HTMLElement|undefined} */ (row[0])?.offsetTop;
    return Math.max(1, row.filter((c) => /** @type {HTMLElement} */ (c).offsetTop === top).length);
  };
  panel.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') {
      ev.preventDefault();
      ev.stopPropagation();
      close();
      opts.anchor.focus();
      return;
    }
    const all = cells();
    const inSearch = ev.target === search;
    if (ev.key === 'Enter' && inSearch) {
      ev.preventDefault();
      const e = active?.dataset.emoji ?? all[0]?.dataset.emoji;
      if (e) pick(e, ev.shiftKey);
      return;
    }
    const moves = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: perRow(), ArrowUp: -perRow() };
    if (ev.key in moves) {
      if (inSearch && (ev.key === 'ArrowLeft' || ev.key === 'ArrowRight')) return; // moves the caret
      ev.preventDefault();
      if (!all.length) return;
      const at = active ? all.indexOf(active) : -1;
      if (inSearch) return setActive(all[Math.max(0, at)], true);
      const next = at + moves[/** @type {keyof typeof moves} */ (ev.key)];
      if (next < 0) {
        search.focus();
        return;
      }
      setActive(all[Math.min(all.length - 1, next)], true);
      return;
    }
    if (!inSearch && ev.key.length === 1 && !ev.ctrlKey && !ev.metaKey && !ev.altKey && ev.key !== ' ') {
      // Typing anywhere in the picker searches (and is not an app-wide shortcut such as `?`).
      ev.stopPropagation();
      search.focus();
    }
  });

  const onOutside = (/** @type {PointerEvent} */ ev) => {
    const t = /** @type {Node} */ (ev.target);
    if (!panel.contains(t) && !opts.anchor.contains(t)) close();
  };
  const place = () => {
    const a = opts.anchor.getBoundingClientRect();
    if (window.innerWidth < SHEET_BELOW_PX) {
      // A sheet across the screen: just above its button when there is room (the composer's
      // text stays in sight while picking), else along the bottom edge.
      panel.classList.add('sheet');
      panel.style.left = panel.style.top = '';
      const room = a.top - 16;
      const above = room >= SHEET_MIN_PX && a.top > window.innerHeight / 2;
      panel.style.bottom = above ? `${Math.round(window.innerHeight - a.top + 8)}px` : '';
      panel.style.maxHeight = above ? `${Math.round(room)}px` : '';
      return;
    }
    panel.classList.remove('sheet');
    panel.style.bottom = panel.style.maxHeight = '';
    const w = panel.offsetWidth;
    const ph = panel.offsetHeight;
    const left = Math.max(8, Math.min(a.right - w, window.innerWidth - w - 8));
    const above = a.top - ph - 8;
    const top = above >= 8 ? above : Math.min(a.bottom + 8, window.innerHeight - ph - 8);
    panel.style.left = `${Math.round(left)}px`;
    panel.style.top = `${Math.round(Math.max(8, top))}px`;
  };

  function close() {
    if (open !== handle) return;
    open = null;
    document.removeEventListener('pointerdown', onOutside, true);
    window.removeEventListener('resize', place);
    panel.remove();
    opts.anchor.setAttribute('aria-expanded', 'false');
    opts.onClose?.();
  }
  const handle = { close };
  open = handle;
  document.body.append(panel);
  place();
  opts.anchor.setAttribute('aria-expanded', 'true');
  document.addEventListener('pointerdown', onOutside, true);
  window.addEventListener('resize', place);
  setActive(cells()[0] ?? null, false);
  grid.scrollTop = 0;
  search.focus({ preventScroll: true });
  return handle;
}

/**
 * Inserts `text` at the caret of a text box (replacing a selection) and tells the box's
 * listeners (draft, counter, autocomplete) through an `input` event. Focus stays where it is,
 * so a Shift-pick keeps the picker usable.
 * @param {HTMLTextAreaElement|HTMLInputElement} box @param {string} text
 */
export function insertAtCaret(box, text) {
  const start = box.selectionStart ?? box.value.length;
  const end = box.selectionEnd ?? start;
  box.setRangeText(text, start, end, 'end');
  box.dispatchEvent(new Event('input', { bubbles: true }));
}
