// @ts-check
//! The installable app and Web Push, browser side (issue 14): registers the service worker
//! (assets/sw.js: the offline shell, showing pushes, opening the message on a click), and,
//! once the user granted notifications, subscribes this browser with the server's VAPID key
//! and hands the subscription to the server, which then pushes mentions while no tab is
//! open. No DOM here.

import { rest } from './protocol.js';

/** @returns {Promise<ServiceWorkerRegistration|null>} */
export async function registerServiceWorker() {
  if (!('serviceWorker' in navigator)) return null;
  try {
    return await navigator.serviceWorker.register('/sw.js', { scope: '/' });
  } catch (err) {
    console.warn('service worker not registered', err);
    return null;
  }
}

/** base64url → bytes, for `applicationServerKey`. @param {string} s */
function fromBase64Url(s) {
  const b = atob(s.replace(/-/g, '+').replace(/_/g, '/'));
  return Uint8Array.from(b, (c) => c.charCodeAt(0));
}

/** Subscribes this browser to Web Push if notifications are granted; quietly does nothing
 * where the browser has no push service (a headless test browser, some private windows). */
export async function subscribePush() {
  if (!('PushManager' in window) || !('Notification' in window) || Notification.permission !== 'granted') return;
  try {
    const reg = await navigator.serviceWorker.ready;
    let sub = await reg.pushManager.getSubscription();
    if (!sub) {
      const { key } = await rest.vapidKey();
      sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: fromBase64Url(key) });
    }
    await rest.subscribePush(sub.toJSON());
  } catch (err) {
    console.info('web push not available here', err);
  }
}

/** Signing out: this browser should not get the next user's pushes, nor this one's. */
export async function unsubscribePush() {
  try {
    const reg = await navigator.serviceWorker?.getRegistration();
    const sub = await reg?.pushManager.getSubscription();
    if (sub) {
      await rest.unsubscribePush(sub.endpoint).catch(() => {});
      await sub.unsubscribe();
    }
  } catch {
    /* nothing to undo */
  }
}
