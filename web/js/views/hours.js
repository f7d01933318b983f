// A doctor's working hours: shown as a summary, edited as rows of day / from / to plus the slot
// length. The doctor edits their own in the console (PATCH /api/doctors/{id}/status), an admin any
// doctor's in the admin page (PUT /api/doctors/{id}); the server checks the rows (start before
// end, no overlaps) and its messages land next to the row they are about.

import { h, replace, uid } from '../dom.js';
import { form } from '../forms.js';
import { t } from '../i18n.js';

export const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];

/** "Mon 09:00–12:00, 14:00–18:00 · Tue …" or the no-hours sentence. */
export function hoursSummary(doctor) {
  if (!doctor.hours?.length) return t('hours.none');
  const byDay = new Map();
  for (const interval of doctor.hours) {
    byDay.set(interval.day, [...(byDay.get(interval.day) || []), `${interval.start}–${interval.end}`]);
  }
  const days = [...byDay].map(([day, spans]) => `${t(`hours.day.${day}`)} ${spans.join(', ')}`).join(' · ');
  return t('hours.summary', { days, minutes: doctor.slotMinutes });
}

function row(interval, index, onRemove) {
  const label = (key) => t(key, { row: index + 1 });
  const id = uid('hours');
  // Each control has an error line of its own (`<id>-error`), where the form puts the server's words.
  const control = (text, element) => h('div', { class: 'field' }, h('label', { for: element.id }, text), element,
    h('p', { class: 'field-error', id: `${element.id}-error` }));
  return h('div', { class: 'row hours-row', role: 'group', 'aria-label': label('hours.row') },
    control(t('hours.dayLabel'), h('select', { id: `${id}-day`, name: `hours.${index}.day` },
      DAYS.map((day) => h('option', { value: day, selected: day === interval.day }, t(`hours.day.${day}`))))),
    control(t('hours.from'), h('input', { id: `${id}-start`, type: 'time', name: `hours.${index}.start`,
      value: interval.start, required: true })),
    control(t('hours.to'), h('input', { id: `${id}-end`, type: 'time', name: `hours.${index}.end`,
      value: interval.end, required: true })),
    h('button', { type: 'button', class: 'link-button', onclick: onRemove, 'aria-label': label('hours.removeOf') },
      t('hours.remove')));
}

/**
 * The editor: `save(body)` sends `{hours, slotMinutes}` and resolves to the saved doctor;
 * `onSaved(doctor)` and `onCancel()` close it.
 */
export function hoursEditor(doctor, { save, onSaved, onCancel }) {
  let intervals = (doctor.hours || []).map((interval) => ({ ...interval }));
  const rows = h('div', { class: 'hours-rows' });
  const slotMinutes = h('input', { type: 'number', name: 'slotMinutes', min: 5, max: 240, step: 5,
    value: doctor.slotMinutes || 15, required: true, id: `slot-minutes-${doctor.id}` });
  const readRows = () => {
    intervals = [...rows.querySelectorAll('.hours-row')].map((element) => ({
      day: element.querySelector('select').value,
      start: element.querySelector('input[name$=".start"]').value,
      end: element.querySelector('input[name$=".end"]').value,
    }));
  };
  const draw = () => replace(rows,
    intervals.length ? intervals.map((interval, index) => row(interval, index, () => {
      readRows();
      intervals.splice(index, 1);
      draw();
    })) : h('p', { class: 'muted' }, t('hours.noneYet')));
  const add = () => {
    readRows();
    const last = intervals[intervals.length - 1];
    const next = last ? DAYS[(DAYS.indexOf(last.day) + 1) % 7] : 'mon';
    intervals.push({ day: next, start: last?.start || '09:00', end: last?.end || '17:00' });
    draw();
    rows.querySelector('.hours-row:last-child select')?.focus();
  };
  draw();
  const element = form({
    label: t('hours.editLabel', { name: doctor.name }),
    submit: t('hours.save'),
    children: [
      h('p', { class: 'hint' }, t('hours.hint')),
      rows,
      h('p', {}, h('button', { type: 'button', onclick: add }, t('hours.add'))),
      h('div', { class: 'field' }, h('label', { for: slotMinutes.id }, t('hours.slotMinutes')), slotMinutes,
        h('p', { class: 'field-error', id: `${slotMinutes.id}-error` })),
    ],
    async onSubmit() {
      readRows();
      try {
        onSaved(await save({ hours: intervals, slotMinutes: Number(slotMinutes.value) }));
      } catch (error) {
        // "hours.1" (the row as a whole: an overlap, start after end) shows at that row's start.
        if (error.details) {
          error.details = Object.fromEntries(Object.entries(error.details).map(
            ([name, messages]) => [/^hours\.\d+$/.test(name) ? `${name}.start` : name, messages]));
        }
        throw error;
      }
    },
  });
  return h('div', { class: 'hours-editor' }, element, h('button', { type: 'button', onclick: onCancel }, t('hours.cancel')));
}

/** The console's card: the doctor's hours, and an "Edit hours" button that opens the editor. */
export function hoursCard(doctor, { save }) {
  const body = h('div');
  const done = h('p', { class: 'done', role: 'status' });
  const show = () => replace(body, h('p', {}, hoursSummary(doctor)),
    h('button', { type: 'button', onclick: edit }, t('hours.edit')));
  const edit = () => {
    done.textContent = '';
    replace(body, hoursEditor(doctor, {
      save,
      onSaved(saved) {
        Object.assign(doctor, saved);
        done.textContent = t('hours.saved');
        show();
      },
      onCancel: show,
    }));
    body.querySelector('select, button')?.focus();
  };
  show();
  return h('section', { class: 'card', 'aria-labelledby': `hours-heading-${doctor.id}` },
    h('h2', { id: `hours-heading-${doctor.id}` }, t('hours.heading')), body, done);
}
