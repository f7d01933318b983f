// The waiting list of the console: one card per waiting patient, in queue order, with their
// contacts, presence, window and the actions that apply (confirm; no-show once the booked time
// has passed, after a confirmation).

import { h, replace } from '../../dom.js';
import { t } from '../../i18n.js';
import { clock, minutes, statusLabel } from '../../format.js';

/** Redraws the list into `body` and the count into `heading` (the section around them stays). */
export function drawQueue(heading, body, view) {
  const waiting = view.queue.list || [];
  heading.textContent = t('console.queue.heading', { count: waiting.length });
  replace(body,
    waiting.length === 0 ? h('p', {}, t('console.queue.empty'))
      : h('ol', { class: 'queue' }, waiting.map((entry) => entryCard(entry, view))));
}

function entryCard(entry, view) {
  const name = entry.patientName;
  const id = entry.appointmentId;
  const asked = view.confirmations.controls(id);
  // A waiting patient is no no-show before the booked time (the server answers too_early).
  const noShowAllowed = new Date(entry.date).getTime() <= Date.now();
  return h('li', { class: 'card' },
    h('p', { class: 'headline' }, name),
    entry.reason ? h('p', {}, t('console.reason', { reason: entry.reason })) : null,
    view.contacts.line(id),
    h('p', { class: 'muted' },
      t('console.queue.booked', { time: clock(entry.date), expected: clock(entry.expectedStartAt) }),
      view.isToday ? (entry.etaMinutes > 0 ? ` ${t('console.queue.inDuration', { duration: minutes(entry.etaMinutes) })}` : ` ${t('console.queue.now')}`) : '',
      windowText(entry)),
    h('p', {},
      h('span', { class: `badge ${entry.status}` }, statusLabel(entry.status)),
      ' ',
      'present' in entry
        ? h('span', { class: `badge ${entry.present ? 'present' : 'absent'}` },
          entry.present ? t('console.present') : t('console.absent'))
        : null),
    asked || h('div', { class: 'actions' },
      entry.status === 'pending'
        ? h('button', { type: 'button', 'aria-label': t('console.confirmLabel', { name }),
          onclick: () => view.setStatus(entry, 'confirmed', t('console.done.confirmed', { name })) }, t('console.confirmAction')) : null,
      noShowAllowed
        ? h('button', { type: 'button', 'aria-label': t('console.noShowLabel', { name }),
          onclick: (event) => view.confirmations.ask(id, t('console.confirm.noShow', { name }), t('console.confirm.yesNoShow'),
            () => view.setStatus(entry, 'no_show', t('console.done.noShow', { name })), event.currentTarget) }, t('console.noShow'))
        : null),
    view.errors.has(id) ? h('p', { class: 'form-error' }, view.errors.get(id)) : null);
}

/** " · window 10:35 to 11:10", or nothing when the range is one time. */
function windowText(entry) {
  if (!entry.earliestStartAt) return '';
  const from = clock(entry.earliestStartAt);
  const to = clock(entry.latestStartAt);
  return from === to ? '' : ` · ${t('console.queue.window', { from, to })}`;
}
