// @ts-check
//! The people picker of direct messages (docs/DMS.md): "New message" (the + by *Direct
//! messages*) and "Add people" (the header of an open DM). A modal with a search field (by
//! display name or username), the chosen people as chips (× or Backspace takes one off),
//! and the matching people as a list to pick from, up to `max`. Resolves with the chosen
//! usernames, or null when cancelled. Names enter the page only as text (`h`).

import { h, avatar, setChildren } from '../dom.js';
import { openModal } from '../ui.js';
import { MAX_DM_MEMBERS } from '../protocol.js';

/** @typedef {import('../state.js').State} State */

/** At most this many people are listed at once: the search narrows it down. */
const MAX_LISTED = 50;

/**
 * @param {State} s
 * @param {{title:string, submitLabel:string, max:number, exclude?:string[]}} opts
 * @returns {Promise<string[]|null>}
 */
export function pickPeople(s, opts) {
  const me = s.me?.username ?? '';
  const exclude = new Set([me, ...(opts.exclude ?? [])]);
  const people = [...s.users.values()]
    .filter((u) => !exclude.has(u.username))
    .map((u) => ({ username: u.username, shown: u.display_name || u.username }))
    .sort((a, b) => a.shown.localeCompare(b.shown));
  /** @type {string[]} */
  const chosen = [];
  const shownOf = (/** @type {string} */ name) => people.find((p) => p.username === name)?.shown ?? name;

  const chips = h('div', { class: 'dm-chips', id: 'dm-picker-chips', 'aria-label': 'Chosen', role: 'list' });
  const search = /** @type {HTMLInputElement} */ (h('input', {
    id: 'dm-picker-search', class: 'dm-picker-search', type: 'search', autocomplete: 'off', autofocus: true,
    placeholder: 'Find people by name', 'aria-label': 'Find people by name', maxLength: 64,
  }));
  const list = h('ul', { class: 'dm-picker-list', id: 'dm-picker-list', 'aria-label': 'People' });
  const hint = h('p', { class: 'hint dm-picker-hint', 'aria-live': 'polite' });

  /** @param {string} name */
  function toggle(name) {
    const i = chosen.indexOf(name);
    if (i >= 0) chosen.splice(i, 1);
    else if (chosen.length < opts.max) chosen.push(name);
    paint();
  }

  function matches() {
    const q = search.value.trim().replace(/^@/, '').toLowerCase();
    return people.filter((p) => !q || p.shown.toLowerCase().includes(q) || p.username.toLowerCase().includes(q));
  }

  function paint() {
    setChildren(chips, ...chosen.map((name) => h('span', { class: 'dm-chip', role: 'listitem', dataset: { user: name } },
      h('span', { class: 'dm-chip-name' }, shownOf(name)),
      h('button', {
        class: 'dm-chip-remove', type: 'button', 'aria-label': `Remove ${shownOf(name)}`,
        onclick: () => {
          toggle(name);
          search.focus();
        },
      }, '×'))));
    const full = chosen.length >= opts.max;
    const found = matches();
    setChildren(list, ...found.slice(0, MAX_LISTED).map((p) => {
      const on = chosen.includes(p.username);
      return h('li', null, h('button', {
        class: `dm-pick${on ? ' chosen' : ''}`, type: 'button', dataset: { user: p.username },
        'aria-pressed': on ? 'true' : 'false', disabled: !on && full,
        onclick: () => {
          toggle(p.username);
          search.focus();
        },
      }, avatar(p.username, 'tiny'), h('span', { class: 'dm-pick-name' }, p.shown),
      p.shown !== p.username ? h('span', { class: 'dm-pick-user' }, `@${p.username}`) : null));
    }));
    if (!found.length) list.append(h('li', { class: 'hint' }, people.length ? 'Nobody by that name.' : 'There is nobody else here yet.'));
    hint.textContent = full ? `A group DM holds at most ${MAX_DM_MEMBERS} people, you included.` : '';
  }

  search.addEventListener('input', paint);
  search.addEventListener('keydown', (ev) => {
    // Enter with a name typed takes the first match (the form submits only with the field empty).
    if (ev.key === 'Enter' && search.value.trim()) {
      ev.preventDefault();
      const first = matches().find((p) => !chosen.includes(p.username));
      if (first) toggle(first.username);
      search.value = '';
      paint();
    } else if (ev.key === 'Backspace' && !search.value && chosen.length) {
      chosen.pop();
      paint();
    }
  });

  return new Promise((resolve) => {
    let picked = /** @type {string[]|null} */ (null);
    const dialog = openModal({
      title: opts.title,
      body: [chips, search, list, hint],
      submitLabel: opts.submitLabel,
      onSubmit: () => {
        if (!chosen.length) throw new Error('Pick at least one person.');
        picked = [...chosen];
      },
    });
    dialog.classList.add('dm-picker');
    dialog.addEventListener('close', () => resolve(picked));
    paint();
  });
}
