// @ts-check
//! A member's profile card, opened from the member list: picture, name, owner or timed-out
//! status, and their roles (highest first, each in its colour). A plain <dialog>, so Escape
//! and a click outside close it; on a phone it is a sheet that fits the screen.

import { h, avatar, tint } from '../dom.js';
import { rolesOf, safeColor, countdown } from '../perms.js';

/** @typedef {import('../state.js').State} State */

/** @param {State} s @param {string} username @param {HTMLElement} [from] the row clicked, to place the card beside it */
export function openProfile(s, username, from) {
  document.getElementById('profile-card')?.remove();
  const user = s.users.get(username);
  const member = s.members.get(username);
  const roles = rolesOf(s, username);
  const until = member?.timeout_until_ts ?? 0;
  const card = h('dialog', { class: 'profile-card', id: 'profile-card', 'aria-label': `Profile of ${username}` },
    h('div', { class: 'profile-top' },
      avatar(username, 'large'),
      h('div', { class: 'profile-names' },
        h('h2', { class: 'profile-name' }, user?.display_name || username),
        h('p', { class: 'profile-user' }, `@${username}`),
        user?.admin ? h('p', { class: 'profile-badge' }, 'Server owner') : null,
        until > Date.now() ? h('p', { class: 'profile-badge timed-out' }, `Timed out for ${countdown(until - Date.now())}`) : null)),
    h('h3', { class: 'profile-sub' }, roles.length ? 'Roles' : 'No roles'),
    roles.length
      ? h('ul', { class: 'role-chips', 'aria-label': 'Roles' },
        roles.map((r) => h('li', { class: 'role-chip', dataset: { role: String(r.id) } },
          dot(r.color), tint(h('span', null, r.name), r.color))))
      : null,
  );
  card.addEventListener('click', (ev) => {
    if (ev.target === card) card.close(); // the backdrop
  });
  card.addEventListener('close', () => card.remove());
  document.body.append(card);
  card.showModal();
  if (from && !matchMedia('(max-width: 640px)').matches) {
    const r = from.getBoundingClientRect();
    card.style.margin = '0';
    card.style.top = `${Math.max(8, Math.min(r.top, innerHeight - card.offsetHeight - 8))}px`;
    card.style.left = `${Math.max(8, r.left - card.offsetWidth - 12)}px`;
  }
}

/** A role's colour dot. @param {string|null} color */
export function dot(color) {
  const el = h('span', { class: 'role-dot', 'aria-hidden': 'true' });
  const c = safeColor(color);
  if (c) el.style.background = c;
  return el;
}
