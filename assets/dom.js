// @ts-check
//! Small DOM helpers shared by the views. `h()` builds elements; strings passed as children
//! become text nodes (never HTML), so user text can go straight in. `reconcile()` keeps keyed
//! children in place between renders, which keeps focus and scroll where the user left them.

/**
 * @typedef {Node|string|number|null|undefined|false} Child
 * @typedef {Record<string, any>} Props
 */

/**
 * Create an element. Props: `class`, `text`, `dataset`, `on<event>` handlers, `aria-*` and
 * other attributes; anything else is set as a property (e.g. `type`, `disabled`, `title`).
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Props|null} [props]
 * @param {...(Child|Child[])} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  if (props) {
    for (const [k, v] of Object.entries(props)) {
      if (v == null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = String(v);
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k.startsWith('aria-') || k === 'role' || k === 'for' || k === 'tabindex')
        el.setAttribute(k, String(v));
      else /** @type {any} */ (el)[k] = v;
    }
  }
  append(el, children);
  return el;
}

/** @param {Node} el @param {(Child|Child[])[]} children */
function append(el, children) {
  for (const c of children) {
    if (Array.isArray(c)) append(el, c);
    else if (c == null || c === false) continue;
    else if (typeof c === 'string' || typeof c === 'number') el.appendChild(document.createTextNode(String(c)));
    else el.appendChild(c);
  }
}

/**
 * Replace an element's children; like `h()`, strings become text nodes and null/false are skipped.
 * @param {Element} el @param {...(Child|Child[])} children
 */
export function setChildren(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

/**
 * Make `parent`'s children match `items`, reusing the element rendered for the same key when
 * its signature (a string describing everything it shows) is unchanged.
 * @template T
 * @param {HTMLElement} parent
 * @param {T[]} items
 * @param {(item: T) => string} key
 * @param {(item: T) => string} sig
 * @param {(item: T) => HTMLElement} render
 */
export function reconcile(parent, items, key, sig, render) {
  /** @type {Map<string, HTMLElement>} */
  const old = new Map();
  for (const child of Array.from(parent.children)) {
    const k = /** @type {HTMLElement} */ (child).dataset.key;
    if (k != null) old.set(k, /** @type {HTMLElement} */ (child));
    else child.remove();
  }
  let prev = /** @type {Element|null} */ (null);
  for (const item of items) {
    const k = key(item);
    const s = sig(item);
    let el = old.get(k);
    if (el && el.dataset.sig !== s) {
      const fresh = render(item);
      const hadFocus = el.contains(document.activeElement);
      const focusKey = hadFocus ? /** @type {HTMLElement} */ (document.activeElement).dataset.focus : undefined;
      el.replaceWith(fresh);
      el = fresh;
      if (focusKey) /** @type {HTMLElement|null} */ (el.querySelector(`[data-focus="${focusKey}"]`))?.focus();
    } else if (!el) {
      el = render(item);
    }
    old.delete(k);
    el.dataset.key = k;
    el.dataset.sig = s;
    const want = prev ? prev.nextElementSibling : parent.firstElementChild;
    if (want !== el) parent.insertBefore(el, want);
    prev = el;
  }
  for (const el of old.values()) el.remove();
}

/** Users' avatar pictures by username (API.md `avatar_url`), filled from the user list. */
export const avatarUrls = new Map();

/** Two-letter-free avatar: the user's picture if they set one, else the first character plus
 * a colour class chosen from the name. @param {string} name */
export function avatar(name, extra = '') {
  const url = avatarUrls.get(name);
  if (url) return h('img', { class: `avatar avatar-img ${extra}`.trim(), src: url, alt: '', 'aria-hidden': 'true' });
  let hash = 0;
  for (const ch of name) hash = (hash * 31 + (ch.codePointAt(0) ?? 0)) >>> 0;
  return h('span', { class: `avatar av-${hash % 8} ${extra}`.trim(), 'aria-hidden': 'true' }, name.slice(0, 1).toUpperCase());
}

/** Where the user's time format is kept (User settings → Appearance). */
const TIME_FORMAT_KEY = 'md.timeFormat';

/** @typedef {''|'12'|'24'} TimeFormat '' follows the browser's locale */

/** @returns {TimeFormat} */
function loadTimeFormat() {
  try {
    const v = localStorage.getItem(TIME_FORMAT_KEY);
    return v === '12' || v === '24' ? v : '';
  } catch {
    return '';
  }
}

let timeFormat = loadTimeFormat();

/** The chosen clock: '' (the locale's), '12' or '24'. Part of every message's render
 * signature, so switching it re-renders the timestamps. */
export function getTimeFormat() {
  return timeFormat;
}

/** @param {TimeFormat} f */
export function setTimeFormat(f) {
  timeFormat = f;
  try {
    if (f) localStorage.setItem(TIME_FORMAT_KEY, f);
    else localStorage.removeItem(TIME_FORMAT_KEY);
  } catch {
    /* storage disabled: it lasts for this page */
  }
}

/** "9:05 PM" or "21:05" (the hour never has a leading zero, as in Discord), or the locale's
 * own clock when no format was chosen. @param {number} ts */
export function clockTime(ts) {
  /** @type {Intl.DateTimeFormatOptions} */
  const opts = { hour: 'numeric', minute: '2-digit' };
  if (timeFormat) opts.hourCycle = timeFormat === '12' ? 'h12' : 'h23';
  // Some locales (en-US with h23) pad the hour even when asked for 'numeric'.
  return new Intl.DateTimeFormat([], opts).formatToParts(new Date(ts))
    .map((p) => (p.type === 'hour' && p.value.length === 2 && p.value[0] === '0' ? p.value.slice(1) : p.value))
    .join('');
}

/** "Today at 14:05", "Yesterday at 9:12", or "03/11/2025 14:05". @param {number} ts */
export function formatTime(ts) {
  const d = new Date(ts);
  const time = clockTime(ts);
  const today = new Date();
  const yesterday = new Date(Date.now() - 86_400_000);
  if (d.toDateString() === today.toDateString()) return `Today at ${time}`;
  if (d.toDateString() === yesterday.toDateString()) return `Yesterday at ${time}`;
  return `${d.toLocaleDateString()} ${time}`;
}

/** @param {number} ts */
export function shortTime(ts) {
  return clockTime(ts);
}

/** @param {number} ts */
export function dayLabel(ts) {
  return new Date(ts).toLocaleDateString([], { year: 'numeric', month: 'long', day: 'numeric' });
}

/**
 * Colour an element's text (a role colour). Through the CSSOM, which the page's CSP
 * (`style-src 'self'`) allows, unlike a `style` attribute; only `#rrggbb` gets in.
 * @template {HTMLElement} E @param {E} el @param {string|null|undefined} color @returns {E}
 */
export function tint(el, color) {
  if (color && /^#[0-9a-fA-F]{6}$/.test(color)) el.style.color = color;
  return el;
}
