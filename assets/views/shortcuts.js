// @ts-check
//! App-wide keyboard shortcuts: Alt+Up/Down to the previous/next text channel (with Shift:
//! the previous/next unread one), Ctrl+K (⌘K)
//! the quick switcher, `?` (outside a text field) the sheet listing every shortcut. The
//! listed keys are one table, `SHORTCUTS`, so the sheet cannot drift from what works.

import { h } from '../dom.js';
import { openModal } from '../ui.js';
import { isUnread, channelLabel } from '../state.js';

/**
 * @typedef {import('../state.js').State} State
 * @typedef {import('../app.js').Actions} Actions
 */

/** What the `?` sheet lists: [keys, what they do]. */
const SHORTCUTS = [
  ['Ctrl+K', 'Quick switcher: jump to a channel by name'],
  ['Alt+↑ / Alt+↓', 'Previous / next text channel'],
  ['Alt+Shift+↑ / Alt+Shift+↓', 'Previous / next unread channel'],
  ['Enter', 'Send the message'],
  ['Shift+Enter', 'New line'],
  ['↑ in an empty box', 'Edit your last message'],
  ['Tab / Enter', 'Take the highlighted @name, #channel or :emoji:'],
  ['Escape', 'Close a list, a dialog or a reply'],
  ['?', 'This list'],
];

/** The most channels the switcher shows at once: enough to scan, it filters as you type. */
const MAX_SWITCHER_ROWS = 10;

/** @param {KeyboardEvent} ev */
function inTextField(ev) {
  const t = /** @type {HTMLElement|null} */ (ev.target instanceof HTMLElement ? ev.target : null);
  return !!t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName));
}

/** @param {() => State} getState @param {Actions} actions */
export function installShortcuts(getState, actions) {
  document.addEventListener('keydown', (ev) => {
    const s = getState();
    if (!s.me || ev.isComposing) return;
    const dialogOpen = !!document.querySelector('dialog[open]');
    if ((ev.ctrlKey || ev.metaKey) && !ev.altKey && ev.key.toLowerCase() === 'k') {
      ev.preventDefault();
      if (!dialogOpen) openSwitcher(s, actions);
    } else if (ev.altKey && !ev.ctrlKey && !ev.metaKey && (ev.key === 'ArrowUp' || ev.key === 'ArrowDown')) {
      if (dialogOpen) return;
      const text = s.channels.filter((c) => c.kind === 'text');
      if (!text.length) return;
      ev.preventDefault();
      const at = Math.max(text.findIndex((c) => c.name === s.current), 0);
      const down = ev.key === 'ArrowDown';
      // Walk the list round from the current channel; with Shift, stop only at an unread one.
      for (let i = 1; i <= text.length; i++) {
        const c = text[(at + (down ? i : text.length * 2 - i)) % text.length];
        if (!ev.shiftKey || (c.name !== s.current && isUnread(s, c.name))) {
          if (c.name !== s.current) actions.selectChannel(c.name);
          return;
        }
      }
    } else if (ev.key === '?' && !ev.ctrlKey && !ev.metaKey && !ev.altKey && !inTextField(ev) && !dialogOpen) {
      ev.preventDefault();
      openSheet();
    }
  });
}

function openSheet() {
  openModal({
    title: 'Keyboard shortcuts',
    body: [h('dl', { class: 'shortcut-list', id: 'shortcut-list' },
      SHORTCUTS.flatMap(([keys, what]) => [h('dt', null, h('kbd', null, keys)), h('dd', null, what)]))],
  });
}

/** @param {State} s @param {Actions} actions */
function openSwitcher(s, actions) {
  const field = h('input', { id: 'switcher-input', type: 'search', autocomplete: 'off', spellcheck: false, placeholder: 'Where to?', 'aria-label': 'Channel name', 'aria-controls': 'switcher-list' });
  const list = h('ul', { id: 'switcher-list', class: 'switcher-list', role: 'listbox', 'aria-label': 'Channels' });
  /** @type {import('../protocol.js').Channel[]} */
  let shown = [];
  let selected = 0;
  const dialog = openModal({ title: 'Switch channel', body: [field, list] });

  /** @param {import('../protocol.js').Channel} c */
  function go(c) {
    dialog.close();
    if (c.kind !== 'voice') actions.selectChannel(c.name);
    else actions.joinVoice(c.name);
  }
  function paint() {
    const q = field.value.trim().replace(/^[#@]/, '').toLowerCase();
    // A DM goes by its members' names, never its internal one (docs/DMS.md).
    const label = (/** @type {import('../protocol.js').Channel} */ c) => channelLabel(s, c.name, { hash: false }).replace(/^🔊 /, '');
    const all = s.channels.filter((c) => label(c).toLowerCase().includes(q));
    // Names that start with what was typed first, then the rest, each in list order.
    const starts = (/** @type {import('../protocol.js').Channel} */ c) => label(c).toLowerCase().startsWith(q);
    shown = [...all.filter(starts), ...all.filter((c) => !starts(c))].slice(0, MAX_SWITCHER_ROWS);
    selected = Math.min(selected, Math.max(shown.length - 1, 0));
    list.replaceChildren(...shown.map((c, i) => h('li', {
      class: `switcher-item${i === selected ? ' selected' : ''}`,
      role: 'option',
      'aria-selected': i === selected ? 'true' : 'false',
      dataset: { channel: c.name },
      onclick: () => go(c),
    }, h('span', { class: 'switcher-kind', 'aria-hidden': 'true' }, c.kind === 'text' ? '#' : c.kind === 'dm' ? '@' : '🔊'), label(c))));
    if (!shown.length) list.replaceChildren(h('li', { class: 'hint' }, 'No channel by that name.'));
  }
  field.addEventListener('input', () => {
    selected = 0;
    paint();
  });
  field.addEventListener('keydown', (ev) => {
    if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') {
      ev.preventDefault();
      if (shown.length) selected = (selected + (ev.key === 'ArrowDown' ? 1 : shown.length - 1)) % shown.length;
      paint();
    } else if (ev.key === 'Enter') {
      ev.preventDefault();
      if (shown[selected]) go(shown[selected]);
    }
  });
  paint();
  field.focus();
}
