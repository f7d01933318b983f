// The clinic over weeks (GET /api/reports/days): per clinic day, charts of the waits, the
// consultations and no-shows, and how far the estimates were off; a table of the same numbers (the
// full text alternative) and the same rows as a CSV download. Charts are SVG drawn here from the
// API's numbers: no library, nothing from another host. Each chart has an accessible name (its
// <title>) and a text summary under it.

import { h, replace, uid } from '../dom.js';
import { api, ApiError, sentence } from '../api.js';
import { session } from '../session.js';
import { field, form, valueOf } from '../forms.js';
import { locale, t } from '../i18n.js';

// The SVG namespace, as the HTML parser gives it to an <svg> (no address written in the app's files).
const SVG = new DOMParser().parseFromString('<svg></svg>', 'text/html').querySelector('svg').namespaceURI;
const WIDTH = 400;
const HEIGHT = 210;
const PAD = { left: 38, right: 10, top: 12, bottom: 30 };
const COLOURS = { mean: '#1f5fbf', p90: '#b3261e', completed: '#1b7a3e', noShows: '#b3261e', mae: '#6a3fb5',
  early: '#1f5fbf', inside: '#1b7a3e', late: '#b3261e' };
const DEFAULT_DAYS = 28;

function s(tag, attrs = {}, ...children) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== null && value !== undefined) element.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

function isoDay(date) {
  return `${date.getFullYear()}-${String(date.getMonth() + 1).padStart(2, '0')}-${String(date.getDate()).padStart(2, '0')}`;
}

function dayList(from, to) {
  const days = [];
  for (let day = new Date(`${from}T12:00:00`); isoDay(day) <= to && days.length < 367; day.setDate(day.getDate() + 1)) {
    days.push(isoDay(day));
  }
  return days;
}

const shortDayFormat = new Intl.DateTimeFormat(locale, { day: 'numeric', month: 'numeric', timeZone: 'UTC' });
const longDayFormat = new Intl.DateTimeFormat(locale, { day: 'numeric', month: 'long', year: 'numeric', timeZone: 'UTC' });
const shortDay = (iso) => shortDayFormat.format(new Date(`${iso}T00:00:00Z`));
const longDay = (iso) => longDayFormat.format(new Date(`${iso}T00:00:00Z`));
const fmt = (value, unit = '') => (value === null || value === undefined ? '–' : `${value}${unit}`);

/** Per day over the range, the numbers the charts draw: one doctor's row, or all doctors together. */
function byDay(rows, days) {
  const grouped = new Map(days.map((day) => [day, []]));
  for (const row of rows) grouped.get(row.date)?.push(row);
  return days.map((day) => {
    const list = grouped.get(day);
    const sum = (key) => list.reduce((total, row) => total + row[key], 0);
    const weighted = (key, weight) => {
      const usable = list.filter((row) => row[key] !== null && row[weight] > 0);
      const total = usable.reduce((n, row) => n + row[weight], 0);
      return total ? Math.round((usable.reduce((n, row) => n + row[key] * row[weight], 0) / total) * 10) / 10 : null;
    };
    const p90s = list.map((row) => row.p90WaitMinutes).filter((value) => value !== null);
    return {
      date: day,
      rows: list.length,
      meanWait: list.length === 1 ? list[0].meanWaitMinutes : weighted('meanWaitMinutes', 'completed'),
      p90Wait: p90s.length ? Math.max(...p90s) : null,
      completed: sum('completed'),
      noShows: sum('noShows'),
      mae: list.length === 1 ? list[0].etaMaeMinutes : weighted('etaMaeMinutes', 'etaScored'),
      early: list.reduce((n, row) => n + row.etaRange.early, 0),
      inside: list.reduce((n, row) => n + row.etaRange.inside, 0),
      late: list.reduce((n, row) => n + row.etaRange.late, 0),
    };
  });
}

function scale(values) {
  const top = Math.max(1, ...values.filter((value) => value !== null));
  const step = top <= 5 ? 1 : top <= 10 ? 2 : top <= 25 ? 5 : top <= 50 ? 10 : top <= 100 ? 20 : Math.ceil(top / 50) * 10;
  return { max: Math.ceil(top / step) * step, step };
}

/** An SVG chart: `kind` 'line' (one line per series, gaps where null) or 'bars' (grouped, or stacked). */
function chart({ title, summary, days, series, kind, stacked = false, unit }) {
  const titleId = uid('chart-title');
  const descId = uid('chart-desc');
  const plotW = WIDTH - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const totals = stacked ? days.map((_, i) => series.reduce((n, one) => n + (one.values[i] || 0), 0))
    : series.flatMap((one) => one.values);
  const { max, step } = scale(totals);
  const x = (i) => PAD.left + (days.length === 1 ? plotW / 2 : (i + 0.5) * (plotW / days.length));
  const y = (value) => PAD.top + plotH - (value / max) * plotH;
  const parts = [];
  for (let tick = 0; tick <= max; tick += step) {
    parts.push(s('line', { x1: PAD.left, x2: WIDTH - PAD.right, y1: y(tick), y2: y(tick), class: 'grid' }),
      s('text', { x: PAD.left - 4, y: y(tick) + 4, 'text-anchor': 'end', class: 'tick' }, tick));
  }
  const labelEvery = Math.max(1, Math.ceil(days.length / 6));
  days.forEach((day, i) => {
    if (i % labelEvery === 0) parts.push(s('text', { x: x(i), y: HEIGHT - 10, 'text-anchor': 'middle', class: 'tick' }, shortDay(day)));
  });
  const band = plotW / days.length;
  if (kind === 'line') {
    for (const one of series) {
      let path = '';
      one.values.forEach((value, i) => {
        if (value === null) return;
        path += `${path && one.values[i - 1] !== null && i > 0 ? 'L' : 'M'}${x(i).toFixed(1)},${y(value).toFixed(1)}`;
      });
      parts.push(s('path', { d: path || 'M0,0', fill: 'none', stroke: COLOURS[one.key], 'stroke-width': 2.5,
        'data-series': one.key }));
      one.values.forEach((value, i) => {
        if (value === null) return;
        parts.push(s('circle', { cx: x(i), cy: y(value), r: 3.5, fill: COLOURS[one.key], 'data-series': one.key,
          'data-date': days[i], 'data-value': value }, s('title', {}, `${days[i]}: ${one.label} ${value}${unit}`)));
      });
    }
  } else {
    const width = Math.max(1.5, (band * 0.8) / (stacked ? 1 : series.length));
    days.forEach((day, i) => {
      let base = 0;
      series.forEach((one, k) => {
        const value = one.values[i] || 0;
        const left = stacked ? x(i) - width / 2 : x(i) - (band * 0.8) / 2 + k * width;
        const bottom = stacked ? base : 0;
        parts.push(s('rect', { x: left.toFixed(1), y: y(bottom + value).toFixed(1), width: width.toFixed(1),
          height: (y(bottom) - y(bottom + value)).toFixed(1), fill: COLOURS[one.key], 'data-series': one.key,
          'data-date': day, 'data-value': value }, s('title', {}, `${day}: ${one.label} ${value}${unit}`)));
        base += value;
      });
    });
  }
  const svg = s('svg', { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: 'img', 'aria-labelledby': titleId,
    'aria-describedby': descId, class: 'chart', focusable: 'false' },
  s('title', { id: titleId }, title), ...parts);
  return h('figure', { class: 'card chart-card' },
    h('figcaption', {}, h('h2', {}, title)),
    svg,
    h('ul', { class: 'legend', 'aria-hidden': 'true' }, series.map((one) => h('li', {},
      h('span', { class: `swatch swatch-${one.key}` }), one.label))),
    h('p', { id: descId, class: 'small chart-summary' }, summary));
}

function describe(points, key, unit, what) {
  const known = points.filter((point) => point[key] !== null && point[key] !== undefined);
  if (!known.length) return t('reports.describe.none', { what });
  const highest = known.reduce((a, b) => (b[key] > a[key] ? b : a));
  const lowest = known.reduce((a, b) => (b[key] < a[key] ? b : a));
  return t('reports.describe.some', { what: `${what[0].toUpperCase()}${what.slice(1)}`, high: `${highest[key]}${unit}`,
    highDay: longDay(highest.date), low: `${lowest[key]}${unit}`, lowDay: longDay(lowest.date), count: known.length });
}

function table(rows) {
  const columns = ['date', 'doctorName', 'booked', 'completed', 'noShows', 'cancelled', 'meanWaitMinutes',
    'p90WaitMinutes', 'meanConsultMinutes', 'etaMaeMinutes', 'etaScored', 'early', 'inside', 'late']
    .map((key) => [key, t(`reports.column.${key}`)]);
  const cell = (row, key) => (['early', 'inside', 'late'].includes(key) ? row.etaRange[key] : fmt(row[key]));
  return h('div', { class: 'table-scroll', role: 'region', 'aria-label': t('reports.table'), tabindex: '0' },
    h('table', { class: 'report-table' },
      h('caption', {}, t('reports.table')),
      h('thead', {}, h('tr', {}, columns.map(([, label]) => h('th', { scope: 'col' }, label)))),
      h('tbody', {}, rows.map((row) => h('tr', {}, columns.map(([key], i) => (i === 0
        ? h('th', { scope: 'row' }, row.date) : h('td', {}, cell(row, key)))))))));
}

async function csvLink(path, from, to) {
  await session.ensureFresh();
  const response = await fetch(path, { headers: { Accept: 'text/csv', Authorization: `Bearer ${session.token}` } });
  if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
  const url = URL.createObjectURL(new Blob([await response.text()], { type: 'text/csv' }));
  return { url, link: h('a', { href: url, download: `medpharma-days-${from}-${to}.csv`, class: 'button' }, t('reports.csv')) };
}

export async function reportsPage(root, context) {
  const user = session.user;
  const today = isoDay(new Date());
  const start = new Date();
  start.setDate(start.getDate() - (DEFAULT_DAYS - 1));
  const from = context.query.get('from') || isoDay(start);
  const to = context.query.get('to') || today;
  const doctor = context.query.get('doctor') || '';
  let doctorField = null;
  if (user.role === 'admin') {
    const doctors = await api('GET', '/api/doctors');
    doctorField = field({ label: t('console.choose.doctor'), name: 'doctor', type: 'select', value: doctor, required: false,
      options: [['', t('reports.allDoctors')], ...doctors.map((one) => [one.id, one.name])] });
  }
  const results = h('div', { 'aria-live': 'polite' });
  const chooser = form({ label: t('reports.range'), submit: t('reports.show'), className: 'inline-form',
    children: [field({ label: t('reports.from'), name: 'from', type: 'date', value: from }),
      field({ label: t('reports.to'), name: 'to', type: 'date', value: to }), doctorField],
    onSubmit: async (element) => {
      const query = new URLSearchParams({ from: valueOf(element, 'from'), to: valueOf(element, 'to') });
      if (doctorField && valueOf(element, 'doctor')) query.set('doctor', valueOf(element, 'doctor'));
      await load(query);
      history.replaceState(null, '', `/app/reports?${query}`);
    } });
  replace(root, h('h1', {}, user.role === 'admin' ? t('reports.titleAdmin') : t('reports.titleDoctor')),
    h('p', { class: 'muted' }, t('reports.intro')),
    chooser, results);

  let blobUrl = null;
  async function load(query) {
    const path = `/api/reports/days?${query}`;
    const rows = await api('GET', path);
    if (!context.stillShown()) return;
    const days = dayList(query.get('from'), query.get('to'));
    const points = byDay(rows, days);
    const many = !query.get('doctor') && user.role === 'admin';
    const csv = await csvLink(path, query.get('from'), query.get('to'));
    if (blobUrl) URL.revokeObjectURL(blobUrl);
    blobUrl = csv.url;
    const noun = many ? t('reports.nounAll') : (rows[0]?.doctorName || t('reports.nounOne'));
    const range = { from: longDay(query.get('from')), to: longDay(query.get('to')) };
    const seen = points.reduce((n, point) => n + point.completed, 0);
    const missed = points.reduce((n, point) => n + point.noShows, 0);
    const waitTitle = t('reports.chart.wait');
    const min = ` ${t('reports.min')}`;
    replace(results,
      h('p', { class: 'lead', role: 'status' }, rows.length
        ? t('reports.summary', { count: rows.length, noun, ...range, seen, missed })
        : t('reports.empty', { noun, ...range })),
      h('p', {}, csv.link),
      rows.length ? h('div', { class: 'charts' },
        chart({ title: waitTitle, days, kind: 'line', unit: min,
          series: [{ key: 'mean', label: many ? t('reports.series.meanAll') : t('reports.series.mean'), values: points.map((p) => p.meanWait) },
            { key: 'p90', label: many ? t('reports.series.p90All') : t('reports.series.p90'), values: points.map((p) => p.p90Wait) }],
          summary: `${describe(points, 'meanWait', min, t('reports.what.meanWait'))} ${describe(points, 'p90Wait', min, t('reports.what.p90'))}` }),
        chart({ title: t('reports.chart.seen'), days, kind: 'bars', unit: '',
          series: [{ key: 'completed', label: t('reports.series.seen'), values: points.map((p) => p.completed) },
            { key: 'noShows', label: t('reports.series.noShows'), values: points.map((p) => p.noShows) }],
          summary: `${t('reports.seenSummary', { seen, missed })} ${describe(points, 'completed', '', t('reports.what.consultations'))}` }),
        chart({ title: t('reports.chart.mae'), days, kind: 'line', unit: min,
          series: [{ key: 'mae', label: t('reports.series.mae'), values: points.map((p) => p.mae) }],
          summary: describe(points, 'mae', min, t('reports.what.mae')) }),
        chart({ title: t('reports.chart.range'), days, kind: 'bars', stacked: true, unit: '',
          series: [{ key: 'early', label: t('reports.series.early'), values: points.map((p) => p.early) },
            { key: 'inside', label: t('reports.series.inside'), values: points.map((p) => p.inside) },
            { key: 'late', label: t('reports.series.late'), values: points.map((p) => p.late) }],
          summary: t('reports.rangeSummary', { early: points.reduce((n, p) => n + p.early, 0),
            inside: points.reduce((n, p) => n + p.inside, 0), late: points.reduce((n, p) => n + p.late, 0) }) })) : null,
      rows.length ? table(rows) : null);
  }

  const initial = new URLSearchParams({ from, to });
  if (doctor && user.role === 'admin') initial.set('doctor', doctor);
  try {
    await load(initial);
  } catch (error) {
    replace(results, h('p', { role: 'alert', class: 'form-error' }, sentence(error)));
  }
  return () => { if (blobUrl) URL.revokeObjectURL(blobUrl); };
}
