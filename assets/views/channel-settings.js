// @ts-check
//! One channel's settings (API.md v2): name, topic, slow mode, category and — for a voice
//! channel — the voice mode (mesh or media server, issue 16) for `manage_channels`, and per-role permission overwrites (allow / neutral / deny, as in
//! Discord) for `manage_roles`. Saving sends only what changed: one `PATCH` for the fields,
//! one `PUT` (or `DELETE`, when all is neutral again) per role whose overwrite changed.
//! Every page then hears `channel_update` / `channel_create` / `channel_delete`.

import { h, setChildren, tint } from '../dom.js';
import { rest, ApiError } from '../protocol.js';
import { toast, openModal } from '../ui.js';
import { refreshChannelPerms } from '../state.js';
import { can, isEveryone, rolesByRank, PERMISSIONS } from '../perms.js';
import { dot } from './profile-roles.js';

/** @typedef {import('../app.js').App} App */
/** @typedef {'allow'|'neutral'|'deny'} Tri */

/** The permissions that mean something per channel. */
export const CHANNEL_PERMS = ['view_channel', 'send_messages', 'attach_files', 'add_reactions', 'mention_everyone',
  'manage_messages', 'connect', 'speak', 'stream'];
/** Slow mode choices, [label, seconds]. */
export const SLOWMODES = /** @type {[string, number][]} */ ([
  ['Off', 0], ['5 seconds', 5], ['10 seconds', 10], ['30 seconds', 30], ['1 minute', 60], ['5 minutes', 300],
  ['15 minutes', 900], ['1 hour', 3600], ['6 hours', 21600],
]);

/** @param {App} app @param {string} name */
export function openChannelSettings(app, name) {
  const s = app.state;
  const ch = s.channels.find((c) => c.name === name);
  if (!ch) return;
  const fields = can(s, 'manage_channels');
  const perms = can(s, 'manage_roles');

  const nameIn = h('input', { id: 'chan-name', value: ch.name, maxLength: 32, pattern: '[a-z0-9_\\-]{1,32}', autocomplete: 'off', spellcheck: false, disabled: !fields });
  nameIn.addEventListener('input', () => {
    const fixed = nameIn.value.toLowerCase().replace(/\s+/g, '-').replace(/[^a-z0-9_-]/g, '');
    if (fixed !== nameIn.value) nameIn.value = fixed;
  });
  const topicIn = h('input', { id: 'chan-topic', value: ch.topic ?? '', maxLength: 200, autocomplete: 'off', dir: 'auto', disabled: !fields });
  const slow = h('select', { id: 'chan-slowmode', disabled: !fields || ch.kind !== 'text' },
    SLOWMODES.map(([label, v]) => h('option', { value: String(v) }, label)));
  const known = SLOWMODES.some(([, v]) => v === (ch.slowmode_s ?? 0));
  if (!known) slow.append(h('option', { value: String(ch.slowmode_s) }, `${ch.slowmode_s} seconds`));
  slow.value = String(ch.slowmode_s ?? 0);
  const categories = [...new Set(s.channels.flatMap((c) => (c.category ? [c.category] : [])))].sort();
  const catIn = h('input', { id: 'chan-category', value: ch.category ?? '', maxLength: 32, autocomplete: 'off', dir: 'auto', disabled: !fields, placeholder: 'None' });
  catIn.setAttribute('list', 'chan-categories'); // `list` is read-only as a property
  const catList = h('datalist', { id: 'chan-categories' }, categories.map((c) => h('option', { value: c })));
  // Voice channels: peer to peer, or through the server's media server when it has one.
  const voice = ch.kind === 'voice';
  const mode = ch.voice_mode ?? 'mesh';
  const modeIn = h('select', { id: 'chan-voice-mode', disabled: !fields || !s.mediaServer },
    h('option', { value: 'mesh' }, 'Mesh (peer to peer)'),
    h('option', { value: 'sfu' }, 'Media server'));
  modeIn.value = mode;
  const modeHint = h('p', { class: 'hint', id: 'chan-voice-mode-hint' }, s.mediaServer
    ? 'Mesh: everyone sends to everyone, for a few people. Media server: each sends once, to this server; for bigger calls and video. Changing it reconnects the people in the call.'
    : 'This server has no media port (SFU_UDP_PORT is not set), so voice runs peer to peer.');

  // Overwrites: the channel's current ones when the server sends them, edited in place.
  /** @type {Map<number, Map<string, Tri>>} */
  const edits = new Map();
  /** @param {number} roleId @returns {Map<string, Tri>} */
  const stateOf = (roleId) => {
    let m = edits.get(roleId);
    if (!m) {
      const ow = overwriteOf(roleId);
      m = new Map(CHANNEL_PERMS.map((p) => [p, ow?.allow.includes(p) ? 'allow' : ow?.deny.includes(p) ? 'deny' : 'neutral']));
      edits.set(roleId, m);
    }
    return m;
  };
  const overwriteOf = (/** @type {number} */ roleId) => ch.overwrites?.find((o) => (o.role_id ?? o.role) === roleId);
  const roles = rolesByRank(s.roles);
  const everyoneRole = roles.find(isEveryone);
  let roleShown = everyoneRole?.id ?? roles[0]?.id ?? 0;
  const roleTabs = h('div', { class: 'ow-roles', role: 'tablist', 'aria-label': 'Role' });
  const grid = h('div', { class: 'ow-grid', id: 'ow-grid' });
  const about = Object.fromEntries(PERMISSIONS);
  const drawOverwrites = () => {
    setChildren(roleTabs, roles.map((r) => h('button', {
      class: `ow-role${r.id === roleShown ? ' active' : ''}`, type: 'button', role: 'tab',
      'aria-selected': r.id === roleShown ? 'true' : 'false', dataset: { role: String(r.id), name: r.name },
      onclick: () => { roleShown = r.id; drawOverwrites(); },
    }, dot(r.color), tint(h('span', null, isEveryone(r) ? '@everyone' : r.name), r.color))));
    const st = stateOf(roleShown);
    setChildren(grid, CHANNEL_PERMS.map((p) => {
      const group = `ow-${p}`;
      return h('fieldset', { class: 'ow-row', dataset: { perm: p } },
        h('legend', { class: 'ow-perm' }, h('strong', null, p.replace(/_/g, ' ')), h('small', null, about[p] ?? '')),
        h('div', { class: 'tri' }, /** @type {[Tri, string, string][]} */ ([['deny', '✕', 'Deny'], ['neutral', '/', 'Neutral'], ['allow', '✓', 'Allow']]).map(([v, mark, label]) =>
          h('label', { class: `tri-opt ${v}`, title: label },
            h('input', {
              type: 'radio', name: group, value: v, checked: st.get(p) === v, 'aria-label': `${label} ${p.replace(/_/g, ' ')}`,
              onchange: () => st.set(p, v),
            }),
            h('span', { 'aria-hidden': 'true' }, mark)))));
    }));
  };
  if (perms) drawOverwrites();

  openModal({
    title: `${ch.kind === 'text' ? '#' : '🔊 '}${ch.name} settings`,
    submitLabel: 'Save changes',
    body: [
      fields ? h('div', { class: 'chan-fields' },
        h('label', { for: 'chan-name' }, 'Name'), nameIn,
        h('label', { for: 'chan-topic' }, 'Topic'), topicIn,
        ch.kind === 'text' ? h('label', { for: 'chan-slowmode' }, 'Slow mode') : null,
        ch.kind === 'text' ? slow : null,
        ch.kind === 'text' ? h('p', { class: 'hint' }, 'How long each member waits between messages (not those who can manage messages).') : null,
        voice ? h('label', { for: 'chan-voice-mode' }, 'Voice mode') : null,
        voice ? modeIn : null,
        voice ? modeHint : null,
        h('label', { for: 'chan-category' }, 'Category ', h('span', { class: 'optional' }, '(optional)')), catIn, catList) : null,
      perms ? h('section', { class: 'ow-section', 'aria-label': 'Permissions' },
        h('h3', { class: 'modal-subtitle' }, 'Permissions'),
        h('p', { class: 'hint' }, 'Per role: allow or deny a permission in this channel, or leave it neutral to use the role’s own. Deny “view channel” for @everyone and allow it for a role to make a private channel.'),
        roleTabs, grid) : null,
    ],
    onSubmit: async () => {
      let target = ch.name;
      if (fields) {
        /** @type {{name?:string, topic?:string, slowmode_s?:number, category?:string|null, voice_mode?:import('../protocol.js').VoiceMode}} */
        const patch = {};
        const n = nameIn.value.trim();
        if (!/^[a-z0-9_-]{1,32}$/.test(n)) throw new Error('Use 1–32 lowercase letters, digits, - or _.');
        if (n !== ch.name) patch.name = n;
        if (topicIn.value.trim() !== (ch.topic ?? '')) patch.topic = topicIn.value.trim();
        if (ch.kind === 'text' && Number(slow.value) !== (ch.slowmode_s ?? 0)) patch.slowmode_s = Number(slow.value);
        const cat = catIn.value.trim() || null;
        if (cat !== (ch.category ?? null)) patch.category = cat;
        if (voice && !modeIn.disabled && modeIn.value !== mode) patch.voice_mode = modeIn.value === 'sfu' ? 'sfu' : 'mesh';
        if (Object.keys(patch).length) {
          try {
            const saved = await rest.patchChannel(ch.name, patch);
            target = saved?.name ?? patch.name ?? ch.name;
          } catch (err) {
            if (err instanceof ApiError && err.code === 'conflict') throw new Error(`A channel named “${n}” already exists.`);
            throw err;
          }
        }
      }
      if (perms) {
        for (const [roleId, st] of edits) {
          const allow = CHANNEL_PERMS.filter((p) => st.get(p) === 'allow');
          const deny = CHANNEL_PERMS.filter((p) => st.get(p) === 'deny');
          const had = overwriteOf(roleId);
          const unchanged = had
            ? sameSet(had.allow, allow) && sameSet(had.deny, deny)
            : !allow.length && !deny.length;
          if (unchanged) continue;
          if (!allow.length && !deny.length) await rest.clearOverwrite(target, roleId);
          else await rest.setOverwrite(target, roleId, allow, deny);
        }
      }
      // Whether the channel is private follows from the overwrites; re-read our own view of
      // it, since our access (and so no create/delete event) did not change.
      refreshChannelPerms(app.state, await rest.channels());
      app.changed();
      toast(`Saved #${target}.`, 'success');
    },
  });
}

/** Do two permission lists hold the same names (the server may order them otherwise)? @param {string[]} a @param {string[]} b */
function sameSet(a, b) {
  const x = new Set(a);
  return x.size === new Set(b).size && b.every((p) => x.has(p));
}
