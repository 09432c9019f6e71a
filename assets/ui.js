// @ts-check
//! Page-wide UI pieces that any module may use: toasts and modal dialogs (built on <dialog>,
//! so focus trapping, Escape and the backdrop come from the browser).

import { h } from './dom.js';

/** Toasts shown under a key: a new toast with the same key updates that one in place. */
/** @type {Map<string, {el:HTMLElement, timer:ReturnType<typeof setTimeout>}>} */
const keyed = new Map();

/**
 * Show a short message in the corner. With a `key`, a toast already shown under that key gets
 * the new text and a fresh timer instead of a second toast (a burst of the same notice is one).
 * @param {string} text
 * @param {'info'|'error'|'success'} [kind]
 * @param {number} [ms]
 * @param {string} [key]
 */
export function toast(text, kind = 'info', ms = 4000, key) {
  const box = document.getElementById('toasts');
  if (!box) return;
  const known = key ? keyed.get(key) : undefined;
  if (known && known.el.isConnected && !known.el.classList.contains('leaving')) {
    known.el.textContent = text;
    clearTimeout(known.timer);
    known.timer = setTimeout(() => dismiss(known.el, key), ms);
    return;
  }
  const el = h('div', { class: `toast ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, text);
  box.append(el);
  const timer = setTimeout(() => dismiss(el, key), ms);
  if (key) keyed.set(key, { el, timer });
}

/** @param {HTMLElement} el @param {string} [key] */
function dismiss(el, key) {
  if (key && keyed.get(key)?.el === el) keyed.delete(key);
  el.classList.add('leaving');
  setTimeout(() => el.remove(), 300);
}

/**
 * Open a modal dialog. `body` gets the dialog's form; `onSubmit` runs on submit and closes
 * the dialog unless it throws (its message is then shown in the dialog).
 * @param {{title:string, body:(import('./dom.js').Child|import('./dom.js').Child[])[], submitLabel?:string, danger?:boolean,
 *   cancelLabel?:string, onSubmit?:(form:HTMLFormElement)=>Promise<void>|void}} opts
 * @returns {HTMLDialogElement}
 */
export function openModal(opts) {
  const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const submit = opts.onSubmit
    ? h('button', { class: `btn ${opts.danger ? 'danger' : 'primary'}`, type: 'submit' }, opts.submitLabel ?? 'OK')
    : null;
  const cancel = h('button', { class: 'btn ghost', type: 'button', value: 'cancel' }, opts.cancelLabel ?? (submit ? 'Cancel' : 'Close'));
  const form = h('form', { class: 'modal-form', method: 'dialog' },
    h('h2', { class: 'modal-title' }, opts.title),
    ...opts.body,
    error,
    h('div', { class: 'modal-actions' }, cancel, submit),
  );
  const dialog = h('dialog', { class: 'modal', 'aria-label': opts.title }, form);
  cancel.addEventListener('click', () => dialog.close());
  dialog.addEventListener('close', () => dialog.remove());
  dialog.addEventListener('click', (ev) => {
    if (ev.target === dialog) dialog.close(); // a click on the backdrop
  });
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (!opts.onSubmit || !submit) return dialog.close();
    submit.disabled = true;
    error.hidden = true;
    try {
      await opts.onSubmit(form);
      dialog.close();
    } catch (err) {
      error.textContent = err instanceof Error ? err.message : String(err);
      error.hidden = false;
    } finally {
      submit.disabled = false;
    }
  });
  document.body.append(dialog);
  dialog.showModal();
  // A field marked `autofocus` wins (the create-channel dialog's name, not its first radio).
  const first = /** @type {HTMLElement|null} */ (form.querySelector('[autofocus]') ?? form.querySelector('input, textarea, select') ?? submit ?? cancel);
  first?.focus();
  return dialog;
}

/**
 * Ask a yes/no question. Resolves true when confirmed.
 * @param {string} title @param {string} text @param {string} action
 */
export function confirmDialog(title, text, action) {
  return new Promise((resolve) => {
    let ok = false;
    const d = openModal({
      title,
      body: [h('p', { class: 'modal-text' }, text)],
      submitLabel: action,
      danger: true,
      onSubmit: () => {
        ok = true;
      },
    });
    d.addEventListener('close', () => resolve(ok));
  });
}
