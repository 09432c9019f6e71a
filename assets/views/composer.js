// @ts-check
//! The composer under the messages: Enter sends, Shift+Enter adds a line, Up arrow in an empty
//! box edits your last message, Escape cancels a reply. It keeps a draft per channel (saved in
//! localStorage, so a reload does not lose it), shows the reply bar, who is typing, and the
//! length counter near the 4000-character limit. `@name`, `#channel` and `:emoji:` complete
//! as you type (autocomplete.js); the smiley button opens the emoji picker (emojipicker.js).

import { h } from '../dom.js';
import { icon } from '../icons.js';
import { typingNames, findMessage, channelLabel } from '../state.js';
import { autosize } from './messages.js';
import { MAX_CONTENT_CHARS } from '../protocol.js';
import { createAttachmentTray } from './attachments.js';
import { toast } from '../ui.js';
import { attachAutocomplete } from './autocomplete.js';
import { openEmojiPicker, pickerOpen, insertAtCaret } from './emojipicker.js';

/**
 * @typedef {import('../state.js').State} State
 * @typedef {import('../app.js').Actions} Actions
 */

export const MAX_CHARS = MAX_CONTENT_CHARS;
const TYPING_EVERY_MS = 3_000; // tell the server at most this often while keys are pressed

/** @param {Actions} actions */
export function createComposer(actions) {
  const form = /** @type {HTMLFormElement} */ (document.getElementById('composer'));
  const input = /** @type {HTMLTextAreaElement} */ (document.getElementById('composer-input'));
  const replyBar = /** @type {HTMLElement} */ (document.getElementById('reply-bar'));
  const typing = /** @type {HTMLElement} */ (document.getElementById('typing'));
  const counter = /** @type {HTMLElement} */ (document.getElementById('char-count'));
  const asFile = /** @type {HTMLButtonElement} */ (document.getElementById('send-as-file'));

  let channel = '';
  let lastTypingSent = 0;
  /** @type {State|null} */
  let last = null;

  /** Whose drafts these are: the last signed-in user seen, kept past a teardown (the page
   * may reset its state before the logout's answer arrives, and then clear the drafts). */
  let owner = 0;
  const draftKey = (/** @type {string} */ ch) => `md.draft.${last?.me?.id ?? owner}.${ch}`;
  const saveDraft = () => {
    if (!channel) return;
    try {
      if (input.value) localStorage.setItem(draftKey(channel), input.value);
      else localStorage.removeItem(draftKey(channel));
    } catch {
      /* storage full or disabled: the draft only lives in the page */
    }
  };

  const tray = createAttachmentTray(() => {});
  // The emoji picker's button, between the text box and Send (views/emojipicker.js).
  const emojiBtn = h('button', {
    type: 'button', class: 'emoji-btn', id: 'emoji-btn', title: 'Emoji', 'aria-label': 'Pick an emoji',
    'aria-haspopup': 'dialog', 'aria-expanded': 'false',
  }, icon('smile'));
  form.insertBefore(emojiBtn, document.getElementById('send-btn'));
  /** @type {{close:()=>void}|null} */
  let emojiPicker = null;
  emojiBtn.addEventListener('click', () => {
    if (emojiPicker && pickerOpen()) return emojiPicker.close();
    emojiPicker = openEmojiPicker({
      anchor: emojiBtn,
      label: 'Pick an emoji',
      onPick: (e) => {
        insertAtCaret(input, e);
        queueMicrotask(() => {
          if (!pickerOpen()) input.focus();
        });
      },
    });
  });
  const complete = attachAutocomplete(input, /** @type {HTMLElement} */ (form.parentElement), {
    users: () => [...(last?.users.keys() ?? [])].sort((a, b) => a.localeCompare(b)),
    channels: () => (last?.channels ?? []).filter((c) => c.kind === 'text').map((c) => c.name),
  });

  function submit() {
    const text = input.value.trim();
    if (tray.busy()) {
      toast('Wait for the files to finish uploading.', 'info');
      return;
    }
    if (!text && !tray.hasReady()) return;
    if ([...text].length > MAX_CHARS) {
      updateCounter();
      return;
    }
    complete.close();
    actions.send(text, tray.take());
    lastTypingSent = 0; // the others stop showing us as typing once the message arrives
    input.value = '';
    saveDraft();
    autosize(input);
    updateCounter();
  }

  // No `maxlength` on the text box: it silently cut a long paste to 4000 and the rest was
  // gone (issue 18, bug 5). The text stays whole; over the limit the counter says so and
  // Enter refuses to send, so the user can shorten it, or "Send as a file" turns the text
  // into message.txt in the upload tray.
  function updateCounter() {
    const n = [...input.value].length;
    counter.textContent = n > MAX_CHARS ? `${n} / ${MAX_CHARS} — too long to send`
      : n > MAX_CHARS - 500 ? `${MAX_CHARS - n}` : '';
    counter.classList.toggle('over', n > MAX_CHARS);
    asFile.hidden = n <= MAX_CHARS;
  }
  asFile.addEventListener('click', () => {
    tray.add([new File([input.value], 'message.txt', { type: 'text/plain' })]);
    input.value = '';
    saveDraft();
    autosize(input);
    updateCounter();
    input.focus();
    toast('Your text is attached as message.txt: press Enter to send it.', 'info');
  });

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    submit();
    input.focus();
  });
  input.addEventListener('keydown', (ev) => {
    if (complete.handleKey(ev)) return;
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      submit();
    } else if (ev.key === 'ArrowUp' && input.value === '' && !ev.shiftKey) {
      ev.preventDefault();
      actions.editLast();
    } else if (ev.key === 'Escape' && last?.replyTo) {
      ev.preventDefault();
      actions.cancelReply();
    }
  });
  input.addEventListener('input', () => {
    autosize(input);
    updateCounter();
    saveDraft();
    const now = Date.now();
    if (input.value.trim() && now - lastTypingSent > TYPING_EVERY_MS) {
      lastTypingSent = now;
      actions.typing();
    }
  });

  /** @param {State} s */
  function render(s) {
    last = s;
    if (s.me?.id) owner = s.me.id;
    if (channel !== s.current) {
      saveDraft();
      channel = s.current;
      let draft = '';
      try {
        draft = localStorage.getItem(draftKey(channel)) ?? '';
      } catch {
        /* no storage */
      }
      input.value = draft;
      lastTypingSent = 0;
      requestAnimationFrame(() => autosize(input));
      updateCounter();
    }
    input.placeholder = s.current ? `Message ${channelLabel(s, s.current)}` : 'No channel selected';

    const reply = s.replyTo ? findMessage(s, s.replyTo.messageId) : null;
    const replySig = reply ? `${reply.id}` : '';
    if (replyBar.dataset.sig !== replySig) {
      replyBar.dataset.sig = replySig;
      replyBar.hidden = !reply;
      replyBar.replaceChildren(...(reply ? [
        h('span', { class: 'reply-bar-text' }, 'Replying to ', h('strong', null, reply.author)),
        h('button', {
          class: 'icon-btn small', type: 'button', title: 'Cancel reply (Escape)', 'aria-label': 'Cancel reply',
          onclick: () => actions.cancelReply(),
        }, icon('close')),
      ] : []));
    }

    const names = typingNames(s, s.current);
    const typingSig = names.join(',');
    if (typing.dataset.sig !== typingSig) {
      typing.dataset.sig = typingSig;
      typing.replaceChildren(...(names.length ? [
        h('span', { class: 'dots', 'aria-hidden': 'true' }, h('i'), h('i'), h('i')),
        ...typingText(names),
      ] : []));
    }
  }

  /**
   * Signing out: delete this user's drafts from localStorage (someone else may use this
   * browser next; issue 19) and empty the box, so the next user neither sees nor saves it.
   */
  function forgetDrafts() {
    const prefix = `md.draft.${owner}.`;
    try {
      for (const k of Object.keys(localStorage)) if (k.startsWith(prefix)) localStorage.removeItem(k);
    } catch {
      /* no storage: nothing was kept */
    }
    channel = '';
    owner = 0;
    input.value = '';
    autosize(input);
    updateCounter();
  }

  return {
    render,
    forgetDrafts,
    focus: () => input.focus(),
    element: input,
  };
}

/** "alice is typing…", "alice and bob are typing…", "Several people are typing…" @param {string[]} names */
function typingText(names) {
  if (names.length > 3) return [h('strong', null, 'Several people'), ' are typing…'];
  /** @type {(Node|string)[]} */
  const parts = [];
  names.forEach((n, i) => {
    if (i > 0) parts.push(i === names.length - 1 ? ' and ' : ', ');
    parts.push(h('strong', null, n));
  });
  parts.push(names.length === 1 ? ' is typing…' : ' are typing…');
  return parts;
}
