// @ts-check
//! What this user may do, read from the state (API.md v2, "Roles, permissions and
//! moderation"), and how roles show: the one place the views ask "may I?" and "which colour?".
//! Pure functions of the state, no DOM and no network.
//!
//! The server is the judge: a channel object carries the user's effective `permissions` in
//! it (roles, then overwrites), and anything refused still comes back `forbidden`. The app
//! only hides or disables what would be refused. Server-wide permissions are worked out here
//! from the roles (the `everyone` role plus the member's roles; the owner and `administrator`
//! have all), so a `roles` event changes them without a round trip. Against a server without
//! roles (v1), the admin has every permission and everyone else the `everyone` defaults.
//! A timed-out member keeps their roles but cannot send, react or join voice until it ends.

/**
 * @typedef {import('./state.js').State} State
 * @typedef {import('./protocol.js').Role} Role
 * @typedef {import('./protocol.js').Member} Member
 */

/** Every permission, with the one line the settings show for it. */
export const PERMISSIONS = /** @type {const} */ ([
  ['view_channel', 'See channels and read their messages.'],
  ['send_messages', 'Send messages in text channels.'],
  ['attach_files', 'Upload files and images with messages.'],
  ['add_reactions', 'React to messages with emoji.'],
  ['mention_everyone', 'Use @everyone, @here and @role to notify many people at once.'],
  ['manage_messages', 'Delete anyone’s messages, pin them, and skip slow mode.'],
  ['manage_channels', 'Create, rename, reorder and delete channels; set topic and slow mode.'],
  ['manage_roles', 'Create and edit roles below their own, hand them out, set channel permissions.'],
  ['kick_members', 'Remove members from the server (they may come back).'],
  ['ban_members', 'Remove members and keep them out until unbanned.'],
  ['moderate_members', 'Time members out: no sending, reacting or voice for a while.'],
  ['create_invites', 'Make invite links.'],
  ['view_audit_log', 'Read the log of who changed what.'],
  ['connect', 'Join voice channels.'],
  ['speak', 'Talk in voice channels (without it, members stay muted).'],
  ['stream', 'Turn on a camera or share the screen in voice channels.'],
  ['administrator', 'Every permission, in every channel. Give it only to people you trust.'],
]);

/** The names, for checklists. */
export const PERMISSION_NAMES = PERMISSIONS.map(([name]) => name);

/** What the `everyone` role allows on a v1 server (API.md v2: "v1 behaviour is unchanged"). */
const V1_EVERYONE = ['view_channel', 'send_messages', 'attach_files', 'add_reactions', 'connect', 'speak', 'stream'];

/** What a timeout takes away until it ends. */
const TIMEOUT_TAKES = new Set(['send_messages', 'add_reactions', 'connect', 'speak', 'stream']);

/** What opens the server settings (any one of them). */
export const SETTINGS_PERMS = ['manage_roles', 'kick_members', 'ban_members', 'moderate_members', 'view_audit_log', 'manage_channels'];

/** @param {Role} r */
export const isEveryone = (r) => r.name === 'everyone' || r.name === '@everyone';

/** A member object's username (`user` is a user object in REST answers, maybe a name in `ready`). @param {Member} m */
export const memberName = (m) => (typeof m.user === 'string' ? m.user : m.user.username);

/** Roles highest first (a higher `position` ranks higher, as in Discord). @param {Role[]} roles */
export function rolesByRank(roles) {
  return [...roles].sort((a, b) => b.position - a.position || a.id - b.id);
}

/** The server-wide permissions of the signed-in user. @param {State} s @returns {Set<string>} */
export function serverPerms(s) {
  if (!s.me) return new Set();
  if (s.me.admin) return new Set(PERMISSION_NAMES);
  /** @type {Set<string>} */
  let perms;
  if (s.roles.length) {
    const mine = new Set(s.members.get(s.me.username)?.roles ?? []);
    perms = new Set(s.roles.filter((r) => isEveryone(r) || mine.has(r.id)).flatMap((r) => r.permissions));
  } else {
    perms = new Set(s.serverPermissions ?? V1_EVERYONE);
  }
  if (perms.has('administrator')) return new Set(PERMISSION_NAMES);
  return perms;
}

/**
 * The user's permissions in one channel: the channel's own `permissions` when the server sent
 * them, else the server-wide ones; a running timeout takes away sending, reacting and voice.
 * @param {State} s @param {string} channel @param {number} [now]
 */
export function channelPerms(s, channel, now = Date.now()) {
  const ch = s.channels.find((c) => c.name === channel);
  const perms = new Set(ch?.permissions && !s.me?.admin ? ch.permissions : serverPerms(s));
  if (perms.has('administrator')) for (const p of PERMISSION_NAMES) perms.add(p);
  if (timeoutLeftMs(s, now) > 0) for (const p of TIMEOUT_TAKES) perms.delete(p);
  return perms;
}

/** May the user do `perm` (in `channel`, or server-wide)? @param {State} s @param {string} perm @param {string} [channel] */
export function can(s, perm, channel) {
  return (channel ? channelPerms(s, channel) : serverPerms(s)).has(perm);
}

/** Does the user see the server settings gear? @param {State} s */
export function canOpenSettings(s) {
  const p = serverPerms(s);
  return SETTINGS_PERMS.some((x) => p.has(x));
}

/** How long the user's own timeout still runs (0: not timed out). @param {State} s @param {number} [now] */
export function timeoutLeftMs(s, now = Date.now()) {
  const until = s.me ? s.members.get(s.me.username)?.timeout_until_ts : null;
  return until ? Math.max(0, until - now) : 0;
}

/** "4:59", "1:00:00", "2 d 3:04:05": a countdown to the second. @param {number} ms */
export function countdown(ms) {
  const total = Math.ceil(ms / 1000);
  const d = Math.floor(total / 86400);
  const hh = Math.floor((total % 86400) / 3600);
  const mm = Math.floor((total % 3600) / 60);
  const ss = String(total % 60).padStart(2, '0');
  if (d) return `${d} d ${hh}:${String(mm).padStart(2, '0')}:${ss}`;
  if (hh) return `${hh}:${String(mm).padStart(2, '0')}:${ss}`;
  return `${mm}:${ss}`;
}

/** A member's roles, highest first (without `everyone`). @param {State} s @param {string} username @returns {Role[]} */
export function rolesOf(s, username) {
  const ids = new Set(s.members.get(username)?.roles ?? []);
  return rolesByRank(s.roles.filter((r) => ids.has(r.id) && !isEveryone(r)));
}

/** The colour a member's name shows in: their highest role that has one. @param {State} s @param {string} username */
export function nameColor(s, username) {
  return rolesOf(s, username).find((r) => r.color)?.color ?? null;
}

/** The hoisted role a member is listed under (their highest hoisted one). @param {State} s @param {string} username */
export function hoistedRole(s, username) {
  return rolesOf(s, username).find((r) => r.hoist) ?? null;
}

/** Only `#rrggbb` reaches a style (a role colour is user input). @param {string|null|undefined} c */
export function safeColor(c) {
  return c && /^#[0-9a-fA-F]{6}$/.test(c) ? c : null;
}
