// How times and waits read to a person: in the browser's own time zone, in the page's language,
// formatted by the browser's Intl for that language (never hand-built date strings).

import { locale, t } from './i18n.js';
import { browserZone, clinicZone } from './clinic.js';

const timeFormat = new Intl.DateTimeFormat(locale, { hour: 'numeric', minute: '2-digit' });
const dayTimeFormat = new Intl.DateTimeFormat(locale,
  { weekday: 'short', day: 'numeric', month: 'short', hour: 'numeric', minute: '2-digit' });
const dateFormat = new Intl.DateTimeFormat(locale, { weekday: 'long', day: 'numeric', month: 'long' });
const listFormat = new Intl.ListFormat(locale, { style: 'long', type: 'conjunction' });

/** "2026-12-08" for a Date, in the zone given (the browser's by default). */
export function dayKey(date, timeZone = undefined) {
  const parts = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' })
    .formatToParts(date);
  const get = (type) => parts.find((part) => part.type === type).value;
  return `${get('year')}-${get('month')}-${get('day')}`;
}

function sameDay(a, b) {
  return dayKey(a) === dayKey(b);
}

/** "10:15" today, "Tue 1 Dec, 10:15" any other day. */
export function clock(iso) {
  if (!iso) return '';
  const date = new Date(iso);
  return sameDay(date, new Date()) ? timeFormat.format(date) : dayTimeFormat.format(date);
}

/** Always just the time of day ("10:15"), for sentences that already name the day. */
export function timeOnly(iso) {
  return iso ? timeFormat.format(new Date(iso)) : '';
}

/** "Tuesday 8 December". */
export function longDate(iso) {
  return dateFormat.format(new Date(iso));
}

/** "today", "tomorrow" or "Tuesday 8 December": the day a time falls on, seen from now. */
export function dayWords(iso) {
  const date = new Date(iso);
  const tomorrow = new Date();
  tomorrow.setDate(tomorrow.getDate() + 1);
  if (sameDay(date, new Date())) return t('day.today');
  if (sameDay(date, tomorrow)) return t('day.tomorrow');
  return longDate(iso);
}

/** True when `iso` falls on a later clinic day than today (the queue it waits in is not today's). */
export function laterClinicDay(iso) {
  const zone = clinicZone || undefined;
  return dayKey(new Date(iso), zone) > dayKey(new Date(), zone);
}

/** "1 minute", "25 minutes", "2 h 5 min". */
export function minutes(count) {
  const n = Math.max(0, Math.round(count));
  if (n < 120) return t('duration.minutes', { count: n });
  const hours = Math.floor(n / 60);
  const rest = n % 60;
  return rest ? t('duration.hoursMinutes', { hours, minutes: rest }) : t('duration.hours', { hours });
}

/** "You are next", "1 person ahead of you", "3 people ahead of you". */
export function ahead(position) {
  if (position === 0) return t('wait.next');
  return t('wait.ahead', { count: position });
}

/** "Anna, Ben and Carl" in the page's language. */
export function list(items) {
  return listFormat.format(items);
}

/** The label of an appointment status ("Waiting (confirmed)"). */
export function statusLabel(status) {
  return t(`status.${status}`);
}

export const WAITING = new Set(['pending', 'confirmed']);

/**
 * A sentence naming the time zone the page writes times in, and the clinic's where that differs
 * (a patient travelling, or a clinic serving patients abroad); '' when they are the same.
 */
export function zoneNote() {
  if (!clinicZone || clinicZone === browserZone) return '';
  return t('time.zoneDiffers', { yours: zoneName(browserZone), clinic: zoneName(clinicZone) });
}

/** "Eastern Time", "heure d’Europe centrale": a zone as people say it (its IANA id if Intl has no name). */
export function zoneName(zone) {
  try {
    const parts = new Intl.DateTimeFormat(locale, { timeZone: zone, timeZoneName: 'longGeneric' }).formatToParts(new Date());
    return parts.find((part) => part.type === 'timeZoneName')?.value || zone;
  } catch {
    return zone;
  }
}

/** For <input type=date>/<input type=time>: the local date and time parts of a Date. */
export function localParts(date) {
  const pad = (n) => String(n).padStart(2, '0');
  return {
    date: `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`,
    time: `${pad(date.getHours())}:${pad(date.getMinutes())}`,
  };
}

/** True while an `awayUntil` is still ahead. */
export function stillAway(awayUntil) {
  return Boolean(awayUntil) && new Date(awayUntil).getTime() > Date.now();
}
