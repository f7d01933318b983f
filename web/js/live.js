// The live connection to /ws: one socket for the whole app, shared by the page on screen.
//
// A phone that sleeps, changes network or loses the server must come back telling the truth, so:
// reconnect after any drop with exponential backoff and jitter (0.5 s doubling to 30 s), at once
// when the page becomes visible or the network returns; on every (re)connect send each subscription
// again (the server answers each with the current state); ping every 20 s and treat a missing pong
// as a dead connection; when the session refreshes its token, send it as an `auth` frame so the
// socket outlives the old token; on close 4001 (token expired) refresh and reconnect, on 4003
// (account disabled) sign out.

import { session } from './session.js';

const BACKOFF_START_MS = 500;
const BACKOFF_MAX_MS = 30_000;
const PING_EVERY_MS = 20_000;
const PONG_WITHIN_MS = 10_000;
const TOKEN_EXPIRED = 4001;
const ACCOUNT_DISABLED = 4003;

class Live extends EventTarget {
  constructor() {
    super();
    this.socket = null;
    this.subscriptions = new Map();  // key → frame fields ({doctorId} or {appointmentId})
    this.attempt = 0;
    this.retryTimer = null;
    this.pingTimer = null;
    this.pongTimer = null;
    this.state = 'idle';             // idle | connecting | live | reconnecting
    session.addEventListener('token', () => this.sendAuth());
    session.addEventListener('signedout', () => this.stop());
    window.addEventListener('online', () => this.reconnectNow());
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState !== 'visible') return;
      if (this.isOpen()) this.checkAlive();  // woke up: a socket that looks open may be long dead
      else this.reconnectNow();
    });
  }

  /** Subscribe to a room ({doctorId} or {appointmentId}); returns the unsubscribe function. */
  subscribe(fields) {
    const key = JSON.stringify(fields);
    this.subscriptions.set(key, fields);
    if (this.isOpen()) this.send({ type: 'queue:subscribe', ...fields });
    else this.connect();
    return () => {
      if (!this.subscriptions.delete(key)) return;
      if (this.isOpen()) this.send({ type: 'queue:unsubscribe', ...fields });
    };
  }

  /** Listen to server events by name ('queue:update', …); returns the function that stops it. */
  on(eventName, handler) {
    const listener = (event) => handler(event.detail);
    this.addEventListener(eventName, listener);
    return () => this.removeEventListener(eventName, listener);
  }

  isOpen() {
    return this.socket?.readyState === WebSocket.OPEN;
  }

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.dispatchEvent(new CustomEvent('state', { detail: state }));
  }

  connect() {
    if (this.socket || !session.signedIn || this.subscriptions.size === 0) return;
    clearTimeout(this.retryTimer);
    this.setState(this.attempt === 0 && this.state !== 'reconnecting' ? 'connecting' : 'reconnecting');
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const socket = new WebSocket(`${scheme}://${location.host}/ws?token=${encodeURIComponent(session.token)}`);
    this.socket = socket;
    socket.onopen = () => {
      this.attempt = 0;
      this.setState('live');
      for (const fields of this.subscriptions.values()) this.send({ type: 'queue:subscribe', ...fields });
      this.startPing();
    };
    socket.onmessage = (message) => this.receive(message.data);
    socket.onclose = (event) => this.closed(socket, event.code);
    socket.onerror = () => {};  // onclose follows and decides what to do
  }

  receive(raw) {
    let frame;
    try {
      frame = JSON.parse(raw);
    } catch {
      return;
    }
    if (frame.event === 'pong') {
      clearTimeout(this.pongTimer);
      return;
    }
    this.dispatchEvent(new CustomEvent(frame.event, { detail: frame.data || {} }));
  }

  async closed(socket, code) {
    if (socket !== this.socket) return;  // an old socket we already gave up on
    this.socket = null;
    this.stopPing();
    if (!session.signedIn || this.subscriptions.size === 0) {
      this.setState('idle');
      return;
    }
    if (code === ACCOUNT_DISABLED) {
      session.signOut('disabled');
      return;
    }
    // 4001, or a refused upgrade (seen as 1006) after the token ran out while the phone slept.
    if (code === TOKEN_EXPIRED || session.nearExpiry()) {
      if (session.refreshable && await session.refresh()) {
        this.connect();
      } else {
        session.signOut('expired');
      }
      return;
    }
    this.scheduleReconnect();
  }

  scheduleReconnect() {
    clearTimeout(this.retryTimer);
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_START_MS * 2 ** this.attempt);
    const delay = base / 2 + Math.random() * (base / 2);
    this.attempt += 1;
    this.setState('reconnecting');
    this.retryTimer = setTimeout(async () => {
      await session.ensureFresh();
      this.connect();
    }, delay);
  }

  /** Skip the wait: the page came back into view or the network returned. */
  async reconnectNow() {
    if (this.socket || !session.signedIn || this.subscriptions.size === 0) return;
    clearTimeout(this.retryTimer);
    this.attempt = 0;
    await session.ensureFresh();
    this.connect();
  }

  send(frame) {
    if (this.isOpen()) this.socket.send(JSON.stringify(frame));
  }

  sendAuth() {
    if (session.token) this.send({ type: 'auth', token: session.token });
  }

  startPing() {
    this.stopPing();
    this.pingTimer = setInterval(() => this.checkAlive(), PING_EVERY_MS);
  }

  /** A ping that must be answered within PONG_WITHIN_MS, or the socket is given up for dead. */
  checkAlive() {
    this.send({ type: 'ping' });
    clearTimeout(this.pongTimer);
    this.pongTimer = setTimeout(() => this.dropDeadSocket(), PONG_WITHIN_MS);
  }

  stopPing() {
    clearInterval(this.pingTimer);
    clearTimeout(this.pongTimer);
  }

  /** No pong: the connection is gone even if the browser has not noticed. Do not wait for it. */
  dropDeadSocket() {
    const socket = this.socket;
    if (!socket) return;
    this.socket = null;
    this.stopPing();
    socket.onclose = null;
    socket.close();
    this.scheduleReconnect();
  }

  /** Leave every room and close (page change to one without live data, or sign-out). */
  stop() {
    this.subscriptions.clear();
    clearTimeout(this.retryTimer);
    this.stopPing();
    const socket = this.socket;
    this.socket = null;
    this.attempt = 0;
    if (socket) {
      socket.onclose = null;
      socket.close(1000);
    }
    this.setState('idle');
  }
}

export const live = new Live();
