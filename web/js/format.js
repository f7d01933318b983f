// How times and waits read to a person, in the browser's own time zone and language.

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit' });
const dayTimeFormat = new Intl.DateTimeFormat(undefined,
  { weekday: 'short', day: 'numeric', month: 'short', hour: 'numeric', minute: '2-digit' });
const dateFormat = new Intl.DateTimeFormat(undefined, { weekday: 'long', day: 'numeric', month: 'long' });

function sameDay(a, b) {
  return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();
}

/** "10:15 AM" today, "Tue, Dec 1, 10:15 AM" any other day. */
export function clock(iso) {
  if (!iso) return '';
  const date = new Date(iso);
  return sameDay(date, new Date()) ? timeFormat.format(date) : dayTimeFormat.format(date);
}

export function longDate(iso) {
  return dateFormat.format(new Date(iso));
}

/** "1 minute", "25 minutes", "2 h 5 min". */
export function minutes(count) {
  const n = Math.max(0, Math.round(count));
  if (n < 120) return `${n} ${n === 1 ? 'minute' : 'minutes'}`;
  const hours = Math.floor(n / 60);
  const rest = n % 60;
  return rest ? `${hours} h ${rest} min` : `${hours} h`;
}

export function ahead(position) {
  if (position === 0) return 'You are next';
  return `${position} ahead of you`;
}

export const STATUS_LABELS = {
  pending: 'Waiting (not yet confirmed)',
  confirmed: 'Waiting (confirmed)',
  in_consultation: 'In consultation',
  completed: 'Completed',
  cancelled: 'Cancelled',
  no_show: 'Marked as not present',
};

export const WAITING = new Set(['pending', 'confirmed']);

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
