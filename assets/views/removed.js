// @ts-check
//! The page a kicked or banned user sees instead of the app (API.md v2: the server closes
//! every socket of theirs with 4003 and a reason "kicked: <reason>" / "banned: <reason>").
//! It says which and why, and does not reconnect: the only way on is to sign in again, which
//! works after a kick and is refused while banned.

import { h } from '../dom.js';

/**
 * Split the close reason into what happened and why.
 * @param {string} closeReason e.g. "kicked: spamming", "banned: ", "banned"
 * @returns {{kind:'kicked'|'banned'|'removed', why:string}}
 */
export function parseRemoval(closeReason) {
  const m = /^\s*(kicked|banned)\s*(?::\s*([\s\S]*))?$/i.exec(closeReason);
  if (!m) return { kind: 'removed', why: closeReason.trim() };
  return { kind: /** @type {'kicked'|'banned'} */ (m[1].toLowerCase()), why: (m[2] ?? '').trim() };
}

/** @param {string} closeReason */
export function showRemoved(closeReason) {
  const { kind, why } = parseRemoval(closeReason);
  document.getElementById('removed')?.remove();
  const title = kind === 'kicked' ? 'You were kicked from this server'
    : kind === 'banned' ? 'You were banned from this server'
      : 'You were removed from this server';
  const after = kind === 'kicked' ? 'You can sign in again, if you still have a reason to be here.'
    : kind === 'banned' ? 'You cannot sign in again unless a moderator lifts the ban.'
      : 'Sign in again to continue.';
  const page = h('main', { class: 'auth removed-page', id: 'removed', dataset: { kind } },
    h('section', { class: 'auth-card', role: 'alert', 'aria-labelledby': 'removed-title' },
      h('div', { class: 'auth-logo', 'aria-hidden': 'true' }),
      h('h1', { id: 'removed-title' }, title),
      h('p', { class: 'removed-reason', id: 'removed-reason', dir: 'auto' },
        why ? `Reason: ${why}` : 'No reason was given.'),
      h('p', { class: 'auth-sub' }, after),
      h('button', {
        class: 'btn primary wide', type: 'button', id: 'removed-signin',
        onclick: () => location.reload(),
      }, 'Back to sign in'),
    ));
  document.body.append(page);
}
