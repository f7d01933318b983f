// The doctor's console: today's queue, live, and the buttons that run it.
//
// `Call next` sends the appointment this page shows in consultation as `expectCurrent`, so a
// doctor acting on a stale screen (a second tab, a slow network) gets "the queue changed" instead
// of completing someone they did not mean to.

import { h, replace } from '../dom.js';
import { api, sentence } from '../api.js';
import { clock, localParts, minutes, STATUS_LABELS, stillAway } from '../format.js';
import { field, form, valueOf } from '../forms.js';
import { live } from '../live.js';
import { navigate } from '../router.js';
import { session } from '../session.js';
import { hoursCard } from './hours.js';

export async function consolePage(root, context) {
  const heading = h('h1', {}, 'Console');
  replace(root, heading, h('p', { class: 'muted' }, 'Loading…'));
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
      replace(root, heading, h('p', {}, 'There are no doctors yet. ', h('a', { href: '/app/admin' }, 'Add one in Admin'), '.'));
      return;
    }
  }
  if (!doctorId) {
    replace(root, heading, h('p', { role: 'alert' }, 'Your account is not linked to a doctor profile. Ask an administrator to check your invitation.'));
    return;
  }
  let doctor;
  let queue;
  try {
    [doctor, queue] = await Promise.all([api('GET', `/api/doctors/${doctorId}`), api('GET', `/api/queue/doctor/${doctorId}`)]);
  } catch (error) {
    if (!context.stillShown()) return;
    replace(root, heading, h('p', { role: 'alert' }, error.status === 404 ? 'This doctor profile no longer exists.' : sentence(error)));
    return;
  }
  if (!context.stillShown()) return;

  const joinUrls = new Map();  // appointmentId → joinUrl, learned from call-next or a read
  const message = h('p', { class: 'form-error', role: 'alert' });  // the page's own loading problems
  // An action's error stays next to what caused it ('now' for Call next, else the appointment's id),
  // across the redraws that live updates cause, until that action is tried again.
  const errors = new Map();
  const errorFor = (key) => h('p', { class: 'form-error', role: 'alert' }, errors.get(key) || '');
  const done = h('p', { class: 'done', role: 'status' });
  const nowSection = h('section', { class: 'card', 'aria-labelledby': 'now-heading' });
  const listSection = h('section', { class: 'card', 'aria-labelledby': 'queue-heading' });
  const connection = h('p', { class: 'connection', 'aria-live': 'polite' });
  const callNext = h('button', { type: 'button', class: 'primary big', onclick: () => doCallNext() }, 'Call next');

  const act = async (key, work, doneText) => {
    errors.delete(key);
    done.textContent = '';
    draw();
    try {
      await work();
      if (doneText) done.textContent = doneText;
    } catch (error) {
      errors.set(key, sentence(error));
      if (error.code === 'queue_changed' || error.status === 409) await reloadQueue();
      draw();
    }
  };

  const reloadQueue = async () => {
    try {
      queue = await api('GET', `/api/queue/doctor/${doctorId}`);
      draw();
    } catch (error) {
      message.textContent = sentence(error);
    }
  };

  const doCallNext = () => act('now', async () => {
    callNext.disabled = true;
    try {
      const expectCurrent = queue.inConsultation?.appointmentId ?? null;
      const answer = await api('POST', `/api/doctors/${doctorId}/queue/next`, { expectCurrent });
      if (answer.current?.joinUrl) joinUrls.set(answer.current.id, answer.current.joinUrl);
      done.textContent = answer.current
        ? `Now seeing ${answer.current.patientName}.`
        : (answer.completed ? 'Consultation completed. Nobody else is waiting.' : 'Nobody is waiting.');
      await reloadQueue();
    } finally {
      callNext.disabled = false;
    }
  });

  const setStatus = (appointment, status, doneText) => act(appointment.appointmentId, async () => {
    await api('PATCH', `/api/appointments/${appointment.appointmentId}/status`, { status });
    await reloadQueue();
  }, doneText);

  const drawNow = () => {
    const current = queue.inConsultation;
    const rows = [h('h2', { id: 'now-heading' }, 'In consultation')];
    if (current) {
      const joinUrl = joinUrls.get(current.appointmentId);
      rows.push(
        h('p', { class: 'headline' }, current.patientName || 'A patient'),
        current.reason ? h('p', {}, `Reason: ${current.reason}`) : null,
        h('p', { class: 'muted' }, `Booked ${clock(current.date)}, started ${clock(current.startedAt)}.`),
        h('div', { class: 'actions' },
          joinUrl ? h('a', { class: 'button', href: joinUrl, target: '_blank', rel: 'noopener noreferrer' }, 'Join call') : null,
          h('button', { type: 'button', 'aria-label': `Complete ${current.patientName}`,
            onclick: () => setStatus(current, 'completed', `${current.patientName}'s consultation is complete.`) }, 'Complete'),
          // Called but never joined: a no-show, whatever the booked time.
          h('button', { type: 'button', 'aria-label': `No-show ${current.patientName}`,
            onclick: () => setStatus(current, 'no_show', `${current.patientName} is marked as not present.`) }, 'No-show')),
        errorFor(current.appointmentId));
    } else {
      rows.push(h('p', {}, 'Nobody is in consultation.'));
    }
    rows.push(h('div', { class: 'actions' }, callNext), errorFor('now'), done);
    replace(nowSection, rows);
  };

  const drawList = () => {
    const waiting = queue.list || [];
    replace(listSection,
      h('h2', { id: 'queue-heading' }, `Waiting (${waiting.length})`),
      waiting.length === 0 ? h('p', {}, 'Nobody is waiting.') : h('ol', { class: 'queue' }, waiting.map((entry) => h('li', { class: 'card' },
        h('p', { class: 'headline' }, entry.patientName),
        entry.reason ? h('p', {}, `Reason: ${entry.reason}`) : null,
        h('p', { class: 'muted' }, `Booked ${clock(entry.date)} · expected ${clock(entry.expectedStartAt)}`,
          entry.etaMinutes > 0 ? ` (in ${minutes(entry.etaMinutes)})` : ' (now)',
          entry.earliestStartAt ? ` · window ${clock(entry.earliestStartAt)} to ${clock(entry.latestStartAt)}` : ''),
        h('p', {},
          h('span', { class: `badge ${entry.status}` }, STATUS_LABELS[entry.status]),
          ' ',
          'present' in entry
            ? h('span', { class: `badge ${entry.present ? 'present' : 'absent'}` },
              entry.present ? 'In the waiting room' : 'Not in the waiting room')
            : null),
        h('div', { class: 'actions' },
          entry.status === 'pending'
            ? h('button', { type: 'button', 'aria-label': `Confirm ${entry.patientName}`,
              onclick: () => setStatus(entry, 'confirmed', `${entry.patientName} is confirmed.`) }, 'Confirm') : null,
          // A waiting patient is no no-show before the booked time (the server answers too_early).
          new Date(entry.date).getTime() <= Date.now()
            ? h('button', { type: 'button', 'aria-label': `No-show ${entry.patientName}`,
              onclick: () => setStatus(entry, 'no_show', `${entry.patientName} is marked as not present.`) }, 'No-show')
            : null),
        errorFor(entry.appointmentId)))));
  };

  const drawDoctorStatus = () => {
    const notes = [];
    if (doctor.isRunningLate) notes.push(`Running ${minutes(doctor.lateByMinutes)} late.`);
    if (stillAway(doctor.awayUntil)) notes.push(`Away until ${clock(doctor.awayUntil)}.`);
    statusSummary.textContent = notes.length ? notes.join(' ') : 'On time.';
  };

  // Live updates redraw the queue; a keyboard user keeps their place (the same button, found by
  // its name, or Call next if that button is gone).
  const draw = () => {
    const active = document.activeElement;
    const nameOf = (element) => element.getAttribute('aria-label') || element.textContent;
    const focused = active && (nowSection.contains(active) || listSection.contains(active)) ? nameOf(active) : null;
    drawNow();
    drawList();
    drawDoctorStatus();
    if (focused !== null && !document.activeElement?.closest?.('section')) {
      const again = [...nowSection.querySelectorAll('button, a'), ...listSection.querySelectorAll('button, a')]
        .find((element) => nameOf(element) === focused);
      (again || callNext).focus();
    }
  };

  const statusSummary = h('p', { class: 'headline' });
  const today = dayInNumbers(doctorId, context);
  const statusForms = doctorStatusForms(doctorId, () => doctor, (updated) => { doctor = updated; drawDoctorStatus(); });

  const stops = [
    live.on('queue:state', (data) => {
      if (data.doctorId !== doctorId) return;
      queue = data;
      draw();
      today.changed();
    }),
    live.on('doctor:status', (data) => {
      if (data.doctorId !== doctorId) return;
      doctor = { ...doctor, ...data };
      drawDoctorStatus();
    }),
    live.on('state', (state) => {
      connection.textContent = { live: 'Live: this page updates by itself.', connecting: 'Connecting…',
        reconnecting: 'Connection lost. Reconnecting… the queue may be out of date.', idle: '' }[state] || '';
    }),
    live.subscribe({ doctorId }),
  ];

  if (queue.inConsultation?.appointmentId) {
    api('GET', `/api/appointments/${queue.inConsultation.appointmentId}`).then((appointment) => {
      if (appointment.joinUrl) joinUrls.set(appointment.id, appointment.joinUrl);
      if (context.stillShown()) drawNow();
    }).catch(() => {
      // Only the call link is missing; the queue itself is on screen and live.
    });
  }

  draw();
  replace(root,
    heading,
    doctors ? doctorPicker(doctors, doctorId) : null,
    h('p', { class: 'lead' }, `${doctor.name}, ${doctor.specialization}: today's queue`),
    connection, message, nowSection, listSection,
    h('section', { class: 'card', 'aria-labelledby': 'status-heading' },
      h('h2', { id: 'status-heading' }, session.user.role === 'doctor' ? 'Your status' : `${doctor.name}'s status`),
      statusSummary, statusForms),
    hoursCard(doctor, { save: (body) => api('PATCH', `/api/doctors/${doctorId}/status`, body) }),
    today.section);

  return () => {
    today.stop();
    stops.forEach((stop) => stop());
  };
}

const STATS_SETTLE_MS = 1_000;  // a burst of queue changes costs one read of the day's numbers

/**
 * Today in numbers (GET /api/doctors/{id}/stats), read again shortly after the queue changes: what a
 * doctor glances at between patients, not a report.
 */
function dayInNumbers(doctorId, context) {
  const list = h('dl', { class: 'numbers' });
  const note = h('p', { class: 'muted small' });
  const section = h('section', { class: 'card', 'aria-labelledby': 'today-heading' },
    h('h2', { id: 'today-heading' }, 'Today in numbers'), list, note);
  let timer = null;
  const rounded = (value) => (value === null || value === undefined ? '–' : minutes(value));
  const load = async () => {
    let stats;
    try {
      stats = await api('GET', `/api/doctors/${doctorId}/stats`);
    } catch (error) {
      if (!context.stillShown()) return;
      list.replaceChildren();
      note.textContent = `The day's numbers could not be loaded: ${sentence(error)}`;
      return;
    }
    if (!context.stillShown()) return;
    const rows = [
      ['Booked', stats.booked], ['Seen', stats.completed], ['Waiting', stats.waiting],
      ['No-shows', stats.noShows], ['Cancelled', stats.cancelled],
      ['Average wait', rounded(stats.meanWaitMinutes)], ['Average consultation', rounded(stats.meanConsultMinutes)],
    ];
    if (stats.etaScored > 0) rows.push(['Estimates off by', `${rounded(stats.etaMaeMinutes)} on average`]);
    replace(list, rows.map(([term, value]) => h('div', {}, h('dt', {}, term), h('dd', {}, String(value)))));
    note.textContent = 'Wait: from the booked time to the call.';
  };
  load();
  return {
    section,
    changed() {
      clearTimeout(timer);
      timer = setTimeout(load, STATS_SETTLE_MS);
    },
    stop() {
      clearTimeout(timer);
    },
  };
}

function doctorPicker(doctors, doctorId) {
  return form({
    label: 'Choose a doctor',
    submit: 'Show queue',
    submitClass: '',
    className: 'inline-form',
    children: [field({ label: 'Doctor', name: 'doctor', type: 'select', value: doctorId,
      options: doctors.map((doctor) => [doctor.id, `${doctor.name} (${doctor.specialization})`]) })],
    async onSubmit(element) {
      navigate(`/app/console?doctor=${encodeURIComponent(valueOf(element, 'doctor'))}`);
    },
  });
}

function doctorStatusForms(doctorId, getDoctor, onUpdated) {
  const doctor = getDoctor();
  const patch = async (body, doneText, doneElement) => {
    const updated = await api('PATCH', `/api/doctors/${doctorId}/status`, body);
    onUpdated(updated);
    doneElement.textContent = doneText;
  };
  const lateDone = h('p', { class: 'done', role: 'status' });
  const lateForm = form({
    label: 'Running late',
    submit: 'Save',
    children: [
      h('div', { class: 'check' },
        h('input', { type: 'checkbox', id: 'late-flag', name: 'isRunningLate', checked: doctor.isRunningLate }),
        h('label', { for: 'late-flag' }, 'I am running late')),
      field({ label: 'Minutes late', name: 'lateByMinutes', type: 'number', min: 0, max: 600, step: 1,
        value: doctor.lateByMinutes, inputmode: 'numeric' }),
      field({ label: 'Average consultation (minutes)', name: 'avgConsultMinutes', type: 'number', min: 1, max: 240,
        step: 1, value: doctor.avgConsultMinutes, inputmode: 'numeric' }),
    ],
    async onSubmit(element) {
      lateDone.textContent = '';
      const isRunningLate = element.querySelector('[name=isRunningLate]').checked;
      const body = { isRunningLate, avgConsultMinutes: Number(valueOf(element, 'avgConsultMinutes')) };
      if (isRunningLate) body.lateByMinutes = Number(valueOf(element, 'lateByMinutes'));
      await patch(body, isRunningLate ? 'Saved: patients now see that you are running late.' : 'Saved: you are on time.', lateDone);
      if (!isRunningLate) element.querySelector('[name=lateByMinutes]').value = '0';
    },
  });
  const awayDone = h('p', { class: 'done', role: 'status' });
  const suggested = localParts(new Date(Date.now() + 15 * 60_000)).time;
  const awayForm = form({
    label: 'Away',
    submit: 'Set away',
    children: [field({ label: 'Away until', name: 'awayUntil', type: 'time', value: suggested,
      hint: 'Nobody is expected to start before this time (at most 12 hours ahead).' })],
    async onSubmit(element) {
      awayDone.textContent = '';
      const [hours, mins] = valueOf(element, 'awayUntil').split(':').map(Number);
      const until = new Date();
      until.setHours(hours, mins, 0, 0);
      if (until <= new Date()) until.setDate(until.getDate() + 1);  // a time already past means tomorrow
      await patch({ awayUntil: until.toISOString() }, `Saved: away until ${clock(until.toISOString())}.`, awayDone);
    },
  });
  const backMessage = h('p', { class: 'form-error', role: 'alert' });
  const back = h('button', {
    type: 'button',
    async onclick() {
      backMessage.textContent = '';
      awayDone.textContent = '';
      try {
        await patch({ awayUntil: null }, 'Saved: you are back.', awayDone);
      } catch (error) {
        backMessage.textContent = sentence(error);
      }
    },
  }, 'Back now');
  return h('div', { class: 'grid-2' },
    h('div', {}, h('h3', {}, 'Running late'), lateForm, lateDone),
    h('div', {}, h('h3', {}, 'Away'), awayForm, h('div', { class: 'actions' }, back), backMessage, awayDone));
}
