// Patients' contacts for the staff: booking asks every patient for a phone and an email, and a
// receptionist needs them at hand (a patient who does not join, a change of plan). The queue's
// entries carry no contacts, so they come from the doctor's waiting appointments and, for the
// one in consultation, from its own appointment.

import { h } from '../../dom.js';
import { api } from '../../api.js';
import { t } from '../../i18n.js';

export class Contacts {
  constructor(doctorId) {
    this.doctorId = doctorId;
    this.byId = new Map();  // appointmentId → {phone, email}
    this.loading = null;
    this.tried = new Set();  // ids already looked up
  }

  learn(appointment) {
    if (appointment?.id) this.byId.set(appointment.id, { phone: appointment.patientPhone, email: appointment.patientEmail });
  }

  /**
   * Reads the contacts of every waiting appointment when one of `ids` has never been looked up;
   * true when that taught anything new. Each id is looked up once: one that the read does not
   * cover (an appointment already finished) does not cause another read at every redraw.
   */
  async cover(ids) {
    const fresh = ids.filter((id) => !this.byId.has(id) && !this.tried.has(id));
    if (fresh.length === 0) return false;
    fresh.forEach((id) => this.tried.add(id));
    const before = this.byId.size;
    this.loading = this.loading || api('GET', `/api/appointments/doctor/${this.doctorId}`)
      .then((appointments) => appointments.forEach((appointment) => this.learn(appointment)))
      .finally(() => { this.loading = null; });
    await this.loading;
    return this.byId.size > before;
  }

  /** "Phone +33 … · Email …" as links, or null while unknown. */
  line(id) {
    const contact = this.byId.get(id);
    if (!contact || (!contact.phone && !contact.email)) return null;
    return h('p', { class: 'contact small' },
      contact.phone ? [t('console.contact.phone'), ' ', h('a', { href: `tel:${contact.phone.replace(/[^\d+]/g, '')}` }, contact.phone)] : null,
      contact.phone && contact.email ? ' · ' : null,
      contact.email ? [t('console.contact.email'), ' ', h('a', { href: `mailto:${contact.email}` }, contact.email)] : null);
  }
}
