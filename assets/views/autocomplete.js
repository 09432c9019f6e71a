// @ts-check
//! Composer autocomplete: `@name` (members), `#channel` (text channels) and `:shortcode:`
//! (emoji.js). It watches the word before the caret, shows at most `MAX_SUGGESTIONS` in a
//! listbox above the composer, and owns Up/Down/Tab/Enter/Escape while that list is open.

import { h } from '../dom.js';
import { EMOJI } from '../emoji.js';

/** Enough to pick from without covering the messages. */
const MAX_SUGGESTIONS = 8;

/**
 * @typedef {{label:string, insert:string, hint?:string}} Suggestion
 * @typedef {{users:()=>string[], channels:()=>string[]}} Sources
 */

/**
 * @param {HTMLTextAreaElement} input
 * @param {HTMLElement} host where the list is placed (above the composer)
 * @param {Sources} sources
 */
export function attachAutocomplete(input, host, sources) {
  const list = h('ul', { id: 'autocomplete', class: 'autocomplete', role: 'listbox', 'aria-label': 'Suggestions', hidden: true });
  host.prepend(list);
  input.setAttribute('aria-autocomplete', 'list');
  input.setAttribute('aria-controls', 'autocomplete');
  /** @type {Suggestion[]} */
  let items = [];
  let selected = 0;
  /** where the word being completed starts in `input.value` */
  let from = 0;

  function close() {
    items = [];
    list.hidden = true;
    list.replaceChildren();
    input.removeAttribute('aria-activedescendant');
  }

  function paint() {
    list.replaceChildren(...items.map((it, i) => h('li', {
      id: `ac-${i}`,
      class: `ac-item${i === selected ? ' selected' : ''}`,
      role: 'option',
      'aria-selected': i === selected ? 'true' : 'false',
      onmousedown: (/** @type {MouseEvent} */ ev) => {
        ev.preventDefault(); // keep the focus in the text box
        selected = i;
        accept();
      },
    }, h('span', { class: 'ac-label' }, it.label), it.hint ? h('span', { class: 'ac-hint' }, it.hint) : null)));
    list.hidden = items.length === 0;
    if (items.length) input.setAttribute('aria-activedescendant', `ac-${selected}`);
  }

  function update() {
    const caret = input.selectionStart ?? 0;
    if (caret !== input.selectionEnd) return close();
    const before = input.value.slice(0, caret);
    const m = /(?:^|\s)([@#:])([A-Za-z0-9_.+-]*)$/.exec(before);
    if (!m) return close();
    const [sigil, word] = [m[1], m[2].toLowerCase()];
    from = caret - word.length - 1;
    /** @type {Suggestion[]} */
    let found = [];
    if (sigil === '@') {
      found = [...sources.users(), 'everyone', 'here']
        .filter((n) => n.toLowerCase().startsWith(word))
        .map((n) => ({ label: `@${n}`, insert: `@${n} ` }));
    } else if (sigil === '#') {
      found = sources.channels()
        .filter((n) => n.startsWith(word))
        .map((n) => ({ label: `#${n}`, insert: `#${n} ` }));
    } else if (word.length >= 2) {
      // Two letters at least: ":)" and times like "10:30" must not open a list.
      found = EMOJI.filter(([code]) => code.startsWith(word) || code.includes(`_${word}`))
        .map(([code, e]) => ({ label: `${e}  :${code}:`, insert: `${e} ` }));
    }
    items = found.slice(0, MAX_SUGGESTIONS);
    selected = 0;
    paint();
  }

  function accept() {
    const it = items[selected];
    if (!it) return;
    const caret = input.selectionStart ?? input.value.length;
    input.value = input.value.slice(0, from) + it.insert + input.value.slice(caret);
    const at = from + it.insert.length;
    input.setSelectionRange(at, at);
    close();
    // Let the composer save the draft and resize, as for typed text.
    input.dispatchEvent(new Event('input', { bubbles: true }));
  }

  input.addEventListener('input', update);
  input.addEventListener('click', update);
  input.addEventListener('blur', close);

  return {
    /** Handles a key while the list is open; true when the composer must ignore it. @param {KeyboardEvent} ev */
    handleKey(ev) {
      if (!items.length || ev.isComposing) return false;
      if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') {
        selected = (selected + (ev.key === 'ArrowDown' ? 1 : items.length - 1)) % items.length;
        paint();
      } else if ((ev.key === 'Enter' && !ev.shiftKey) || ev.key === 'Tab') {
        accept();
      } else if (ev.key === 'Escape') {
        close();
      } else {
        return false;
      }
      ev.preventDefault();
      return true;
    },
    close,
  };
}
