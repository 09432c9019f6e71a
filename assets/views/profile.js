// @ts-check
//! The profile card (issue 14): a click on any name or avatar opens it next to what was
//! clicked. It shows the user's picture, display name and username, their status and custom
//! status text; on your own card you edit your display name, status text and status, and
//! choose your server-wide notification default. Other features add to the card with
//! `addProfileSection` (the community UI shows roles there; DMs add a "Message" button),
//! so the card stays one file that nobody else has to edit.
//!
//! User text only enters the page through `textContent` (`h`).

import { h, avatar, setChildren } from '../dom.js';
import { shownName } from '../state.js';

/**
 * @typedef {import('../state.js').State} State
 * @typedef {import('../protocol.js').User} User
 * @typedef {import('../protocol.js').ChosenStatus} ChosenStatus
 * @typedef {import('../protocol.js').NotifyLevel} NotifyLevel
 *
 * What the card may ask the app to do.
 * @typedef {object} ProfileActions
 * @property {(fields:{display_name:string|null, status_text:string|null}) => Promise<boolean>} saveProfile
 * @property {(status:ChosenStatus) => void} setStatus
 * @property {(level:NotifyLevel) => void} setDefaultNotify
 * @property {() => void} changeAvatar
 *
 * What a section is handed to render from.
 * @typedef {{state:State, username:string, user:User|undefined, mine:boolean, close:()=>void}} ProfileContext
 * @typedef {(ctx:ProfileContext) => Node|null} ProfileSection
 */

/** @type {ProfileSection[]} */
const sections = [];

/** Adds a part to every profile card, rendered after the built-in ones, in the order added.
 * @param {ProfileSection} section */
export function addProfileSection(section) {
  sections.push(section);
}

/** @type {Record<string, string>} */
const STATUS_LABEL = { online: 'Online', idle: 'Idle', dnd: 'Do not disturb', invisible: 'Invisible', offline: 'Offline' };

/** @param {() => State} getState @param {ProfileActions} actions */
export function createProfileCard(getState, actions) {
  const card = h('aside', { id: 'profile-card', class: 'profile-card', role: 'dialog', 'aria-label': 'Profile', hidden: true });
  document.body.append(card);
  /** @type {HTMLElement|null} */
  let anchor = null;

  function close() {
    card.hidden = true;
    card.dataset.user = '';
    anchor?.focus?.();
    anchor = null;
  }
  document.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && !card.hidden) close();
  });
  document.addEventListener('mousedown', (ev) => {
    if (!card.hidden && ev.target instanceof Node && !card.contains(ev.target) && !anchor?.contains(ev.target)) close();
  });

  /** @param {string} username @param {HTMLElement} from */
  function open(username, from) {
    if (!card.hidden && card.dataset.user === username) return close();
    anchor = from;
    const s = getState();
    const user = s.users.get(username) ?? (s.me?.username === username ? s.me : undefined);
    const mine = s.me?.username === username;
    const presence = mine ? s.myStatus : (s.presence.get(username) ?? 'offline');
    /** @type {ProfileContext} */
    const ctx = { state: s, username, user, mine, close };
    setChildren(card,
      h('div', { class: 'profile-head' },
        avatar(username, 'big'),
        h('span', { class: `status-dot ${presence}`, title: STATUS_LABEL[presence] ?? presence })),
      h('h3', { class: 'profile-name', dir: 'auto' }, shownName(s, username)),
      h('p', { class: 'profile-username' }, `@${username}`),
      h('p', { class: 'profile-presence' }, STATUS_LABEL[presence] ?? presence),
      user?.status_text ? h('p', { class: 'profile-status-text', dir: 'auto' }, user.status_text) : null,
      mine ? editor(s) : null,
      ...sections.map((section) => section(ctx)),
    );
    card.dataset.user = username;
    card.hidden = false;
    place(from);
  }

  /** Next to the element clicked, inside the window. @param {HTMLElement} from */
  function place(from) {
    const r = from.getBoundingClientRect();
    const w = card.offsetWidth;
    const ht = card.offsetHeight;
    const left = r.right + 8 + w <= innerWidth ? r.right + 8 : Math.max(8, r.left - 8 - w);
    const top = Math.min(Math.max(8, r.top), Math.max(8, innerHeight - ht - 8));
    card.style.left = `${Math.min(left, Math.max(8, innerWidth - w - 8))}px`;
    card.style.top = `${top}px`;
  }

  /** Your own card: the profile form, your status, your notification default. @param {State} s */
  function editor(s) {
    const name = h('input', { id: 'profile-display-name', maxLength: 32, value: s.me?.display_name ?? '', placeholder: s.me?.username ?? '', dir: 'auto' });
    const text = h('input', { id: 'profile-status-text', maxLength: 128, value: s.me?.status_text ?? '', placeholder: 'What are you up to?', dir: 'auto' });
    const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
    const status = h('select', { id: 'profile-status', 'aria-label': 'Status' },
      ...['online', 'idle', 'dnd', 'invisible'].map((v) => h('option', { value: v, selected: s.myStatus === v }, STATUS_LABEL[v])));
    status.addEventListener('change', () => actions.setStatus(/** @type {ChosenStatus} */ (status.value)));
    const level = h('select', { id: 'profile-notify-default', 'aria-label': 'Notify me about' },
      ...[['all', 'All messages'], ['mentions', 'Only mentions'], ['nothing', 'Nothing']]
        .map(([v, label]) => h('option', { value: v, selected: s.notify.default === v }, label)));
    level.addEventListener('change', () => actions.setDefaultNotify(/** @type {NotifyLevel} */ (level.value)));
    const form = h('form', { class: 'profile-form' },
      h('label', { for: 'profile-display-name' }, 'Display name'), name,
      h('label', { for: 'profile-status-text' }, 'Custom status'), text,
      error,
      h('div', { class: 'profile-buttons' },
        h('button', { class: 'btn', type: 'button', onclick: () => actions.changeAvatar() }, 'Change picture'),
        h('button', { class: 'btn primary', type: 'submit', id: 'profile-save' }, 'Save')),
      h('label', { for: 'profile-status' }, 'Status'), status,
      h('label', { for: 'profile-notify-default' }, 'Notify me about (server default)'), level,
    );
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      error.hidden = true;
      const ok = await actions.saveProfile({ display_name: name.value.trim() || null, status_text: text.value.trim() || null });
      if (ok) close();
      else {
        error.textContent = 'Not saved: check the lengths and try again.';
        error.hidden = false;
      }
    });
    return form;
  }

  return { open, close };
}

/** @typedef {ReturnType<typeof createProfileCard>} ProfileCard */
