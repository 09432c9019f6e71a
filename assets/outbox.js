// @ts-check
//! The outbox: every message typed on this page, from Enter until the server's `message`
//! event with the same nonce acknowledges it (docs/UI.md, "Delivery and catch-up"). It is kept
//! in localStorage, so a reload sends what was in flight again; the nonce makes a resend
//! harmless (the server returns the stored message instead of storing it twice).
//!
//! Statuses: `queued` (waiting to go out: offline, or held by the rate limit until
//! `notBefore`), `pending` (sent, no answer yet), `failed` (refused, or no answer within
//! ACK_TIMEOUT_MS; the user may Retry or Discard). All changes go through state.js.

import { frames, newNonce } from './protocol.js';
import {
  queueMessage, markSent, holdMessage, failMessage, expireUnanswered, retryMessage, discardMessage,
} from './state.js';
import { toast } from './ui.js';

/** @typedef {import('./state.js').OutboxEntry} OutboxEntry */

/** A sent message with no `message` event by then is "failed": the user decides what next. */
export const ACK_TIMEOUT_MS = 15_000;

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

  /** Send what may go now, in the order typed. */
  function flush() {
    if (!conn.isReady) return;
    const now = Date.now();
    for (const e of state.outbox) {
      if (e.status === 'failed' || e.status === 'pending') continue;
      if (e.notBefore && e.notBefore > now) break; // keep order: nothing overtakes a held message
      if (!conn.send(frames.send(e.channel, e.content, e.nonce, e.reply_to))) return;
      markSent(e, now);
    }
    save();
    app.changed();
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

  /** @param {string} content */
  function send(content) {
    if (!state.current) return;
    queueMessage(state, content, newNonce(), Date.now());
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
      toast(`You are sending too fast — waiting ${(wait / 1000).toFixed(1)} s.`, 'error', 2500);
    } else if (!failMessage(state, f.nonce, f.message || f.code)) {
      return false;
    }
    save();
    return true;
  }

  return { load, save, forget, flush, tick, send, retry, discard, refused };
}

/** @typedef {ReturnType<typeof createOutbox>} Outbox */
