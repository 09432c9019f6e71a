// @ts-check
//! The page's address names the open channel (`/#general`), so a reload or a shared link
//! opens it again — but never a DM's internal name (`dm.1.2`: docs/DMS.md, "never shown").
//! A DM leaves the address bare, and this tab remembers it (sessionStorage) for its own
//! reloads. No DOM besides `location` and `history`, no state of its own beyond that key.

import { isDmName } from './state.js';

const OPEN_DM = 'md.openDm';

/** The channel the address (or, for a DM, this tab) says is open, or ''. */
export function addressChannel() {
  const hash = decodeURIComponent(location.hash.slice(1));
  if (hash) return hash;
  try {
    return sessionStorage.getItem(OPEN_DM) ?? '';
  } catch {
    return '';
  }
}

/** Makes the address say that `name` is open. @param {string} name */
export function showInAddress(name) {
  const dm = isDmName(name);
  try {
    if (dm) sessionStorage.setItem(OPEN_DM, name);
    else sessionStorage.removeItem(OPEN_DM);
  } catch {
    /* no storage: a reload opens the default channel */
  }
  const want = dm ? `${location.pathname}${location.search}` : `#${encodeURIComponent(name)}`;
  if (dm ? location.hash !== '' : decodeURIComponent(location.hash.slice(1)) !== name) history.replaceState(null, '', want);
}
