// @ts-check
//! The sign-in / register screen. `?invite=CODE` in the URL opens it in register mode with the
//! code filled in. On success it hands the user to `onSignedIn`; the session itself is the
//! HttpOnly cookie the server set, which this page never sees.

import { rest, ApiError } from '../protocol.js';

/** @typedef {import('../protocol.js').User} User */

/**
 * @param {(user: User) => void} onSignedIn
 */
export function createAuthView(onSignedIn) {
  const root = /** @type {HTMLElement} */ (document.getElementById('auth'));
  const form = /** @type {HTMLFormElement} */ (document.getElementById('auth-form'));
  const title = /** @type {HTMLElement} */ (document.getElementById('auth-title'));
  const sub = /** @type {HTMLElement} */ (document.getElementById('auth-sub'));
  const notice = /** @type {HTMLElement} */ (document.getElementById('auth-notice'));
  const username = /** @type {HTMLInputElement} */ (document.getElementById('auth-username'));
  const password = /** @type {HTMLInputElement} */ (document.getElementById('auth-password'));
  const inviteRow = /** @type {HTMLElement} */ (document.getElementById('auth-invite-row'));
  const invite = /** @type {HTMLInputElement} */ (document.getElementById('auth-invite'));
  const error = /** @type {HTMLElement} */ (document.getElementById('auth-error'));
  const submit = /** @type {HTMLButtonElement} */ (document.getElementById('auth-submit'));
  const switchText = /** @type {HTMLElement} */ (document.getElementById('auth-switch-text'));
  const switchBtn = /** @type {HTMLButtonElement} */ (document.getElementById('auth-switch'));

  const params = new URLSearchParams(location.search);
  const inviteCode = params.get('invite');
  let mode = /** @type {'login'|'register'} */ (inviteCode ? 'register' : 'login');
  // An empty server has nobody to welcome back: its first account becomes the admin.
  let firstRun = false;
  if (inviteCode) invite.value = inviteCode;

  function setMode(/** @type {'login'|'register'} */ m) {
    mode = m;
    const reg = m === 'register';
    title.textContent = reg ? (firstRun ? 'Create the first account' : 'Create an account') : 'Welcome back!';
    sub.textContent = reg
      ? firstRun ? 'This server is new: the first account will be its admin.'
        : inviteCode ? 'You have been invited to mini-discord.' : 'Join this mini-discord server.'
      : 'Sign in to mini-discord.';
    submit.textContent = reg ? 'Create account' : 'Sign in';
    switchText.textContent = reg ? 'Already have an account?' : 'Need an account?';
    switchBtn.textContent = reg ? 'Sign in' : 'Register';
    inviteRow.hidden = !reg;
    password.autocomplete = reg ? 'new-password' : 'current-password';
    error.hidden = true;
  }
  setMode(mode);
  // Until the server says whether it is new, the switch waits: were the page to turn to
  // "Create the first account" just as someone clicked "Register", the click would turn it
  // back. `data-ready` on the form tells that the answer came (or never will).
  switchBtn.disabled = true;
  rest.setup().then((s) => {
    // Only switch while the page still shows the untouched default, never under a user's hands.
    if (!s.first_run || username.value) return;
    firstRun = true;
    setMode('register');
  }).catch(() => { /* an older server or an outage: keep the plain sign-in screen */ })
    .finally(() => {
      switchBtn.disabled = false;
      form.dataset.ready = '';
    });

  switchBtn.addEventListener('click', () => setMode(mode === 'login' ? 'register' : 'login'));

  /** @param {string} text */
  function showError(text) {
    error.textContent = text;
    error.hidden = false;
  }

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.hidden = true;
    const name = username.value.trim();
    const pass = password.value;
    if (!/^[A-Za-z0-9_.-]{2,32}$/.test(name)) {
      showError('A username is 2–32 letters, digits, dots, dashes or underscores.');
      username.focus();
      return;
    }
    if (mode === 'register' && (pass.length < 8 || pass.length > 128)) {
      showError('The password needs 8 to 128 characters.');
      password.focus();
      return;
    }
    submit.disabled = true;
    submit.classList.add('busy');
    try {
      const res = mode === 'login'
        ? await rest.login(name, pass)
        : await rest.register(name, pass, invite.value.trim() || undefined);
      password.value = '';
      if (inviteCode) history.replaceState(null, '', location.pathname + location.hash);
      onSignedIn(res.user);
    } catch (err) {
      showError(describe(err, mode));
    } finally {
      submit.disabled = false;
      submit.classList.remove('busy');
    }
  });

  return {
    /** @param {string} [message] shown above the form, e.g. "session expired" */
    show(message) {
      root.hidden = false;
      notice.hidden = !message;
      notice.textContent = message ?? '';
      (username.value ? password : username).focus();
    },
    hide() {
      root.hidden = true;
    },
  };
}

/** @param {unknown} err @param {'login'|'register'} mode */
function describe(err, mode) {
  if (!(err instanceof ApiError)) return 'Something went wrong. Please try again.';
  switch (err.code) {
    case 'network':
      return 'The server cannot be reached. Check your connection and try again.';
    case 'unauthorized':
      return 'That username and password do not match.';
    case 'rate_limited':
      return `Too many attempts. Try again in ${Math.ceil((err.retryAfterMs ?? 30_000) / 1000)} s.`;
    case 'conflict':
      return 'That username is taken. Pick another one.';
    case 'forbidden':
      return mode === 'register'
        ? `Registration needs a valid invite: ${err.message}`
        : err.message;
    default:
      return err.message;
  }
}
