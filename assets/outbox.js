// @ts-check
//! The outbox: every message typed on this page, from Enter until the server's `message`
//! event with the same nonce acknowledges it (docs/UI.md, "Delivery and catch-up"). It is kept
//! in localStorage, so a reload sends what was in flight again; the nonce makes a resend
//! harmless (the server returns the stored message instead of storing it twice).
//!
//! Statuses: `queued` (waiting to go out: offline, or held by the rate limit until
//! `notBefore`), `pending` (sent, no answer yet), `failed` (refused, or no answer within
//! ACK_TIMEOUT_MS; the user may Retry or Discard). All changes go through state.js.
//!
//! Order: one message in flight at a time, oldest first, so nothing typed later overtakes an
//! earlier one, across rate limits (a held message holds the ones behind it) and reconnects
//! (on `ready` the unacknowledged one goes again first, with its nonce).

import { frames, newNonce } from './protocol.js';
import {
  queueMessage, markSent, holdMessage, failMessage, expireUnanswered, retryMessage, discardMessage,
} from './state.js';
import { toast } from './ui.js';

/** @typedef {import('./state.js').OutboxEntry} OutboxEntry */

/** A sent message with no `message` event by then is "failed": the user decides what next. */
export const ACK_TIMEOUT_MS = 15_000;
/** The rate-limit notice stays this long after the last refusal. */
const RATE_NOTICE_MS = 2_500;

/** @param {import('./app.js').App} app */
export function createOutbox(app) {
  const { state, conn } = app;
  const key = (id = state.me?.id ?? 0) => `md.outbox.${id}`;

  /** What a previous page left unsent; whatever was in flight goes out again.
   * @param {number} userId @returns {OutboxEntry[]} */
  function load(userId) {
    try {
      const saved = JSON.parse(localStorage.getItem(key(userId)) ?? '[]');
      return Array.isArray(saved)
        ? saved.map((e) => ({ ...e, status: e.status === 'failed' ? 'failed' : 'queued' }))
        : [];
    } catch {
      return [];
    }
  }

  function save() {
    try {
      localStorage.setItem(key(), JSON.stringify(state.outbox));
    } catch {
      /* storage full or disabled: the outbox still lives in the page */
    }
  }

  function forget() {
    try {
      localStorage.removeItem(key());
    } catch {
      /* ignore */
    }
  }

  /** @type {ReturnType<typeof setTimeout>|undefined} */
  let holdTimer;

  /**
   * Send the oldest unsent message, if nothing is in flight. One at a time is what keeps the
   * typed order (issue 18, bug 1): with several in flight, the rate limit may refuse one and
   * accept a later one after a refill, and the refused one, sent again, lands after it. The
   * next one goes out when the server answers this one (`acknowledged`, `refused`).
   */
  function flush() {
    if (!conn.isReady) return;
    const now = Date.now();
    const next = state.outbox.find((e) => e.status !== 'failed');
    if (!next || next.status === 'pending') return;
    if (next.notBefore && next.notBefore > now) {
      clearTimeout(holdTimer);
      holdTimer = setTimeout(flush, next.notBefore - now);
      return;
    }
    if (!conn.send(frames.send(next.channel, next.content, next.nonce, next.reply_to, next.attachments))) return;
    markSent(next, now);
    save();
    app.changed();
  }

  /** The server stored one of ours (its `message` event carried our nonce): the next may go. */
  function acknowledged() {
    save();
    flush();
  }

  /** Timeouts and countdowns. @returns {boolean} whether the view needs a re-render */
  function tick() {
    const now = Date.now();
    let dirty = expireUnanswered(state, now, ACK_TIMEOUT_MS);
    if (state.outbox.some((e) => e.notBefore)) dirty = true; // countdown text
    if (state.outbox.some((e) => e.status === 'queued')) flush();
    if (dirty) save();
    return dirty;
  }

  /** @param {string} content @param {string[]} [attachments] */
  function send(content, attachments) {
    if (!state.current) return;
    queueMessage(state, content, newNonce(), Date.now(), attachments);
    save();
    flush();
  }

  /** @param {string} nonce */
  function retry(nonce) {
    if (!retryMessage(state, nonce)) return;
    flush();
  }

  /** @param {string} nonce */
  function discard(nonce) {
    discardMessage(state, nonce);
    save();
    app.changed();
  }

  /**
   * An `error` frame about one of our messages. @returns {boolean} false when the nonce is
   * not ours (the caller then shows the error by itself)
   * @param {{code:string, message?:string, nonce?:string, retry_after_ms?:number}} f
   */
  function refused(f) {
    if (!f.nonce) return false;
    if (f.code === 'rate_limited') {
      const wait = Number(f.retry_after_ms) || 1000;
      if (!holdMessage(state, f.nonce, Date.now() + wait)) return false;
      // One notice for a whole burst, updated in place (issue 18, bug 2); each held message
      // shows its own countdown.
      const held = state.outbox.filter((e) => e.status !== 'failed').length;
      toast(`You are sending too fast — ${held} message${held === 1 ? '' : 's'} will go out as the limit allows.`,
        'error', RATE_NOTICE_MS, 'rate-limit');
    } else if (!failMessage(state, f.nonce, f.message || f.code)) {
      return false;
    }
    save();
    flush();
    return true;
  }

  return { load, save, forget, flush, acknowledged, tick, send, retry, discard, refused };
}

/** @typedef {ReturnType<typeof createOutbox>} Outbox */
