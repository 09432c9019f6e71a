// @ts-check
//! The `/ws` events of "Run a community" (API.md v2) and what the app does with them: the role
//! list (`roles`), a member's roles or timeout (`member_update`), a channel's settings or name
//! (`channel_update`), and the socket closed with 4003 (kicked or banned: `removed`). Hooked
//! in by events.js; changes go through state.js, the UI reads them via perms.js.

import {
  setRoles, setMember, updateChannel, refreshChannelPerms, pickChannel,
} from './state.js';
import { rest } from './protocol.js';
import { memberName } from './perms.js';
import { showInAddress } from './address.js';

/** @param {import('./app.js').App} app */
export function listenCommunity(app) {
  const { state, conn } = app;
  let refreshing = false;
  let again = false;

  // A role or its permissions changed, or my roles did: every channel's `permissions` may
  // have changed with them. Ask once for the fresh list (one in flight, one more queued).
  async function refreshPerms() {
    if (refreshing) {
      again = true;
      return;
    }
    refreshing = true;
    try {
      do {
        again = false;
        refreshChannelPerms(state, await rest.channels());
      } while (again);
      app.changed();
    } catch (err) {
      app.restError(err, null);
    } finally {
      refreshing = false;
    }
  }

  conn.on('roles', (f) => {
    setRoles(state, f.roles);
    app.changed();
    void refreshPerms();
  });

  conn.on('member_update', (f) => {
    /** @type {import('./protocol.js').Member} */
    const m = f.member;
    setMember(state, m);
    if (!state.users.has(memberName(m))) app.refreshUsers();
    app.changed();
    if (memberName(m) === state.me?.username) void refreshPerms();
  });

  conn.on('channel_update', (f) => {
    const wasCurrent = state.current;
    updateChannel(state, f.channel, f.renamed_from);
    if (wasCurrent !== state.current || (f.renamed_from && f.renamed_from === wasCurrent)) {
      showInAddress(state.current);
    }
    if (!state.channels.some((c) => c.name === state.current)) app.selectChannel(pickChannel(state, ''));
    app.changed();
  });

  conn.on('removed', (f) => app.removed(String(f.reason ?? '')));
}
