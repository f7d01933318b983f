// The one way the app talks to the REST API: JSON in and out, the access token attached, and every
// failure turned into an ApiError whose sentence a person can read.

import { SESSION_COOKIE_HEADER, session } from './session.js';
import { lang, t } from './i18n.js';

// Sign-ins ask for the refresh token as an HttpOnly cookie, out of reach of any script (session.js).
const SIGN_INS = new Set(['/api/auth/login', '/api/auth/register', '/api/auth/register/invite']);

export class ApiError extends Error {
  constructor(status, body, retryAfter = null) {
    super(body?.message || t('error.status', { status }));
    this.status = status;
    this.code = body?.code || 'http_error';
    this.details = body?.details || null;
    this.retryAfter = retryAfter;
  }
}

// Where the API's own sentence needs the context of the page to make sense, or another language:
// these codes have a sentence in the catalogues (`error.<code>`): every code a patient, doctor or
// admin can meet in the app's own flows. Any other code (a malformed request the app never sends)
// shows the API's own message, in English (the API speaks English only).
const SENTENCES = new Set(['network', 'internal_error', 'queue_changed', 'invite_invalid', 'invite_used',
  'invite_expired', 'invite_revoked', 'account_disabled', 'forbidden', 'method_not_allowed',
  'idempotency_mismatch', 'too_early', 'invalid_transition', 'email_taken', 'rate_limited', 'busy', 'invalid_credentials',
  'slot_taken', 'already_booked', 'outside_hours', 'not_waiting', 'reason_owner_only', 'doctor_busy', 'concurrent_update',
  'doctor_not_found', 'doctor_has_appointments', 'user_has_history', 'cannot_disable_self', 'cannot_delete_self',
  'invite_exists', 'idempotency_in_progress', 'too_many_sockets']);

/** The sentence to show for any error (an ApiError or anything thrown). */
export function sentence(error) {
  if (!(error instanceof ApiError)) return t('error.internal_error');
  let text = SENTENCES.has(error.code) ? t(`error.${error.code}`) : error.message;
  if (error.status === 429 && error.retryAfter) {
    text += ` ${t('error.retryIn', { count: Number(error.retryAfter) })}`;
  }
  if (error.status === 503 && error.code !== 'busy' && !SENTENCES.has(error.code)) {
    text = t('error.unavailable');
  }
  return text;
}

/**
 * api('POST', '/api/appointments', body, {headers}) → parsed JSON (null for 204).
 * A 401 of a session that can be refreshed refreshes once and retries; otherwise a 401 signs out,
 * which makes the app show the sign-in form and come back to this page afterwards.
 */
export async function api(method, path, body, options = {}) {
  const { auth = true, headers = {}, retried = false } = options;
  if (auth) await session.ensureFresh();
  // The page's language, so what the server writes for this person later (a push on a closed page)
  // is in the words they read here.
  const init = { method, headers: { 'Accept-Language': lang, ...headers,
    ...(SIGN_INS.has(path) ? SESSION_COOKIE_HEADER : {}) } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (auth && session.token) init.headers.Authorization = `Bearer ${session.token}`;
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, { message: t('error.network'), code: 'network' });
  }
  if (response.status === 401 && auth && session.token) {
    if (!retried && session.refreshable && await session.refresh()) {
      return api(method, path, body, { ...options, retried: true });
    }
    const answer = await readJson(response);
    session.signOut(answer?.code === 'account_disabled' ? 'disabled' : 'expired');
    throw new ApiError(401, answer);
  }
  const answer = await readJson(response);
  if (!response.ok) throw new ApiError(response.status, answer, response.headers.get('Retry-After'));
  return answer;
}

async function readJson(response) {
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
