// @ts-check
//! The right column: every account from `/api/users` combined with presence. Online members
//! are grouped under their highest hoisted role (roles in rank order, as in Discord), the rest
//! under "Online", everyone offline under "Offline"; names are display names where set (issue
//! 14), in their highest coloured role's colour (issue 13), with the custom status text under
//! them. A click on a member opens the profile card (views/profile.js). While disconnected,
//! everyone without a status and a line saying why.

import { h, reconcile, avatar, avatarUrls, tint } from '../dom.js';
import { icon } from '../icons.js';
import { hoistedRole, nameColor, rolesByRank } from '../perms.js';
import { shownName } from '../state.js';

/** @typedef {import('../state.js').State} State */
/** @typedef {{name:string, online:boolean, admin:boolean, color:string|null, status:string, shown:string, text:string}} Person */

/**
 * @param {State} s
 * @param {(username:string, from:HTMLElement) => void} [openProfile]
 */
export function renderMembers(s, openProfile = () => {}) {
  const box = /** @type {HTMLElement} */ (document.getElementById('members'));
  if (!box.dataset.wired) {
    box.dataset.wired = '1';
    box.addEventListener('click', (ev) => {
      const el = ev.target instanceof Element ? ev.target.closest('.member[data-user]') : null;
      if (el instanceof HTMLElement && el.dataset.user) openProfile(el.dataset.user, el);
    });
  }
  const names = new Set([...s.users.keys(), ...s.presence.keys()]);
  /** @type {Person[]} */
  const people = [...names].map((name) => {
    const status = s.presence.get(name) ?? 'offline';
    return {
      name,
      online: status !== 'offline',
      admin: !!s.users.get(name)?.admin,
      color: nameColor(s, name),
      status,
      shown: shownName(s, name),
      text: s.users.get(name)?.status_text ?? '',
    };
  });
  people.sort((a, b) => a.shown.localeCompare(b.shown, undefined, { sensitivity: 'base' }));
  const online = people.filter((p) => p.online);
  const offline = people.filter((p) => !p.online);
  // While this page is not connected, the presence it holds is stale (issue 18, bug 13):
  // show everyone without a status dot and say so, rather than a frozen "online" list.
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
    (r) => (r.notice ?? r.head ?? JSON.stringify([r.person, unknown, avatarUrls.get(r.person?.name ?? '') ?? null])),
    (r) => {
      if (r.notice) return h('p', { class: 'members-offline', role: 'status' }, r.notice);
      if (r.head) return h('h3', { class: 'members-head' }, r.head);
      const p = /** @type {Person} */ (r.person);
      const status = unknown ? 'unknown' : p.online ? 'online' : 'offline';
      const dot = unknown ? 'unknown' : p.status;
      return h('div', {
        class: `member ${status} status-${dot}`,
        dataset: { user: p.name },
        role: 'button',
        tabindex: 0,
        title: `@${p.name}`,
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
        unknown ? null : h('span', { class: `status-dot ${dot}` })),
      h('span', { class: 'member-text' },
        tint(h('span', { class: 'member-name' }, p.shown), p.color),
        p.text ? h('span', { class: 'member-status-text' }, p.text) : null),
      p.admin ? h('span', { class: 'crown', title: 'Owner' }, icon('crown')) : null,
      h('span', { class: 'visually-hidden' }, `${unknown ? 'status unknown' : dot === 'dnd' ? 'do not disturb' : dot}${p.admin ? ', owner' : ''}`),
      );
    },
  );
}
