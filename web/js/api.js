// The one way the app talks to the REST API: JSON in and out, the access token attached, and every
// failure turned into an ApiError whose sentence a person can read.

import { SESSION_COOKIE_HEADER, session } from './session.js';

// Sign-ins ask for the refresh token as an HttpOnly cookie, out of reach of any script (session.js).
const SIGN_INS = new Set(['/api/auth/login', '/api/auth/register', '/api/auth/register/invite']);

export class ApiError extends Error {
  constructor(status, body, retryAfter = null) {
    super(body?.message || `The server answered ${status}.`);
    this.status = status;
    this.code = body?.code || 'http_error';
    this.details = body?.details || null;
    this.retryAfter = retryAfter;
  }
}

// Where the API's own sentence needs the context of the page to make sense.
const SENTENCES = {
  network: 'The server cannot be reached. Check your connection and try again.',
  internal_error: 'Something went wrong on our side. Please try again in a moment.',
  queue_changed: 'The queue changed since this page last showed it. It has been refreshed: check it and press again.',
  invite_invalid: 'This invitation link is not valid. Ask an administrator for a new one.',
  invite_used: 'This invitation has already been used. Sign in instead, or ask for a new one.',
  invite_expired: 'This invitation has expired. Ask an administrator for a new one.',
  invite_revoked: 'This invitation was withdrawn. Ask an administrator for a new one.',
  account_disabled: 'This account has been disabled. Contact the clinic.',
  forbidden: 'Your account may not do this.',
  method_not_allowed: 'This server does not offer this yet.',
};

/** The sentence to show for any error (an ApiError or anything thrown). */
export function sentence(error) {
  if (!(error instanceof ApiError)) return SENTENCES.internal_error;
  let text = SENTENCES[error.code] || error.message;
  if (error.status === 429 && error.retryAfter) {
    text += ` Try again in ${error.retryAfter} ${Number(error.retryAfter) === 1 ? 'second' : 'seconds'}.`;
  }
  if (error.status === 503 && error.code !== 'busy' && !SENTENCES[error.code]) {
    text = 'The service is briefly unavailable. Please try again in a moment.';
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
  const init = { method, headers: { ...headers, ...(SIGN_INS.has(path) ? SESSION_COOKIE_HEADER : {}) } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (auth && session.token) init.headers.Authorization = `Bearer ${session.token}`;
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, { message: SENTENCES.network, code: 'network' });
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
