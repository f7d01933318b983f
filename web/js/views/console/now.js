// The in-consultation card: who is being seen, their contacts and call link, and the final actions
// (complete, no-show: each confirmed first). `Call next` and its error live in a part of the card
// that is never redrawn, so a keyboard keeps its place and a screen reader hears an error once.

import { h, replace } from '../../dom.js';
import { t } from '../../i18n.js';
import { clock } from '../../format.js';

export function drawNow(body, view) {
  const current = view.queue.inConsultation;
  if (!view.isToday) {
    replace(body, h('p', {}, t('console.now.otherDay')));
    return;
  }
  if (!current) {
    replace(body, h('p', {}, t('console.now.nobody')));
    return;
  }
  const id = current.appointmentId;
  const name = current.patientName || t('console.now.aPatient');
  const joinUrl = view.joinUrls.get(id);
  replace(body,
    h('p', { class: 'headline' }, name),
    current.reason ? h('p', {}, t('console.reason', { reason: current.reason })) : null,
    view.contacts.line(id),
    h('p', { class: 'muted' }, t('console.now.times', { booked: clock(current.date), started: clock(current.startedAt) })),
    view.confirmations.controls(id) || h('div', { class: 'actions' },
      joinUrl ? h('a', { class: 'button', href: joinUrl, target: '_blank', rel: 'noopener noreferrer' }, t('wait.join')) : null,
      h('button', { type: 'button', 'aria-label': t('console.completeLabel', { name }),
        onclick: (event) => view.confirmations.ask(id, t('console.confirm.complete', { name }), t('console.confirm.yesComplete'),
          () => view.setStatus(current, 'completed', t('console.done.completed', { name })), event.currentTarget) }, t('console.complete')),
      // Called but never joined: a no-show, whatever the booked time.
      h('button', { type: 'button', 'aria-label': t('console.noShowLabel', { name }),
        onclick: (event) => view.confirmations.ask(id, t('console.confirm.noShow', { name }), t('console.confirm.yesNoShow'),
          () => view.setStatus(current, 'no_show', t('console.done.noShow', { name })), event.currentTarget) }, t('console.noShow'))),
    view.errors.has(id) ? h('p', { class: 'form-error' }, view.errors.get(id)) : null);
}
