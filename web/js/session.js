// Who is signed in, and keeping their access token fresh.
//
// The app signs in with `X-Session-Cookie: 1` (api.js), so its refresh token is an HttpOnly cookie
// (`medpharma_refresh`, path /api/auth) that no script — this one or anything injected into the page —
// can read: nothing of it is ever in localStorage, sessionStorage or IndexedDB. What is kept (in
// localStorage, so a reload or a deep link opened later finds it) is the short access token and the
// user. A new access token is fetched with the cookie (POST /api/auth/refresh, no body) a little before
// the old one expires and on waking from sleep; the live socket is told through the 'token' event and
// sends it as an `auth` frame, so it stays open. A session kept by an older version of the app (a
// refresh token in localStorage) has it dropped; it refreshes once the cookie is there, else asks to
// sign in again, returning to the same page.
//
// Tabs of one browser share the cookie, and the server ends a session when a spent refresh token is
// presented again. The browser always sends the cookie's latest value, but two tabs refreshing at
// the same moment would both send it, and the second would spend a spent one. So refreshing is one tab
// at a time (a Web Lock shared by the tabs), and a tab that gets the lock after another refreshed takes
// that tab's access token instead of refreshing again. Which token is newest is read from IndexedDB,
// not localStorage: Chromium hands each tab's process its own copy of localStorage and brings it up to
// date a moment later, so a tab granted the lock just after another wrote there could still read the
// old one. An IndexedDB write that has completed before the lock is released is what the next holder
// reads. localStorage stays for what needs no such guarantee: a synchronous read at start-up and the
// 'storage' event that tells the other tabs at once.

import { createStore, del, get, set } from './vendor/idb-keyval.js';

const STORAGE_KEY = 'medpharma.session';
export const SESSION_COOKIE_HEADER = { 'X-Session-Cookie': '1' };  // sent with every sign-in (api.js)
const LATEST = createStore('medpharma', 'session');  // IndexedDB: the session as last written, any tab
const REFRESH_LOCK = 'medpharma.refresh';
const REFRESH_LEAD_MS = 60_000;      // refresh this long before expiry …
const REFRESH_LEAD_FRACTION = 0.2;   // … or a fifth of the lifetime for short-lived tokens
const RETRY_AFTER_NETWORK_ERROR_MS = 5_000;

function decodeClaims(token) {
  try {
    const payload = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(payload.padEnd(payload.length + ((4 - (payload.length % 4)) % 4), '=')));
  } catch {
    return {};
  }
}

class Session extends EventTarget {
  constructor() {
    super();
    this.token = null;
    this.refreshable = false;  // signed in with the session cookie: a new access token can be had
    this.user = null;
    this.refreshTimer = null;
    this.refreshing = null;
    this.load();
    // Another tab signed in, out, or refreshed: follow it.
    window.addEventListener('storage', (event) => {
      if (event.key !== STORAGE_KEY) return;
      const wasSignedIn = this.signedIn;
      this.load();
      this.dispatchEvent(new Event(this.signedIn ? 'token' : 'signedout'));
      if (wasSignedIn !== this.signedIn) this.dispatchEvent(new Event('change'));
    });
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') this.ensureFresh();
    });
  }

  get signedIn() {
    return Boolean(this.token && this.user);
  }

  load() {
    const stored = readStored() || {};
    this.adopt(stored);
    if ('refreshToken' in stored) this.persist();  // kept by an older version of the app: drop it
  }

  /** Stores the session for the other tabs; resolves once IndexedDB holds it (see the top). */
  persist() {
    if (this.token) {
      const stored = { token: this.token, refreshable: this.refreshable, user: this.user };
      localStorage.setItem(STORAGE_KEY, JSON.stringify(stored));
      return set('current', stored, LATEST).catch(() => {});
    }
    localStorage.removeItem(STORAGE_KEY);
    return del('current', LATEST).catch(() => {});
  }

  /** Takes a session as stored (by any tab; `{}` for none). */
  adopt(stored) {
    this.token = stored.token || null;
    // An older version's session (a refresh token in storage) may still have its cookie: try it once.
    this.refreshable = Boolean(stored.refreshable || stored.refreshToken);
    this.user = stored.user || null;
    this.scheduleRefresh();
  }

  /** Takes a sign-in answer `{token, user}` (its refresh token came as the session cookie). */
  signIn(answer) {
    this.token = answer.token;
    this.refreshable = true;
    this.user = answer.user;
    this.persist();
    this.scheduleRefresh();
    this.dispatchEvent(new Event('change'));
  }

  updateUser(user) {
    this.user = user;
    this.persist();
  }

  /** Forgets everything locally. `reason` is 'expired', 'disabled' or 'signout'. */
  signOut(reason = 'signout') {
    clearTimeout(this.refreshTimer);
    const wasSignedIn = this.signedIn;
    this.token = null;
    this.refreshable = false;
    this.user = null;
    this.persist();
    this.lastSignOutReason = reason;
    if (wasSignedIn) {
      this.dispatchEvent(new Event('signedout'));
      this.dispatchEvent(new Event('change'));
    }
  }

  /** Milliseconds since the epoch when the access token stops working (null if unknown). */
  expiresAt() {
    const claims = decodeClaims(this.token || '');
    return claims.exp ? claims.exp * 1000 : null;
  }

  lifetimeMs() {
    const claims = decodeClaims(this.token || '');
    return claims.exp && claims.iat ? (claims.exp - claims.iat) * 1000 : null;
  }

  scheduleRefresh() {
    clearTimeout(this.refreshTimer);
    const expiresAt = this.expiresAt();
    if (!this.refreshable || !expiresAt) return;
    const lifetime = this.lifetimeMs() || REFRESH_LEAD_MS * 5;
    const lead = Math.min(REFRESH_LEAD_MS, lifetime * REFRESH_LEAD_FRACTION);
    const delay = Math.max(0, expiresAt - lead - Date.now());
    // Timers sleep with the phone; visibilitychange calls ensureFresh() on waking as well.
    this.refreshTimer = setTimeout(() => this.refresh(), Math.min(delay, 2 ** 31 - 1));
  }

  /** True when the token is gone or about to go (within 5 s). */
  nearExpiry() {
    const expiresAt = this.expiresAt();
    return Boolean(expiresAt) && expiresAt - Date.now() < 5_000;
  }

  /** Refreshes first if the token is about to expire and can be refreshed. */
  async ensureFresh() {
    if (this.signedIn && this.refreshable && this.nearExpiry()) await this.refresh();
  }

  /** One refresh at a time; resolves true when a new access token is in hand. */
  refresh() {
    if (!this.refreshable) return Promise.resolve(false);
    if (!this.refreshing) {
      this.refreshing = this.doRefresh().finally(() => { this.refreshing = null; });
    }
    return this.refreshing;
  }

  /** Across tabs, one refresh at a time (where the browser has Web Locks: all current ones). */
  doRefresh() {
    if (navigator.locks?.request) return navigator.locks.request(REFRESH_LOCK, () => this.refreshHoldingLock());
    return this.refreshHoldingLock();
  }

  async refreshHoldingLock() {
    const stored = await readLatest();
    if (!stored?.token) {
      // Another tab signed out while this one waited.
      if (this.signedIn) this.signOut('expired');
      return false;
    }
    if (stored.token !== this.token && !expiringSoon(stored.token)) {
      // Another tab refreshed while this one waited: take its token, refresh nothing.
      this.adopt(stored);
      this.dispatchEvent(new Event('token'));
      return true;
    }
    const before = stored.token;
    let response;
    try {
      response = await fetch('/api/auth/refresh', {
        method: 'POST',
        credentials: 'same-origin',  // the session cookie; the browser adds Origin, which the server checks
        headers: SESSION_COOKIE_HEADER,
      });
    } catch {
      clearTimeout(this.refreshTimer);
      this.refreshTimer = setTimeout(() => this.refresh(), RETRY_AFTER_NETWORK_ERROR_MS);
      return false;
    }
    const meanwhile = await readLatest();
    if (meanwhile?.token !== before) {
      // Another tab signed in or out while the request was out (sign-in takes no lock): theirs stands.
      if (meanwhile?.token) this.adopt(meanwhile);
      else if (this.signedIn) this.signOut('expired');
      return this.signedIn;
    }
    if (!response.ok) {
      if (response.status === 401 || response.status === 403) this.signOut('expired');
      else {
        clearTimeout(this.refreshTimer);
        this.refreshTimer = setTimeout(() => this.refresh(), RETRY_AFTER_NETWORK_ERROR_MS);
      }
      return false;
    }
    const answer = await response.json();
    this.token = answer.token;
    this.refreshable = true;
    await this.persist();  // before the lock is released: the next holder must read this one
    this.scheduleRefresh();
    this.dispatchEvent(new Event('token'));
    return true;
  }
}

/** True when an access token is gone or about to go (within 5 s). */
function expiringSoon(token) {
  const claims = decodeClaims(token || '');
  return !claims.exp || claims.exp * 1000 - Date.now() < 5_000;
}

/** The session as last stored by any tab; localStorage's copy where IndexedDB has none (a session
 * stored before this was IndexedDB's, or a browser without it). */
async function readLatest() {
  try {
    return (await get('current', LATEST)) ?? readStored();
  } catch {
    return readStored();
  }
}

function readStored() {
  try {
    return JSON.parse(localStorage.getItem(STORAGE_KEY) || 'null');
  } catch {
    return null;
  }
}

export const session = new Session();

/** Where each role starts. */
export function homeFor(user) {
  if (!user) return '/app/signin';
  if (user.role === 'doctor') return '/app/console';
  if (user.role === 'admin') return '/app/admin';
  return '/app/appointments';
}
