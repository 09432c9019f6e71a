// @ts-check
//! The right column: every account, online first, from `/api/users` combined with presence;
//! while disconnected, everyone without a status and a line saying why.

import { h, reconcile, avatar } from '../dom.js';
import { icon } from '../icons.js';

/** @typedef {import('../state.js').State} State */

/** @param {State} s */
export function renderMembers(s) {
  const box = /** @type {HTMLElement} */ (document.getElementById('members'));
  const names = new Set([...s.users.keys(), ...s.presence.keys()]);
  /** @type {{name:string, online:boolean, admin:boolean}[]} */
  const people = [...names].map((name) => ({
    name,
    online: s.presence.get(name) === 'online',
    admin: !!s.users.get(name)?.admin,
  }));
  people.sort((a, b) => a.name.localeCompare(b.name, undefined, { sensitivity: 'base' }));
  const online = people.filter((p) => p.online);
  const offline = people.filter((p) => !p.online);
  // While this page is not connected, the presence it holds is stale (issue 18, bug 13):
  // say so, and show everyone without a status rather than as online.
  // (The first connect, attempt 0, has no presence yet to be stale: no notice then.)
  const unknown = s.conn.state === 'waiting' || (s.conn.state === 'connecting' && s.conn.attempt > 0);

  /** @type {{key:string, head?:string, notice?:string, person?:{name:string, online:boolean, admin:boolean}}[]} */
  const rows = unknown ? [
    { key: 'n-off', notice: 'Not connected — who is online is unknown until the connection is back.' },
    { key: 'h-all', head: `Members — ${people.length}` },
    ...people.map((p) => ({ key: `u-${p.name}`, person: { ...p, online: false } })),
  ] : [
    { key: 'h-on', head: `Online — ${online.length}` },
    ...online.map((p) => ({ key: `u-${p.name}`, person: p })),
    ...(offline.length ? [{ key: 'h-off', head: `Offline — ${offline.length}` }] : []),
    ...offline.map((p) => ({ key: `u-${p.name}`, person: p })),
  ];
  reconcile(
    box,
    rows,
    (r) => r.key,
    (r) => (r.notice ?? r.head ?? JSON.stringify([r.person, unknown])),
    (r) => {
      if (r.notice) return h('p', { class: 'members-offline', role: 'status' }, r.notice);
      if (r.head) return h('h3', { class: 'members-head' }, r.head);
      const p = /** @type {{name:string, online:boolean, admin:boolean}} */ (r.person);
      const status = unknown ? 'unknown' : p.online ? 'online' : 'offline';
      return h('div', {
        class: `member ${status}`,
        dataset: { user: p.name },
      },
      h('span', { class: 'avatar-wrap' },
        avatar(p.name),
        unknown ? null : h('span', { class: `status-dot ${status}` })),
      h('span', { class: 'member-name' }, p.name),
      p.admin ? h('span', { class: 'crown', title: 'Admin' }, icon('crown')) : null,
      h('span', { class: 'visually-hidden' }, `${unknown ? 'status unknown' : status}${p.admin ? ', admin' : ''}`),
      );
    },
  );
}
