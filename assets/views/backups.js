// @ts-check
//! The Backups page of the server settings (views/server-settings.js), for the owner: the
//! scheduled backups, read-only (`GET /api/admin/backups`): BACKUP_DIR, the newest backup's
//! file, size and time, how many are kept, the next run, and the last failure. Every value
//! goes in as text (h() children), never as HTML.

import { api } from '../protocol.js';
import { h } from '../dom.js';

/**
 * @typedef {{dir:string|null, every_h:number, keep:number, count:number, next_ts:number|null,
 *   last:{file:string, size:number, ts:number}|null, last_error:string|null,
 *   last_error_ts:number|null}} BackupStatus
 * @typedef {import('../app.js').App} App
 */

/** @param {number} n bytes */
function size(n) {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

/** @param {number} ms */
const when = (ms) => new Date(ms).toLocaleString();

/** @param {BackupStatus} s @returns {HTMLElement[]} */
function rows(s) {
  /** @param {string} key @param {string} label @param {string} value */
  const row = (key, label, value) => h('div', { class: 'kv', dataset: { k: key } }, h('dt', null, label), h('dd', null, value));
  if (!s.dir) {
    return [row('off', 'Scheduled backups', 'Off. Set BACKUP_DIR (and BACKUP_EVERY_H, BACKUP_KEEP) to turn them on.')];
  }
  const out = [
    row('dir', 'Backup folder', s.dir),
    row('every', 'Every', `${s.every_h} h, keeping the newest ${s.keep}`),
    row('last', 'Last backup', s.last ? `${s.last.file} · ${size(s.last.size)} · ${when(s.last.ts)}` : 'None yet'),
    row('count', 'Backups kept', String(s.count)),
    row('next', 'Next backup', s.next_ts ? when(s.next_ts) : 'Not scheduled'),
  ];
  if (s.last_error) {
    out.push(row('error', 'Last attempt failed', `${s.last_error_ts ? `${when(s.last_error_ts)}: ` : ''}${s.last_error}`));
  }
  return out;
}

/** Fills `panel` with the backup schedule. @param {App} app @param {HTMLElement} panel */
export async function backupsPage(app, panel) {
  const list = h('dl', { class: 'backup-status', id: 'backup-status', 'aria-busy': 'true' }, h('div', null, 'Loading…'));
  panel.replaceChildren(
    h('h3', { class: 'modal-subtitle' }, 'Backups'),
    list,
    h('p', { class: 'hint' }, 'A backup by hand, while the server runs: mini-discord backup FILE. Restore into an empty DATA_DIR with mini-discord restore FILE.'),
  );
  try {
    /** @type {BackupStatus} */
    const s = await api('GET', '/api/admin/backups');
    list.replaceChildren(...rows(s));
  } catch (err) {
    app.restError(err, 'Could not read the backup schedule');
    list.replaceChildren(h('div', null, 'Could not load the backup schedule.'));
  }
  list.setAttribute('aria-busy', 'false');
}
