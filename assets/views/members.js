// @ts-check
//! The right column: every account, online first, from `/api/users` combined with presence;
//! while disconnected, everyone without a status and a line saying why. Names are display
//! names where set, with the custom status text under them (issue 14); a click on a member
//! opens their profile card (views/profile.js).

import { h, reconcile, avatar } from '../dom.js';
import { icon } from '../icons.js';
import { shownName } from '../state.js';

/** @typedef {import('../state.js').State} State */

/** @param {State} s */
export function renderMembers(s, openProfile = (/** @type {string} */ _name, /** @type {HTMLElement} */ _el) => {}) {
  const box = /** @type {HTMLElement} */ (document.getElementById('members'));
  if (!box.dataset.wired) {
    box.dataset.wired = '1';
    box.addEventListener('click', (ev) => {
      const el = ev.target instanceof Element ? ev.target.closest('.member[data-user]') : null;
      if (el instanceof HTMLElement && el.dataset.user) openProfile(el.dataset.user, el);
    });
  }
  const names = new Set([...s.users.keys(), ...s.presence.keys()]);
  /** @type {{name:string, online:boolean, admin:boolean, status:string, shown:string, text:string}[]} */
  const people = [...names].map((name) => {
    const status = s.presence.get(name) ?? 'offline';
    return {
      name,
      online: status !== 'offline',
      admin: !!s.users.get(name)?.admin,
      status,
      shown: shownName(s, name),
      text: s.users.get(name)?.status_text ?? '',
    };
  });
  people.sort((a, b) => a.shown.localeCompare(b.shown, undefined, { sensitivity: 'base' }));
  const online = people.filter((p) => p.online);
  const offline = people.filter((p) => !p.online);
  // While this page is not connected, the presence it holds is stale (issue 18, bug 13):
  // say so, and show everyone without a status rather than as online.
  // (The first connect, attempt 0, has no presence yet to be stale: no notice then.)
  const unknown = s.conn.state === 'waiting' || (s.conn.state === 'connecting' && s.conn.attempt > 0);

  /** @typedef {{name:string, online:boolean, admin:boolean, status:string, shown:string, text:string}} Person */
  /** @type {{key:string, head?:string, notice?:string, person?:Person}[]} */
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
      const p = /** @type {Person} */ (r.person);
      const status = unknown ? 'unknown' : p.online ? 'online' : 'offline';
      const dot = unknown ? 'unknown' : p.status;
      return h('div', {
        class: `member ${status} status-${dot}`,
        dataset: { user: p.name },
        role: 'button',
        tabIndex: 0,
        title: `@${p.name}`,
      },
      h('span', { class: 'avatar-wrap' },
        avatar(p.name),
        unknown ? null : h('span', { class: `status-dot ${dot}` })),
      h('span', { class: 'member-text' },
        h('span', { class: 'member-name' }, p.shown),
        p.text ? h('span', { class: 'member-status-text' }, p.text) : null),
      p.admin ? h('span', { class: 'crown', title: 'Admin' }, icon('crown')) : null,
      h('span', { class: 'visually-hidden' }, `${unknown ? 'status unknown' : dot === 'dnd' ? 'do not disturb' : dot}${p.admin ? ', admin' : ''}`),
      );
    },
  );
}
