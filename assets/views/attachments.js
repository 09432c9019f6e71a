// @ts-check
//! Files in chat (API.md "Files and images"): the composer's tray of uploads (attach button,
//! drop onto the channel, paste an image; each file with a progress bar and a cancel button),
//! the attachments under a message (thumbnails at their known size, players for video and
//! audio, a card with a download link for anything else), and the lightbox.
//!
//! Uploads go straight to `POST /api/attachments` as soon as a file is picked, with
//! XMLHttpRequest because only it reports upload progress; the message then carries the ids.
//! User text (file names) only ever enters the page as text. File URLs are the server's own
//! relative paths, so they are same-origin by construction.

import { h, setChildren } from '../dom.js';
import { toast } from '../ui.js';

/**
 * @typedef {{id:string, filename:string, size:number, content_type:string, url:string,
 *   thumb_url:string|null, width:number|null, height:number|null}} Attachment
 * @typedef {{key:number, file:File, loaded:number, status:'uploading'|'done'|'failed',
 *   error?:string, attachment?:Attachment, xhr:XMLHttpRequest}} Upload
 */

/** API.md: at most 10 files on one message. */
export const MAX_FILES = 10;
/** Inline images are shown at most this big (their thumbnail is at most 400 px). */
const SHOW_MAX_W = 400;
const SHOW_MAX_H = 300;

/** `1.2 MB`, `340 KB`, `12 B`. @param {number} n */
export function formatSize(n) {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${Math.round(n / 1e3)} KB`;
  return `${n} B`;
}

/**
 * The composer's tray. `changed` is called whenever what the tray shows changes.
 * @param {() => void} changed
 */
export function createAttachmentTray(changed) {
  const form = /** @type {HTMLFormElement} */ (document.getElementById('composer'));
  const tray = h('ul', { class: 'attach-tray', 'aria-label': 'Files to send', hidden: true });
  const picker = h('input', { type: 'file', multiple: true, class: 'visually-hidden', id: 'attach-input', tabIndex: -1 });
  const button = h('button', {
    type: 'button', class: 'attach-btn', id: 'attach-btn', title: 'Attach files', 'aria-label': 'Attach files',
    onclick: () => picker.click(),
  }, '+');
  form.parentElement?.insertBefore(tray, form);
  form.prepend(button, picker);
  picker.addEventListener('change', () => {
    add([...(picker.files ?? [])]);
    picker.value = '';
  });

  // Drop anywhere on the channel; paste an image into the page.
  const zone = document.getElementById('messages-scroll')?.parentElement ?? document.body;
  zone.addEventListener('dragover', (ev) => {
    if (ev.dataTransfer?.types.includes('Files')) {
      ev.preventDefault();
      zone.classList.add('dropping');
    }
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('dropping'));
  zone.addEventListener('drop', (ev) => {
    zone.classList.remove('dropping');
    if (!ev.dataTransfer?.files.length) return;
    ev.preventDefault();
    add([...ev.dataTransfer.files]);
  });
  document.addEventListener('paste', (ev) => {
    const files = [...(ev.clipboardData?.files ?? [])];
    if (!files.length) return;
    ev.preventDefault();
    add(files.map((f, i) => (f.name && f.name !== 'image.png')
      ? f : new File([f], `pasted-${Date.now()}${i ? `-${i}` : ''}.${f.type.split('/')[1] || 'png'}`, { type: f.type })));
  });

  /** @type {Upload[]} */
  let uploads = [];
  let nextKey = 1;

  /** @param {File[]} files */
  function add(files) {
    for (const file of files) {
      if (uploads.length >= MAX_FILES) {
        toast(`At most ${MAX_FILES} files in one message.`, 'error');
        break;
      }
      uploads.push(start(file));
    }
    render();
  }

  /** @param {File} file @returns {Upload} */
  function start(file) {
    const xhr = new XMLHttpRequest();
    /** @type {Upload} */
    const up = { key: nextKey++, file, loaded: 0, status: 'uploading', xhr };
    xhr.open('POST', `/api/attachments?filename=${encodeURIComponent(file.name || 'file')}`);
    xhr.responseType = 'json';
    xhr.upload.addEventListener('progress', (ev) => {
      up.loaded = ev.loaded;
      render();
    });
    xhr.addEventListener('load', () => {
      if (xhr.status === 201 && xhr.response?.attachment) {
        up.status = 'done';
        up.attachment = xhr.response.attachment;
      } else {
        up.status = 'failed';
        up.error = xhr.response?.error?.message || `upload failed (${xhr.status})`;
      }
      render();
    });
    xhr.addEventListener('error', () => {
      up.status = 'failed';
      up.error = 'upload failed: connection lost';
      render();
    });
    xhr.send(file);
    return up;
  }

  /** @param {Upload} up */
  function remove(up) {
    if (up.status === 'uploading') up.xhr.abort();
    uploads = uploads.filter((u) => u !== up);
    render();
  }

  function render() {
    tray.hidden = uploads.length === 0;
    setChildren(tray, uploads.map((up) => {
      const pct = up.file.size ? Math.min(100, Math.round((up.loaded / up.file.size) * 100)) : 100;
      return h('li', { class: `attach-chip ${up.status}`, dataset: { name: up.file.name } },
        up.attachment?.thumb_url ? h('img', { class: 'attach-preview', src: up.attachment.thumb_url, alt: '' }) : null,
        h('span', { class: 'attach-name' }, up.file.name),
        h('span', { class: 'attach-size' }, up.status === 'failed' ? (up.error ?? 'failed') : formatSize(up.file.size)),
        up.status === 'uploading' ? h('progress', { class: 'attach-progress', max: 100, value: pct, 'aria-label': `Uploading ${up.file.name}` }) : null,
        h('button', {
          type: 'button', class: 'attach-cancel', title: up.status === 'uploading' ? 'Cancel upload' : 'Remove',
          'aria-label': `Remove ${up.file.name}`, onclick: () => remove(up),
        }, '×'));
    }));
    changed();
  }

  return {
    /** Files still uploading: the message waits for them. */
    busy: () => uploads.some((u) => u.status === 'uploading'),
    /** Queue files for upload, as the picker, a drop or a paste would. */
    add,
    /** Whether anything is ready to send. */
    hasReady: () => uploads.some((u) => u.status === 'done'),
    /** The ids of the finished uploads, which leave the tray (failed ones stay to be seen). @returns {string[]} */
    take() {
      const ids = uploads.flatMap((u) => (u.status === 'done' && u.attachment ? [u.attachment.id] : []));
      uploads = uploads.filter((u) => u.status !== 'done');
      render();
      return ids;
    },
  };
}

/**
 * What a message shows of its files.
 * @param {Attachment[]|undefined} list
 */
export function renderAttachments(list) {
  if (!list?.length) return null;
  return h('div', { class: 'attachments' }, list.map((a) => {
    if (a.thumb_url && a.width && a.height) {
      const scale = Math.min(1, SHOW_MAX_W / a.width, SHOW_MAX_H / a.height);
      return h('button', {
        type: 'button', class: 'attachment-image', title: a.filename, 'aria-label': `Open ${a.filename}`,
        onclick: () => openLightbox(a),
      }, h('img', {
        src: a.thumb_url, alt: a.filename, loading: 'lazy',
        width: Math.max(1, Math.round(a.width * scale)), height: Math.max(1, Math.round(a.height * scale)),
      }));
    }
    if (a.content_type.startsWith('video/')) {
      return h('video', { class: 'attachment-media', src: a.url, controls: true, preload: 'metadata', title: a.filename });
    }
    if (a.content_type.startsWith('audio/')) {
      return h('div', { class: 'attachment-file' },
        h('span', { class: 'attachment-name' }, a.filename),
        h('audio', { src: a.url, controls: true, preload: 'none' }));
    }
    return h('div', { class: 'attachment-file' },
      h('span', { class: 'attachment-icon', 'aria-hidden': 'true' }, '📄'),
      h('span', { class: 'attachment-meta' },
        h('a', { class: 'attachment-name', href: a.url, download: a.filename }, a.filename),
        h('span', { class: 'attachment-size' }, formatSize(a.size))));
  }));
}

/** The full image over the page, with a download link; Escape or a click closes it. @param {Attachment} a */
export function openLightbox(a) {
  const dialog = h('dialog', { class: 'lightbox', 'aria-label': a.filename },
    h('img', { src: a.url, alt: a.filename }),
    h('div', { class: 'lightbox-bar' },
      h('span', { class: 'lightbox-name' }, a.filename),
      h('a', { class: 'lightbox-download', href: a.url, download: a.filename }, 'Download'),
      h('button', { type: 'button', class: 'lightbox-close', 'aria-label': 'Close', onclick: () => dialog.close() }, '×')));
  dialog.addEventListener('click', (ev) => {
    if (ev.target === dialog) dialog.close();
  });
  dialog.addEventListener('close', () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
}

/**
 * Let the user pick a picture and make it their avatar (`PUT /api/me/avatar`); `done` gets the
 * updated user. Errors (not an image, too large) are shown as a toast.
 * @param {(user: import('../protocol.js').User) => void} done
 */
export function pickAvatar(done) {
  const input = h('input', { type: 'file', accept: 'image/png,image/jpeg,image/gif,image/webp', class: 'visually-hidden', id: 'avatar-input' });
  input.addEventListener('change', async () => {
    const file = input.files?.[0];
    input.remove();
    if (!file) return;
    try {
      const r = await fetch('/api/me/avatar', { method: 'PUT', body: file, headers: { 'Content-Type': file.type || 'application/octet-stream' } });
      const body = await r.json().catch(() => null);
      if (!r.ok) throw new Error(body?.error?.message || `upload failed (${r.status})`);
      done(body.user);
      toast('Your picture is set.', 'success');
    } catch (err) {
      toast(`Could not set your picture: ${/** @type {Error} */ (err).message}`, 'error');
    }
  });
  document.body.append(input);
  input.click();
}
