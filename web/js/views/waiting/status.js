// The waiting room's status card: everything a patient needs to know, as one statement they can
// act on. The server gives the facts (position, the expected time and its range, the booked time's
// delay, the doctor's lateness and break); this module reconciles them so that the card never
// shows two numbers that seem to disagree:
// - a later day's booking names its day and time, never "You are next";
// - lateness or a break that does not move the patient's time is said to be absorbed, once;
// - a delay is announced only from DELAY_NOTICE_MINUTES, with its cause in the same sentence.

import { t } from '../../i18n.js';
import { ahead, clock, laterClinicDay, longDate, minutes, statusLabel, stillAway, timeOnly, WAITING } from '../../format.js';

/** Below this, a delay changes nothing a patient should do: it is not announced. */
export const DELAY_NOTICE_MINUTES = 5;

/** The lines of the status region, as [css class, text] pairs (['join', url] for the call link). */
export function statusLines(state, now = Date.now()) {
  if (state.status === 'in_consultation') {
    return state.joinUrl
      ? [['headline', t('wait.turn.headline')], ['', t('wait.turn.ready')], ['join', state.joinUrl]]
      : [['headline', t('wait.turn.headline')], ['', t('wait.turn.linkSoon')]];
  }
  if (!WAITING.has(state.status)) {
    return [['headline', statusLabel(state.status)], ['', t(`wait.finished.${state.status}`)]];
  }
  if (state.date && laterClinicDay(state.date)) return laterDayLines(state);
  const lines = [['headline', ahead(state.position)]];
  if (state.expectedStartAt) {
    lines.push(['eta', state.etaMinutes > 0
      ? t('wait.expected', { duration: minutes(state.etaMinutes), time: clock(state.expectedStartAt) })
      : t('wait.expectedNow', { time: clock(state.expectedStartAt) })]);
    // The range the server gives with every estimate: most starts fall inside it, and few come
    // before "be ready by", so that is the time a patient should plan on.
    if (state.earliestStartAt && state.latestStartAt && state.etaMinutes > 0) {
      const early = clock(state.earliestStartAt);
      const late = clock(state.latestStartAt);
      if (early !== late) lines.push(['range', t('wait.range', { from: early, to: late })]);
      lines.push(['ready', new Date(state.earliestStartAt).getTime() > now
        ? t('wait.readyFrom', { time: early }) : t('wait.readyNow')]);
    }
  }
  const reason = reasonLine(state);
  if (reason) lines.push(reason);
  return lines;
}

/** One sentence about lateness and breaks: why the time moved, or that it did not. */
function reasonLine(state) {
  const away = stillAway(state.awayUntil);
  const declared = state.isRunningLate && state.lateByMinutes > 0 ? state.lateByMinutes : 0;
  const delay = state.delayMinutes || 0;
  if (delay >= DELAY_NOTICE_MINUTES) {
    let cause = t('wait.cause.queue');
    if (away) cause = t('wait.cause.away', { time: timeOnly(state.awayUntil) });
    else if (declared) cause = t('wait.cause.late', { duration: minutes(declared) });
    return ['notice', t('wait.delayed', { duration: minutes(delay), cause })];
  }
  if (away) return ['note', t('wait.absorbed.away', { time: timeOnly(state.awayUntil) })];
  if (declared) return ['note', t('wait.absorbed.late', { duration: minutes(declared) })];
  return null;
}

/** A booking in a later day's queue: which day and time, and where it stands in that day. */
function laterDayLines(state) {
  const lines = [['headline', t('wait.later.headline', { day: longDate(state.date), time: timeOnly(state.date) })]];
  lines.push(['', state.position > 0 ? t('wait.later.ahead', { count: state.position }) : t('wait.later.first')]);
  lines.push(['', t('wait.later.onTheDay')]);
  return lines;
}
