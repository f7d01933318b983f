// A patient's pages: book with a doctor, and the list of their appointments (cancel, or open the
// waiting room).

import { h, replace, uid } from '../dom.js';
import { api, sentence } from '../api.js';
import { t } from '../i18n.js';
import { browserZone } from '../clinic.js';
import { clock, localParts, minutes, statusLabel, stillAway, WAITING, zoneName, zoneNote } from '../format.js';
import { field, form, valueOf } from '../forms.js';
import { navigate } from '../router.js';
import { session } from '../session.js';
import { bookingTimes, rescheduleButton } from './slots.js';

function doctorLine(doctor) {
  const notes = [];
  if (doctor.isRunningLate && doctor.lateByMinutes) notes.push(t('book.doctorLate', { duration: minutes(doctor.lateByMinutes) }));
  if (stillAway(doctor.awayUntil)) notes.push(t('book.doctorAway', { time: clock(doctor.awayUntil) }));
  return notes.length ? ` (${notes.join(', ')})` : '';
}

/**
 * One Idempotency-Key per distinct request: a retry of the same booking (a lost answer, a double
 * tap) reuses its key and cannot book twice; a changed request gets a new key, since the server
 * answers a key reused with another body by `409 idempotency_mismatch`.
 */
function keyPerRequest() {
  let lastBody = null;
  let key = null;
  return (body) => {
    const text = JSON.stringify(body);
    if (text !== lastBody) {
      lastBody = text;
      key = crypto.randomUUID();
    }
    return key;
  };
}

export async function bookPage(root, context) {
  const title = t('book.title');
  replace(root, h('h1', {}, title), h('p', { class: 'muted' }, t('book.loadingDoctors')));
  let doctors;
  try {
    doctors = await api('GET', '/api/doctors');
  } catch (error) {
    replace(root, h('h1', {}, title), h('p', { role: 'alert' }, sentence(error)));
    return;
  }
  if (!context.stillShown()) return;
  if (doctors.length === 0) {
    replace(root, h('h1', {}, title), h('p', {}, t('book.noDoctors')));
    return;
  }
  const wanted = context.query.get('doctor');
  const legendId = uid('doctor-legend');
  const doctorChoice = h('fieldset', { class: 'choices', 'aria-describedby': `${legendId}-error` },
    h('legend', { id: legendId }, t('book.doctor')),
    doctors.map((doctor, index) => {
      const id = uid('doctor');
      return h('div', { class: 'choice' },
        h('input', { type: 'radio', id, name: 'doctor', value: doctor.id, required: true,
          checked: wanted ? doctor.id === wanted : index === 0 }),
        h('label', { for: id }, h('strong', {}, doctor.name), ` — ${doctor.specialization}${doctorLine(doctor)}`));
    }),
    h('p', { class: 'field-error', id: `${legendId}-error` }));
  // The first slot at least 10 minutes ahead, on a 5-minute boundary.
  const start = new Date(Date.now() + 10 * 60_000);
  start.setMinutes(Math.ceil(start.getMinutes() / 5) * 5, 0, 0);
  const parts = localParts(start);
  const idempotencyKey = keyPerRequest();
  const user = session.user;
  const zone = zoneNote();
  const timeRow = h('div', { class: 'row' },
    field({ label: t('book.date'), name: 'day', type: 'date', value: parts.date, min: localParts(new Date()).date }),
    field({ label: t('book.time'), name: 'time', type: 'time', value: parts.time, step: 300 }));
  const times = bookingTimes(doctors, doctorChoice, timeRow);  // slot buttons for a doctor with hours
  const booking = form({
    label: title,
    submit: t('book.submit'),
    children: [
      doctorChoice,
      times.element,
      timeRow,
      h('p', { class: 'hint' }, zone || t('book.zone', { zone: zoneName(browserZone) })),
      field({ label: t('book.name'), name: 'patientName', value: user.name, autocomplete: 'name' }),
      field({ label: t('book.email'), name: 'patientEmail', type: 'email', value: user.email, autocomplete: 'email' }),
      field({ label: t('book.phone'), name: 'patientPhone', type: 'tel', autocomplete: 'tel' }),
      field({ label: t('book.reason'), name: 'reason', type: 'textarea', required: false, rows: 3, maxlength: 500 }),
    ],
    async onSubmit(element) {
      const date = times.date(element);
      const body = {
        patientName: valueOf(element, 'patientName'),
        patientEmail: valueOf(element, 'patientEmail'),
        patientPhone: valueOf(element, 'patientPhone'),
        doctor: element.querySelector('[name=doctor]:checked')?.value,
        date,
      };
      const reason = valueOf(element, 'reason');
      if (reason) body.reason = reason;
      try {
        const appointment = await api('POST', '/api/appointments', body, { headers: { 'Idempotency-Key': idempotencyKey(body) } });
        navigate(`/app/waiting/${appointment.id}`);
      } catch (error) {
        times.refused(error);
        // The API names the field `date`; on this form it is the date and time pair.
        if (error.details?.date) {
          const { date, ...rest } = error.details;
          error.details = { ...rest, day: date };
        }
        throw error;
      }
    },
  });
  replace(root, h('h1', {}, title), h('div', { class: 'card' }, booking));
}

export async function appointmentsPage(root, context) {
  const heading = h('h1', {}, t('nav.appointments'));
  replace(root, heading, h('p', { class: 'muted' }, t('common.loading')));
  let appointments;
  let doctors;
  try {
    [appointments, doctors] = await Promise.all([api('GET', '/api/appointments/my'), api('GET', '/api/doctors')]);
  } catch (error) {
    replace(root, heading, h('p', { role: 'alert' }, sentence(error)));
    return;
  }
  if (!context.stillShown()) return;
  const doctorNames = new Map(doctors.map((doctor) => [doctor.id, doctor.name]));
  const list = h('ul', { class: 'cards' });
  const draw = () => {
    replace(list, appointments.map((appointment) => appointmentCard(appointment, doctorNames, draw)));
  };
  draw();
  replace(root, heading,
    h('p', {}, h('a', { href: '/app/book', class: 'button primary' }, t('book.title'))),
    appointments.length ? list : h('p', {}, t('appointments.none')));
}

function appointmentCard(appointment, doctorNames, redraw) {
  const doctorName = doctorNames.get(appointment.doctor) || t('appointments.unlistedDoctor');
  const waiting = WAITING.has(appointment.status);
  const message = h('p', { class: 'form-error', role: 'alert' });
  const actions = h('div', { class: 'actions' });
  const showActions = () => {
    replace(actions,
      waiting || appointment.status === 'in_consultation'
        ? h('a', { href: `/app/waiting/${appointment.id}`, class: 'button primary' },
          appointment.status === 'in_consultation' ? t('appointments.openTurn') : t('appointments.open'))
        : null,
      waiting ? rescheduleButton(appointment, actions, { onDone: moved, restore: showActions }) : null,
      waiting ? h('button', { type: 'button', onclick: askToCancel }, t('wait.cancel')) : null);
  };
  const moved = (updated) => {
    Object.assign(appointment, updated);
    redraw();
  };
  const askToCancel = () => {
    replace(actions,
      h('p', {}, t('appointments.cancelQuestion', { doctor: doctorName, time: clock(appointment.date) })),
      h('button', { type: 'button', class: 'danger', onclick: cancel }, t('common.yesCancel')),
      h('button', { type: 'button', onclick: showActions }, t('appointments.keep')));
    actions.querySelector('button').focus();
  };
  const cancel = async () => {
    message.textContent = '';
    try {
      const updated = await api('PATCH', `/api/appointments/${appointment.id}/status`, { status: 'cancelled' });
      Object.assign(appointment, updated);
      redraw();
    } catch (error) {
      message.textContent = sentence(error);
      showActions();
    }
  };
  showActions();
  return h('li', { class: 'card' },
    h('h2', {}, t('appointments.cardTitle', { doctor: doctorName, time: clock(appointment.date) })),
    h('p', {}, h('span', { class: `badge ${appointment.status}` }, statusLabel(appointment.status))),
    appointment.reason ? h('p', { class: 'muted' }, t('console.reason', { reason: appointment.reason })) : null,
    message, actions);
}
