// The doctor's own status: running late (and the average consultation it plans with), and a break
// ("away until"). Patients' waiting rooms hear each change live.

import { h } from '../../dom.js';
import { api, sentence } from '../../api.js';
import { t } from '../../i18n.js';
import { clock, localParts, minutes, stillAway } from '../../format.js';
import { field, form, valueOf } from '../../forms.js';

/** "Running 20 minutes late. Away until 10:30." or "On time." */
export function statusSummary(doctor) {
  const notes = [];
  if (doctor.isRunningLate) notes.push(t('console.status.late', { duration: minutes(doctor.lateByMinutes) }));
  if (stillAway(doctor.awayUntil)) notes.push(t('console.status.away', { time: clock(doctor.awayUntil) }));
  return notes.length ? notes.join(' ') : t('console.status.onTime');
}

export function doctorStatusForms(doctorId, getDoctor, onUpdated) {
  const doctor = getDoctor();
  const patch = async (body, doneText, doneElement) => {
    const updated = await api('PATCH', `/api/doctors/${doctorId}/status`, body);
    onUpdated(updated);
    doneElement.textContent = doneText;
  };
  const lateDone = h('p', { class: 'done', role: 'status' });
  const lateForm = form({
    label: t('console.late.title'),
    submit: t('common.save'),
    children: [
      h('div', { class: 'check' },
        h('input', { type: 'checkbox', id: 'late-flag', name: 'isRunningLate', checked: doctor.isRunningLate }),
        h('label', { for: 'late-flag' }, t('console.late.flag'))),
      field({ label: t('console.late.minutes'), name: 'lateByMinutes', type: 'number', min: 0, max: 600, step: 1,
        value: doctor.lateByMinutes, inputmode: 'numeric' }),
      field({ label: t('doctor.avgConsult'), name: 'avgConsultMinutes', type: 'number', min: 1, max: 240,
        step: 1, value: doctor.avgConsultMinutes, inputmode: 'numeric' }),
    ],
    async onSubmit(element) {
      lateDone.textContent = '';
      const isRunningLate = element.querySelector('[name=isRunningLate]').checked;
      const body = { isRunningLate, avgConsultMinutes: Number(valueOf(element, 'avgConsultMinutes')) };
      if (isRunningLate) body.lateByMinutes = Number(valueOf(element, 'lateByMinutes'));
      await patch(body, isRunningLate ? t('console.late.savedLate') : t('console.late.savedOnTime'), lateDone);
      if (!isRunningLate) element.querySelector('[name=lateByMinutes]').value = '0';
    },
  });
  const awayDone = h('p', { class: 'done', role: 'status' });
  const suggested = localParts(new Date(Date.now() + 15 * 60_000)).time;
  const awayForm = form({
    label: t('console.away.title'),
    submit: t('console.away.set'),
    children: [field({ label: t('console.away.until'), name: 'awayUntil', type: 'time', value: suggested,
      hint: t('console.away.hint') })],
    async onSubmit(element) {
      awayDone.textContent = '';
      const [hours, mins] = valueOf(element, 'awayUntil').split(':').map(Number);
      const until = new Date();
      until.setHours(hours, mins, 0, 0);
      if (until <= new Date()) until.setDate(until.getDate() + 1);  // a time already past means tomorrow
      await patch({ awayUntil: until.toISOString() }, t('console.away.saved', { time: clock(until.toISOString()) }), awayDone);
    },
  });
  const backMessage = h('p', { class: 'form-error', role: 'alert' });
  const back = h('button', {
    type: 'button',
    async onclick() {
      backMessage.textContent = '';
      awayDone.textContent = '';
      try {
        await patch({ awayUntil: null }, t('console.away.savedBack'), awayDone);
      } catch (error) {
        backMessage.textContent = sentence(error);
      }
    },
  }, t('console.away.back'));
  return h('div', { class: 'grid-2' },
    h('div', {}, h('h3', {}, t('console.late.title')), lateForm, lateDone),
    h('div', {}, h('h3', {}, t('console.away.title')), awayForm, h('div', { class: 'actions' }, back), backMessage, awayDone));
}
