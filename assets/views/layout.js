// @ts-check
//! The page's layout controls: the channel drawer (menu button, below 640 px), the member
//! drawer or column (members button; a drawer below 1000 px), the backdrop, Escape, and the
//! header's invite, delete-channel and in-call buttons. Layout only: actions go to the callbacks.

/** @param {{invite:()=>void, deleteChannel:()=>void, callPill:()=>void}} on */
export function createLayout(on) {
  const appEl = /** @type {HTMLElement} */ (document.getElementById('app'));
  const menuBtn = /** @type {HTMLButtonElement} */ (document.getElementById('menu-btn'));
  const membersBtn = /** @type {HTMLButtonElement} */ (document.getElementById('members-btn'));
  const backdrop = /** @type {HTMLElement} */ (document.getElementById('drawer-backdrop'));

  function closeDrawers() {
    appEl.classList.remove('sidebar-open', 'members-open');
    backdrop.hidden = true;
    menuBtn.setAttribute('aria-expanded', 'false');
  }

  /** @param {boolean} open */
  function setSidebar(open) {
    closeDrawers();
    appEl.classList.toggle('sidebar-open', open);
    backdrop.hidden = !open;
    menuBtn.setAttribute('aria-expanded', String(open));
    if (open) /** @type {HTMLElement|null} */ (document.querySelector('#sidebar .chan.active, #sidebar .chan'))?.focus();
  }

  menuBtn.addEventListener('click', () => setSidebar(!appEl.classList.contains('sidebar-open')));
  membersBtn.addEventListener('click', () => {
    if (matchMedia('(max-width: 1000px)').matches) {
      const open = !appEl.classList.contains('members-open');
      closeDrawers();
      appEl.classList.toggle('members-open', open);
      backdrop.hidden = !open;
    } else {
      const hidden = appEl.classList.toggle('members-hidden');
      membersBtn.setAttribute('aria-pressed', String(!hidden));
    }
  });
  backdrop.addEventListener('click', closeDrawers);
  document.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && (appEl.classList.contains('sidebar-open') || appEl.classList.contains('members-open'))) {
      closeDrawers();
      menuBtn.focus();
    }
  });
  document.getElementById('invite-btn')?.addEventListener('click', on.invite);
  document.getElementById('delete-channel-btn')?.addEventListener('click', on.deleteChannel);
  document.getElementById('call-pill')?.addEventListener('click', on.callPill);

  return {
    closeDrawers,
    openSidebar: () => setSidebar(true),
    /** @param {boolean} shown */
    show(shown) {
      appEl.hidden = !shown;
    },
  };
}
