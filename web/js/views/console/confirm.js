// Final actions (complete, no-show) cannot be undone through the API, so the console asks once,
// in place: the question and a "Yes" button replace the action's buttons until answered. What is
// awaiting an answer is kept by appointment, so a live redraw of the queue does not lose it.

import { h } from '../../dom.js';
import { t } from '../../i18n.js';

export class Confirmations {
  constructor(redraw) {
    this.pending = new Map();  // appointmentId → {question, yes, run}
    this.redraw = redraw;
    this.focusYes = null;
  }

  /** Asks `question` about appointment `id`; `opener` (the asking button) gets the focus back on "Go back". */
  ask(id, question, yes, run, opener = null) {
    this.pending.set(id, { question, yes, run, opener: opener?.getAttribute('aria-label') || null });
    this.focusYes = id;
    this.redraw();
  }

  /** The question and its two answers for `id`, or null when nothing is being asked. */
  controls(id) {
    const asked = this.pending.get(id);
    if (!asked) return null;
    const yes = h('button', { type: 'button', class: 'danger', onclick: () => { this.pending.delete(id); asked.run(); } }, asked.yes);
    const no = h('button', {
      type: 'button',
      onclick: () => {
        this.pending.delete(id);
        this.redraw();
        if (asked.opener) document.querySelector(`button[aria-label="${CSS.escape(asked.opener)}"]`)?.focus();
      },
    }, t('console.confirm.back'));
    if (this.focusYes === id) {
      this.focusYes = null;
      queueMicrotask(() => yes.focus());
    }
    return h('div', { class: 'confirm', role: 'group', 'aria-label': asked.question }, h('p', {}, asked.question),
      h('div', { class: 'actions' }, yes, no));
  }

  /** Forgets questions about appointments no longer shown. */
  keepOnly(ids) {
    for (const id of [...this.pending.keys()]) if (!ids.has(id)) this.pending.delete(id);
  }
}
