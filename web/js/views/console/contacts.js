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
  }

  learn(appointment) {
    if (appointment?.id) this.byId.set(appointment.id, { phone: appointment.patientPhone, email: appointment.patientEmail });
  }

  /** Reads the contacts of every waiting appointment when one of `ids` is unknown; true if any were new. */
  async cover(ids) {
    if (ids.every((id) => this.byId.has(id))) return false;
    this.loading = this.loading || api('GET', `/api/appointments/doctor/${this.doctorId}`)
      .then((appointments) => appointments.forEach((appointment) => this.learn(appointment)))
      .finally(() => { this.loading = null; });
    await this.loading;
    return true;
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
