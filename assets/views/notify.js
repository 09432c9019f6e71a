// @ts-check
//! The current channel's notification level in the channel header (issue 14): all
//! messages, only mentions, nothing, or the server-wide default (chosen on your profile
//! card). Desktop notifications and Web Push both follow it. Shown as an icon the size of
//! the header's buttons (a bell, a bell with an @, a struck bell: the level in effect) with
//! the native select over it, so its list keeps the full labels at any width.

import { channelLabel } from '../state.js';
import { icon } from '../icons.js';

/** @typedef {import('../state.js').State} State @typedef {import('../protocol.js').NotifyLevel} NotifyLevel */

const LABEL = { all: 'All messages', mentions: 'Only mentions', nothing: 'Nothing' };
const ICON = { all: 'bell', mentions: 'bell', nothing: 'bell-off' };

/** @param {State} s @param {(channel:string, level:NotifyLevel|null) => void} setLevel */
export function renderNotifyLevel(s, setLevel) {
  const select = /** @type {HTMLSelectElement|null} */ (document.getElementById('notify-level'));
  const badge = /** @type {HTMLElement|null} */ (document.getElementById('notify-icon'));
  if (!select || !badge) return;
  if (!select.dataset.wired) {
    select.dataset.wired = '1';
    select.addEventListener('change', () => {
      const v = select.value;
      setLevel(select.dataset.channel ?? '', v === 'default' ? null : /** @type {NotifyLevel} */ (v));
    });
  }
  const own = s.notify.channels[s.current];
  const where = channelLabel(s, s.current);
  const sig = JSON.stringify([s.current, own, s.notify.default, where]);
  if (select.dataset.sig === sig) return;
  select.dataset.sig = sig;
  select.dataset.channel = s.current;
  select.replaceChildren(
    new Option(`Default (${LABEL[s.notify.default].toLowerCase()})`, 'default', false, !own),
    ...Object.entries(LABEL).map(([v, label]) => new Option(label, v, false, own === v)),
  );
  const level = own ?? s.notify.default;
  badge.dataset.level = level;
  badge.replaceChildren(icon(ICON[level]));
  select.title = `Notifications for ${where}: ${LABEL[level].toLowerCase()}${own ? '' : ' (the default)'}`;
}
