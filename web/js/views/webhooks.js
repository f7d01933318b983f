// The admin page's "Webhooks" section: the clinic's own systems that hear about appointments.
//
// Add one (URL, events, description): its signing secret is shown once, in a read-only field to copy.
// The list shows each webhook with Delete and Deliveries; Deliveries opens a table of what was sent,
// how many attempts, the last answer (status and the start of the body) and when the next try is.

import { h, replace, uid } from '../dom.js';
import { ApiError, api, sentence } from '../api.js';
import { longDate, clock } from '../format.js';
import { field, form, valueOf } from '../forms.js';
import { t } from '../i18n.js';

export const WEBHOOK_EVENTS = ['appointment.booked', 'appointment.rescheduled', 'appointment.cancelled',
  'appointment.soon', 'appointment.called', 'appointment.delayed', 'appointment.no_show', 'appointment.completed'];

function when(iso) {
  return iso ? `${longDate(iso)} ${clock(iso)}` : '—';
}

export async function webhooksSection(container) {
  const list = h('ul', { class: 'cards', 'aria-label': t('webhooks.title') });
  const done = h('p', { class: 'done', role: 'status' });
  const secretArea = h('div', {});
  const deliveries = h('div', {});
  const loadError = h('p', { class: 'form-error', role: 'alert' });

  const load = async () => {
    let hooks;
    try {
      hooks = await api('GET', '/api/admin/webhooks');
    } catch (error) {
      loadError.textContent = sentence(error);
      return;
    }
    loadError.textContent = '';
    replace(list, hooks.length ? hooks.map(item) : h('li', {}, t('webhooks.none')));
  };

  const item = (hook) => {
    const message = h('p', { class: 'form-error', role: 'alert' });
    return h('li', { class: 'card' },
      h('h3', {}, hook.url),
      h('p', {}, hook.description || '', hook.description ? h('br') : null, hook.events.join(', '), h('br'),
        t('webhooks.created', { when: when(hook.createdAt) })),
      message,
      h('div', { class: 'actions' },
        h('button', { type: 'button', 'aria-label': t('webhooks.deliveriesLabel', { url: hook.url }),
          onclick: () => showDeliveries(hook) }, t('webhooks.showDeliveries')),
        h('button', { type: 'button', class: 'danger', 'aria-label': t('webhooks.deleteLabel', { url: hook.url }),
          async onclick() {
            try {
              await api('DELETE', `/api/admin/webhooks/${hook.id}`);
              done.textContent = t('webhooks.deleted', { url: hook.url });
              replace(deliveries);
              await load();
            } catch (error) {
              message.textContent = sentence(error);
            }
          } }, t('webhooks.delete'))));
  };

  const showDeliveries = async (hook) => {
    const heading = h('h3', { tabindex: '-1' }, t('webhooks.deliveriesOf', { url: hook.url }));
    let page;
    try {
      page = await api('GET', `/api/admin/webhooks/${hook.id}/deliveries?limit=50`);
    } catch (error) {
      replace(deliveries, heading, h('p', { class: 'form-error', role: 'alert' }, sentence(error)));
      return;
    }
    const columns = ['event', 'status', 'attempts', 'answer', 'next', 'created'];
    replace(deliveries, heading,
      h('button', { type: 'button', onclick: () => showDeliveries(hook) }, t('webhooks.refresh')),
      page.items.length ? h('table', { class: 'deliveries' },
        h('caption', {}, t('webhooks.deliveriesOf', { url: hook.url })),
        h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col' }, t(`webhooks.col.${c}`))))),
        h('tbody', {}, page.items.map((d) => h('tr', {},
          h('td', {}, d.event),
          h('td', {}, t(`webhooks.status.${d.status}`)),
          h('td', {}, String(d.attempts)),
          h('td', {}, [d.lastStatusCode ?? '', d.lastError ?? ''].filter((x) => x !== '').join(' · ') || '—'),
          h('td', {}, d.status === 'pending' ? when(d.nextAttemptAt) : '—'),
          h('td', {}, when(d.createdAt))))))
        : h('p', {}, t('webhooks.noDeliveries')));
    heading.focus();
  };

  const legendId = uid('events');
  const eventsField = h('fieldset', { class: 'field', 'aria-describedby': `${legendId}-error` },
    h('legend', { id: legendId }, t('webhooks.events')),
    WEBHOOK_EVENTS.map((event) => {
      const id = uid('event');
      return h('div', { class: 'check' },
        h('input', { type: 'checkbox', id, name: 'events', value: event, required: false }),
        h('label', { for: id }, event));
    }),
    h('p', { class: 'field-error', id: `${legendId}-error` }));

  const creation = form({
    label: t('webhooks.createLabel'),
    submit: t('webhooks.create'),
    children: [
      field({ label: t('webhooks.url'), name: 'url', type: 'url', placeholder: 'https://' }),
      eventsField,
      field({ label: t('webhooks.description'), name: 'description', required: false, maxlength: 500 }),
    ],
    async onSubmit(element) {
      const events = [...element.querySelectorAll('input[name="events"]:checked')].map((input) => input.value);
      if (!events.length) throw new ApiError(400, { message: t('webhooks.pickEvent'), code: 'validation_error' });
      const created = await api('POST', '/api/admin/webhooks', {
        url: valueOf(element, 'url'), events, description: valueOf(element, 'description'),
      });
      element.reset();
      const secretId = uid('secret');
      replace(secretArea,
        h('p', { role: 'status' }, t('webhooks.secretShown')),
        h('label', { for: secretId }, t('webhooks.secretLabel')),
        h('input', { id: secretId, readonly: true, value: created.secret, class: 'secret', size: 60 }));
      secretArea.querySelector('input').select();
      await load();
    },
  });

  replace(container, h('p', {}, t('webhooks.intro')), creation, secretArea, done, loadError, list, deliveries);
  await load();
}
