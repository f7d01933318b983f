// The admin's page: doctors, invitations, users and the audit log. Each section loads on its own,
// so one that fails says why and leaves the rest working.

import { h, replace } from '../dom.js';
import { api, sentence } from '../api.js';
import { t } from '../i18n.js';
import { clock, list, statusLabel } from '../format.js';
import { field, form, valueOf } from '../forms.js';
import { session } from '../session.js';
import { hoursEditor, hoursSummary } from './hours.js';
import { webhooksSection } from './webhooks.js';

const PAGE_SIZE = 20;

export function adminPage(root) {
  // Sections tell each other when the list of doctors changes (the invite form offers them), and
  // when they changed something the audit log records ('changed'), so the log shows it at once.
  const shared = new EventTarget();
  const sections = [
    ['doctors', t('admin.doctors'), doctorsSection],
    ['invites', t('admin.invites'), invitesSection],
    ['users', t('admin.users'), usersSection],
    ['webhooks', t('webhooks.title'), webhooksSection],
    ['audit', t('admin.audit'), auditSection],
  ];
  replace(root,
    h('h1', {}, t('admin.title')),
    h('nav', { 'aria-label': t('admin.sections'), class: 'section-nav' },
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
    field({ label: t('auth.name'), name: 'name', value: doctor.name }),
    field({ label: t('admin.specialization'), name: 'specialization', value: doctor.specialization }),
    field({ label: t('auth.email'), name: 'email', type: 'email', value: doctor.email }),
    field({ label: t('book.phone'), name: 'phone', type: 'tel', value: doctor.phone }),
    field({ label: t('doctor.avgConsult'), name: 'avgConsultMinutes', type: 'number', min: 1, max: 240,
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
    replace(list, doctors.length ? doctors.map((doctor) => doctorItem(doctor)) : h('li', {}, t('admin.noDoctors')));
  };
  const doctorItem = (doctor) => {
    const item = h('li', { class: 'card' });
    const message = h('p', { class: 'form-error', role: 'alert' });
    const show = () => replace(item,
      h('h3', {}, doctor.name),
      h('p', {}, doctor.specialization, h('br'), doctor.email || '', doctor.phone ? ` · ${doctor.phone}` : '',
        h('br'), t('admin.perConsultation', { count: doctor.avgConsultMinutes }), h('br'), hoursSummary(doctor)),
      message,
      h('div', { class: 'actions' },
        h('a', { class: 'button', href: `/app/console?doctor=${doctor.id}` }, t('admin.openConsole')),
        h('button', { type: 'button', 'aria-label': t('admin.editLabel', { name: doctor.name }), onclick: edit }, t('admin.edit')),
        h('button', { type: 'button', onclick: editHours }, t('hours.editOf', { name: doctor.name })),
        h('button', { type: 'button', class: 'danger', 'aria-label': t('admin.deleteLabel', { name: doctor.name }), onclick: askDelete },
          t('admin.delete'))));
    const edit = () => {
      replace(item, h('h3', {}, t('admin.editLabel', { name: doctor.name })), form({
        label: t('admin.editLabel', { name: doctor.name }),
        submit: t('admin.saveChanges'),
        children: doctorFields(doctor),
        async onSubmit(element) {
          Object.assign(doctor, await api('PUT', `/api/doctors/${doctor.id}`, doctorBody(element)));
          changed(shared);
          done.textContent = t('admin.doctorSaved', { name: doctor.name });
          show();
        },
      }), h('button', { type: 'button', onclick: show }, t('admin.cancelEdit')));
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
        h('p', {}, t('admin.deleteQuestion', { name: doctor.name })),
        message,
        h('div', { class: 'actions' },
          h('button', { type: 'button', class: 'danger', onclick: remove }, t('admin.yesDelete')),
          h('button', { type: 'button', onclick: show }, t('admin.keep'))));
      item.querySelector('button').focus();
    };
    const remove = async () => {
      try {
        await api('DELETE', `/api/doctors/${doctor.id}`);
        changed(shared);
        done.textContent = t('admin.doctorDeleted', { name: doctor.name });
        await load();
      } catch (error) {
        show();
        message.textContent = error.status === 409 ? t('admin.cannotDelete', { name: doctor.name }) : sentence(error);
        item.querySelector('[aria-label^="Delete"]').focus();
      }
    };
    show();
    return item;
  };
  const create = form({
    label: t('admin.addDoctor'),
    submit: t('admin.addDoctorSubmit'),
    children: doctorFields(),
    async onSubmit(element) {
      const doctor = await api('POST', '/api/doctors', doctorBody(element));
      changed(shared);
      element.reset();
      done.textContent = t('admin.doctorAdded', { name: doctor.name });
      await load();
    },
  });
  replace(container, list, done, h('details', {}, h('summary', {}, t('admin.addDoctor')), create));
  await load();
}

// -- invitations ---------------------------------------------------------------------------------

const sameEmail = () => ['', t('admin.invite.sameEmail')];

async function invitesSection(container, shared) {
  const created = h('div', { class: 'created', 'aria-live': 'polite' });
  const list = h('ul', { class: 'cards' });
  const create = form({
    label: t('admin.invite.label'),
    submit: t('admin.invite.submit'),
    children: [
      field({ label: t('auth.email'), name: 'email', type: 'email' }),
      field({ label: t('admin.role'), name: 'role', type: 'select', value: 'doctor',
        options: [['doctor', t('role.doctor')], ['admin', t('role.admin')]] }),
      field({ label: t('admin.invite.profile'), name: 'doctorId', type: 'select', value: '', required: false,
        options: [sameEmail()] }),
      field({ label: t('admin.invite.validFor'), name: 'expiresInHours', type: 'number', min: 1, max: 720, value: 72, inputmode: 'numeric' }),
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
    replace(select, [sameEmail(), ...event.detail.map((doctor) => [doctor.id, doctor.name])]
      .map(([value, text]) => h('option', { value, selected: value === chosen }, text)));
  });
  const filter = h('select', { id: 'invite-filter', onchange: () => load() },
    ['', 'active', 'used', 'expired', 'revoked']
      .map((value) => h('option', { value }, value ? t(`invite.status.${value}`) : t('admin.all'))));
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
    replace(list, page.items.length ? page.items.map((invite) => inviteItem(invite, load, shared)) : h('li', {}, t('admin.invite.none')));
  };
  replace(container, create, created,
    h('h3', {}, t('admin.invite.sent')),
    h('div', { class: 'field inline' }, h('label', { for: 'invite-filter' }, t('admin.show')), filter),
    list);
  await load();
}

function showCreated(container, email, invite) {
  // The address goes in the link too, so the invitation page can say which email the account uses.
  const link = `${location.origin}/app/invite?${new URLSearchParams({ token: invite.token, email })}`;
  const copied = h('p', { class: 'done', role: 'status' });
  const input = h('input', { id: 'invite-link', type: 'text', readonly: true, value: link });
  replace(container,
    h('p', {}, t('admin.invite.created', { email, time: clock(invite.expiresAt) })),
    h('div', { class: 'field' }, h('label', { for: 'invite-link' }, t('admin.invite.link')), input),
    h('button', {
      type: 'button',
      async onclick() {
        try {
          await navigator.clipboard.writeText(link);
          copied.textContent = t('admin.invite.copied');
        } catch {
          input.select();
          copied.textContent = t('admin.invite.copyBlocked');
        }
      },
    }, t('admin.invite.copy')),
    copied);
}

function inviteItem(invite, reload, shared) {
  const message = h('p', { class: 'form-error', role: 'alert' });
  return h('li', { class: 'card' },
    h('p', {}, h('strong', {}, invite.email), ` · ${t(`role.${invite.role}`)} · `,
      h('span', { class: `badge ${invite.status}` }, t(`invite.status.${invite.status}`))),
    h('p', { class: 'muted' }, invite.status === 'used' && invite.usedAt
      ? t('admin.invite.createdUsed', { created: clock(invite.createdAt), used: clock(invite.usedAt) })
      : t('admin.invite.createdExpires', { created: clock(invite.createdAt), expires: clock(invite.expiresAt) })),
    message,
    invite.status === 'active' ? h('button', {
      type: 'button',
      class: 'danger',
      'aria-label': t('admin.invite.revokeLabel', { email: invite.email }),
      async onclick() {
        try {
          await api('DELETE', `/api/admin/invites/${invite.inviteId}`);
          changed(shared);
          await reload();
        } catch (error) {
          message.textContent = sentence(error);
        }
      },
    }, t('admin.invite.revoke')) : null);
}

// -- users ---------------------------------------------------------------------------------------

async function usersSection(container, shared) {
  const list = h('ul', { class: 'cards' });
  const search = form({
    label: t('admin.users.find'),
    submit: t('admin.users.search'),
    submitClass: '',
    className: 'inline-form',
    children: [
      field({ label: t('admin.users.q'), name: 'q', type: 'search', required: false }),
      field({ label: t('admin.role'), name: 'role', type: 'select', value: '', required: false,
        options: [['', t('admin.users.any')], ...['patient', 'doctor', 'admin'].map((role) => [role, t(`role.${role}`)])] }),
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
    replace(list, page.items.length ? page.items.map((user) => userItem(user, shared)) : h('li', {}, t('admin.users.none')));
  };
  replace(container, search, list);
  await load();
}

function userItem(user, shared) {
  const item = h('li', { class: 'card' });
  const message = h('p', { class: 'form-error', role: 'alert' });
  const draw = () => replace(item,
    h('p', {}, h('strong', {}, user.name), ` · ${t(`role.${user.role}`)} `,
      user.disabled ? h('span', { class: 'badge cancelled' }, t('admin.users.disabled')) : null),
    h('p', { class: 'muted' }, user.email),
    message,
    user.id === session.user.id ? h('p', { class: 'muted' }, t('admin.users.you')) : h('button', {
      type: 'button',
      class: user.disabled ? '' : 'danger',
      'aria-label': t(user.disabled ? 'admin.users.enableLabel' : 'admin.users.disableLabel', { name: user.name }),
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
    }, user.disabled ? t('admin.users.enable') : t('admin.users.disable')));
  draw();
  return item;
}

// -- audit log -----------------------------------------------------------------------------------

/** Tells the audit log that something it records just happened. */
function changed(shared) {
  shared.dispatchEvent(new Event('changed'));
}

/**
 * Who and what an audit entry names, in words: the log stores ids (actorId, target), which mean
 * nothing to a person. Users and doctors are read once (and again when something changes); an id
 * neither list knows stays visible, shortened, so two entries about the same thing still match.
 */
class Names {
  constructor(shared) {
    this.names = new Map();
    this.ready = null;
    shared.addEventListener('doctors', (event) => event.detail.forEach((doctor) => this.names.set(doctor.id, doctor.name)));
  }

  load() {
    this.ready = Promise.all([
      api('GET', '/api/admin/users?limit=200').then((page) => page.items.forEach((user) => this.names.set(user.id, user.name))),
      api('GET', '/api/doctors').then((doctors) => doctors.forEach((doctor) => this.names.set(doctor.id, doctor.name))),
    ]).catch(() => {
      // Names are a help: without them the log still shows every entry.
    });
    return this.ready;
  }

  of(id) {
    if (!id) return null;
    return this.names.get(id) || t('admin.audit.unknownId', { id: String(id).slice(-6) });
  }
}

/** The entry's target in words: a named person or doctor, an invitation's email, an appointment. */
function targetOf(entry, names) {
  const family = entry.action.split('.')[0];
  if (family === 'invite') {
    return entry.details?.email ? t('admin.audit.inviteFor', { email: entry.details.email }) : t('admin.audit.anInvite');
  }
  if (family === 'appointment') return t('admin.audit.appointment', { id: String(entry.target).slice(-6) });
  if (family === 'admin' && entry.details?.email) return entry.details.email;
  if ((family === 'doctor' || family === 'user') && entry.details?.name) return entry.details.name;
  if (family === 'user' && entry.details?.email) return entry.details.email;
  if (family === 'webhook' && entry.details?.url) return entry.details.url;
  return names.of(entry.target);
}

function detailsOf(entry) {
  const details = entry.details || {};
  if (details.from && details.to) return `${statusLabel(details.from)} → ${statusLabel(details.to)}`;
  // Ids (appointments called or completed) say nothing more than the entry itself.
  const shown = Object.entries(details).filter(([key, value]) => ['fields', 'role'].includes(key) && value);
  if (!shown.length) return null;
  return shown.map(([key, value]) => `${t(`admin.audit.detail.${key}`)}: ${key === 'role' ? t(`role.${value}`) : Array.isArray(value) ? list(value.map(fieldName))
    : (value && typeof value === 'object' ? JSON.stringify(value) : value)}`).join(' · ');
}

/** A doctor field as words ("average consultation"); a field the catalogue does not know, as is. */
function fieldName(name) {
  const key = `admin.audit.field.${name}`;
  const text = t(key);
  return text === key ? name : text;
}

async function auditSection(container, shared) {
  const list = h('ol', { class: 'audit' });
  const more = h('button', { type: 'button', hidden: true }, t('admin.audit.older'));
  const names = new Names(shared);
  let offset = 0;
  const load = async ({ fromStart = false } = {}) => {
    let page;
    try {
      [page] = await Promise.all([
        api('GET', `/api/admin/audit?limit=${PAGE_SIZE}&offset=${fromStart ? 0 : offset}`),
        fromStart || !names.ready ? names.load() : names.ready,
      ]);
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
    if (offset === 0 && page.items.length === 0) replace(list, h('li', {}, t('admin.audit.empty')));
    list.append(...page.items.map((entry) => {
      const target = targetOf(entry, names);
      const details = detailsOf(entry);
      const actor = entry.actorId
        ? t('admin.audit.by', { name: names.of(entry.actorId), role: t(`role.${entry.actorRole}`) })
        : t('admin.audit.bySystem');
      return h('li', {},
        h('strong', {}, t(`audit.${entry.action}`)), ' ', actor,
        h('br'), h('span', { class: 'muted' }, clock(entry.at), target ? ` · ${target}` : ''),
        details ? h('div', { class: 'muted small' }, details) : null);
    }));
    offset += page.items.length;
    more.hidden = offset >= page.total;
  };
  more.addEventListener('click', () => load());
  shared.addEventListener('changed', () => load({ fromStart: true }));
  replace(container, list, more);
  await load();
}
