// @ts-check
//! Message history over REST (docs/UI.md, "Delivery and catch-up"): the newest page of a
//! channel when it is first shown, scroll-back pages, reply previews for messages not loaded,
//! and the catch-up after every `ready`: each loaded channel fetches everything after its
//! newest id, page by page until a short page, then re-reads its newest page for edits,
//! reactions and deletions. Everything is merged by id in state.js: no gap, no duplicate.

import { rest, HISTORY_MAX } from './protocol.js';
import {
  chan, mergeMessages, reconcileRange, oldestId, newestId, latestPageLoaded, olderPageLoaded,
  setLoadingOlder, setQuoted, channelLabel,
} from './state.js';

/** Messages per page when a channel is opened and per scroll-back step. */
export const PAGE = 50;

/** @param {import('./app.js').App} app */
export function createHistory(app) {
  const { state } = app;
  let generation = 0; // one per `ready`: an older catch-up stops when a newer one starts
  /** @type {Set<number>} reply targets being fetched */
  const quoting = new Set();

  /** @param {string} name */
  async function loadLatest(name) {
    const c = chan(state, name);
    try {
      latestPageLoaded(c, await rest.history(name, { limit: PAGE }), PAGE);
    } catch (err) {
      app.restError(err, `Could not load ${channelLabel(state, name)}`);
    }
    app.changed();
  }

  /** @param {string} name @param {number} gen */
  async function catchUp(name, gen) {
    const c = chan(state, name);
    let after = newestId(c);
    for (;;) {
      if (gen !== generation) return; // a newer `ready` started its own catch-up
      const page = await rest.history(name, { after, limit: HISTORY_MAX });
      mergeMessages(c, page);
      app.changed();
      if (page.length < HISTORY_MAX) break;
      after = page[page.length - 1].id;
    }
    const latest = await rest.history(name, { limit: PAGE });
    if (gen === generation) reconcileRange(c, latest);
  }

  /** After every `ready`: catch up what is loaded, and load the current channel if it is not. */
  function afterReady() {
    const gen = ++generation;
    const loaded = [...state.chans.entries()].filter(([, c]) => c.loaded).map(([n]) => n);
    for (const name of loaded) {
      catchUp(name, gen).catch((err) => app.restError(err, `Could not catch up ${channelLabel(state, name)}`)).finally(app.changed);
    }
    if (state.current && !state.chans.get(state.current)?.loaded) loadLatest(state.current);
  }

  async function loadOlder() {
    const name = state.current;
    const c = state.chans.get(name);
    if (!c || !c.loaded || c.reachedStart || c.loadingOlder || !c.ids.length) return;
    setLoadingOlder(c, true);
    app.changed();
    try {
      olderPageLoaded(c, await rest.history(name, { before: oldestId(c), limit: PAGE }), PAGE);
    } catch (err) {
      app.restError(err, 'Could not load older messages');
    } finally {
      setLoadingOlder(c, false);
      app.changed();
    }
  }

  /** A reply preview for a message that is not loaded. @param {string} channel @param {number} id */
  function fetchQuoted(channel, id) {
    if (state.quoted.has(id) || quoting.has(id)) return;
    quoting.add(id);
    // `before=id+1, limit=1` returns exactly message `id` when it still exists in that channel.
    rest.history(channel, { before: id + 1, limit: 1 })
      .then((page) => setQuoted(state, id, page[0]?.id === id ? page[0] : 'missing'))
      .catch(() => setQuoted(state, id, 'missing'))
      .finally(() => {
        quoting.delete(id);
        app.changed();
      });
  }

  return { loadLatest, afterReady, loadOlder, fetchQuoted };
}

/** @typedef {ReturnType<typeof createHistory>} History */
