// @ts-check
//! The profile card's "Run a community" part (issue 13), added to the card of
//! views/profile.js with `addProfileSection`: owner or timed-out badges and the member's roles
//! (highest first, each in its colour). Also the role colour dot the settings views share.
//! User text only enters the page through `textContent` (`h`).

import { h, tint } from '../dom.js';
import { rolesOf, safeColor, countdown } from '../perms.js';
import { addProfileSection } from './profile.js';

addProfileSection(({ state: s, username, user }) => {
  const member = s.members.get(username);
  const roles = rolesOf(s, username);
  const until = member?.timeout_until_ts ?? 0;
  return h('div', { class: 'profile-roles' },
    user?.admin ? h('p', { class: 'profile-badge' }, 'Server owner') : null,
    until > Date.now() ? h('p', { class: 'profile-badge timed-out' }, `Timed out for ${countdown(until - Date.now())}`) : null,
    h('h3', { class: 'profile-sub' }, roles.length ? 'Roles' : 'No roles'),
    roles.length
      ? h('ul', { class: 'role-chips', 'aria-label': 'Roles' },
        roles.map((r) => h('li', { class: 'role-chip', dataset: { role: String(r.id) } },
          dot(r.color), tint(h('span', null, r.name), r.color))))
      : null);
});

/** A role's colour dot. @param {string|null} color */
export function dot(color) {
  const el = h('span', { class: 'role-dot', 'aria-hidden': 'true' });
  const c = safeColor(color);
  if (c) el.style.background = c;
  return el;
}
