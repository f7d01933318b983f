// Choosing a time that fits the doctor's day: the free slots of a day as buttons (booking and
// rescheduling), and the reschedule dialog of the patient's appointments and waiting room.
//
// A doctor with working hours is booked by slot: the server lists the free slot starts of a clinic
// day (GET /api/doctors/{id}/slots) and refuses any other time, so offering anything but those
// buttons would only lead to a refusal. A doctor without hours takes any future time, so for them
// the date and time inputs stay. Times are written in the patient's own time zone.

import { h, replace, uid } from '../dom.js';
import { api, ApiError, sentence } from '../api.js';
import { field, form, valueOf } from '../forms.js';
import { lang, t } from '../i18n.js';
import { localParts } from '../format.js';

const DAYS_SHOWN = 7;  // today and the next six: each one tap away
const timeFormat = new Intl.DateTimeFormat(lang, { hour: 'numeric', minute: '2-digit' });
// A clinic day is a date, not a moment: format it at noon UTC so no zone moves it to another date.
const dayFormat = new Intl.DateTimeFormat(lang, { weekday: 'short', day: 'numeric', month: 'short', timeZone: 'UTC' });

/** "2027-03-22" plus `count` days. */
function addDays(day, count) {
  const date = new Date(`${day}T12:00:00Z`);
  date.setUTCDate(date.getUTCDate() + count);
  return date.toISOString().slice(0, 10);
}

export function hasHours(doctor) {
  return Boolean(doctor?.hours?.length);
}

/**
 * The free times of one clinic day as buttons, with the next days one tap away. Returns
 * {element, chosen(), reload()}: `chosen()` is the picked slot's start (ISO) or null.
 */
export function slotPicker(doctor, { exclude = null } = {}) {
  const legendId = uid('slots');
  let firstDay = null;
  let shownDay = null;
  let chosen = null;
  const days = h('div', { class: 'slot-days', role: 'group', 'aria-label': t('slots.days') });
  const note = h('p', { class: 'muted', 'aria-live': 'polite' });
  const times = h('div', { class: 'slot-times', role: 'group', 'aria-label': t('slots.times') });
  const element = h('fieldset', { class: 'slots' },
    h('legend', { id: legendId }, t('slots.legend')), days, note, times);

  const drawDays = () => replace(days, Array.from({ length: DAYS_SHOWN }, (_, index) => {
    const day = addDays(firstDay, index);
    const label = index === 0 ? t('slots.today') : index === 1 ? t('slots.tomorrow')
      : dayFormat.format(new Date(`${day}T12:00:00Z`));
    return h('button', { type: 'button', class: 'slot-day', 'aria-pressed': String(day === shownDay),
      onclick: () => load(day) }, label);
  }));

  const pick = (start, button) => {
    chosen = start;
    for (const other of times.querySelectorAll('button.slot')) other.setAttribute('aria-pressed', String(other === button));
    note.textContent = t('slots.chosen', { time: timeFormat.format(new Date(start)) });
  };

  const load = async (day) => {
    note.textContent = t('slots.loading');
    let listing;
    try {
      listing = await api('GET', `/api/doctors/${encodeURIComponent(doctor.id)}/slots${day ? `?date=${day}` : ''}`);
    } catch (error) {
      note.textContent = sentence(error);
      return;
    }
    firstDay = firstDay || listing.date;
    shownDay = listing.date;
    chosen = null;
    drawDays();
    const free = listing.slots.filter((slot) => slot.free && slot.start !== exclude);
    note.textContent = free.length ? '' : t('slots.noneFree');
    replace(times,
      free.map((slot) => h('button', {
        type: 'button', class: 'slot', 'aria-pressed': 'false',
        onclick: (event) => pick(slot.start, event.currentTarget),
      }, timeFormat.format(new Date(slot.start)))),
      free.length ? null : h('button', { type: 'button', onclick: () => load(addDays(shownDay, 1)) }, t('slots.nextDay')));
  };

  load(null);
  return { element, chosen: () => chosen, reload: () => load(shownDay) };
}

/**
 * The booking form's time: slot buttons for a doctor with hours (the date and time inputs of
 * `timeRow` hidden), the inputs otherwise. Follows the doctor radio buttons of `doctorChoice`.
 * `date(form)` is the ISO time to book, '' when the inputs do not make one; it throws a field
 * error when a slot is needed and none was chosen.
 */
export function bookingTimes(doctors, doctorChoice, timeRow) {
  const element = h('div', { class: 'booking-times' });
  let picker = null;
  const follow = () => {
    const id = doctorChoice.querySelector('[name=doctor]:checked')?.value;
    const doctor = doctors.find((d) => d.id === id);
    picker = hasHours(doctor) ? slotPicker(doctor) : null;
    timeRow.hidden = Boolean(picker);
    for (const input of timeRow.querySelectorAll('input')) input.disabled = Boolean(picker);
    replace(element, picker ? picker.element : null);
  };
  doctorChoice.addEventListener('change', follow);
  follow();
  return {
    element,
    date(formElement) {
      if (!picker) {
        const when = new Date(`${valueOf(formElement, 'day')}T${valueOf(formElement, 'time')}`);
        return Number.isNaN(when.getTime()) ? '' : when.toISOString();
      }
      if (!picker.chosen()) throw new ApiError(400, { message: t('slots.chooseTime'), code: 'validation_error' });
      return picker.chosen();
    },
    /** After a refusal: a taken slot is shown as gone. */
    refused(error) {
      if (picker && error?.code === 'slot_taken') picker.reload();
    },
  };
}

/**
 * "Reschedule": a form to move a waiting appointment to another free time (PATCH
 * /api/appointments/{id}); `onDone(updated)` after the move, `onCancel()` to keep the time.
 */
export function rescheduleForm(appointment, { onDone, onCancel }) {
  const container = h('div', { class: 'reschedule' }, h('p', { class: 'muted' }, t('slots.loading')));
  const idempotencyKey = crypto.randomUUID();  // one per dialog: a double tap moves once
  api('GET', `/api/doctors/${encodeURIComponent(appointment.doctor)}`).then((doctor) => {
    const picker = hasHours(doctor) ? slotPicker(doctor, { exclude: appointment.date }) : null;
    const now = localParts(new Date(Date.now() + 10 * 60_000));
    const inputs = picker ? null : h('div', { class: 'row' },
      field({ label: t('slots.newDate'), name: 'day', type: 'date', value: now.date, min: localParts(new Date()).date }),
      field({ label: t('slots.newTime'), name: 'time', type: 'time', value: now.time, step: 300 }));
    const element = form({
      label: t('slots.rescheduleLabel'),
      submit: t('slots.move'),
      children: [picker ? picker.element : inputs],
      async onSubmit(formElement) {
        let date;
        if (picker) {
          date = picker.chosen();
          if (!date) throw new ApiError(400, { message: t('slots.chooseTime'), code: 'validation_error' });
        } else {
          const when = new Date(`${valueOf(formElement, 'day')}T${valueOf(formElement, 'time')}`);
          date = Number.isNaN(when.getTime()) ? '' : when.toISOString();
        }
        try {
          const updated = await api('PATCH', `/api/appointments/${encodeURIComponent(appointment.id)}`, { date },
            { headers: { 'Idempotency-Key': `${idempotencyKey}:${date}` } });
          onDone(updated);
        } catch (error) {
          if (picker && error.code === 'slot_taken') picker.reload();
          if (error.details?.date && !picker) {
            const { date: messages, ...rest } = error.details;
            error.details = { ...rest, day: messages };
          }
          throw error;
        }
      },
    });
    replace(container, element, h('button', { type: 'button', onclick: onCancel }, t('slots.keep')));
  }).catch((error) => {
    replace(container, h('p', { role: 'alert' }, sentence(error)),
      h('button', { type: 'button', onclick: onCancel }, t('slots.keep')));
  });
  return container;
}

/** The "Reschedule" button: swaps `area`'s content for the form; `restore()` puts the caller's back. */
export function rescheduleButton(appointment, area, { onDone, restore }) {
  return h('button', {
    type: 'button',
    onclick: () => {
      replace(area, rescheduleForm(appointment, { onDone, onCancel: restore }));
      area.querySelector('button, input')?.focus();
    },
  }, t('slots.reschedule'));
}
