// @ts-check
//! The left column: text channels (with unread and mention markers), voice channels with who
//! is in each, and the signed-in user's panel. Renders from state; user actions go to `actions`.

import { h, reconcile, avatar, setChildren } from '../dom.js';
import { icon } from '../icons.js';
import { voiceIcon } from '../voice/panel.js';
import { isUnread, dmLabel, dmClosed, isPairDm } from '../state.js';
import { can } from '../perms.js';

/**
 * @typedef {import('../state.js').State} State
 * @typedef {import('../app.js').Actions} Actions
 * @typedef {import('../protocol.js').Channel} Channel
 */

/** @param {State} s @param {Actions} actions */
export function renderSidebar(s, actions) {
  const lists = /** @type {HTMLElement} */ (document.getElementById('channel-lists'));
  const admin = !!s.me?.admin;
  const canCreate = can(s, 'manage_channels');
  const canEdit = canCreate || can(s, 'manage_roles');
  installChannelDrag(lists, s, actions);
  lists.classList.toggle('can-reorder', canCreate);
  // A two-person DM closed on this browser stays out of the list until something new comes.
  const rows = channelRows(s.channels.filter((c) => c.kind !== 'dm' || !dmClosed(s, c.name)));
  reconcile(
    lists,
    rows,
    (r) => r.key,
    (r) => {
      if (r.kind === 'head') return `${canCreate}${r.category ?? ''}${r.key}`;
      const c = /** @type {Channel} */ (r.channel);
      const extra = [!!c.private, canEdit, canCreate, c.category ?? null];
      if (r.kind === 'text') {
        const cs = s.chans.get(c.name);
        return JSON.stringify([c.topic, c.name === s.current, isUnread(s, c.name), cs?.mentions ?? 0, extra, c.kind === 'dm' ? dmLabel(s, c) : '']);
      }
      const members = s.voice.get(c.name);
      return JSON.stringify([c.topic, members ? [...members] : [], actions.voiceChannel() === c.name, admin, extra]);
    },
    (r) => {
      if (r.kind === 'head') {
        return h('div', { class: `chan-group${r.category != null ? ' category' : ''}`, dataset: { category: r.category ?? '' } },
          h('span', { class: 'chan-group-label' }, r.label),
          r.key === 'h-dm' && h('button', {
            class: 'icon-btn small', type: 'button', id: 'new-dm-btn',
            title: 'New message', 'aria-label': 'New message: start a direct message',
            dataset: { focus: 'new-dm' },
            onclick: () => actions.newDm(),
          }, icon('add')),
          canCreate && r.chanKind && h('button', {
            class: 'icon-btn small',
            type: 'button',
            title: `Create ${r.chanKind} channel`,
            'aria-label': `Create ${r.chanKind} channel`,
            dataset: { focus: `add-${r.chanKind}` },
            onclick: () => actions.openCreateChannel(/** @type {'text'|'voice'} */ (r.chanKind)),
          }, icon('add')),
        );
      }
      const c = /** @type {Channel} */ (r.channel);
      if (r.kind === 'text') {
        const active = c.name === s.current;
        const unread = isUnread(s, c.name) && !active;
        const mentionCount = s.chans.get(c.name)?.mentions ?? 0;
        const dm = c.kind === 'dm';
        const label = dm ? dmLabel(s, c) : c.name;
        return h('div', { class: `chan-row${dm ? ' dm-row' : ''}`, draggable: canCreate && !dm, dataset: { row: c.name } },
          h('button', {
            class: `chan text${active ? ' active' : ''}${unread ? ' unread' : ''}`,
            type: 'button',
            title: c.topic || label,
            'aria-current': active ? 'page' : null,
            'aria-label': `${label}${unread ? ' (unread)' : ''}${mentionCount ? `, ${mentionCount} mentions` : ''}`,
            dataset: { channel: c.name, focus: 'chan' },
            onclick: () => actions.selectChannel(c.name),
          },
          h('span', { class: 'chan-icon', 'aria-hidden': 'true' }, dm ? '@' : '#'),
          h('span', { class: 'chan-name' }, label),
          dm ? null : lockIcon(c),
          mentionCount > 0 && !active ? h('span', { class: 'badge', 'aria-hidden': 'true' }, String(mentionCount)) : null,
          ),
          canEdit && !dm && settingsButton(c, actions),
          dm && h('button', {
            class: 'icon-btn small dm-leave', type: 'button',
            title: isPairDm(c.name) ? `Close the conversation with ${label}` : `Leave the group with ${label}`,
            'aria-label': isPairDm(c.name) ? `Close the conversation with ${label}` : `Leave the group with ${label}`,
            dataset: { focus: 'dm-leave' },
            onclick: () => actions.leaveDm(c.name),
          }, icon('close')),
        );
      }
      const members = [...(s.voice.get(c.name) ?? new Map())].sort(([a], [b]) => a.localeCompare(b));
      const here = actions.voiceChannel() === c.name;
      return h('div', { class: 'chan-row voice-row', draggable: canCreate, dataset: { row: c.name } },
        h('button', {
          class: `chan voice${here ? ' connected' : ''}`,
          type: 'button',
          title: here ? `You are in ${c.name}` : c.topic || `Join ${c.name}`,
          'aria-current': here ? 'true' : null,
          'aria-label': `Voice channel ${c.name}, ${members.length} connected${here ? ', you are here' : ''}`,
          dataset: { channel: c.name, focus: 'chan' },
          onclick: () => actions.joinVoice(c.name),
        },
        h('span', { class: 'chan-icon', 'aria-hidden': 'true' }, icon('speaker')),
        h('span', { class: 'chan-name' }, c.name),
        lockIcon(c),
        ),
        canEdit && settingsButton(c, actions),
        // A voice channel is never "current", so the header's delete button cannot reach it.
        canCreate && h('button', {
          class: 'icon-btn small chan-delete',
          type: 'button',
          title: `Delete ${c.name}`,
          'aria-label': `Delete voice channel ${c.name}`,
          onclick: () => actions.deleteChannel(c.name),
        }, icon('trash')),
        members.length
          ? h('ul', { class: 'voice-members', 'aria-label': `In ${c.name}` },
            members.map(([user, st]) =>
              h('li', { class: 'voice-member' },
                avatar(user, 'tiny'),
                h('span', { class: 'vm-name' }, user),
                st.muted ? h('span', { class: 'vm-flag', title: 'Muted' }, icon('mic-off'), h('span', { class: 'visually-hidden' }, 'muted')) : null,
                st.deafened ? h('span', { class: 'vm-flag', title: 'Deafened' }, icon('sound-off'), h('span', { class: 'visually-hidden' }, 'deafened')) : null,
                st.video ? h('span', { class: 'vm-flag vm-camera', title: 'Camera on' }, voiceIcon('camera'), h('span', { class: 'visually-hidden' }, 'camera on')) : null,
                st.screen ? h('span', { class: 'vm-live', title: 'Sharing their screen' }, 'LIVE') : null,
              )))
          : null,
      );
    },
  );

  renderUserPanel(s, actions);
  const invite = /** @type {HTMLButtonElement} */ (document.getElementById('invite-btn'));
  invite.hidden = !admin;
}

/**
 * @typedef {{key:string, kind:'head'|'text'|'voice', channel?:Channel, label?:string,
 *   chanKind?:'text'|'voice', category?:string}} Row
 */

/**
 * The sidebar's rows: channels without a category under "Text channels" and "Voice
 * channels" (as in v1), then each category in the order of its first channel, with its text
 * channels before its voice channels; within a group by `position`.
 * @param {Channel[]} channels @returns {Row[]}
 */
export function channelRows(channels) {
  const order = new Map(channels.map((c, i) => [c.name, c.position ?? i]));
  const sorted = [...channels].sort((a, b) => (order.get(a.name) ?? 0) - (order.get(b.name) ?? 0));
  const loose = sorted.filter((c) => !c.category && c.kind !== 'dm');
  /** @type {Row[]} */
  const rows = [
    // Direct messages first, as Discord's home lists them (docs/DMS.md); the heading's +
    // starts one, so it is there with no DM yet.
    { key: 'h-dm', kind: 'head', label: 'Direct messages' },
    ...sorted.filter((c) => c.kind === 'dm').map((c) => ({ key: `d-${c.name}`, kind: /** @type {const} */ ('text'), channel: c })),
    { key: 'h-text', kind: 'head', label: 'Text channels', chanKind: 'text' },
    ...loose.filter((c) => c.kind === 'text').map((c) => ({ key: `t-${c.name}`, kind: /** @type {const} */ ('text'), channel: c })),
    { key: 'h-voice', kind: 'head', label: 'Voice channels', chanKind: 'voice' },
    ...loose.filter((c) => c.kind === 'voice').map((c) => ({ key: `v-${c.name}`, kind: /** @type {const} */ ('voice'), channel: c })),
  ];
  const categories = [...new Set(sorted.flatMap((c) => (c.category ? [c.category] : [])))];
  for (const cat of categories) {
    const inCat = sorted.filter((c) => c.category === cat);
    rows.push({ key: `h-cat-${cat}`, kind: 'head', label: cat, category: cat });
    for (const c of [...inCat.filter((x) => x.kind === 'text'), ...inCat.filter((x) => x.kind === 'voice')]) {
      rows.push({ key: `${c.kind === 'text' ? 't' : 'v'}-${c.name}`, kind: c.kind === 'voice' ? 'voice' : 'text', channel: c });
    }
  }
  return rows;
}

/** A private channel (only some roles see it) shows a lock. @param {Channel} c */
function lockIcon(c) {
  return c.private
    ? h('span', { class: 'chan-lock', title: 'Private channel' }, icon('lock'), h('span', { class: 'visually-hidden' }, ' (private)'))
    : null;
}

/** @param {Channel} c @param {Actions} actions */
function settingsButton(c, actions) {
  return h('button', {
    class: 'icon-btn small chan-settings',
    type: 'button',
    title: `Edit ${c.name}`,
    'aria-label': `Channel settings for ${c.name}`,
    dataset: { focus: 'chan-settings' },
    onclick: () => actions.openChannelSettings(c.name),
  }, icon('gear'));
}

/** @type {WeakSet<HTMLElement>} */
const dragReady = new WeakSet();

/**
 * Reordering by drag for `manage_channels`: drop a channel on another to take its place (and
 * its category), or on a category's heading to move it there. The server's `channel_update`
 * events then move it on every page, this one included.
 * @param {HTMLElement} lists @param {State} s @param {Actions} actions
 */
function installChannelDrag(lists, s, actions) {
  current = s;
  if (dragReady.has(lists)) return;
  dragReady.add(lists);
  let dragged = '';
  const target = (/** @type {Event} */ ev) =>
    /** @type {HTMLElement|null} */ (ev.target instanceof Element ? ev.target.closest('.chan-row, .chan-group') : null);
  lists.addEventListener('dragstart', (ev) => {
    const row = target(ev);
    dragged = row?.dataset.row ?? '';
    if (dragged && ev.dataTransfer) {
      ev.dataTransfer.effectAllowed = 'move';
      ev.dataTransfer.setData('text/plain', dragged);
    }
  });
  lists.addEventListener('dragover', (ev) => {
    const t = target(ev);
    if (!dragged || !t) return;
    ev.preventDefault();
    for (const el of lists.querySelectorAll('.drop-target')) if (el !== t) el.classList.remove('drop-target');
    t.classList.add('drop-target');
  });
  lists.addEventListener('dragend', () => {
    dragged = '';
    for (const el of lists.querySelectorAll('.drop-target')) el.classList.remove('drop-target');
  });
  lists.addEventListener('drop', (ev) => {
    const t = target(ev);
    const name = dragged;
    dragged = '';
    for (const el of lists.querySelectorAll('.drop-target')) el.classList.remove('drop-target');
    if (!t || !name) return;
    ev.preventDefault();
    const moves = t.dataset.row ? dropOnto(current?.channels ?? [], name, t.dataset.row)
      : t.classList.contains('chan-group') ? [{ name, patch: { category: t.dataset.category || null } }] : [];
    if (moves.length) actions.moveChannels(moves);
  });
}
/**
 * What dropping channel `name` onto channel `onto` changes: `name` takes `onto`'s place (and
 * category) among the channels of its kind, and every channel of that kind whose place
 * changed gets its new `position` (the server orders by kind, position, then id, and keeps
 * positions as given, so they are renumbered 0..n here).
 * @param {Channel[]} channels @param {string} name @param {string} onto
 * @returns {{name:string, patch:{position?:number, category?:string|null}}[]}
 */
export function dropOnto(channels, name, onto) {
  const moved = channels.find((c) => c.name === name);
  const target = channels.find((c) => c.name === onto);
  if (!moved || !target || moved === target) return [];
  /** @type {{name:string, patch:{position?:number, category?:string|null}}[]} */
  const moves = [];
  const category = target.category ?? null;
  if (moved.kind !== target.kind) {
    return category !== (moved.category ?? null) ? [{ name, patch: { category } }] : [];
  }
  const order = new Map(channels.map((c, i) => [c.name, c.position ?? i]));
  const same = channels.filter((c) => c.kind === moved.kind)
    .sort((a, b) => (order.get(a.name) ?? 0) - (order.get(b.name) ?? 0));
  const from = same.indexOf(moved);
  const to = same.indexOf(target);
  same.splice(from, 1);
  same.splice(to, 0, moved);
  same.forEach((c, i) => {
    /** @type {{position?:number, category?:string|null}} */
    const patch = {};
    if ((c.position ?? -1) !== i) patch.position = i;
    if (c === moved && category !== (moved.category ?? null)) patch.category = category;
    if (Object.keys(patch).length) moves.push({ name: c.name, patch });
  });
  // The dragged channel first, so it moves at once even if a later rename races.
  moves.sort((a, b) => (a.name === name ? -1 : b.name === name ? 1 : 0));
  return moves;
}

/** @type {State|null} the state the drop handler reads */
let current = null;

/** @param {State} s @param {Actions} actions */
function renderUserPanel(s, actions) {
  const panel = /** @type {HTMLElement} */ (document.getElementById('user-panel'));
  if (!s.me) return panel.replaceChildren();
  const canAsk = 'Notification' in window && Notification.permission === 'default';
  const sig = JSON.stringify([s.me.username, s.me.admin, canAsk, s.conn.state, s.me.avatar_url, s.me.display_name, s.me.status_text, s.myStatus]);
  if (panel.dataset.sig === sig) return;
  panel.dataset.sig = sig;
  const online = s.conn.state === 'ready';
  // What others see of you (issue 14): your chosen status while connected.
  const shown = online ? s.myStatus : 'offline';
  const label = { online: 'Online', idle: 'Idle', dnd: 'Do not disturb', invisible: 'Invisible', offline: 'Offline' }[shown];
  setChildren(panel,
    h('div', { class: 'me-card' },
      h('button', {
        class: 'avatar-wrap avatar-btn', type: 'button', id: 'avatar-btn',
        title: 'Change your picture', 'aria-label': 'Change your picture', onclick: () => actions.changeAvatar(),
      },
        avatar(s.me.username),
        h('span', { class: `status-dot ${shown}`, title: label })),
      h('button', {
        class: 'me-text link-btn', type: 'button', id: 'me-profile-btn', title: 'Your profile and status',
        onclick: (/** @type {MouseEvent} */ ev) => actions.openProfile(s.me?.username ?? '', /** @type {HTMLElement} */ (ev.currentTarget)),
      },
        h('span', { class: 'me-name' }, s.me.display_name || s.me.username),
        h('span', { class: 'me-sub' }, s.me.status_text || (s.me.admin ? `Admin · ${label}` : label))),
    ),
    canAsk
      ? h('button', {
        class: 'icon-btn',
        type: 'button',
        title: 'Enable desktop notifications for mentions',
        'aria-label': 'Enable desktop notifications for mentions',
        onclick: () => actions.enableNotifications(),
      }, icon('bell'))
      : null,
    h('button', {
      class: 'icon-btn',
      type: 'button',
      title: 'User settings',
      'aria-label': 'User settings',
      id: 'user-settings-btn',
      onclick: () => actions.userSettings(),
    }, voiceIcon('gear')),
    h('button', {
      class: 'icon-btn',
      type: 'button',
      title: 'Sign out',
      'aria-label': 'Sign out',
      id: 'logout-btn',
      onclick: () => actions.logout(),
    }, icon('logout')),
  );
}
