// @ts-check
//! The right column: every account, online first, from `/api/users` combined with presence.

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

  /** @type {{key:string, head?:string, person?:{name:string, online:boolean, admin:boolean}}[]} */
  const rows = [
    { key: 'h-on', head: `Online — ${online.length}` },
    ...online.map((p) => ({ key: `u-${p.name}`, person: p })),
    ...(offline.length ? [{ key: 'h-off', head: `Offline — ${offline.length}` }] : []),
    ...offline.map((p) => ({ key: `u-${p.name}`, person: p })),
  ];
  reconcile(
    box,
    rows,
    (r) => r.key,
    (r) => (r.head ? r.head : JSON.stringify(r.person)),
    (r) => {
      if (r.head) return h('h3', { class: 'members-head' }, r.head);
      const p = /** @type {{name:string, online:boolean, admin:boolean}} */ (r.person);
      return h('div', {
        class: `member ${p.online ? 'online' : 'offline'}`,
        dataset: { user: p.name },
      },
      h('span', { class: 'avatar-wrap' },
        avatar(p.name),
        h('span', { class: `status-dot ${p.online ? 'online' : 'offline'}` })),
      h('span', { class: 'member-name' }, p.name),
      p.admin ? h('span', { class: 'crown', title: 'Admin' }, icon('crown')) : null,
      h('span', { class: 'visually-hidden' }, `${p.online ? 'online' : 'offline'}${p.admin ? ', admin' : ''}`),
      );
    },
  );
}
