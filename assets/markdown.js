// @ts-check
//! The safe markdown subset for message text, as Discord has it: **bold**, *italic* /
//! _italic_, ~~strike~~, ||spoiler|| (hidden until clicked), `inline code`, ```code blocks```,
//! links ([text](url) and bare URLs), @mentions and #channel links; and per line `> quote`,
//! `#`/`##`/`###` headings and `-`/`*`/`1.` lists. It builds DOM nodes
//! directly: user text only ever enters the page through `createTextNode`, and nothing is ever
//! parsed as HTML. Only http: and https: URLs become links, always with
//! rel="noopener noreferrer" and target=_blank; anything else (javascript:, data:, …) stays
//! literal text.

/**
 * Who the text is shown to: `me` (whose mentions get a stronger highlight) and which names
 * are users at all (`@nobody` stays plain text, issue 18 bug 10).
 * `isChannel` says which `#name`s are text channels (others stay plain text).
 * @typedef {{me?:string, isUser?:(name:string)=>boolean, isChannel?:(name:string)=>boolean}} Viewer
 */

/** Mentions that name no account but everyone in the channel. */
const GROUP_MENTIONS = new Set(['everyone', 'here']);

/**
 * Render message content.
 * @param {string} content
 * @param {string} [me] the viewer's username, whose mentions get a stronger highlight
 * @param {(name:string)=>boolean} [isUser] whether a name is an account; without it every
 *   well-formed @name is highlighted
 * @param {(name:string)=>boolean} [isChannel] whether `#name` is a text channel to link to
 * @returns {DocumentFragment}
 */
export function renderMarkdown(content, me, isUser, isChannel) {
  /** @type {Viewer} */
  const who = { me, isUser, isChannel };
  const frag = document.createDocumentFragment();
  // Code blocks first: nothing inside them is interpreted.
  const fence = /```(?:([A-Za-z0-9_+-]{1,20})\n)?([\s\S]*?)```/g;
  let at = 0;
  for (let m; (m = fence.exec(content)); ) {
    if (m.index > at) blocks(frag, content.slice(at, m.index), who);
    const pre = document.createElement('pre');
    const code = document.createElement('code');
    code.textContent = m[2].replace(/^\n/, '').replace(/\n$/, '');
    if (m[1]) pre.dataset.lang = m[1];
    pre.append(code);
    frag.append(pre);
    at = fence.lastIndex;
  }
  if (at < content.length) blocks(frag, content.slice(at), who);
  return frag;
}

/** Line-level rules (Discord's): a heading, a quote, a bullet or a numbered list item. */
const LINE_RULES = [
  { kind: 'heading', re: /^(#{1,3}) (\S.*)$/ },
  { kind: 'quote', re: /^> ?(.*)$/ },
  { kind: 'ul', re: /^\s{0,3}[-*] (\S.*)$/ },
  { kind: 'ol', re: /^\s{0,3}(\d{1,9})\. (\S.*)$/ },
];

/**
 * Splits text into lines, groups runs of quote / list lines into one element each, and hands
 * everything else to `inline` as one text run (the message keeps `white-space: pre-wrap`).
 * @param {Node} parent @param {string} text @param {Viewer} who
 */
function blocks(parent, text, who) {
  const lines = text.split('\n');
  /** @type {string[]} */
  let plain = [];
  /** @type {{kind:string, el:HTMLElement}|null} */
  let group = null;
  const flushPlain = () => {
    if (plain.length) inline(parent, plain.join('\n'), who, 0);
    plain = [];
  };
  for (const line of lines) {
    let hit = null;
    for (const rule of LINE_RULES) {
      const m = rule.re.exec(line);
      if (m) {
        hit = { kind: rule.kind, m };
        break;
      }
    }
    if (!hit) {
      group = null;
      plain.push(line);
      continue;
    }
    flushPlain();
    const { kind, m } = hit;
    if (kind === 'heading') {
      group = null;
      const el = document.createElement(`h${m[1].length + 2}`); // h3–h5: below the page's own
      el.className = 'md-heading';
      inline(el, m[2], who, 0);
      parent.appendChild(el);
      continue;
    }
    if (!group || group.kind !== kind) {
      const el = /** @type {HTMLElement} */ (document.createElement(kind === 'quote' ? 'blockquote' : kind));
      if (kind === 'ol') /** @type {HTMLOListElement} */ (el).start = Math.min(Number(m[1]), 1e9);
      parent.appendChild(el);
      group = { kind, el };
    }
    if (kind === 'quote') {
      if (group.el.childNodes.length) group.el.appendChild(document.createTextNode('\n'));
      inline(group.el, m[1], who, 0);
    } else {
      const li = document.createElement('li');
      inline(li, kind === 'ol' ? m[2] : m[1], who, 0);
      group.el.appendChild(li);
    }
  }
  flushPlain();
}

/** Is this a URL we are willing to make a link of? @param {string} raw */
export function safeUrl(raw) {
  try {
    const u = new URL(raw);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : null;
  } catch {
    return null;
  }
}

/** Inline rules, tried at every position; the earliest match wins. */
const RULES = [
  { kind: 'code', re: /`([^`\n]+)`/y },
  { kind: 'link', re: /\[([^\]\n]{1,300})\]\(([^)\s]{1,2000})\)/y },
  { kind: 'url', re: /https?:\/\/[^\s<>"'`]+[^\s<>"'`.,:;!?)\]]/y },
  { kind: 'bold', re: /\*\*(?=\S)([\s\S]+?)\*\*/y },
  { kind: 'strike', re: /~~(?=\S)([\s\S]+?)~~/y },
  { kind: 'spoiler', re: /\|\|(?=\S)([\s\S]+?)\|\|/y },
  { kind: 'channel', re: /#([a-z0-9_-]{1,32})/y },
  { kind: 'italic', re: /\*(?=[^\s*])([^*]+?)\*/y },
  { kind: 'italic', re: /\b_(?=\S)([^_]+?)_\b/y },
  { kind: 'mention', re: /@[A-Za-z0-9_.-]{2,32}/y },
];

/** Characters where an inline rule may start; everything else is plain text. */
const STARTS = /[`[h*_@~|#]/;

/** Rules whose inside is markdown again, so their depth is bounded. */
const NESTING = new Set(['bold', 'italic', 'strike', 'spoiler']);

/**
 * @param {Node} parent
 * @param {string} text
 * @param {Viewer} who
 * @param {number} depth nesting guard for bold/italic inside each other
 */
function inline(parent, text, who, depth) {
  let plainFrom = 0;
  const starts = new RegExp(STARTS.source, 'g'); // own scanner: bold/italic recurse
  for (let s; (s = starts.exec(text)); ) {
    const pos = s.index;
    let matched = null;
    for (const rule of RULES) {
      if (depth > 3 && NESTING.has(rule.kind)) continue;
      rule.re.lastIndex = pos;
      const m = rule.re.exec(text);
      if (m) {
        // `mention` must not start inside a word (e.g. an e-mail address).
        if (rule.kind === 'mention' && pos > 0 && /[A-Za-z0-9_.-]/.test(text[pos - 1])) continue;
        if (rule.kind === 'channel' && (!who.isChannel?.(m[1]) || (pos > 0 && /[A-Za-z0-9&]/.test(text[pos - 1])))) continue;
        if (rule.kind === 'url' && pos > 0 && /[A-Za-z0-9]/.test(text[pos - 1])) continue;
        matched = { kind: rule.kind, m };
        break;
      }
    }
    if (!matched) continue;
    const { kind, m } = matched;
    if (kind === 'link' && !safeUrl(m[2])) {
      // Not an http(s) link: keep it as literal text, but skip past it.
      starts.lastIndex = pos + m[0].length;
      continue;
    }
    if (pos > plainFrom) parent.appendChild(document.createTextNode(text.slice(plainFrom, pos)));
    parent.appendChild(node(kind, m, who, depth));
    plainFrom = pos + m[0].length;
    starts.lastIndex = plainFrom;
  }
  if (plainFrom < text.length) parent.appendChild(document.createTextNode(text.slice(plainFrom)));
}

/**
 * @param {string} kind
 * @param {RegExpExecArray} m
 * @param {Viewer} who
 * @param {number} depth
 * @returns {Node}
 */
function node(kind, m, who, depth) {
  switch (kind) {
    case 'code': {
      const el = document.createElement('code');
      el.textContent = m[1];
      return el;
    }
    case 'link':
      return link(m[1], /** @type {string} */ (safeUrl(m[2])));
    case 'url': {
      const href = safeUrl(m[0]);
      return href ? link(m[0], href) : document.createTextNode(m[0]);
    }
    case 'bold':
    case 'italic': {
      const el = document.createElement(kind === 'bold' ? 'strong' : 'em');
      inline(el, m[1], who, depth + 1);
      return el;
    }
    case 'strike': {
      const el = document.createElement('s');
      inline(el, m[1], who, depth + 1);
      return el;
    }
    case 'spoiler': {
      // Hidden (by CSS) until clicked or activated from the keyboard; then it stays shown.
      const el = document.createElement('span');
      el.className = 'spoiler';
      el.tabIndex = 0;
      el.setAttribute('role', 'button');
      el.setAttribute('aria-label', 'Spoiler: activate to reveal');
      const reveal = () => {
        el.classList.add('revealed');
        el.removeAttribute('role');
        el.removeAttribute('aria-label');
        el.removeAttribute('tabindex');
      };
      el.addEventListener('click', reveal);
      el.addEventListener('keydown', (ev) => {
        if (ev.key === 'Enter' || ev.key === ' ') {
          ev.preventDefault();
          reveal();
        }
      });
      inline(el, m[1], who, depth + 1);
      return el;
    }
    case 'channel': {
      // A same-page link: messages.js catches the click and opens the channel.
      const a = document.createElement('a');
      a.className = 'channel-link';
      a.href = `#${m[1]}`;
      a.dataset.channel = m[1];
      a.textContent = m[0];
      return a;
    }
    case 'mention': {
      const name = m[0].slice(1);
      if (who.isUser && !GROUP_MENTIONS.has(name.toLowerCase()) && !who.isUser(name)) {
        return document.createTextNode(m[0]);
      }
      const el = document.createElement('span');
      el.className = 'mention';
      if (who.me && name.toLowerCase() === who.me.toLowerCase()) el.classList.add('me');
      el.textContent = m[0];
      return el;
    }
    default:
      return document.createTextNode(m[0]);
  }
}

/** @param {string} label @param {string} href */
function link(label, href) {
  const a = document.createElement('a');
  a.href = href;
  a.target = '_blank';
  a.rel = 'noopener noreferrer';
  a.textContent = label;
  a.title = href;
  return a;
}
