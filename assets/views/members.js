// @ts-check
//! The right column: every account from `/api/users` combined with presence. Online members
//! are grouped under their highest hoisted role (roles in rank order, as in Discord), the rest
//! under "Online", everyone offline under "Offline"; names show in their highest coloured
//! role's colour. A click on a name opens the profile card (views/profile.js). While
//! disconnected, everyone without a status and a line saying why.

import { h, reconcile, avatar, tint } from '../dom.js';
import { icon } from '../icons.js';
import { hoistedRole, nameColor, rolesByRank } from '../perms.js';
import { openProfile } from './profile.js';

/** @typedef {import('../state.js').State} State */
/** @typedef {{name:string, online:boolean, admin:boolean, color:string|null}} Person */

/** @param {State} s */
export function renderMembers(s) {
  const box = /** @type {HTMLElement} */ (document.getElementById('members'));
  if (!box.dataset.cardReady) {
    box.dataset.cardReady = '1';
    box.addEventListener('click', (ev) => {
      const row = /** @type {HTMLElement|null} */ (ev.target instanceof Element ? ev.target.closest('.member') : null);
      if (row?.dataset.user && last) openProfile(last, row.dataset.user, row);
    });
  }
  last = s;
  const names = new Set([...s.users.keys(), ...s.presence.keys()]);
  /** @type {Person[]} */
  const people = [...names].map((name) => ({
    name,
    online: s.presence.get(name) === 'online',
    admin: !!s.users.get(name)?.admin,
    color: nameColor(s, name),
  }));
  people.sort((a, b) => a.name.localeCompare(b.name, undefined, { sensitivity: 'base' }));
  const online = people.filter((p) => p.online);
  const offline = people.filter((p) => !p.online);
  // While this page is not connected, the presence it holds is stale (issue 18, bug 13):
  // say so, and show everyone without a status rather than as online.
  // (The first connect, attempt 0, has no presence yet to be stale: no notice then.)
  const unknown = s.conn.state === 'waiting' || (s.conn.state === 'connecting' && s.conn.attempt > 0);

  /** @type {{key:string, head?:string, notice?:string, person?:Person}[]} */
  let rows;
  if (unknown) {
    rows = [
      { key: 'n-off', notice: 'Not connected — who is online is unknown until the connection is back.' },
      { key: 'h-all', head: `Members — ${people.length}` },
      ...people.map((p) => ({ key: `u-${p.name}`, person: { ...p, online: false } })),
    ];
  } else {
    rows = [];
    const rest = [...online];
    for (const role of rolesByRank(s.roles).filter((r) => r.hoist)) {
      const inRole = rest.filter((p) => hoistedRole(s, p.name)?.id === role.id);
      if (!inRole.length) continue;
      rows.push({ key: `h-r${role.id}`, head: `${role.name} — ${inRole.length}` });
      rows.push(...inRole.map((p) => ({ key: `u-${p.name}`, person: p })));
      for (const p of inRole) rest.splice(rest.indexOf(p), 1);
    }
    rows.push({ key: 'h-on', head: `Online — ${rest.length}` });
    rows.push(...rest.map((p) => ({ key: `u-${p.name}`, person: p })));
    if (offline.length) rows.push({ key: 'h-off', head: `Offline — ${offline.length}` });
    rows.push(...offline.map((p) => ({ key: `u-${p.name}`, person: p })));
  }
  reconcile(
    box,
    rows,
    (r) => r.key,
    (r) => (r.notice ?? r.head ?? JSON.stringify([r.person, unknown])),
    (r) => {
      if (r.notice) return h('p', { class: 'members-offline', role: 'status' }, r.notice);
      if (r.head) return h('h3', { class: 'members-head' }, r.head);
      const p = /** @type {Person} */ (r.person);
      const status = unknown ? 'unknown' : p.online ? 'online' : 'offline';
      return h('div', {
        class: `member ${status}`,
        dataset: { user: p.name },
        role: 'button',
        tabindex: 0,
        'aria-haspopup': 'dialog',
        onkeydown: (/** @type {KeyboardEvent} */ ev) => {
          if (ev.key === 'Enter' || ev.key === ' ') {
            ev.preventDefault();
            /** @type {HTMLElement} */ (ev.currentTarget).click();
          }
        },
      },
      h('span', { class: 'avatar-wrap' },
        avatar(p.name),
        unknown ? null : h('span', { class: `status-dot ${status}` })),
      tint(h('span', { class: 'member-name' }, p.name), p.color),
      p.admin ? h('span', { class: 'crown', title: 'Owner' }, icon('crown')) : null,
      h('span', { class: 'visually-hidden' }, `${unknown ? 'status unknown' : status}${p.admin ? ', owner' : ''}`),
      );
    },
  );
}

/** @type {State|null} the state the click handler reads */
let last = null;
