// The waiting room: where a patient watches their place in the queue until it is their turn.
//
// Everything in the status region comes from the server: first from REST reads, then from socket
// events. After any reconnect the subscriptions are answered with the current state, so a phone
// that slept shows the truth again within a second of waking.

import { h, replace } from '../dom.js';
import { api, sentence } from '../api.js';
import { ahead, clock, longDate, minutes, STATUS_LABELS, stillAway, WAITING } from '../format.js';
import { live } from '../live.js';
import { drawPushControl } from '../push.js';
import { session } from '../session.js';
import { rescheduleButton } from './slots.js';

const FINISHED_SENTENCES = {
  completed: 'Your consultation has ended. We hope it went well.',
  cancelled: 'This appointment was cancelled.',
  no_show: 'The doctor marked this appointment as missed. Book again if you still need to be seen.',
};

export async function waitingPage(root, context) {
  const [appointmentId] = context.params;
  const heading = h('h1', {}, 'Waiting room');
  replace(root, heading, h('p', { class: 'muted' }, 'Loading…'));
  let appointment;
  let place;
  let doctor = null;
  try {
    [appointment, place] = await Promise.all([
      api('GET', `/api/appointments/${encodeURIComponent(appointmentId)}`),
      api('GET', `/api/queue/appointment/${encodeURIComponent(appointmentId)}/position`),
    ]);
    doctor = await api('GET', `/api/doctors/${appointment.doctor}`).catch(() => null);
  } catch (error) {
    if (!context.stillShown()) return;
    replace(root, heading, h('p', { role: 'alert' }, error.status === 404
      ? 'There is no appointment at this address, or it is not yours. Check the link, or open it from your appointments.'
      : sentence(error)),
    session.user?.role === 'patient' ? h('p', {}, h('a', { href: '/app/appointments' }, 'My appointments')) : null);
    return;
  }
  if (!context.stillShown()) return;

  const state = {
    status: place.status ?? appointment.status,
    position: place.position,
    etaMinutes: place.etaMinutes,
    expectedStartAt: place.expectedStartAt,
    earliestStartAt: place.earliestStartAt,
    latestStartAt: place.latestStartAt,
    delayMinutes: place.delayMinutes,
    isRunningLate: place.isRunningLate ?? doctor?.isRunningLate ?? false,
    lateByMinutes: place.lateByMinutes ?? doctor?.lateByMinutes ?? 0,
    awayUntil: place.awayUntil ?? doctor?.awayUntil ?? null,
    joinUrl: appointment.joinUrl || null,
  };

  const statusRegion = h('div', { class: 'status-panel', role: 'status', 'aria-live': 'polite', 'aria-atomic': 'true' });
  const connection = h('p', { class: 'connection', 'aria-live': 'polite' });
  const notifyArea = h('div', { class: 'notify' });
  const actions = h('div', { class: 'actions' });
  const message = h('p', { class: 'form-error', role: 'alert' });
  const booked = h('span', { class: 'booked' });
  const drawBooked = () => replace(booked, `Booked for ${clock(appointment.date)} (${longDate(appointment.date)})`);
  let lastSignature = '';
  const notified = new Set();  // 'soon', 'now': what this page has already alerted about

  const drawStatus = () => {
    const lines = statusLines(state);
    const signature = JSON.stringify(lines);
    if (signature === lastSignature) return;  // do not make screen readers repeat what has not changed
    lastSignature = signature;
    replace(statusRegion, lines.map(([kind, text]) => {
      if (kind === 'join') return h('p', {}, h('a', { class: 'button primary join', href: text, target: '_blank', rel: 'noopener noreferrer' }, 'Join call'));
      return h('p', { class: kind }, text);
    }));
    notifyArea.hidden = !WAITING.has(state.status);  // nothing left to be told about
    drawActions();
  };

  const drawActions = () => {
    const waiting = WAITING.has(state.status);
    replace(actions,
      waiting && session.user.role === 'patient'
        ? rescheduleButton(appointment, actions, { onDone: rescheduled, restore: drawActions }) : null,
      waiting && session.user.role === 'patient'
        ? h('button', { type: 'button', onclick: askToCancel }, 'Cancel appointment') : null,
      session.user.role === 'patient' ? h('a', { href: '/app/appointments' }, 'All my appointments') : null);
  };

  const rescheduled = (updated) => {  // the room's queue:update brings the new place; the time shows now
    appointment.date = updated.date;
    drawBooked();
    drawActions();
  };

  const askToCancel = () => {
    replace(actions,
      h('p', {}, 'Cancel this appointment? You will lose your place in the queue.'),
      h('button', { type: 'button', class: 'danger', onclick: cancel }, 'Yes, cancel it'),
      h('button', { type: 'button', onclick: drawActions }, 'Keep my place'));
    actions.querySelector('button').focus();
  };

  const cancel = async () => {
    message.textContent = '';
    try {
      const updated = await api('PATCH', `/api/appointments/${appointment.id}/status`, { status: 'cancelled' });
      Object.assign(state, { status: updated.status, position: -1 });
      drawStatus();
      drawActions();
    } catch (error) {
      message.textContent = sentence(error);
      drawActions();
    }
  };

  const drawConnection = (liveState) => {
    const finished = !WAITING.has(state.status) && state.status !== 'in_consultation';
    connection.textContent = finished ? '' : {
      live: 'Live: this page updates by itself.',
      connecting: 'Connecting for live updates…',
      reconnecting: 'Connection lost. Reconnecting… what you see may be out of date.',
      idle: '',
    }[liveState] || '';
    connection.className = `connection ${liveState}`;
  };

  const stops = [
    live.on('queue:update', (data) => {
      if (data.appointmentId !== appointment.id) return;
      if (data.date && data.date !== appointment.date) {  // moved, here or from another device
        appointment.date = data.date;
        drawBooked();
      }
      Object.assign(state, pick(data, ['status', 'position', 'etaMinutes', 'expectedStartAt', 'earliestStartAt',
        'latestStartAt', 'delayMinutes', 'isRunningLate', 'lateByMinutes', 'awayUntil']));
      drawStatus();
    }),
    live.on('doctor:status', (data) => {
      if (data.doctorId !== appointment.doctor) return;
      Object.assign(state, pick(data, ['isRunningLate', 'lateByMinutes', 'awayUntil']));
      drawStatus();
    }),
    live.on('turn:now', (data) => {
      if (data.appointmentId !== appointment.id) return;
      Object.assign(state, { status: 'in_consultation', position: -1, joinUrl: data.joinUrl || state.joinUrl });
      drawStatus();
      // A resubscription repeats turn:now (so a reconnect learns the link); alert only once.
      if (!notified.has('now')) notify('It is your turn', 'The doctor is ready: open MedPharma Queue and join the call.');
      notified.add('now');
    }),
    live.on('turn:soon', (data) => {
      if (data.appointmentId !== appointment.id || notified.has('soon')) return;
      notified.add('soon');
      notify('Your turn is coming up',
        data.position === 0 ? 'You are next. Please be ready to join the call.'
          : `About ${minutes(data.etaMinutes)} to go. Please be ready to join the call from ${clock(data.earliestStartAt)}.`);
    }),
    live.on('state', drawConnection),
    live.subscribe({ appointmentId: appointment.id }),
    live.subscribe({ doctorId: appointment.doctor }),
  ];
  // awayUntil passes without any event: re-read the clock each minute so the notice goes away.
  const minuteTimer = setInterval(drawStatus, 60_000);

  drawPushControl(notifyArea);
  drawBooked();
  drawStatus();
  drawConnection(live.state);
  replace(root,
    heading,
    h('p', { class: 'lead' }, doctor ? `${doctor.name}, ${doctor.specialization}` : 'Your doctor',
      h('br'), booked),
    h('section', { class: 'card', 'aria-label': 'Your place in the queue' }, statusRegion, connection),
    notifyArea, message, actions);

  return () => {
    clearInterval(minuteTimer);
    stops.forEach((stop) => stop());
  };
}

function pick(data, names) {
  const picked = {};
  for (const name of names) if (name in data) picked[name] = data[name];
  return picked;
}

/** The lines of the status region, as [css class, text] pairs (['join', url] for the link). */
export function statusLines(state) {
  const lines = [];
  if (state.status === 'in_consultation') {
    lines.push(['headline', 'It is your turn']);
    if (state.joinUrl) {
      lines.push(['', 'The doctor is ready for you.']);
      lines.push(['join', state.joinUrl]);
    } else {
      lines.push(['', 'The doctor is ready for you. The call link will appear here in a moment.']);
    }
    return lines;
  }
  if (!WAITING.has(state.status)) {
    lines.push(['headline', STATUS_LABELS[state.status] || state.status]);
    lines.push(['', FINISHED_SENTENCES[state.status] || '']);
    return lines;
  }
  lines.push(['headline', ahead(state.position)]);
  if (state.expectedStartAt) {
    lines.push(['eta', state.etaMinutes > 0
      ? `Expected in about ${minutes(state.etaMinutes)}, around ${clock(state.expectedStartAt)}.`
      : `Expected now (${clock(state.expectedStartAt)}). Please be ready to join the call.`]);
    // The range the server gives with every estimate: most starts fall inside it, and few come
    // before "be ready by", so that is the time a patient should plan on.
    if (state.earliestStartAt && state.latestStartAt && state.etaMinutes > 0) {
      const early = clock(state.earliestStartAt);
      const late = clock(state.latestStartAt);
      if (early !== late) lines.push(['range', `Most likely between ${early} and ${late}.`]);
      lines.push(['ready', new Date(state.earliestStartAt).getTime() > Date.now()
        ? `Please be ready from ${early}: the doctor may call you that early.`
        : 'Please be ready now: the doctor may call you at any moment.']);
    }
  }
  const declaredLate = state.isRunningLate && state.lateByMinutes > 0 ? state.lateByMinutes : 0;
  if (declaredLate) lines.push(['notice late', `The doctor is running ${minutes(declaredLate)} late.`]);
  if (stillAway(state.awayUntil)) {
    lines.push(['notice away', `The doctor is away until ${clock(state.awayUntil)}.`]);
  }
  // The server's delayMinutes: how far the expected start is past the booked time, for any reason
  // (declared lateness, a break, a long queue). Not repeated when it only restates the lateness.
  if (state.delayMinutes > 0 && state.delayMinutes !== declaredLate) {
    lines.push(['notice delay', `Your appointment is running about ${minutes(state.delayMinutes)} late.`]);
  }
  return lines;
}

function notificationsSupported() {
  return 'Notification' in window;
}

function notify(title, body) {
  if (!notificationsSupported() || Notification.permission !== 'granted') return;
  try {
    const note = new Notification(title, { body, tag: 'medpharma-turn', renotify: true });
    note.onclick = () => { window.focus(); note.close(); };
  } catch {
    // Some mobile browsers only notify from a service worker; the page itself already shows it.
  }
}
