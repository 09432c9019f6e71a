// @ts-check
//! Server settings (API.md v2, "Roles, permissions and moderation"), behind the one gear in
//! the server header: the Roles page (create, rename, colour, drag to reorder, show
//! separately, the permission checklist with a line on each), the Members page (search,
//! give and take roles, kick, ban, time out, lift a timeout), the Bans page (unban), the
//! Audit log, and a Channels page that opens each channel's settings. A page shows only to
//! those with its permission; the server refuses the rest anyway (`forbidden`, shown in a
//! toast). It fits a 360 px phone: tabs scroll sideways, the page scrolls inside the dialog.

import { h, avatar, tint, setChildren } from '../dom.js';
import { icon } from '../icons.js';
import { rest, ApiError } from '../protocol.js';
import { setRoles, setMembers } from '../state.js';
import { toast, openModal, confirmDialog } from '../ui.js';
import {
  PERMISSIONS, can, isEveryone, rolesByRank, rolesOf, nameColor, countdown,
} from '../perms.js';
import { dot } from './profile-roles.js';
import { backupsPage } from './backups.js';

/** @typedef {import('../app.js').App} App */
/** @typedef {import('../protocol.js').Role} Role */
/** @typedef {'roles'|'members'|'bans'|'audit'|'channels'|'backups'} Page */

/** Timeout lengths offered, [label, seconds] (issue 13). */
export const TIMEOUTS = /** @type {[string, number][]} */ ([
  ['60 seconds', 60], ['5 minutes', 300], ['1 hour', 3600], ['1 day', 86400], ['1 week', 7 * 86400],
]);
/** "Delete their messages of", [label, seconds]. */
export const BAN_DELETE = /** @type {[string, number][]} */ ([
  ['Don’t delete any', 0], ['The last hour', 3600], ['The last day', 86400], ['The last week', 7 * 86400],
]);
/** How many audit entries one "Load more" fetches. */
const AUDIT_PAGE = 50;
/** A role name is 1–32 characters (API.md). */
const ROLE_NAME_MAX = 32;

/** Which pages this user gets. @param {App} app @returns {[Page, string][]} */
function pagesFor(app) {
  const s = app.state;
  /** @type {[Page, string][]} */
  const pages = [];
  if (can(s, 'manage_roles')) pages.push(['roles', 'Roles']);
  if (['manage_roles', 'kick_members', 'ban_members', 'moderate_members'].some((p) => can(s, p))) pages.push(['members', 'Members']);
  if (can(s, 'ban_members')) pages.push(['bans', 'Bans']);
  if (can(s, 'view_audit_log')) pages.push(['audit', 'Audit log']);
  if (can(s, 'manage_channels') || can(s, 'manage_roles')) pages.push(['channels', 'Channels']);
  if (s.me?.admin) pages.push(['backups', 'Backups']);
  return pages;
}

/**
 * @param {App} app
 * @param {(name:string) => void} openChannelSettings
 * @param {Page} [first]
 */
export function openServerSettings(app, openChannelSettings, first) {
  document.getElementById('server-settings')?.remove();
  const pages = pagesFor(app);
  if (!pages.length) return;
  let page = pages.find(([p]) => p === first)?.[0] ?? pages[0][0];
  const panel = h('div', { class: 'settings-panel', id: 'settings-panel', role: 'tabpanel' });
  const tabs = h('div', { class: 'settings-tabs', role: 'tablist', 'aria-label': 'Settings pages' });
  const close = h('button', { class: 'icon-btn', type: 'button', title: 'Close', 'aria-label': 'Close settings' }, icon('close'));
  const dialog = h('dialog', { class: 'modal settings-modal', id: 'server-settings', 'aria-label': 'Server settings' },
    h('header', { class: 'settings-head' }, h('h2', { class: 'modal-title' }, 'Server settings'), close),
    tabs, panel);
  close.addEventListener('click', () => dialog.close());
  dialog.addEventListener('close', () => dialog.remove());

  const show = (/** @type {Page} */ p) => {
    page = p;
    setChildren(tabs, pages.map(([id, label]) => h('button', {
      class: `settings-tab${id === page ? ' active' : ''}`, type: 'button', role: 'tab',
      'aria-selected': id === page ? 'true' : 'false', dataset: { page: id },
      onclick: () => show(id),
    }, label)));
    panel.replaceChildren(h('p', { class: 'hint' }, 'Loading…'));
    const render = { roles: rolesPage, members: membersPage, bans: bansPage, audit: auditPage, channels: channelsPage, backups: backupsPage }[page];
    void render(app, panel, openChannelSettings).catch((err) => {
      panel.replaceChildren(h('p', { class: 'form-error' }, `Could not load this page: ${err instanceof Error ? err.message : String(err)}`));
      app.restError(err, null);
    });
  };
  document.body.append(dialog);
  dialog.showModal();
  show(page);
  return dialog;
}

/** Run a REST change; a refusal becomes a toast. @param {App} app @param {string} what @param {() => Promise<unknown>} fn */
async function attempt(app, what, fn) {
  try {
    await fn();
    return true;
  } catch (err) {
    if (err instanceof ApiError && err.code === 'forbidden') toast(`${what}: you are not allowed to do that.`, 'error');
    else app.restError(err, what);
    return false;
  }
}

async function reloadRoles(/** @type {App} */ app) {
  setRoles(app.state, await rest.roles());
  app.changed();
}

// ---------------------------------------------------------------- roles

/** @param {App} app @param {HTMLElement} panel */
async function rolesPage(app, panel) {
  await reloadRoles(app);
  /** @type {number|null} */
  let selected = null;
  const list = h('ol', { class: 'role-list', id: 'role-list', 'aria-label': 'Roles, highest first' });
  const editor = h('div', { class: 'role-editor', id: 'role-editor' });
  const create = h('button', { class: 'btn primary small', type: 'button', id: 'role-create' }, 'Create role');
  panel.replaceChildren(
    h('p', { class: 'hint' }, 'Higher roles rank above lower ones: members can only manage roles and members below their own highest role. Drag a role to reorder it.'),
    h('div', { class: 'roles-layout' }, h('div', { class: 'role-side' }, create, list), editor));

  let dragged = 0;
  const drawList = () => {
    const roles = rolesByRank(app.state.roles);
    setChildren(list, roles.map((r) => {
      const movable = !isEveryone(r);
      const li = h('li', {
        class: `role-item${r.id === selected ? ' active' : ''}`, draggable: movable,
        dataset: { role: String(r.id), name: r.name },
      },
      movable ? h('span', { class: 'drag-handle', 'aria-hidden': 'true' }, icon('drag')) : h('span', { class: 'drag-handle' }),
      h('button', { class: 'role-pick', type: 'button', onclick: () => select(r.id) },
        dot(r.color), tint(h('span', { class: 'role-name' }, isEveryone(r) ? '@everyone' : r.name), r.color)));
      if (movable) {
        li.addEventListener('dragstart', (ev) => {
          dragged = r.id;
          ev.dataTransfer?.setData('text/plain', String(r.id));
        });
        li.addEventListener('dragover', (ev) => {
          if (!dragged || dragged === r.id) return;
          ev.preventDefault();
          li.classList.add('drop-target');
        });
        li.addEventListener('dragleave', () => li.classList.remove('drop-target'));
        li.addEventListener('drop', async (ev) => {
          ev.preventDefault();
          li.classList.remove('drop-target');
          const id = dragged;
          dragged = 0;
          if (!id || id === r.id) return;
          if (await attempt(app, 'Could not move the role', () => rest.patchRole(id, { position: r.position }))) await reloadRoles(app);
          drawList();
        });
      }
      li.addEventListener('dragend', () => { dragged = 0; });
      return li;
    }));
  };

  const select = (/** @type {number} */ id) => {
    selected = id;
    drawList();
    const role = app.state.roles.find((r) => r.id === id);
    if (role) drawEditor(role);
  };

  /** @param {Role} role */
  const drawEditor = (role) => {
    const everyone = isEveryone(role);
    const name = h('input', { id: 'role-name', maxLength: ROLE_NAME_MAX, value: role.name, disabled: everyone, autocomplete: 'off', dir: 'auto' });
    const hasColor = h('input', { type: 'checkbox', id: 'role-has-color', checked: !!role.color });
    const color = h('input', { type: 'color', id: 'role-color', value: role.color ?? '#99aab5', 'aria-label': 'Role colour' });
    const hoist = h('input', { type: 'checkbox', id: 'role-hoist', checked: role.hoist });
    color.addEventListener('input', () => { hasColor.checked = true; });
    const boxes = PERMISSIONS.map(([perm, about]) => {
      const box = h('input', { type: 'checkbox', id: `perm-${perm}`, name: perm, checked: role.permissions.includes(perm) });
      return { perm, box, row: h('label', { class: 'perm-row', for: `perm-${perm}` }, box,
        h('span', { class: 'perm-text' }, h('strong', null, perm.replace(/_/g, ' ')), h('small', null, about))) };
    });
    const save = h('button', { class: 'btn primary', type: 'button', id: 'role-save' }, 'Save changes');
    const del = everyone ? null : h('button', { class: 'btn danger', type: 'button', id: 'role-delete' }, 'Delete role');
    save.addEventListener('click', async () => {
      const n = name.value.trim();
      if (!everyone && (n.length < 1 || n.length > ROLE_NAME_MAX)) return toast('A role name is 1–32 characters.', 'error');
      save.disabled = true;
      /** @type {Partial<Omit<Role, 'id'>>} */
      const patch = {
        color: hasColor.checked ? color.value : null,
        hoist: hoist.checked,
        permissions: boxes.filter((b) => b.box.checked).map((b) => b.perm),
      };
      if (!everyone) patch.name = n;
      if (await attempt(app, 'Could not save the role', () => rest.patchRole(role.id, patch))) {
        toast(`Saved ${everyone ? '@everyone' : n}.`, 'success');
        await reloadRoles(app);
        select(role.id);
      }
      save.disabled = false;
    });
    del?.addEventListener('click', async () => {
      if (!(await confirmDialog('Delete role', `Delete the role “${role.name}”? Members who have it lose it.`, 'Delete role'))) return;
      if (await attempt(app, 'Could not delete the role', () => rest.deleteRole(role.id))) {
        selected = null;
        await reloadRoles(app);
        drawList();
        editor.replaceChildren();
      }
    });
    setChildren(editor,
      h('h3', { class: 'modal-subtitle' }, everyone ? '@everyone (every member has it)' : `Edit role`),
      h('label', { for: 'role-name' }, 'Name'), name,
      h('div', { class: 'role-options' },
        h('label', { class: 'check', for: 'role-has-color' }, hasColor, 'Colour'), color,
        h('label', { class: 'check', for: 'role-hoist' }, hoist, 'Show members separately in the member list')),
      h('h3', { class: 'modal-subtitle' }, 'Permissions'),
      h('div', { class: 'perm-list' }, boxes.map((b) => b.row)),
      h('div', { class: 'editor-actions' }, del, save));
  };

  create.addEventListener('click', () => {
    const nameInput = h('input', { id: 'new-role-name', maxLength: ROLE_NAME_MAX, required: true, autofocus: true, autocomplete: 'off', placeholder: 'Moderator', dir: 'auto' });
    openModal({
      title: 'Create role',
      submitLabel: 'Create role',
      body: [h('label', { for: 'new-role-name' }, 'Role name'), nameInput],
      onSubmit: async () => {
        const n = nameInput.value.trim();
        if (n.length < 1 || n.length > ROLE_NAME_MAX) throw new Error('A role name is 1–32 characters.');
        const role = await rest.createRole({ name: n });
        await reloadRoles(app);
        select(role.id);
      },
    });
  });

  drawList();
  const top = rolesByRank(app.state.roles).find((r) => !isEveryone(r)) ?? app.state.roles[0];
  if (top) select(top.id);
}

// ---------------------------------------------------------------- members

/** @param {App} app @param {HTMLElement} panel */
async function membersPage(app, panel) {
  const s = app.state;
  const [members, roles] = await Promise.all([rest.members(), rest.roles()]);
  setMembers(s, members);
  setRoles(s, roles);
  app.changed();
  const search = h('input', { type: 'search', id: 'member-search', placeholder: 'Search members', autocomplete: 'off', 'aria-label': 'Search members' });
  const list = h('ul', { class: 'member-admin-list', id: 'member-admin-list' });
  panel.replaceChildren(search, list);
  const me = s.me?.username ?? '';

  const draw = () => {
    const q = search.value.trim().toLowerCase();
    const names = [...s.members.keys()].filter((n) => n.toLowerCase().includes(q)).sort((a, b) => a.localeCompare(b));
    setChildren(list, names.map((name) => memberRow(name)));
    if (!names.length) list.replaceChildren(h('li', { class: 'hint' }, 'Nobody matches.'));
  };
  search.addEventListener('input', draw);

  const refresh = async () => {
    setMembers(s, await rest.members());
    app.changed();
    draw();
  };

  /** @param {string} name */
  const memberRow = (name) => {
    const m = s.members.get(name);
    const owner = !!s.users.get(name)?.admin || (typeof m?.user === 'object' && m.user.admin);
    const self = name === me;
    const until = m?.timeout_until_ts ?? 0;
    const timedOut = until > Date.now();
    const mine = rolesOf(s, name);
    const giveable = rolesByRank(s.roles).filter((r) => !isEveryone(r) && !mine.some((x) => x.id === r.id));
    const actions = !owner && !self;
    const addRole = can(s, 'manage_roles') && actions && giveable.length
      ? h('select', {
        class: 'add-role', 'aria-label': `Give ${name} a role`,
        onchange: async (/** @type {Event} */ ev) => {
          const sel = /** @type {HTMLSelectElement} */ (ev.target);
          const id = Number(sel.value);
          if (!id) return;
          if (await attempt(app, 'Could not give the role', () => rest.addMemberRole(name, id))) await refresh();
          else sel.value = '';
        },
      }, h('option', { value: '' }, '+ Role'), giveable.map((r) => h('option', { value: String(r.id) }, r.name)))
      : null;
    return h('li', { class: 'member-admin', dataset: { member: name } },
      h('div', { class: 'member-admin-top' },
        avatar(name),
        h('span', { class: 'member-admin-names' },
          tint(h('strong', null, name), nameColor(s, name)),
          owner ? h('small', null, 'Owner') : null,
          timedOut ? h('small', { class: 'timed-out' }, `Timed out — ${countdown(until - Date.now())} left`) : null)),
      h('div', { class: 'member-admin-roles' },
        mine.map((r) => h('span', { class: 'role-chip', dataset: { role: String(r.id) } }, dot(r.color), tint(h('span', null, r.name), r.color),
          can(s, 'manage_roles') && actions ? h('button', {
            class: 'chip-x', type: 'button', title: `Take ${r.name} from ${name}`, 'aria-label': `Remove role ${r.name} from ${name}`,
            onclick: async () => {
              if (await attempt(app, 'Could not take the role', () => rest.removeMemberRole(name, r.id))) await refresh();
            },
          }, '×') : null)),
        addRole),
      actions ? h('div', { class: 'member-admin-actions' },
        can(s, 'moderate_members') && !timedOut ? h('button', {
          class: 'btn small timeout-btn', type: 'button', onclick: () => timeoutDialog(app, name, refresh),
        }, 'Time out') : null,
        can(s, 'moderate_members') && timedOut ? h('button', {
          class: 'btn small lift-btn', type: 'button',
          onclick: async () => {
            if (await attempt(app, 'Could not lift the timeout', () => rest.timeout(name, null))) {
              toast(`${name} can talk again.`, 'success');
              await refresh();
            }
          },
        }, 'Lift timeout') : null,
        can(s, 'kick_members') ? h('button', { class: 'btn small danger kick-btn', type: 'button', onclick: () => kickDialog(app, name, refresh) }, 'Kick') : null,
        can(s, 'ban_members') ? h('button', { class: 'btn small danger ban-btn', type: 'button', onclick: () => banDialog(app, name, refresh) }, 'Ban') : null,
      ) : null,
    );
  };
  draw();
}

/** @param {string} id @param {string} label */
function reasonField(id, label) {
  const input = h('input', { id, maxLength: 512, autocomplete: 'off', dir: 'auto', placeholder: 'Shown to them and kept in the audit log' });
  return { input, nodes: [h('label', { for: id }, label, ' ', h('span', { class: 'optional' }, '(optional)')), input] };
}

/** @param {[string, number][]} options @param {string} id @param {string} label */
function choice(options, id, label) {
  return h('select', { id, 'aria-label': label }, options.map(([text, v]) => h('option', { value: String(v) }, text)));
}

/** @param {App} app @param {string} name @param {() => Promise<void>} done */
function timeoutDialog(app, name, done) {
  const length = choice(TIMEOUTS, 'timeout-length', 'How long');
  length.value = '300';
  const reason = reasonField('timeout-reason', 'Reason');
  openModal({
    title: `Time out ${name}`,
    submitLabel: 'Time out',
    danger: true,
    body: [
      h('p', { class: 'modal-text' }, `${name} will not be able to send messages, react or join voice until it ends.`),
      h('label', { for: 'timeout-length' }, 'For'), length, ...reason.nodes,
    ],
    onSubmit: async () => {
      await rest.timeout(name, Date.now() + Number(length.value) * 1000, reason.input.value.trim());
      toast(`${name} is timed out.`, 'success');
      await done();
    },
  });
}

/** @param {App} app @param {string} name @param {() => Promise<void>} done */
function kickDialog(app, name, done) {
  const reason = reasonField('kick-reason', 'Reason');
  openModal({
    title: `Kick ${name}`,
    submitLabel: 'Kick',
    danger: true,
    body: [h('p', { class: 'modal-text' }, `${name} is signed out everywhere. They can come back with an account sign-in.`), ...reason.nodes],
    onSubmit: async () => {
      await rest.kick(name, reason.input.value.trim());
      toast(`${name} was kicked.`, 'success');
      await done();
    },
  });
}

/** @param {App} app @param {string} name @param {() => Promise<void>} done */
function banDialog(app, name, done) {
  const reason = reasonField('ban-reason', 'Reason');
  const wipe = choice(BAN_DELETE, 'ban-delete', 'Delete their messages of');
  openModal({
    title: `Ban ${name}`,
    submitLabel: 'Ban',
    danger: true,
    body: [
      h('p', { class: 'modal-text' }, `${name} is signed out everywhere and cannot sign in or register under that name until unbanned.`),
      ...reason.nodes,
      h('label', { for: 'ban-delete' }, 'Delete their messages of'), wipe,
    ],
    onSubmit: async () => {
      await rest.ban(name, reason.input.value.trim(), Number(wipe.value));
      toast(`${name} was banned.`, 'success');
      await done();
    },
  });
}

// ---------------------------------------------------------------- bans

/** @param {App} app @param {HTMLElement} panel */
async function bansPage(app, panel) {
  const bans = await rest.bans();
  const list = h('ul', { class: 'ban-list', id: 'ban-list' });
  panel.replaceChildren(list);
  if (!bans.length) return list.replaceChildren(h('li', { class: 'hint' }, 'Nobody is banned.'));
  setChildren(list, bans.map((b) => {
    const name = b.username ?? (typeof b.user === 'string' ? b.user : b.user?.username) ?? '?';
    const li = h('li', { class: 'ban-item', dataset: { user: name } },
      h('span', { class: 'ban-text' }, h('strong', null, name), h('small', null, b.reason ? `Reason: ${b.reason}` : 'No reason given'),
        b.ts ? h('small', null, new Date(b.ts).toLocaleString()) : null),
      h('button', {
        class: 'btn small unban-btn', type: 'button',
        onclick: async () => {
          if (await attempt(app, 'Could not unban', () => rest.unban(name))) {
            toast(`${name} is no longer banned.`, 'success');
            li.remove();
          }
        },
      }, 'Unban'));
    return li;
  }));
}

// ---------------------------------------------------------------- audit log

/** What an audit action reads as. @type {Record<string, string>} */
const ACTIONS = {
  role_create: 'created the role', role_update: 'changed the role', role_delete: 'deleted the role',
  member_role_add: 'gave a role to', member_role_remove: 'took a role from',
  overwrite_set: 'set channel permissions on', overwrite_delete: 'cleared channel permissions on',
  channel_create: 'created', channel_update: 'changed', channel_delete: 'deleted',
  kick: 'kicked', ban: 'banned', unban: 'unbanned', timeout: 'timed out', timeout_remove: 'lifted the timeout of',
  message_delete: 'deleted a message of', pin: 'pinned a message in', unpin: 'unpinned a message in',
};

/** @param {App} app @param {HTMLElement} panel */
async function auditPage(app, panel) {
  const list = h('ol', { class: 'audit-list', id: 'audit-list' });
  const more = h('button', { class: 'btn ghost small', type: 'button', hidden: true }, 'Load more');
  panel.replaceChildren(list, more);
  let before = /** @type {number|undefined} */ (undefined);
  const load = async () => {
    more.disabled = true;
    const page = await rest.auditLog({ limit: AUDIT_PAGE, before });
    for (const e of page) {
      list.append(h('li', { class: 'audit-item', dataset: { action: e.action } },
        h('time', { class: 'audit-ts', dateTime: new Date(e.ts).toISOString() }, new Date(e.ts).toLocaleString()),
        h('span', { class: 'audit-what' },
          h('strong', null, e.actor), ' ', ACTIONS[e.action] ?? e.action.replace(/_/g, ' '), ' ',
          e.target ? h('strong', null, e.target) : null),
        e.reason ? h('span', { class: 'audit-reason', dir: 'auto' }, `Reason: ${e.reason}`) : null));
    }
    if (page.length) before = page[page.length - 1].id;
    if (!list.children.length) list.append(h('li', { class: 'hint' }, 'Nothing has happened yet.'));
    more.hidden = page.length < AUDIT_PAGE;
    more.disabled = false;
  };
  more.addEventListener('click', () => void load().catch((err) => app.restError(err, 'Could not load the audit log')));
  await load();
}

// ---------------------------------------------------------------- channels

/** @param {App} app @param {HTMLElement} panel @param {(name:string) => void} openChannelSettings */
async function channelsPage(app, panel, openChannelSettings) {
  panel.replaceChildren(
    h('p', { class: 'hint' }, 'Drag channels in the sidebar to reorder them. Open a channel here to change its name, topic, slow mode, category and who can see it.'),
    // DMs are nobody's to manage (and their internal names are never shown: docs/DMS.md).
    h('ul', { class: 'settings-channels' }, app.state.channels.filter((c) => c.kind !== 'dm').map((c) => h('li', null,
      h('button', { class: 'btn ghost small', type: 'button', dataset: { channel: c.name }, onclick: () => openChannelSettings(c.name) },
        c.kind === 'text' ? `# ${c.name}` : `🔊 ${c.name}`, c.private ? ' 🔒' : '')))));
}
