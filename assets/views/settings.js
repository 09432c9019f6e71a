// @ts-check
//! User settings behind the user panel's one gear (issue 18; server settings are elsewhere):
//! My account (change password: `POST /api/me/password`), Sessions (`GET /api/me/sessions`,
//! sign out one or every other device), Appearance (12 / 24 h clock, kept in localStorage by
//! dom.js), Notifications, and Voice (the voice settings, built by voice/settings.js). One
//! scrolling dialog with a row of section links on top, so it works the same on a 360 px
//! phone as on a desktop; the voice panel's gear opens it at Voice.

import { h, setChildren, getTimeFormat, setTimeFormat, clockTime } from '../dom.js';
import { openModal, toast } from '../ui.js';
import { api, ApiError } from '../protocol.js';

/** @typedef {{id:string, created_ts:number, expires_ts:number, current:boolean}} SessionInfo */
/** @typedef {'account'|'sessions'|'appearance'|'notifications'|'voice'} Section */

/** The shortest password the server takes (API.md: 8–128 characters, as at registration). */
const MIN_PASSWORD = 8;
const MAX_PASSWORD = 128;

/**
 * @param {{username:string, at?:Section, changed:()=>void, enableNotifications:()=>void,
 *   voiceSection:()=>Promise<{nodes:import('../dom.js').Child[], stop:()=>void}>}} opts
 */
export async function openUserSettings(opts) {
  const voice = await opts.voiceSection().catch(() => null);
  const sessions = sessionsSection();

  /** @param {Section} id @param {string} title @param {import('../dom.js').Child[]} body */
  const section = (id, title, body) => h('section', { class: 'us-section', id: `us-${id}`, 'aria-labelledby': `us-${id}-title` },
    h('h3', { class: 'us-title', id: `us-${id}-title` }, title), ...body);

  const dialog = openModal({
    title: 'User settings',
    body: [
      h('nav', { class: 'us-nav', 'aria-label': 'Settings sections' },
        /** @type {[Section, string][]} */ ([['account', 'My account'], ['sessions', 'Sessions'], ['appearance', 'Appearance'],
          ['notifications', 'Notifications'], ['voice', 'Voice']])
          .map(([id, label]) => h('button', {
            class: 'us-nav-btn', type: 'button', dataset: { section: id },
            onclick: () => document.getElementById(`us-${id}`)?.scrollIntoView({ block: 'start' }),
          }, label))),
      h('div', { class: 'us-scroll' },
        section('account', 'My account', accountSection(opts.username, sessions.reload)),
        section('sessions', 'Sessions', sessions.nodes),
        section('appearance', 'Appearance', appearanceSection(opts.changed)),
        section('notifications', 'Notifications', notificationsSection(opts.enableNotifications)),
        section('voice', 'Voice', voice ? voice.nodes : [h('p', { class: 'hint' }, 'Voice settings could not be loaded.')])),
    ],
  });
  dialog.classList.add('user-settings', 'voice-settings');
  dialog.addEventListener('close', () => voice?.stop());
  // The dialog focuses its first field; a section asked for is scrolled to instead.
  if (opts.at && opts.at !== 'account') {
    const el = document.getElementById(`us-${opts.at}`);
    el?.scrollIntoView({ block: 'start' });
    /** @type {HTMLElement|null} */ (el?.querySelector('select, input, button'))?.focus({ preventScroll: true });
  }
  return dialog;
}

/** @param {string} username @param {()=>void} sessionsChanged */
function accountSection(username, sessionsChanged) {
  const field = (/** @type {string} */ id, /** @type {string} */ label, /** @type {string} */ autocomplete) => {
    const input = h('input', { id, type: 'password', autocomplete, minLength: MIN_PASSWORD, maxLength: MAX_PASSWORD, required: true });
    return { label: h('label', { for: id }, label), input };
  };
  const current = field('us-current-password', 'Current password', 'current-password');
  const next = field('us-new-password', 'New password', 'new-password');
  const again = field('us-new-password-again', 'New password again', 'new-password');
  const status = h('p', { class: 'us-status', id: 'us-password-status', role: 'status' });
  const submit = h('button', { class: 'btn primary small', type: 'button', id: 'us-password-submit' }, 'Change password');
  // A user-name field lets password managers store the new password under the right account.
  const who = h('input', { type: 'text', autocomplete: 'username', value: username, hidden: true, readOnly: true });

  const say = (/** @type {string} */ text, /** @type {'ok'|'bad'|''} */ kind) => {
    status.textContent = text;
    status.className = `us-status${kind ? ` ${kind}` : ''}`;
  };
  const change = async () => {
    const [c, n, a] = [current.input.value, next.input.value, again.input.value];
    if (!c) return say('Type your current password.', 'bad');
    if ([...n].length < MIN_PASSWORD || [...n].length > MAX_PASSWORD) {
      return say(`The new password must be ${MIN_PASSWORD}–${MAX_PASSWORD} characters.`, 'bad');
    }
    if (n !== a) return say('The two new passwords are not the same.', 'bad');
    submit.disabled = true;
    say('Changing…', '');
    try {
      await api('POST', '/api/me/password', { current: c, new: n });
      for (const f of [current, next, again]) f.input.value = '';
      say('Password changed. Every other device was signed out.', 'ok');
      sessionsChanged();
    } catch (err) {
      if (err instanceof ApiError && err.status === 403) say('The current password is wrong.', 'bad');
      else if (err instanceof ApiError && err.status === 429) {
        say(`Too many wrong passwords. Try again in ${Math.ceil((err.retryAfterMs ?? 1000) / 1000)} s.`, 'bad');
      } else say(err instanceof Error ? err.message : String(err), 'bad');
    } finally {
      submit.disabled = false;
    }
  };
  submit.addEventListener('click', () => void change());
  // Enter in a field would submit (and close) the dialog's own form: change the password instead.
  for (const f of [current, next, again]) {
    f.input.addEventListener('keydown', (ev) => {
      if (ev.key !== 'Enter') return;
      ev.preventDefault();
      void change();
    });
  }
  return [
    h('p', { class: 'us-line' }, 'Signed in as ', h('strong', null, username)),
    who,
    current.label, current.input, next.label, next.input, again.label, again.input,
    h('div', { class: 'us-actions' }, submit),
    status,
    h('p', { class: 'hint' }, 'Changing it signs out every other device where you are signed in.'),
  ];
}

/** @param {number} ts */
const when = (ts) => `${new Date(ts).toLocaleDateString()} ${clockTime(ts)}`;

/** This device's own session has no Sign out here: that is the user panel's Sign out. */
function sessionsSection() {
  const list = h('ul', { class: 'us-sessions', id: 'us-sessions', 'aria-live': 'polite' });
  const status = h('p', { class: 'us-status', role: 'status' });
  const others = h('button', { class: 'btn ghost small', type: 'button', id: 'us-end-others' }, 'Sign out all other devices');

  const load = async () => {
    try {
      /** @type {SessionInfo[]} */
      const all = await api('GET', '/api/me/sessions');
      others.disabled = all.every((x) => x.current);
      setChildren(list, all.map((x) => h('li', { class: `us-session${x.current ? ' current' : ''}`, dataset: { id: x.id } },
        h('span', { class: 'us-session-text' },
          h('span', { class: 'us-session-name' }, x.current ? 'This device' : 'Another device'),
          h('span', { class: 'us-session-meta' }, `Signed in ${when(x.created_ts)} · ends ${new Date(x.expires_ts).toLocaleDateString()}`)),
        x.current ? null : h('button', {
          class: 'btn ghost small us-end', type: 'button', 'aria-label': `Sign out the device signed in ${when(x.created_ts)}`,
          onclick: () => void end(x),
        }, 'Sign out'))));
      status.textContent = '';
    } catch (err) {
      status.textContent = `The sessions could not be loaded: ${err instanceof Error ? err.message : String(err)}`;
    }
  };
  /** @param {SessionInfo} x */
  const end = async (x) => {
    try {
      await api('DELETE', `/api/me/sessions/${encodeURIComponent(x.id)}`);
      toast('That device is signed out.', 'success');
    } catch (err) {
      toast(err instanceof Error ? err.message : String(err), 'error');
    }
    void load();
  };
  others.addEventListener('click', async () => {
    try {
      const r = await api('DELETE', '/api/me/sessions');
      toast(r?.ended ? `Signed out ${r.ended} other device${r.ended === 1 ? '' : 's'}.` : 'No other device was signed in.', 'success');
    } catch (err) {
      toast(err instanceof Error ? err.message : String(err), 'error');
    }
    void load();
  });
  void load();
  return {
    nodes: [
      h('p', { class: 'hint' }, 'Where you are signed in. Signing a device out closes its connection at once.'),
      list, status, h('div', { class: 'us-actions' }, others),
    ],
    reload: () => void load(),
  };
}

/** @param {()=>void} changed re-render the app (timestamps) */
function appearanceSection(changed) {
  const sample = new Date(2026, 0, 1, 21, 5).getTime(); // 21:05 here
  /** @type {[import('../dom.js').TimeFormat, string][]} */
  const choices = [['', 'As this browser shows time'], ['12', '12-hour'], ['24', '24-hour']];
  const example = h('span', { class: 'hint us-example', id: 'us-time-example' });
  const showExample = () => {
    example.textContent = `Messages show times like ${clockTime(sample)}.`;
  };
  const group = h('fieldset', { class: 'us-radios' },
    h('legend', null, 'Time format'),
    choices.map(([value, label]) => {
      const input = h('input', { type: 'radio', name: 'us-time-format', value, id: `us-time-${value || 'auto'}`, checked: getTimeFormat() === value });
      input.addEventListener('change', () => {
        if (!input.checked) return;
        setTimeFormat(value);
        showExample();
        changed();
      });
      return h('label', { class: 'us-radio', for: input.id }, input, h('span', null, label));
    }));
  showExample();
  return [group, example];
}

/** @param {()=>void} enable */
function notificationsSection(enable) {
  if (!('Notification' in window)) return [h('p', { class: 'hint' }, 'This browser has no desktop notifications.')];
  const text = {
    granted: 'Desktop notifications are on: you are notified when someone mentions you while this tab is hidden.',
    denied: 'Desktop notifications are blocked for this site. Allow them in the browser (the icon left of the address bar).',
    default: 'Get a desktop notification when someone mentions you while this tab is hidden.',
  }[Notification.permission];
  return [
    h('p', { class: 'us-line' }, text),
    Notification.permission === 'default'
      ? h('div', { class: 'us-actions' }, h('button', { class: 'btn ghost small', type: 'button', onclick: enable }, 'Enable notifications'))
      : null,
  ];
}
