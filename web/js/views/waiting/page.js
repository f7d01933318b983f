// The waiting room: where a patient watches their place in the queue until it is their turn.
//
// Everything in the status region comes from the server: first from REST reads, then from socket
// events. After any reconnect the subscriptions are answered with the current state, so a phone
// that slept shows the truth again within a second of waking. What the card says is status.js;
// how a patient who looks elsewhere is told is alerts.js.

import { h, replace } from '../../dom.js';
import { api, sentence } from '../../api.js';
import { t } from '../../i18n.js';
import { clock, dayWords, laterClinicDay, minutes, timeOnly, WAITING, zoneNote } from '../../format.js';
import { live } from '../../live.js';
import { session } from '../../session.js';
import { statusLines } from './status.js';
import { chime, notify, soundSwitch, tabTitle } from './alerts.js';
import { drawPushControl } from '../../push.js';
import { rescheduleButton } from '../slots.js';

const FIELDS = ['status', 'date', 'position', 'etaMinutes', 'expectedStartAt', 'earliestStartAt', 'latestStartAt',
  'delayMinutes', 'isRunningLate', 'lateByMinutes', 'awayUntil'];

export async function waitingPage(root, context) {
  const [appointmentId] = context.params;
  const heading = h('h1', {}, t('wait.title'));
  replace(root, heading, h('p', { class: 'muted' }, t('common.loading')));
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
    replace(root, heading, h('p', { role: 'alert' }, error.status === 404 ? t('wait.notFound') : sentence(error)),
      session.user?.role === 'patient' ? h('p', {}, h('a', { href: '/app/appointments' }, t('nav.appointments'))) : null);
    return;
  }
  if (!context.stillShown()) return;

  const state = {
    status: place.status ?? appointment.status,
    date: appointment.date,
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
  const booked = h('p', { class: 'lead booked' });  // who and when (a later day's booking: when is the card's headline)
  const notifyArea = h('div', { class: 'notify' }, h('div', {}), soundSwitch());
  const actions = h('div', { class: 'actions' });
  const message = h('p', { class: 'form-error', role: 'alert' });
  const title = tabTitle();
  let lastSignature = '';
  const notified = new Set();  // 'soon', 'now': what this page has already alerted about

  const drawBooked = () => {
    const zone = zoneNote();
    // A later day's booking has its day and time as the card's headline: not written twice.
    const later = WAITING.has(state.status) && laterClinicDay(state.date);
    replace(booked, doctor ? t('wait.doctorLine', { name: doctor.name, specialization: doctor.specialization }) : t('wait.yourDoctor'),
      later ? null : [h('br'), t('wait.bookedFor', { day: dayWords(state.date), time: timeOnly(state.date) })],
      zone ? [h('br'), h('span', { class: 'small muted' }, zone)] : null);
  };

  const drawStatus = () => {
    drawBooked();  // not a live region: redrawn freely (a reschedule changes it)
    const lines = statusLines(state);
    const signature = JSON.stringify(lines);
    if (signature === lastSignature) return;  // do not make screen readers repeat what has not changed
    lastSignature = signature;
    replace(statusRegion, lines.map(([kind, text]) => {
      if (kind === 'join') {
        return h('p', {}, h('a', { class: 'button primary join', href: text, target: '_blank', rel: 'noopener noreferrer' },
          t('wait.join')));
      }
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
        ? h('button', { type: 'button', onclick: askToCancel }, t('wait.cancel')) : null,
      session.user.role === 'patient' ? h('a', { href: '/app/appointments' }, t('wait.allAppointments')) : null);
  };

  // Moved here (the room's queue:update then brings the new place); the new time shows at once.
  const rescheduled = (updated) => {
    appointment.date = updated.date;
    state.date = updated.date;
    drawStatus();
  };

  const askToCancel = () => {
    replace(actions,
      h('p', {}, t('wait.cancelQuestion')),
      h('button', { type: 'button', class: 'danger', onclick: cancel }, t('common.yesCancel')),
      h('button', { type: 'button', onclick: drawActions }, t('wait.keepPlace')));
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
      live: t('live.on'),
      connecting: t('live.connecting'),
      reconnecting: t('live.reconnecting'),
      idle: '',
    }[liveState] || '';
    connection.className = `connection ${liveState}`;
  };

  const stops = [
    live.on('queue:update', (data) => {
      if (data.appointmentId !== appointment.id) return;
      if (data.date) appointment.date = data.date;  // moved, here or from another device
      Object.assign(state, pick(data, FIELDS));
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
      if (!notified.has('now')) {
        notify(t('wait.alert.nowTitle'), t('wait.alert.nowBody'));
        title.show(t('wait.alert.nowTitle'));
        chime();
      }
      notified.add('now');
    }),
    live.on('turn:soon', (data) => {
      if (data.appointmentId !== appointment.id || notified.has('soon')) return;
      notified.add('soon');
      notify(t('wait.alert.soonTitle'),
        data.position === 0 ? t('wait.alert.soonNext')
          : t('wait.alert.soonBody', { duration: minutes(data.etaMinutes), time: clock(data.earliestStartAt) }));
      title.show(t('wait.alert.soonTitle'));
      chime();
    }),
    live.on('state', drawConnection),
    live.subscribe({ appointmentId: appointment.id }),
    live.subscribe({ doctorId: appointment.doctor }),
  ];
  // awayUntil passes without any event: re-read the clock each minute so the notice goes away.
  const minuteTimer = setInterval(drawStatus, 60_000);

  drawPushControl(notifyArea.firstChild);
  drawStatus();
  drawConnection(live.state);
  replace(root,
    heading,
    booked,
    h('section', { class: 'card', 'aria-label': t('wait.placeRegion') }, statusRegion, connection),
    notifyArea, message, actions);

  return () => {
    clearInterval(minuteTimer);
    title.stop();
    stops.forEach((stop) => stop());
  };
}

function pick(data, names) {
  const picked = {};
  for (const name of names) if (name in data) picked[name] = data[name];
  return picked;
}
