// @ts-check
//! The page's layout controls: the channel drawer (menu button, below 640 px), the member
//! drawer or column (members button; a drawer below 1000 px), the backdrop, Escape, and the
//! header's invite and delete-channel buttons. Layout only: actions go to the callbacks.

/** @param {{invite:()=>void, deleteChannel:()=>void}} on */
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

  menuBtn.addEventListener('click', () => {
    const open = !appEl.classList.contains('sidebar-open');
    closeDrawers();
    appEl.classList.toggle('sidebar-open', open);
    backdrop.hidden = !open;
    menuBtn.setAttribute('aria-expanded', String(open));
    if (open) /** @type {HTMLElement|null} */ (document.querySelector('#sidebar .chan.active, #sidebar .chan'))?.focus();
  });
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

  return {
    closeDrawers,
    /** @param {boolean} shown */
    show(shown) {
      appEl.hidden = !shown;
    },
  };
}
