// @ts-check
//! The centre column's message list: messages of the current channel in id order, grouped by
//! author like Discord, with day dividers, reply previews, reactions, inline editing, and the
//! user's own unacknowledged messages (pending / failed) at the end. It also owns the scroll
//! behaviour: stick to the bottom while the user is there, keep the view still when older
//! messages are prepended or something above changes, ask for older pages near the top, and
//! offer "jump to present" when the user has scrolled far up.

import { h, reconcile, avatar, avatarUrls, formatTime, shortTime, dayLabel, getTimeFormat, tint } from '../dom.js';
import { renderMarkdown } from '../markdown.js';
import { isolateBidi } from '../bidi.js';
import { icon } from '../icons.js';
import { mentionsMe, findMessage, shownName, channelLabel, isDmName } from '../state.js';
import { MAX_CONTENT_CHARS } from '../protocol.js';
import { renderAttachments } from './attachments.js';
import { openEmojiPicker } from './emojipicker.js';
import { can, nameColor, safeColor } from '../perms.js';

/**
 * @typedef {import('../state.js').State} State
 * @typedef {import('../state.js').OutboxEntry} OutboxEntry
 * @typedef {import('../protocol.js').Message} Message
 * @typedef {import('../app.js').Actions} Actions
 * @typedef {{key:string, kind:'day', ts:number} | {key:string, kind:'start'} |
 *   {key:string, kind:'msg', m:Message, grouped:boolean} | {key:string, kind:'new'} |
 *   {key:string, kind:'pending', e:OutboxEntry, grouped:boolean}} Item
 */

/** The reaction palette offered by the picker. */
export const EMOJI = ['👍', '❤️', '😂', '🎉', '😮', '😢', '👀', '🔥'];
const GROUP_WINDOW_MS = 7 * 60_000; // same author within this → one visual group
const NEAR_TOP_PX = 400; // start loading older messages this close to the top
const STICK_PX = 40; // "at the bottom" tolerance

/** @param {Actions} actions */
export function createMessagesView(actions) {
  const scroller = /** @type {HTMLElement} */ (document.getElementById('messages-scroll'));
  const list = /** @type {HTMLOListElement} */ (document.getElementById('messages'));
  const status = /** @type {HTMLElement} */ (document.getElementById('history-status'));
  const jump = /** @type {HTMLButtonElement} */ (document.getElementById('jump-present'));

  let channel = '';
  let stick = true;
  /** @type {number|null} */
  let pickerFor = null;
  let editDraft = '';
  /** @type {number|null} */
  let editDraftFor = null;
  /** @type {State|null} */
  let last = null;

  const distanceFromBottom = () => scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight;
  const updateJump = () => {
    jump.hidden = stick || distanceFromBottom() < scroller.clientHeight;
  };

  // A name or avatar opens that user's profile card (views/profile.js).
  list.addEventListener('click', (ev) => {
    const el = ev.target instanceof Element ? ev.target.closest('[data-profile], .msg > .avatar') : null;
    if (!(el instanceof HTMLElement)) return;
    const name = el.dataset.profile ?? el.closest('li.msg')?.getAttribute('data-author');
    if (name) actions.openProfile(name, el);
  });
  // `#channel` links in message text (markdown.js) open the channel in this page.
  list.addEventListener('click', (ev) => {
    const a = /** @type {HTMLElement|null} */ (ev.target instanceof Element ? ev.target.closest('a.channel-link') : null);
    if (!a?.dataset.channel) return;
    ev.preventDefault();
    actions.selectChannel(a.dataset.channel);
  });
  scroller.addEventListener('scroll', () => {
    stick = distanceFromBottom() < STICK_PX;
    if (stick) actions.seenBottom();
    if (scroller.scrollTop < NEAR_TOP_PX) actions.loadOlder();
    updateJump();
  }, { passive: true });
  new ResizeObserver(() => {
    if (stick) scroller.scrollTop = scroller.scrollHeight;
  }).observe(scroller);
  jump.addEventListener('click', () => scrollToBottom());
  document.addEventListener('click', (ev) => {
    if (pickerFor != null && !(/** @type {Element} */ (ev.target)).closest?.('.picker, .react-btn')) {
      pickerFor = null;
      if (last) render(last);
    }
  });
  document.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && pickerFor != null) {
      pickerFor = null;
      if (last) render(last);
    }
  });

  function scrollToBottom() {
    stick = true;
    scroller.scrollTop = scroller.scrollHeight;
    updateJump();
    actions.seenBottom();
  }

  /** Lower-cased names of every account, for mention highlighting; rebuilt when users change. */
  /** @type {Set<string>} */
  let userNames = new Set();
  /** @type {Map<string, unknown>|null} */
  let usersFrom = null;
  /** @param {string} name */
  const isUser = (name) => userNames.has(name.toLowerCase());
  /** @param {string} name */
  const isChannel = (name) => !!last?.channels.some((c) => c.kind === 'text' && c.name === name);

  let canModerate = false;
  /** @type {Map<string, string|null>} author → role colour, for this render */
  let colors = new Map();
  /** @param {State} s @param {string} author */
  const colorOf = (s, author) => {
    if (!colors.has(author)) colors.set(author, nameColor(s, author));
    return colors.get(author) ?? null;
  };

  /** @param {State} s */
  function render(s) {
    last = s;
    // Asked once per render, not once per message (perms.js works them out from the state).
    canModerate = can(s, 'manage_messages', s.current);
    colors = new Map();
    if (usersFrom !== s.users) {
      usersFrom = s.users;
      userNames = new Set([...s.users.keys()].map((n) => n.toLowerCase()));
    }
    if (channel !== s.current) {
      channel = s.current;
      list.replaceChildren();
      stick = true;
      pickerFor = null;
    }
    const c = s.chans.get(s.current);
    const me = s.me?.username ?? '';

    /** @type {Item[]} */
    const items = [];
    if (c?.reachedStart) items.push({ key: 'start', kind: 'start' });
    /** @type {{author:string, ts:number}|null} */
    let prev = null;
    let lastDay = '';
    // The "new messages" line: above the first message of someone else after the read marker
    // the channel had when it was opened (the server's marker, issue 14).
    const readMark = s.newLine.get(s.current) ?? Infinity;
    let lineShown = false;
    for (const id of c?.ids ?? []) {
      const m = /** @type {Message} */ (c?.byId.get(id));
      const day = new Date(m.ts).toDateString();
      if (day !== lastDay) {
        items.push({ key: `d-${day}`, kind: 'day', ts: m.ts });
        lastDay = day;
        prev = null;
      }
      if (!lineShown && m.id > readMark && m.author !== me) {
        items.push({ key: 'new', kind: 'new' });
        lineShown = true;
        prev = null;
      }
      const grouped = !!prev && prev.author === m.author && m.ts - prev.ts < GROUP_WINDOW_MS && !m.reply_to;
      items.push({ key: `m-${m.id}`, kind: 'msg', m, grouped });
      prev = m;
    }
    for (const e of s.outbox) {
      if (e.channel !== s.current) continue;
      const grouped = !!prev && prev.author === me && e.ts - prev.ts < GROUP_WINDOW_MS && !e.reply_to;
      items.push({ key: `p-${e.nonce}`, kind: 'pending', e, grouped });
      prev = { author: me, ts: e.ts };
    }

    status.textContent = c?.loadingOlder ? 'Loading older messages…' : '';
    status.classList.toggle('active', !!c?.loadingOlder);

    // Keep what the user is looking at in place while things above it change.
    /** @type {HTMLElement|null} */
    let anchor = null;
    let anchorTop = 0;
    if (!stick) {
      // Messages only: a day divider can stay first while older messages go in below it.
      for (const el of /** @type {HTMLElement[]} */ (Array.from(list.querySelectorAll(':scope > li.msg')))) {
        if (el.offsetTop + el.offsetHeight > scroller.scrollTop) {
          anchor = el;
          anchorTop = el.offsetTop - scroller.scrollTop;
          break;
        }
      }
    }

    reconcile(list, items, (it) => it.key, (it) => signature(s, it), (it) => renderItem(s, it));

    if (stick) scroller.scrollTop = scroller.scrollHeight;
    else if (anchor) {
      // The anchor may have been re-rendered (e.g. it joined an author group): find it by key.
      const now = anchor.isConnected ? anchor : /** @type {HTMLElement|null} */ (list.querySelector(`:scope > [data-key="${anchor.dataset.key}"]`));
      if (now) scroller.scrollTop = now.offsetTop - anchorTop;
    }
    updateJump();
    if (c && c.loaded && !c.reachedStart && (scroller.scrollTop < NEAR_TOP_PX || scroller.scrollHeight <= scroller.clientHeight + NEAR_TOP_PX)) {
      actions.loadOlder();
    }
  }

  /** @param {State} s @param {Item} it */
  function signature(s, it) {
    switch (it.kind) {
      case 'day':
        return 'day';
      case 'start':
        return `start:${s.current}:${channelLabel(s, s.current)}`;
      case 'new':
        return it.key;
      case 'msg': {
        const m = it.m;
        const q = m.reply_to != null ? quoteSig(s, m.reply_to) : '';
        return JSON.stringify([m.content, m.edited_ts, m.reactions, m.attachments?.map((a) => a.id),
          avatarUrls.get(m.author), shownName(s, m.author), it.grouped, s.editing === m.id,
          pickerFor === m.id, q, s.me?.admin, s.me?.username, m.content.includes('@') ? userNames.size : 0,
          getTimeFormat(), !!m.pinned, canModerate, colorOf(s, m.author)]);
      }
      case 'pending': {
        const e = it.e;
        const wait = e.notBefore && e.notBefore > Date.now() ? Math.ceil((e.notBefore - Date.now()) / 1000) : 0;
        return JSON.stringify([e.content, e.status, e.error, wait, it.grouped, s.conn.state,
          e.reply_to != null ? quoteSig(s, e.reply_to) : '', getTimeFormat()]);
      }
    }
  }

  /** @param {State} s @param {number} id */
  function quoteSig(s, id) {
    const q = findMessage(s, id);
    return q ? `${q.author}:${q.content}` : s.quoted.get(id) === 'missing' ? 'missing' : 'loading';
  }

  /** @param {State} s @param {Item} it @returns {HTMLElement} */
  function renderItem(s, it) {
    switch (it.kind) {
      case 'day':
        return h('li', { class: 'day-divider', role: 'separator' }, h('span', null, dayLabel(it.ts)));
      case 'start':
        if (isDmName(s.current)) {
          const who = channelLabel(s, s.current);
          return h('li', { class: 'channel-start' },
            h('div', { class: 'start-icon', 'aria-hidden': 'true' }, '@'),
            h('h3', null, who),
            h('p', null, `This is the beginning of your direct messages with ${who}.`));
        }
        return h('li', { class: 'channel-start' },
          h('div', { class: 'start-icon', 'aria-hidden': 'true' }, '#'),
          h('h3', null, `Welcome to #${s.current}!`),
          h('p', null, `This is the start of the #${s.current} channel.`));
      case 'new':
        return h('li', { class: 'new-divider', role: 'separator', 'aria-label': 'New messages' }, h('span', null, 'New'));
      case 'msg':
        return renderMessage(s, it.m, it.grouped);
      case 'pending':
        return renderPending(s, it.e, it.grouped);
    }
  }

  /** @param {State} s @param {number} replyTo */
  function replyRef(s, replyTo) {
    const q = findMessage(s, replyTo);
    if (!q && !s.quoted.has(replyTo)) actions.fetchQuoted(s.current, replyTo);
    const missing = s.quoted.get(replyTo) === 'missing';
    return h('button', {
      class: 'reply-ref',
      type: 'button',
      title: q ? 'Jump to the original message' : '',
      onclick: () => q && jumpTo(q.id),
    },
    h('span', { class: 'reply-spine', 'aria-hidden': 'true' }),
    h('span', { class: 'visually-hidden' }, 'Replying to '),
    q ? avatar(q.author, 'tiny') : null,
    q ? h('span', { class: 'reply-author' }, `@${q.author}`) : null,
    h('span', { class: 'reply-text', dir: 'auto' },
      q ? oneLine(q.content) : missing ? 'Original message was deleted' : 'Loading message…'),
    );
  }

  /** @param {number} id */
  function jumpTo(id) {
    const el = /** @type {HTMLElement|null} */ (list.querySelector(`[data-id="${id}"]`));
    if (!el) return;
    el.scrollIntoView({ block: 'center', behavior: 'smooth' });
    el.classList.remove('flash');
    void el.offsetWidth; // restart the animation
    el.classList.add('flash');
  }

  /** @param {State} s @param {Message} m @param {boolean} grouped */
  function renderMessage(s, m, grouped) {
    const me = s.me?.username ?? '';
    const mine = m.author === me;
    const mentioned = !mine && mentionsMe(s, m);
    const moderator = canModerate;
    const canDelete = mine || moderator;
    const color = safeColor(colorOf(s, m.author));
    const editing = s.editing === m.id;

    const body = h('div', { class: 'msg-body' },
      grouped ? null : h('div', { class: 'msg-head' },
        tint(h('button', { class: 'author link-btn', type: 'button', title: `@${m.author}`, dataset: { profile: m.author } }, shownName(s, m.author)), color),
        h('time', { class: 'ts', dateTime: new Date(m.ts).toISOString(), title: new Date(m.ts).toLocaleString() }, formatTime(m.ts)),
        m.pinned ? pinFlag() : null),
      editing ? editor(m) : h('div', { class: 'msg-content', dir: 'auto' },
        isolateBidi(renderMarkdown(m.content, me, isUser, isChannel)),
        m.edited_ts ? h('span', { class: 'edited', title: `Edited ${new Date(m.edited_ts).toLocaleString()}` }, ' (edited)') : null,
        // A grouped message has no head line to carry the pin mark: it goes after the text.
        grouped && m.pinned ? pinFlag() : null),
      editing ? null : renderAttachments(m.attachments),
      reactions(s, m),
    );

    const li = h('li', {
      class: `msg${grouped ? ' grouped' : ''}${mentioned ? ' mentioned' : ''}${mine ? ' mine' : ''}${editing ? ' editing' : ''}${m.pinned ? ' pinned' : ''}`,
      dataset: { id: String(m.id), author: m.author },
    },
    m.reply_to != null ? replyRef(s, m.reply_to) : null,
    grouped
      ? h('time', { class: 'gutter-time', dateTime: new Date(m.ts).toISOString(), title: new Date(m.ts).toLocaleString() }, shortTime(m.ts))
      : avatar(m.author),
    body,
    editing ? null : h('div', { class: 'msg-actions', role: 'toolbar', 'aria-label': 'Message actions' },
      h('button', {
        class: 'act react-btn', type: 'button', title: 'Add reaction', 'aria-label': 'Add reaction',
        'aria-expanded': pickerFor === m.id ? 'true' : 'false', dataset: { focus: 'react' },
        onclick: () => { pickerFor = pickerFor === m.id ? null : m.id; render(s); },
      }, icon('smile')),
      h('button', {
        class: 'act reply-btn', type: 'button', title: 'Reply', 'aria-label': 'Reply', dataset: { focus: 'reply' },
        onclick: () => actions.startReply(m.id),
      }, icon('reply')),
      mine ? h('button', {
        class: 'act edit-btn', type: 'button', title: 'Edit', 'aria-label': 'Edit', dataset: { focus: 'edit' },
        onclick: () => actions.startEdit(m.id),
      }, icon('edit')) : null,
      moderator ? h('button', {
        class: 'act pin-btn', type: 'button', title: m.pinned ? 'Unpin' : 'Pin', 'aria-label': m.pinned ? 'Unpin' : 'Pin',
        dataset: { focus: 'pin' },
        onclick: () => actions.pin(m.id, !m.pinned),
      }, icon('pin')) : null,
      canDelete ? h('button', {
        class: 'act delete-btn danger-hover', type: 'button', title: 'Delete (Shift-click: no questions)', 'aria-label': 'Delete',
        dataset: { focus: 'delete' },
        onclick: (/** @type {MouseEvent} */ ev) => actions.deleteMessage(m.id, ev.shiftKey),
      }, icon('trash')) : null,
    ),
    pickerFor === m.id ? picker(m) : null,
    );
    return li;
  }

  /** @param {Message} m */
  function picker(m) {
    return h('div', { class: 'picker', role: 'group', 'aria-label': 'Pick a reaction' },
      EMOJI.map((e) => h('button', {
        class: 'pick', type: 'button', title: e, 'aria-label': `React with ${e}`,
        onclick: () => { pickerFor = null; actions.react(m.id, e); },
      }, e)),
      h('button', {
        class: 'pick pick-more', type: 'button', title: 'More reactions', 'aria-label': 'More reactions',
        onclick: () => moreReactions(m.id),
      }, icon('smile')));
  }

  /** Any emoji as a reaction: the full picker (emojipicker.js), next to the message's react
   * button, which outlives the quick palette's re-render. @param {number} id */
  function moreReactions(id) {
    pickerFor = null;
    if (last) render(last);
    const anchor = /** @type {HTMLElement|null} */ (list.querySelector(`li[data-id="${id}"] .react-btn`));
    if (!anchor) return;
    openEmojiPicker({ anchor, label: 'Pick a reaction', onPick: (e) => actions.react(id, e) });
  }

  /** @param {State} s @param {Message} m */
  function reactions(s, m) {
    const entries = Object.entries(m.reactions ?? {}).filter(([, users]) => users.length);
    if (!entries.length) return null;
    const me = s.me?.username ?? '';
    return h('div', { class: 'reactions' },
      entries.map(([emoji, users]) => {
        const mine = users.includes(me);
        return h('button', {
          class: `reaction${mine ? ' mine' : ''}`,
          type: 'button',
          title: `${users.join(', ')} reacted with ${emoji}`,
          'aria-label': `${emoji} ${users.length}: ${users.join(', ')}`,
          'aria-pressed': mine ? 'true' : 'false',
          dataset: { emoji, focus: `r-${emoji}` },
          onclick: () => actions.react(m.id, emoji),
        }, h('span', { class: 'r-emoji' }, emoji), h('span', { class: 'r-count' }, String(users.length)));
      }));
  }

  /** The inline editor for one of the user's own messages. @param {Message} m */
  function editor(m) {
    if (editDraftFor !== m.id) {
      editDraftFor = m.id;
      editDraft = m.content;
    }
    // No maxlength, as in the composer: a long paste is kept whole, and saving is refused
    // with the count shown until it fits (issue 18, bug 5).
    const ta = h('textarea', { class: 'edit-input', dir: 'auto', value: editDraft, rows: 1, 'aria-label': 'Edit message', dataset: { focus: 'edit-input' } });
    const over = h('span', { class: 'edit-over', role: 'status' });
    const showCount = () => {
      const n = [...ta.value.trim()].length;
      over.textContent = n > MAX_CONTENT_CHARS ? ` • ${n} / ${MAX_CONTENT_CHARS} — too long to save` : '';
      return n <= MAX_CONTENT_CHARS;
    };
    showCount();
    const save = () => {
      const text = ta.value.trim();
      if (!showCount()) return;
      editDraftFor = null;
      if (!text) actions.deleteMessage(m.id, false);
      else if (text === m.content) actions.cancelEdit();
      else actions.saveEdit(m.id, text);
    };
    ta.addEventListener('input', () => {
      editDraft = ta.value;
      autosize(ta);
      showCount();
    });
    ta.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
        ev.preventDefault();
        save();
      } else if (ev.key === 'Escape') {
        ev.preventDefault();
        editDraftFor = null;
        actions.cancelEdit();
      }
    });
    requestAnimationFrame(() => {
      if (!ta.isConnected) return;
      autosize(ta);
      if (document.activeElement !== ta) {
        ta.focus();
        ta.setSelectionRange(ta.value.length, ta.value.length);
      }
    });
    return h('div', { class: 'edit-box' }, ta,
      h('div', { class: 'edit-hint' },
        'escape to ', h('button', { class: 'link-btn', type: 'button', onclick: () => { editDraftFor = null; actions.cancelEdit(); } }, 'cancel'),
        ' • enter to ', h('button', { class: 'link-btn', type: 'button', onclick: save }, 'save'), over));
  }

  /** @param {State} s @param {OutboxEntry} e @param {boolean} grouped */
  function renderPending(s, e, grouped) {
    const me = s.me?.username ?? '';
    const now = Date.now();
    let note;
    if (e.status === 'failed') {
      note = h('div', { class: 'send-state failed', role: 'alert' },
        h('span', null, `Not sent${e.error ? ` — ${e.error}` : ''}. `),
        h('button', { class: 'link-btn retry-btn', type: 'button', onclick: () => actions.retry(e.nonce) }, 'Retry'),
        ' · ',
        h('button', { class: 'link-btn discard-btn', type: 'button', onclick: () => actions.discard(e.nonce) }, 'Discard'));
    } else if (e.notBefore && e.notBefore > now) {
      note = h('div', { class: 'send-state waiting' },
        `Slow down — sending again in ${Math.ceil((e.notBefore - now) / 1000)} s`);
    } else if (e.status === 'queued' && s.conn.state !== 'ready') {
      note = h('div', { class: 'send-state queued' }, 'Waiting for connection — it will be sent when you are back online');
    } else if (e.status === 'queued') {
      // Online, behind an earlier message (one goes out at a time, in typed order).
      note = h('div', { class: 'send-state pending' }, 'Sending…');
    } else {
      note = h('div', { class: 'send-state pending' }, 'Sending…');
    }
    return h('li', {
      class: `msg mine outgoing ${e.status}${grouped ? ' grouped' : ''}`,
      dataset: { nonce: e.nonce },
    },
    e.reply_to != null ? replyRef(s, e.reply_to) : null,
    grouped ? h('span', { class: 'gutter-time' }, shortTime(e.ts)) : avatar(me),
    h('div', { class: 'msg-body' },
      grouped ? null : h('div', { class: 'msg-head' },
        h('span', { class: 'author' }, me),
        h('time', { class: 'ts' }, formatTime(e.ts))),
      h('div', { class: 'msg-content', dir: 'auto' }, isolateBidi(renderMarkdown(e.content, me, isUser, isChannel))),
      note),
    );
  }

  return { render, scrollToBottom, isAtBottom: () => stick };
}

function pinFlag() {
  return h('span', { class: 'pinned-flag', title: 'Pinned' }, '📌', h('span', { class: 'visually-hidden' }, 'pinned'));
}

/** @param {string} text */
function oneLine(text) {
  const flat = text.replace(/```[\s\S]*?```/g, '[code]').replace(/\s+/g, ' ').trim();
  return flat.length > 120 ? `${flat.slice(0, 117)}…` : flat;
}

/** Grow a textarea with its content, up to the CSS max-height. @param {HTMLTextAreaElement} ta */
export function autosize(ta) {
  ta.style.height = 'auto';
  ta.style.height = `${ta.scrollHeight}px`;
}
