// The service worker (issue 14): makes mini-discord an installable app (PWA) and shows Web
// Push notifications while no tab is open.
// - Offline shell: the app's own files are fetched from the network first (so a new build
//   is seen at once) and kept in a cache; with no network, the cached copy is served and
//   the app shows "reconnecting". API calls, WebSockets and files are never cached.
// - A push (encrypted by the server for this browser, RFC 8291) is shown as a notification;
//   a click focuses an open tab on that message's channel, or opens one.
// Plain script (a module service worker is not supported everywhere); no user text is
// ever put into a page here, only into notification fields.

// @ts-check
/** The worker's global scope (typed loosely: jsconfig checks assets/ against the DOM lib). */
const sw = /** @type {any} */ (self);

const CACHE = 'md-shell-v1';
const SHELL = ['/', '/style.css', '/attachments.css', '/social.css', '/app.js', '/manifest.webmanifest', '/favicon.svg', '/icons/icon-192.png'];

sw.addEventListener('install', (/** @type {any} */ ev) => {
  ev.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => sw.skipWaiting()));
});

sw.addEventListener('activate', (/** @type {any} */ ev) => {
  ev.waitUntil((async () => {
    for (const k of await caches.keys()) if (k !== CACHE) await caches.delete(k);
    await sw.clients.claim();
  })());
});

/** The app's own static files: everything of this origin but the API, sockets and metrics. */
/** @param {URL} url */
function isShell(url) {
  return url.origin === sw.location.origin && !/^\/(api|ws|metrics|healthz)(\/|$)/.test(url.pathname);
}

sw.addEventListener('fetch', (/** @type {any} */ ev) => {
  const req = ev.request;
  const url = new URL(req.url);
  if (req.method !== 'GET' || !isShell(url)) return;
  ev.respondWith((async () => {
    const cache = await caches.open(CACHE);
    try {
      const res = await fetch(req);
      if (res.ok) await cache.put(req.mode === 'navigate' ? '/' : req, res.clone());
      return res;
    } catch (err) {
      const hit = await cache.match(req.mode === 'navigate' ? '/' : req);
      if (hit) return hit;
      throw err;
    }
  })());
});

sw.addEventListener('push', (/** @type {any} */ ev) => {
  /** @type {{title?:string, body?:string, id?:number, url?:string}} */
  let data = {};
  try {
    data = ev.data ? ev.data.json() : {};
  } catch {
    data = { title: 'mini-discord', body: ev.data ? ev.data.text() : '' };
  }
  const title = String(data.title || 'mini-discord');
  ev.waitUntil(sw.registration.showNotification(title, {
    body: String(data.body || ''),
    tag: data.id ? `md-${data.id}` : undefined,
    icon: '/icons/icon-192.png',
    badge: '/icons/icon-192.png',
    data: { url: typeof data.url === 'string' && data.url.startsWith('/') ? data.url : '/' },
  }));
});

sw.addEventListener('notificationclick', (/** @type {any} */ ev) => {
  ev.notification.close();
  const url = new URL(ev.notification.data?.url || '/', sw.location.origin);
  const channel = url.searchParams.get('channel');
  const target = channel ? `/#${encodeURIComponent(channel)}` : '/';
  ev.waitUntil((async () => {
    const tabs = await sw.clients.matchAll({ type: 'window', includeUncontrolled: true });
    for (const tab of tabs) {
      if (new URL(tab.url).origin === sw.location.origin) {
        await tab.focus();
        if ('navigate' in tab) await tab.navigate(target).catch(() => {});
        return;
      }
    }
    await sw.clients.openWindow(target);
  })());
});
