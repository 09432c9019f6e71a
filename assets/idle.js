// @ts-check
//! Idle status (issue 14): after `IDLE_AFTER_MS` without a key, pointer or touch in this
//! page, or with the page hidden that long, a user who chose "online" is shown as idle; the
//! next input brings them back. A status the user chose (dnd, invisible, idle) is left alone.

/** Discord's figure: 10 minutes away from the keyboard. */
export const IDLE_AFTER_MS = 10 * 60_000;
const CHECK_EVERY_MS = 15_000;

/**
 * @param {{chosen:()=>string, set:(status:'online'|'idle')=>void}} io
 * @param {number} [afterMs]
 */
export function watchIdle(io, afterMs = IDLE_AFTER_MS) {
  let last = Date.now();
  let auto = false; // we set idle, not the user
  const active = () => {
    last = Date.now();
    if (auto && document.visibilityState === 'visible') {
      auto = false;
      if (io.chosen() === 'idle') io.set('online');
    }
  };
  for (const ev of ['keydown', 'pointerdown', 'pointermove', 'touchstart', 'wheel']) {
    window.addEventListener(ev, active, { passive: true, capture: true });
  }
  document.addEventListener('visibilitychange', active);
  setInterval(() => {
    if (!auto && io.chosen() === 'online' && Date.now() - last >= afterMs) {
      auto = true;
      io.set('idle');
    }
  }, CHECK_EVERY_MS);
}
