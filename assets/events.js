// @ts-check
//! What the app does with each server event on `/ws` (docs/API.md, "Events"): each handler
//! hands the frame to a named function in state.js, persists what must survive a reload, and
//! asks for a re-render. Sending lives in outbox.js, history in history.js.

import { toast } from './ui.js';
import { avatarUrls } from './dom.js';
import { addressChannel } from './address.js';
import {
  setConnStatus, applyReady, applyMessage, applyMessageUpdate, applyMessageDelete, applyReaction,
  applyTyping, setPresence, setVoiceMember, addChannel, removeChannel, pickChannel, applyRead,
  applyUserUpdate, applyUserMerge, channelLabel,
} from './state.js';
import * as voice from './voice.js';
import { listenCommunity } from './community.js';

/**
 * @param {import('./app.js').App} app
 * @param {{outbox:import('./outbox.js').Outbox, unread:import('./unread.js').Unread,
 *   history:import('./history.js').History}} parts
 */
export function listen(app, { outbox, unread, history }) {
  const { state, conn } = app;
  const hash = addressChannel;

  conn.on('status', (st) => {
    setConnStatus(state, st, Date.now());
    app.changed();
  });

  conn.on('unauthorized', () => app.sessionExpired());
  listenCommunity(app); // roles, member_update, channel_update, kicked/banned

  conn.on('ready', (/** @type {import('./protocol.js').ReadyFrame} */ f) => {
    applyReady(state, f, hash());
    // Deleted while this page was away: its voice socket would only ever get 404 back.
    const inCall = voice.currentChannel();
    if (inCall && !f.channels.some((c) => c.name === inCall)) leaveDeletedVoice(inCall);
    outbox.flush();
    app.changed();
    app.refreshUsers();
    history.afterReady();
  });

  conn.on('message', (f) => {
    /** @type {import('./protocol.js').Message} */
    const m = f.message;
    const r = applyMessage(state, m, f.nonce, unread.seeing(m.channel));
    if (r.acked) outbox.acknowledged();
    if (!r.own) unread.notify(m, r.mention);
    app.changed();
    requestAnimationFrame(unread.markReadIfVisible);
  });

  conn.on('message_update', (f) => {
    applyMessageUpdate(state, f.message);
    app.changed();
  });

  conn.on('message_delete', (f) => {
    applyMessageDelete(state, f.channel, f.id);
    app.changed();
  });

  conn.on('reaction', (f) => {
    if (applyReaction(state, f)) app.changed();
  });

  conn.on('typing', (f) => {
    if (f.user === state.me?.username) return;
    applyTyping(state, f.channel, f.user, Date.now());
    app.changed();
  });

  conn.on('read', (f) => {
    applyRead(state, f.channel, f.id, f.mentions);
    app.changed();
  });

  conn.on('user_update', (f) => {
    applyUserUpdate(state, f.user);
    // A new picture shows at once wherever the user appears (the views' signatures read it).
    if (f.user.avatar_url) avatarUrls.set(f.user.username, f.user.avatar_url);
    else avatarUrls.delete(f.user.username);
    app.changed();
  });

  conn.on('user_merge', (f) => {
    applyUserMerge(state, String(f.from), f.into);
    avatarUrls.delete(String(f.from));
    if (f.into.avatar_url) avatarUrls.set(f.into.username, f.into.avatar_url);
    app.changed();
  });

  conn.on('presence', (f) => {
    setPresence(state, f.user, f.status);
    if (!state.users.has(f.user)) app.refreshUsers();
    app.changed();
  });

  conn.on('voice_state', (f) => {
    setVoiceMember(state, f.channel, f.user, f.joined, f.muted, f.deafened, f.video, f.screen);
    app.changed();
  });

  conn.on('channel_create', (f) => {
    addChannel(state, f.channel);
    app.changed();
  });

  conn.on('channel_delete', (f) => {
    // Named before it goes: a DM by its members, never its internal name.
    const dm = state.channels.some((c) => c.name === f.name && c.kind === 'dm');
    const label = channelLabel(state, f.name);
    if (voice.currentChannel() === f.name) leaveDeletedVoice(f.name);
    if (removeChannel(state, f.name)) outbox.save();
    if (state.current === f.name) {
      // Leaving a DM (here or in another tab) takes it away too: that is no deletion.
      // Keyed: the tab that left says so too (dms.js), and one toast is enough.
      toast(dm ? `You left the conversation with ${label}.` : `${label} was deleted.`, 'info', 4000, `gone-${f.name}`);
      app.selectChannel(pickChannel(state, hash()));
    }
    app.changed();
  });

  conn.on('error', (f) => {
    if (f.code === 'unauthorized') return app.sessionExpired();
    if (outbox.refused(f)) {
      /* shown on the message itself */
    } else if (f.code === 'rate_limited') {
      toast(`Slow down: try again in ${((Number(f.retry_after_ms) || 1000) / 1000).toFixed(1)} s.`, 'error');
    } else {
      toast(f.message || `Error: ${f.code}`, 'error');
    }
    app.changed();
  });
}

/** The voice channel this page is in no longer exists: end the call and say why. @param {string} name */
function leaveDeletedVoice(name) {
  voice.leave(true);
  toast(`Voice channel ${name} was deleted. You left the call.`, 'info', 6000);
}
