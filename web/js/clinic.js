// What the app knows about the clinic itself: its time zone (the server's CLINIC_TIMEZONE, from
// /app/clinic.json). Queues are clinic days, and a patient elsewhere must be told that the times on
// screen are their own, not the clinic's.

async function load() {
  try {
    const response = await fetch('/app/clinic.json', { headers: { Accept: 'application/json' } });
    if (response.ok) return await response.json();
  } catch {
    // Offline at start: times still read right in the browser's zone, only the clinic goes unnamed.
  }
  return {};
}

const info = await load();

/** The clinic's IANA time zone ("Europe/Paris"), or null when it could not be learned. */
export const clinicZone = typeof info.timeZone === 'string' ? info.timeZone : null;

/** The browser's own IANA time zone. */
export const browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone;
