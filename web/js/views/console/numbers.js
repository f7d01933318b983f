// The day in numbers (GET /api/doctors/{id}/stats), read again shortly after the queue changes:
// what a doctor glances at between patients, not a report.

import { h, replace } from '../../dom.js';
import { api, sentence } from '../../api.js';
import { t } from '../../i18n.js';
import { minutes } from '../../format.js';

const STATS_SETTLE_MS = 1_000;  // a burst of queue changes costs one read of the day's numbers

export function dayInNumbers(doctorId, day, isToday, context) {
  const list = h('dl', { class: 'numbers' });
  const note = h('p', { class: 'muted small' });
  const title = isToday ? t('console.numbers.today') : t('console.numbers.day');
  const section = h('section', { class: 'card', 'aria-labelledby': 'today-heading' },
    h('h2', { id: 'today-heading' }, title), list, note);
  let timer = null;
  const rounded = (value) => (value === null || value === undefined ? '–' : minutes(value));
  const load = async () => {
    let stats;
    try {
      stats = await api('GET', `/api/doctors/${doctorId}/stats?date=${encodeURIComponent(day)}`);
    } catch (error) {
      if (!context.stillShown()) return;
      list.replaceChildren();
      note.textContent = t('console.numbers.failed', { reason: sentence(error) });
      return;
    }
    if (!context.stillShown()) return;
    const rows = [
      [t('console.numbers.booked'), stats.booked], [t('console.numbers.seen'), stats.completed],
      [t('console.numbers.waiting'), stats.waiting], [t('console.numbers.noShows'), stats.noShows],
      [t('console.numbers.cancelled'), stats.cancelled],
      [t('console.numbers.meanWait'), rounded(stats.meanWaitMinutes)],
      [t('console.numbers.meanConsult'), rounded(stats.meanConsultMinutes)],
    ];
    if (stats.etaScored > 0) rows.push([t('console.numbers.etaOff'), t('console.numbers.onAverage', { duration: rounded(stats.etaMaeMinutes) })]);
    replace(list, rows.map(([term, value]) => h('div', {}, h('dt', {}, term), h('dd', {}, String(value)))));
    note.textContent = t('console.numbers.waitNote');
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
