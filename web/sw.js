// The service worker for Web Push (served at /app/sw.js, scope /app/).
//
// A push carries {type, appointmentId, title, body, url} (encrypted by the server for this browser).
// It is shown only when no page of the app is visible (an open waiting room already says it, live);
// a click opens the waiting room, or focuses it if a tab already shows it. Only paths under /app/ are
// ever opened, whatever a payload says.

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

self.addEventListener('push', (event) => {
  let data = null;
  try {
    data = event.data ? event.data.json() : null;
  } catch {
    data = null;
  }
  if (!data || typeof data.title !== 'string') return;
  event.waitUntil((async () => {
    const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
    if (windows.some((client) => client.visibilityState === 'visible')) return;
    await self.registration.showNotification(data.title, {
      body: typeof data.body === 'string' ? data.body : '',
      tag: `medpharma-${data.appointmentId || 'turn'}`,
      renotify: true,
      requireInteraction: data.type === 'turn:now',
      icon: '/app/icon.svg',
      data: { url: safeUrl(data.url) },
    });
  })());
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const url = new URL(safeUrl(event.notification.data && event.notification.data.url), self.location.origin).href;
  event.waitUntil((async () => {
    const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
    const open = windows.find((client) => client.url === url);
    if (open && 'focus' in open) return open.focus();
    return self.clients.openWindow(url);
  })());
});

function safeUrl(url) {
  return typeof url === 'string' && /^\/app\/[A-Za-z0-9/_-]*$/.test(url) ? url : '/app/';
}
