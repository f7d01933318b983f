// "Notify me when my turn is near": Web Push, so the patient is told even with this page closed.
//
// The browser subscribes with the server's VAPID key (GET /api/push/key) through the service worker
// at /app/sw.js, and the subscription is registered with the server (POST /api/push/subscriptions);
// turning it off removes it on both sides. Whatever refuses (the browser has no push, the user blocks
// notifications, the browser's push service is out of reach) is said plainly, with what still works:
// this page itself notifies while it is open. The server's id of this browser's subscription is kept
// in localStorage (it is not a secret: only its owner may delete it).

import { h, replace } from './dom.js';
import { api, sentence } from './api.js';
import { t } from './i18n.js';

const STORED_ID = 'medpharma-push-subscription';

function pushSupported() {
  return 'serviceWorker' in navigator && 'PushManager' in window && 'Notification' in window;
}

function base64UrlToBytes(text) {
  const padded = text.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (text.length % 4)) % 4);
  return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
}

async function registration() {
  return navigator.serviceWorker.register('/app/sw.js', { scope: '/app/' });
}

function storedId() {
  try { return localStorage.getItem(STORED_ID); } catch { return null; }
}

function store(id) {
  try {
    if (id) localStorage.setItem(STORED_ID, id); else localStorage.removeItem(STORED_ID);
  } catch { /* private mode: the subscription still works, it can be turned off from the browser */ }
}

/** Subscribes this browser and registers it with the server; throws an Error whose message is shown. */
export async function subscribePush() {
  const permission = await Notification.requestPermission();
  if (permission !== 'granted') throw new Error(t('push.refusedByUser'));
  let subscription;
  try {
    const { publicKey } = await api('GET', '/api/push/key', undefined, { auth: false });
    const worker = await registration();
    await navigator.serviceWorker.ready;
    subscription = await worker.pushManager.subscribe({
      userVisibleOnly: true, applicationServerKey: base64UrlToBytes(publicKey),
    });
  } catch (error) {
    if (error && error.status) throw new Error(error.code === 'push_unavailable' ? t('push.serverOff') : sentence(error));
    throw new Error(t('push.refusedByBrowser'));
  }
  try {
    const { id } = await api('POST', '/api/push/subscriptions', subscription.toJSON());
    store(id);
  } catch (error) {
    await subscription.unsubscribe().catch(() => {});
    throw new Error(error.code === 'too_many_subscriptions' ? t('push.tooMany') : sentence(error));
  }
}

/** Turns it off on both sides. */
export async function unsubscribePush() {
  const worker = await navigator.serviceWorker.getRegistration('/app/');
  const subscription = worker ? await worker.pushManager.getSubscription() : null;
  if (subscription) await subscription.unsubscribe().catch(() => {});
  const id = storedId();
  if (id) {
    await api('DELETE', `/api/push/subscriptions/${encodeURIComponent(id)}`).catch((error) => {
      if (error.status !== 404) throw error;
    });
  }
  store(null);
}

async function isOn() {
  if (!storedId()) return false;
  const worker = await navigator.serviceWorker.getRegistration('/app/');
  return Boolean(worker && await worker.pushManager.getSubscription());
}

/** Draws the control in `area` (the waiting room's notification area) and keeps it current. */
export async function drawPushControl(area) {
  const message = h('p', { class: 'form-error', role: 'alert' });
  const busy = (button, work) => async () => {
    button.disabled = true;
    message.textContent = '';
    try {
      await work();
      await drawPushControl(area);
    } catch (error) {
      button.disabled = false;
      message.textContent = error.message || sentence(error);
    }
  };
  if (!pushSupported()) {
    replace(area, h('p', { class: 'muted' }, 'Notification' in window && Notification.permission === 'granted'
      ? t('push.pageOnly') : t('push.unsupported')));
    return;
  }
  if (Notification.permission === 'denied') {
    replace(area, h('p', { class: 'muted' }, t('wait.notify.blocked')));
    return;
  }
  if (await isOn().catch(() => false)) {
    const off = h('button', { type: 'button' }, t('push.turnOff'));
    off.addEventListener('click', busy(off, unsubscribePush));
    replace(area, h('p', { class: 'muted' }, t('push.on')), h('div', { class: 'actions' }, off), message);
    return;
  }
  const on = h('button', { type: 'button' }, t('wait.notify.ask'));
  on.addEventListener('click', busy(on, subscribePush));
  replace(area,
    Notification.permission === 'granted' ? h('p', { class: 'muted' }, t('push.pageOnly')) : null,
    h('div', { class: 'actions' }, on), message);
}
