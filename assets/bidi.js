// @ts-check
//! Bidi isolation of user text (issue 19, finding 7). An explicit embedding, override or
//! isolate character (U+202A–U+202E, U+2066–U+2069) that a message opens and never closes
//! would otherwise run on to the end of the message's paragraph and reorder what follows it:
//! the next formatted run, a mention, the "(edited)" note. Every text node that holds one is
//! wrapped in a `<bdi>`, an isolating element: whatever the characters open ends with it
//! (Unicode UAX #9, rule X6a; HTML's `bdi`). Text without them is left as it is.

const BIDI_CONTROLS = /[\u202A-\u202E\u2066-\u2069]/;

/**
 * Wraps each text node under `root` that holds a bidi control character in a `<bdi>`.
 * @template {Node} T
 * @param {T} root
 * @returns {T}
 */
export function isolateBidi(root) {
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  /** @type {Text[]} */
  const hits = [];
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (BIDI_CONTROLS.test(n.nodeValue ?? '')) hits.push(/** @type {Text} */ (n));
  }
  for (const text of hits) {
    const bdi = document.createElement('bdi');
    text.parentNode?.replaceChild(bdi, text);
    bdi.appendChild(text);
  }
  return root;
}
