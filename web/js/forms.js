// Labelled fields and forms whose errors appear next to what caused them.
//
// A field's input carries the API's field name (`name="patientEmail"`), so a `400` whose `details`
// names that field puts its messages right under it (and marks it invalid for screen readers); the
// rest of the error goes in the form's alert region, which is read out when it changes.

import { h, uid } from './dom.js';
import { sentence } from './api.js';
import { t } from './i18n.js';

/** A labelled input: field({label: 'Email', name: 'email', type: 'email'}). */
export function field({ label, name, type = 'text', value, hint, options, required = true, ...attrs }) {
  const id = uid(name);
  const errorId = `${id}-error`;
  const hintId = hint ? `${id}-hint` : null;
  let input;
  if (type === 'textarea') {
    input = h('textarea', { id, name, required, 'aria-describedby': [hintId, errorId].filter(Boolean).join(' '), ...attrs }, value ?? '');
  } else if (type === 'select') {
    input = h('select', { id, name, required, 'aria-describedby': [hintId, errorId].filter(Boolean).join(' '), ...attrs },
      (options || []).map(([optionValue, text]) => h('option', { value: optionValue, selected: optionValue === value }, text)));
  } else {
    input = h('input', { id, name, type, value, required, 'aria-describedby': [hintId, errorId].filter(Boolean).join(' '), ...attrs });
  }
  return h('div', { class: 'field' },
    h('label', { for: id }, label),
    hint ? h('p', { class: 'hint', id: hintId }, hint) : null,
    input,
    h('p', { class: 'field-error', id: errorId }));
}

/**
 * A form that calls `onSubmit(form)`; while it runs the submit button is disabled, and whatever it
 * throws is shown (field messages by name, the sentence in the alert region).
 */
export function form({ label, submit, onSubmit, children, className = 'stack', submitClass = 'primary' }) {
  const alert = h('p', { class: 'form-error', role: 'alert' });
  const button = h('button', { type: 'submit', class: submitClass }, submit);
  const element = h('form', { class: className, 'aria-label': label, novalidate: true }, children,
    alert, h('div', { class: 'actions' }, button));
  element.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(element);
    if (!checkRequired(element)) return;
    button.disabled = true;
    element.setAttribute('aria-busy', 'true');
    try {
      await onSubmit(element);
    } catch (error) {
      showError(element, error);
    } finally {
      button.disabled = false;
      element.removeAttribute('aria-busy');
    }
  });
  return element;
}

/** The browser's own required/type checks, shown the same way as the API's. */
function checkRequired(element) {
  let first = null;
  for (const input of element.querySelectorAll('input, select, textarea')) {
    if (input.checkValidity()) continue;
    const label = element.querySelector(`label[for="${input.id}"]`)?.textContent || input.name;
    let message = input.validationMessage;
    if (input.validity.valueMissing) message = t('form.required', { label });
    setFieldError(input, message);
    first = first || input;
  }
  if (first) {
    alertOf(element).textContent = t('form.correct');
    first.focus();
    return false;
  }
  return true;
}

function alertOf(element) {
  return element.querySelector(':scope > .form-error');
}

function setFieldError(input, message) {
  input.setAttribute('aria-invalid', 'true');
  const error = document.getElementById(`${input.id}-error`);
  if (error) error.textContent = message;
}

export function clearErrors(element) {
  alertOf(element).textContent = '';
  for (const input of element.querySelectorAll('[aria-invalid]')) {
    input.removeAttribute('aria-invalid');
    const error = document.getElementById(`${input.id}-error`);
    if (error) error.textContent = '';
  }
}

export function showError(element, error) {
  const alert = alertOf(element);
  let first = null;
  const unmatched = [];
  for (const [name, messages] of Object.entries(error?.details || {})) {
    const text = Array.isArray(messages) ? messages.join(' ') : String(messages);
    const input = element.querySelector(`[name="${CSS.escape(name)}"]`);
    if (input) {
      setFieldError(input, text);
      first = first || input;
    } else {
      unmatched.push(`${name}: ${text}`);
    }
  }
  if (first && unmatched.length === 0) {
    alert.textContent = t('form.correct');
    first.focus();
  } else {
    alert.textContent = [sentence(error), ...unmatched].join(' ');
  }
}

/** The trimmed value of the form's field `name`. */
export function valueOf(element, name) {
  const input = element.querySelector(`[name="${CSS.escape(name)}"]`);
  return input ? input.value.trim() : '';
}
