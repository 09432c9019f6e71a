// @ts-check
//! The left column: text channels (with unread and mention markers), voice channels with who
//! is in each, and the signed-in user's panel. Renders from state; user actions go to `actions`.

import { h, reconcile, avatar, setChildren } from '../dom.js';
import { icon } from '../icons.js';
import { voiceIcon } from '../voice/panel.js';
import { isUnread } from '../state.js';

/**
 * @typedef {import('../state.js').State} State
 * @typedef {import('../app.js').Actions} Actions
 * @typedef {import('../protocol.js').Channel} Channel
 */

/** @param {State} s @param {Actions} actions */
export function renderSidebar(s, actions) {
  const lists = /** @type {HTMLElement} */ (document.getElementById('channel-lists'));
  const admin = !!s.me?.admin;
  const text = s.channels.filter((c) => c.kind === 'text');
  const voice = s.channels.filter((c) => c.kind === 'voice');

  /** @type {{key:string, kind:string, channel?:Channel, label?:string, chanKind?:'text'|'voice'}[]} */
  const rows = [
    { key: 'h-text', kind: 'head', label: 'Text channels', chanKind: 'text' },
    ...text.map((c) => ({ key: `t-${c.name}`, kind: 'text', channel: c })),
    { key: 'h-voice', kind: 'head', label: 'Voice channels', chanKind: 'voice' },
    ...voice.map((c) => ({ key: `v-${c.name}`, kind: 'voice', channel: c })),
  ];

  reconcile(
    lists,
    rows,
    (r) => r.key,
    (r) => {
      if (r.kind === 'head') return `${admin}`;
      const c = /** @type {Channel} */ (r.channel);
      if (r.kind === 'text') {
        const cs = s.chans.get(c.name);
        return JSON.stringify([c.topic, c.name === s.current, isUnread(s, c.name), cs?.mentions ?? 0]);
      }
      const members = s.voice.get(c.name);
      return JSON.stringify([c.topic, members ? [...members] : [], actions.voiceChannel() === c.name, admin]);
    },
    (r) => {
      if (r.kind === 'head') {
        return h('div', { class: 'chan-group' },
          h('span', { class: 'chan-group-label' }, r.label),
          admin && h('button', {
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
        return h('div', { class: 'chan-row' },
          h('button', {
            class: `chan text${active ? ' active' : ''}${unread ? ' unread' : ''}`,
            type: 'button',
            title: c.topic || c.name,
            'aria-current': active ? 'page' : null,
            'aria-label': `${c.name}${unread ? ' (unread)' : ''}${mentionCount ? `, ${mentionCount} mentions` : ''}`,
            dataset: { channel: c.name, focus: 'chan' },
            onclick: () => actions.selectChannel(c.name),
          },
          h('span', { class: 'chan-icon', 'aria-hidden': 'true' }, '#'),
          h('span', { class: 'chan-name' }, c.name),
          mentionCount > 0 && !active ? h('span', { class: 'badge', 'aria-hidden': 'true' }, String(mentionCount)) : null,
          ),
        );
      }
      const members = [...(s.voice.get(c.name) ?? new Map())].sort(([a], [b]) => a.localeCompare(b));
      const here = actions.voiceChannel() === c.name;
      return h('div', { class: 'chan-row voice-row' },
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
        ),
        // A voice channel is never "current", so the header's delete button cannot reach it.
        admin && h('button', {
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
      title: 'Voice settings',
      'aria-label': 'Voice settings',
      id: 'voice-settings-btn',
      onclick: () => actions.voiceSettings(),
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
