// The admin's page: doctors, invitations, users and the audit log. Each section loads on its own,
// so one that fails says why and leaves the rest working.

import { h, replace } from '../dom.js';
import { api, sentence } from '../api.js';
import { clock } from '../format.js';
import { field, form, valueOf } from '../forms.js';
import { session } from '../session.js';
import { t } from '../i18n.js';
import { hoursEditor, hoursSummary } from './hours.js';
import { webhooksSection } from './webhooks.js';

const PAGE_SIZE = 20;

export function adminPage(root) {
  // Sections tell each other when the list of doctors changes (the invite form offers them), and
  // when they changed something the audit log records ('changed'), so the log shows it at once.
  const shared = new EventTarget();
  const sections = [
    ['doctors', 'Doctors', doctorsSection],
    ['invites', 'Invitations', invitesSection],
    ['users', 'Users', usersSection],
    ['webhooks', t('webhooks.title'), webhooksSection],
    ['audit', 'Audit log', auditSection],
  ];
  replace(root,
    h('h1', {}, 'Admin'),
    h('nav', { 'aria-label': 'Admin sections', class: 'section-nav' },
      h('ul', {}, sections.map(([id, title]) => h('li', {}, h('a', { href: `#${id}` }, title))))),
    sections.map(([id, title, build]) => {
      const body = h('div', {});
      const section = h('section', { id, class: 'card', 'aria-labelledby': `${id}-heading` },
        h('h2', { id: `${id}-heading` }, title), body);
      build(body, shared);
      return section;
    }));
}

/** Says why a list could not load, just above it (a list may only hold items). */
function failure(list, error) {
  list.replaceChildren();
  let note = list.previousElementSibling;
  if (!note?.classList.contains('load-error')) {
    note = h('p', { class: 'load-error form-error', role: 'alert' });
    list.before(note);
  }
  note.textContent = sentence(error);
}

function loaded(list) {
  if (list.previousElementSibling?.classList.contains('load-error')) list.previousElementSibling.remove();
}

// -- doctors -------------------------------------------------------------------------------------

function doctorFields(doctor = {}) {
  return [
    field({ label: 'Name', name: 'name', value: doctor.name }),
    field({ label: 'Specialization', name: 'specialization', value: doctor.specialization }),
    field({ label: 'Email', name: 'email', type: 'email', value: doctor.email }),
    field({ label: 'Phone', name: 'phone', type: 'tel', value: doctor.phone }),
    field({ label: 'Average consultation (minutes)', name: 'avgConsultMinutes', type: 'number', min: 1, max: 240,
      value: doctor.avgConsultMinutes ?? 12, inputmode: 'numeric' }),
  ];
}

function doctorBody(element) {
  return {
    name: valueOf(element, 'name'),
    specialization: valueOf(element, 'specialization'),
    email: valueOf(element, 'email'),
    phone: valueOf(element, 'phone'),
    avgConsultMinutes: Number(valueOf(element, 'avgConsultMinutes')),
  };
}

async function doctorsSection(container, shared) {
  const list = h('ul', { class: 'cards' });
  const done = h('p', { class: 'done', role: 'status' });
  let doctors = [];
  const load = async () => {
    try {
      doctors = await api('GET', '/api/doctors');
    } catch (error) {
      failure(list, error);
      return;
    }
    loaded(list);
    shared.dispatchEvent(new CustomEvent('doctors', { detail: doctors }));
    replace(list, doctors.length ? doctors.map((doctor) => doctorItem(doctor)) : h('li', {}, 'No doctors yet.'));
  };
  const doctorItem = (doctor) => {
    const item = h('li', { class: 'card' });
    const message = h('p', { class: 'form-error', role: 'alert' });
    const show = () => replace(item,
      h('h3', {}, doctor.name),
      h('p', {}, doctor.specialization, h('br'), doctor.email || '', doctor.phone ? ` · ${doctor.phone}` : '',
        h('br'), `${doctor.avgConsultMinutes} min per consultation`, h('br'), hoursSummary(doctor)),
      message,
      h('div', { class: 'actions' },
        h('a', { class: 'button', href: `/app/console?doctor=${doctor.id}` }, 'Open console'),
        h('button', { type: 'button', 'aria-label': `Edit ${doctor.name}`, onclick: edit }, 'Edit'),
        h('button', { type: 'button', onclick: editHours }, t('hours.editOf', { name: doctor.name })),
        h('button', { type: 'button', class: 'danger', 'aria-label': `Delete ${doctor.name}`, onclick: askDelete }, 'Delete')));
    const edit = () => {
      replace(item, h('h3', {}, `Edit ${doctor.name}`), form({
        label: `Edit ${doctor.name}`,
        submit: 'Save changes',
        children: doctorFields(doctor),
        async onSubmit(element) {
          Object.assign(doctor, await api('PUT', `/api/doctors/${doctor.id}`, doctorBody(element)));
          changed(shared);
          done.textContent = `${doctor.name} is saved.`;
          show();
        },
      }), h('button', { type: 'button', onclick: show }, 'Cancel editing'));
      item.querySelector('input').focus();
    };
    const editHours = () => {
      replace(item, h('h3', {}, doctor.name), hoursEditor(doctor, {
        save: (body) => api('PUT', `/api/doctors/${doctor.id}`, body),
        onSaved(saved) {
          Object.assign(doctor, saved);
          changed(shared);
          done.textContent = t('hours.savedOf', { name: doctor.name });
          show();
        },
        onCancel: show,
      }));
      item.querySelector('select, button')?.focus();
    };
    const askDelete = () => {
      replace(item, h('h3', {}, doctor.name),
        h('p', {}, `Delete ${doctor.name}? Their accounts are disabled and the profile disappears from booking.`),
        message,
        h('div', { class: 'actions' },
          h('button', { type: 'button', class: 'danger', onclick: remove }, 'Yes, delete'),
          h('button', { type: 'button', onclick: show }, 'Keep')));
      item.querySelector('button').focus();
    };
    const remove = async () => {
      try {
        await api('DELETE', `/api/doctors/${doctor.id}`);
        changed(shared);
        done.textContent = `${doctor.name} is deleted.`;
        await load();
      } catch (error) {
        show();
        message.textContent = error.status === 409
          ? `${doctor.name} cannot be deleted yet: patients are still waiting for or in a consultation with them. `
            + 'Complete, cancel or mark those appointments in their console first, then delete.'
          : sentence(error);
        item.querySelector('[aria-label^="Delete"]').focus();
      }
    };
    show();
    return item;
  };
  const create = form({
    label: 'Add a doctor',
    submit: 'Add doctor',
    children: doctorFields(),
    async onSubmit(element) {
      const doctor = await api('POST', '/api/doctors', doctorBody(element));
      changed(shared);
      element.reset();
      done.textContent = `${doctor.name} is added. Invite them below so they can sign in.`;
      await load();
    },
  });
  replace(container, list, done, h('details', {}, h('summary', {}, 'Add a doctor'), create));
  await load();
}

// -- invitations ---------------------------------------------------------------------------------

const SAME_EMAIL = ['', 'The profile with the same email'];

async function invitesSection(container, shared) {
  const created = h('div', { class: 'created', 'aria-live': 'polite' });
  const list = h('ul', { class: 'cards' });
  const create = form({
    label: 'Invite someone',
    submit: 'Create invitation',
    children: [
      field({ label: 'Email', name: 'email', type: 'email' }),
      field({ label: 'Role', name: 'role', type: 'select', value: 'doctor', options: [['doctor', 'Doctor'], ['admin', 'Administrator']] }),
      field({ label: 'Doctor profile (for a doctor)', name: 'doctorId', type: 'select', value: '', required: false,
        options: [SAME_EMAIL] }),
      field({ label: 'Valid for (hours)', name: 'expiresInHours', type: 'number', min: 1, max: 720, value: 72, inputmode: 'numeric' }),
    ],
    async onSubmit(element) {
      const body = { email: valueOf(element, 'email'), role: valueOf(element, 'role'),
        expiresInHours: Number(valueOf(element, 'expiresInHours')) };
      if (body.role === 'doctor' && valueOf(element, 'doctorId')) body.doctorId = valueOf(element, 'doctorId');
      const invite = await api('POST', '/api/admin/invites', body);
      changed(shared);
      showCreated(created, body.email, invite);
      await load();
    },
  });
  shared.addEventListener('doctors', (event) => {
    const select = create.querySelector('[name=doctorId]');
    const chosen = select.value;
    replace(select, [SAME_EMAIL, ...event.detail.map((doctor) => [doctor.id, doctor.name])]
      .map(([value, text]) => h('option', { value, selected: value === chosen }, text)));
  });
  const filter = h('select', { id: 'invite-filter', onchange: () => load() },
    [['', 'All'], ['active', 'Active'], ['used', 'Used'], ['expired', 'Expired'], ['revoked', 'Revoked']]
      .map(([value, text]) => h('option', { value }, text)));
  const load = async () => {
    const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (filter.value) query.set('status', filter.value);
    let page;
    try {
      page = await api('GET', `/api/admin/invites?${query}`);
    } catch (error) {
      failure(list, error);
      return;
    }
    loaded(list);
    replace(list, page.items.length ? page.items.map((invite) => inviteItem(invite, load, shared)) : h('li', {}, 'No invitations.'));
  };
  replace(container, create, created,
    h('h3', {}, 'Sent invitations'),
    h('div', { class: 'field inline' }, h('label', { for: 'invite-filter' }, 'Show'), filter),
    list);
  await load();
}

function showCreated(container, email, invite) {
  const link = `${location.origin}/app/invite?token=${encodeURIComponent(invite.token)}`;
  const copied = h('p', { class: 'done', role: 'status' });
  const input = h('input', { id: 'invite-link', type: 'text', readonly: true, value: link });
  replace(container,
    h('p', {}, `Invitation for ${email} created. Send this link; it is shown only once and works until ${clock(invite.expiresAt)}.`),
    h('div', { class: 'field' }, h('label', { for: 'invite-link' }, 'Invitation link'), input),
    h('button', {
      type: 'button',
      async onclick() {
        try {
          await navigator.clipboard.writeText(link);
          copied.textContent = 'Link copied.';
        } catch {
          input.select();
          copied.textContent = 'Copying is blocked here: the link is selected, copy it with your keyboard.';
        }
      },
    }, 'Copy link'),
    copied);
}

function inviteItem(invite, reload, shared) {
  const message = h('p', { class: 'form-error', role: 'alert' });
  return h('li', { class: 'card' },
    h('p', {}, h('strong', {}, invite.email), ` · ${invite.role} · `, h('span', { class: `badge ${invite.status}` }, invite.status)),
    h('p', { class: 'muted' }, `Created ${clock(invite.createdAt)}, ${invite.status === 'used' && invite.usedAt ? `used ${clock(invite.usedAt)}` : `expires ${clock(invite.expiresAt)}`}`),
    message,
    invite.status === 'active' ? h('button', {
      type: 'button',
      class: 'danger',
      'aria-label': `Revoke the invitation for ${invite.email}`,
      async onclick() {
        try {
          await api('DELETE', `/api/admin/invites/${invite.inviteId}`);
          changed(shared);
          await reload();
        } catch (error) {
          message.textContent = sentence(error);
        }
      },
    }, 'Revoke') : null);
}

// -- users ---------------------------------------------------------------------------------------

async function usersSection(container, shared) {
  const list = h('ul', { class: 'cards' });
  const search = form({
    label: 'Find users',
    submit: 'Search',
    submitClass: '',
    className: 'inline-form',
    children: [
      field({ label: 'Name or email', name: 'q', type: 'search', required: false }),
      field({ label: 'Role', name: 'role', type: 'select', value: '', required: false,
        options: [['', 'Any'], ['patient', 'Patient'], ['doctor', 'Doctor'], ['admin', 'Administrator']] }),
    ],
    async onSubmit(element) {
      await load(valueOf(element, 'q'), valueOf(element, 'role'));
    },
  });
  const load = async (q = '', role = '') => {
    const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (q) query.set('q', q);
    if (role) query.set('role', role);
    let page;
    try {
      page = await api('GET', `/api/admin/users?${query}`);
    } catch (error) {
      failure(list, error);
      return;
    }
    loaded(list);
    replace(list, page.items.length ? page.items.map((user) => userItem(user, shared)) : h('li', {}, 'No users match.'));
  };
  replace(container, search, list);
  await load();
}

function userItem(user, shared) {
  const item = h('li', { class: 'card' });
  const message = h('p', { class: 'form-error', role: 'alert' });
  const draw = () => replace(item,
    h('p', {}, h('strong', {}, user.name), ` · ${user.role}`, user.disabled ? h('span', { class: 'badge cancelled' }, 'Disabled') : null),
    h('p', { class: 'muted' }, user.email),
    message,
    user.id === session.user.id ? h('p', { class: 'muted' }, 'This is you.') : h('button', {
      type: 'button',
      class: user.disabled ? '' : 'danger',
      'aria-label': `${user.disabled ? 'Enable' : 'Disable'} ${user.name}`,
      async onclick() {
        message.textContent = '';
        try {
          Object.assign(user, await api('PATCH', `/api/admin/users/${user.id}`, { disabled: !user.disabled }));
          changed(shared);
          draw();
        } catch (error) {
          message.textContent = sentence(error);
        }
      },
    }, user.disabled ? 'Enable' : 'Disable'));
  draw();
  return item;
}

// -- audit log -----------------------------------------------------------------------------------

const ACTION_LABELS = {
  'invite.created': 'Invitation created',
  'invite.redeemed': 'Invitation accepted',
  'invite.revoked': 'Invitation revoked',
  'doctor.created': 'Doctor added',
  'doctor.updated': 'Doctor edited',
  'doctor.deleted': 'Doctor deleted',
  'doctor.status_changed': 'Doctor status changed',
  'appointment.status_changed': 'Appointment status changed',
  'appointment.rescheduled': t('audit.appointmentRescheduled'),
  'queue.call_next': 'Next patient called',
  'user.disabled': 'User disabled',
  'user.enabled': 'User enabled',
  'password.changed': 'Password changed',
  'admin.seeded': 'First administrator created',
};

/** Tells the audit log that something it records just happened. */
function changed(shared) {
  shared.dispatchEvent(new Event('changed'));
}

async function auditSection(container, shared) {
  const list = h('ol', { class: 'audit' });
  const more = h('button', { type: 'button', hidden: true }, 'Show older entries');
  let offset = 0;
  const load = async ({ fromStart = false } = {}) => {
    let page;
    try {
      page = await api('GET', `/api/admin/audit?limit=${PAGE_SIZE}&offset=${fromStart ? 0 : offset}`);
    } catch (error) {
      failure(list, error);
      more.hidden = true;
      return;
    }
    loaded(list);
    if (fromStart) {
      list.replaceChildren();
      offset = 0;
    }
    if (offset === 0 && page.items.length === 0) replace(list, h('li', {}, 'Nothing recorded yet.'));
    list.append(...page.items.map((entry) => h('li', {},
      h('strong', {}, ACTION_LABELS[entry.action] || entry.action), ` by ${entry.actorRole || 'system'} `,
      h('span', { class: 'muted' }, `${clock(entry.at)}${entry.target ? ` · ${entry.target}` : ''}`),
      entry.details && Object.keys(entry.details).length
        ? h('div', { class: 'muted small' }, Object.entries(entry.details).map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`).join(', '))
        : null)));
    offset += page.items.length;
    more.hidden = offset >= page.total;
  };
  more.addEventListener('click', () => load());
  shared.addEventListener('changed', () => load({ fromStart: true }));
  replace(container, list, more);
  await load();
}
