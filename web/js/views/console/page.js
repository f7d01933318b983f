// The console: a receptionist's and a doctor's screen for one doctor's day, live.
//
// Today's queue (or another day's, `?date=`): the waiting list beside the in-consultation card and
// the day in numbers on a desktop, one column on a phone. `Call next` sends the appointment this
// page shows in consultation as `expectCurrent`, so a doctor acting on a stale screen (a second
// tab, a slow network) gets "the queue changed" instead of completing someone they did not mean to.
//
// Parts: queue.js (the list), now.js (the card in consultation), numbers.js, status.js (late and
// away), contacts.js (phones and emails), confirm.js (asking before a final action).

import { h, replace } from '../../dom.js';
import { api, sentence } from '../../api.js';
import { t } from '../../i18n.js';
import { dayKey, longDate } from '../../format.js';
import { field, form, valueOf } from '../../forms.js';
import { live } from '../../live.js';
import { navigate } from '../../router.js';
import { session } from '../../session.js';
import { clinicZone } from '../../clinic.js';
import { drawQueue } from './queue.js';
import { drawNow } from './now.js';
import { dayInNumbers } from './numbers.js';
import { doctorStatusForms, statusSummary } from './status.js';
import { Contacts } from './contacts.js';
import { Confirmations } from './confirm.js';
import { hoursCard } from '../hours.js';

const DAY = /^\d{4}-\d{2}-\d{2}$/;

export async function consolePage(root, context) {
  const heading = h('h1', {}, t('console.title'));
  replace(root, heading, h('p', { class: 'muted' }, t('common.loading')));
  let doctorId = session.user.role === 'doctor' ? session.user.doctorId : context.query.get('doctor');
  let doctors = null;
  if (session.user.role === 'admin') {
    try {
      doctors = await api('GET', '/api/doctors');
    } catch (error) {
      replace(root, heading, h('p', { role: 'alert' }, sentence(error)));
      return;
    }
    if (!context.stillShown()) return;
    doctorId = doctorId || doctors[0]?.id;
    if (!doctorId) {
      replace(root, heading, h('p', {}, t('console.noDoctors'), ' ', h('a', { href: '/app/admin' }, t('console.addInAdmin'))));
      return;
    }
  }
  if (!doctorId) {
    replace(root, heading, h('p', { role: 'alert' }, t('console.notLinked')));
    return;
  }
  const today = dayKey(new Date(), clinicZone || undefined);
  const asked = context.query.get('date');
  const day = asked && DAY.test(asked) ? asked : today;
  const isToday = day === today;
  let doctor;
  let queue;
  const queuePath = `/api/queue/doctor/${doctorId}${isToday ? '' : `?date=${day}`}`;
  try {
    [doctor, queue] = await Promise.all([api('GET', `/api/doctors/${doctorId}`), api('GET', queuePath)]);
  } catch (error) {
    if (!context.stillShown()) return;
    replace(root, heading, h('p', { role: 'alert' }, error.status === 404 ? t('console.gone') : sentence(error)));
    return;
  }
  if (!context.stillShown()) return;

  const message = h('p', { class: 'form-error', role: 'alert' });  // the page's own loading problems
  // Action errors are announced by two alert regions that are created once and never redrawn (so
  // a live update does not read an old error out again); the list repeats them, silently, next to
  // the patient they concern.
  const nowAlert = h('p', { class: 'form-error', role: 'alert' });
  const queueAlert = h('p', { class: 'form-error', role: 'alert' });
  const done = h('p', { class: 'done', role: 'status' });
  const nowBody = h('div', {});
  const queueHeading = h('h2', { id: 'queue-heading' });
  const queueBody = h('div', {});
  const queueSection = h('section', { class: 'card console-queue', 'aria-labelledby': 'queue-heading' },
    queueHeading, queueAlert, queueBody);
  const connection = h('p', { class: 'connection', 'aria-live': 'polite' });
  const callNext = h('button', { type: 'button', class: 'primary big', onclick: () => doCallNext() }, t('console.callNext'));
  const nowSection = h('section', { class: 'card console-now', 'aria-labelledby': 'now-heading' },
    h('h2', { id: 'now-heading' }, t('console.now.heading')), nowBody,
    isToday ? h('div', { class: 'actions' }, callNext) : null, nowAlert, done);

  const view = {
    queue,
    isToday,
    joinUrls: new Map(),  // appointmentId → joinUrl, learned from call-next or a read
    errors: new Map(),     // appointmentId → the sentence of its last failed action
    contacts: new Contacts(doctorId),
    confirmations: null,
    setStatus: null,
  };
  view.confirmations = new Confirmations(() => draw());

  const act = async (key, work, doneText) => {
    view.errors.delete(key);
    nowAlert.textContent = '';
    queueAlert.textContent = '';
    done.textContent = '';
    draw();
    try {
      await work();
      if (doneText) done.textContent = doneText;
    } catch (error) {
      const text = sentence(error);
      if (key !== 'now') view.errors.set(key, text);
      const inConsultation = key === 'now' || key === view.queue.inConsultation?.appointmentId;
      (inConsultation ? nowAlert : queueAlert).textContent = text;
      if (error.code === 'queue_changed' || error.status === 409) await reloadQueue();
      draw();
    }
  };

  const reloadQueue = async () => {
    try {
      view.queue = await api('GET', queuePath);
      draw();
    } catch (error) {
      message.textContent = sentence(error);
    }
  };

  const doCallNext = () => act('now', async () => {
    callNext.disabled = true;
    try {
      const expectCurrent = view.queue.inConsultation?.appointmentId ?? null;
      const answer = await api('POST', `/api/doctors/${doctorId}/queue/next`, { expectCurrent });
      if (answer.current?.joinUrl) view.joinUrls.set(answer.current.id, answer.current.joinUrl);
      view.contacts.learn(answer.current);
      done.textContent = answer.current
        ? t('console.done.seeing', { name: answer.current.patientName })
        : (answer.completed ? t('console.done.completedNobody') : t('console.queue.empty'));
      await reloadQueue();
    } finally {
      callNext.disabled = false;
    }
  });

  view.setStatus = (entry, status, doneText) => act(entry.appointmentId, async () => {
    await api('PATCH', `/api/appointments/${entry.appointmentId}/status`, { status });
    await reloadQueue();
  }, doneText);

  const statusLine = h('p', { class: 'headline' });
  const drawDoctorStatus = () => { statusLine.textContent = statusSummary(doctor); };

  // Live updates redraw the queue; a keyboard user keeps their place (the same button, found by
  // its name, or Call next if that button is gone).
  const draw = () => {
    const active = document.activeElement;
    const nameOf = (element) => element.getAttribute('aria-label') || element.textContent;
    const focused = active && (nowBody.contains(active) || queueBody.contains(active)) ? nameOf(active) : null;
    const shown = new Set((view.queue.list || []).map((entry) => entry.appointmentId));
    if (view.queue.inConsultation) shown.add(view.queue.inConsultation.appointmentId);
    view.confirmations.keepOnly(shown);
    drawNow(nowBody, view);
    drawQueue(queueHeading, queueBody, view);
    drawDoctorStatus();
    if (focused !== null && !document.activeElement?.closest?.('section')) {
      const again = [...nowSection.querySelectorAll('button, a'), ...queueSection.querySelectorAll('button, a')]
        .find((element) => nameOf(element) === focused);
      (again || (isToday ? callNext : heading)).focus();
    }
    const ids = [...shown];
    view.contacts.cover(ids).then((learned) => { if (learned && context.stillShown()) draw(); }).catch(() => {
      // Contacts are a help, not the queue: the queue stays on screen without them.
    });
  };

  const numbers = dayInNumbers(doctorId, day, isToday, context);
  const statusForms = doctorStatusForms(doctorId, () => doctor, (updated) => { doctor = updated; drawDoctorStatus(); });
  let otherDayTimer = null;

  const stops = [
    live.on('queue:state', (data) => {
      if (data.doctorId !== doctorId) return;
      // The socket's queue:state is always today's queue (after midnight, the new day's).
      if (isToday) {
        view.queue = data;
        draw();
      } else {
        // Another day's queue: the socket speaks of today's; read the shown day again, once a burst is over.
        clearTimeout(otherDayTimer);
        otherDayTimer = setTimeout(reloadQueue, 500);
      }
      numbers.changed();
    }),
    live.on('doctor:status', (data) => {
      if (data.doctorId !== doctorId) return;
      doctor = { ...doctor, ...data };
      drawDoctorStatus();
    }),
    live.on('state', (state) => {
      connection.textContent = { live: t('live.on'), connecting: t('live.connecting'),
        reconnecting: t('live.reconnectingQueue'), idle: '' }[state] || '';
    }),
    live.subscribe({ doctorId }),
  ];

  if (queue.inConsultation?.appointmentId) {
    api('GET', `/api/appointments/${queue.inConsultation.appointmentId}`).then((appointment) => {
      if (appointment.joinUrl) view.joinUrls.set(appointment.id, appointment.joinUrl);
      view.contacts.learn(appointment);
      if (context.stillShown()) draw();
    }).catch(() => {
      // Only the call link is missing; the queue itself is on screen and live.
    });
  }

  draw();
  replace(root,
    heading,
    chooser(doctors, doctorId, day, today),
    h('p', { class: 'lead' }, isToday
      ? t('console.lead.today', { name: doctor.name, specialization: doctor.specialization })
      : t('console.lead.day', { name: doctor.name, specialization: doctor.specialization, day: longDate(`${day}T12:00:00`) }),
    isToday ? null : [' ', h('a', { href: `/app/console${doctors ? `?doctor=${doctorId}` : ''}` }, t('console.backToToday'))]),
    connection, message,
    h('div', { class: 'console-grid' },
      nowSection,
      queueSection,
      h('div', { class: 'console-numbers' }, numbers.section),
      h('section', { class: 'card console-status', 'aria-labelledby': 'status-heading' },
        h('h2', { id: 'status-heading' }, session.user.role === 'doctor' ? t('console.status.yours') : t('console.status.theirs', { name: doctor.name })),
        statusLine, statusForms),
      h('div', { class: 'console-hours' },
        hoursCard(doctor, { save: (body) => api('PATCH', `/api/doctors/${doctorId}/status`, body) }))));

  return () => {
    clearTimeout(otherDayTimer);
    numbers.stop();
    stops.forEach((stop) => stop());
  };
}

/** Which doctor (admins) and which day the console shows. */
function chooser(doctors, doctorId, day, today) {
  return form({
    label: t('console.choose.label'),
    submit: t('console.choose.submit'),
    submitClass: '',
    className: 'inline-form chooser',
    children: [
      doctors ? field({ label: t('console.choose.doctor'), name: 'doctor', type: 'select', value: doctorId,
        options: doctors.map((doctor) => [doctor.id, `${doctor.name} (${doctor.specialization})`]) }) : null,
      field({ label: t('console.choose.day'), name: 'date', type: 'date', value: day }),
    ],
    async onSubmit(element) {
      const query = new URLSearchParams();
      if (doctors) query.set('doctor', valueOf(element, 'doctor'));
      const chosen = valueOf(element, 'date');
      if (chosen && chosen !== today) query.set('date', chosen);
      navigate(`/app/console${query.size ? `?${query}` : ''}`);
    },
  });
}
