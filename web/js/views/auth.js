// Sign in, register, and accept an invitation. Each ends signed in, on the page that was asked
// for (a deep link opened while signed out) or on the start page of the account's role.

import { h, replace } from '../dom.js';
import { api } from '../api.js';
import { field, form, valueOf } from '../forms.js';
import { navigate } from '../router.js';
import { homeFor, session } from '../session.js';

function continueAfterSignIn(returnTo) {
  const target = returnTo && returnTo.startsWith('/app/') && !returnTo.startsWith('/app/signin')
    ? returnTo : homeFor(session.user);
  navigate(target, { replace: true });
}

const SIGNED_OUT_NOTES = {
  expired: 'Your session has ended. Sign in again to continue where you were.',
  disabled: 'This account has been disabled. Contact the clinic if you think this is wrong.',
};

export function signInPage(root, context) {
  if (session.signedIn && !context.returnTo) {
    navigate(homeFor(session.user), { replace: true });
    return;
  }
  const note = SIGNED_OUT_NOTES[session.lastSignOutReason];
  const signIn = form({
    label: 'Sign in',
    submit: 'Sign in',
    children: [
      field({ label: 'Email', name: 'email', type: 'email', autocomplete: 'username' }),
      field({ label: 'Password', name: 'password', type: 'password', autocomplete: 'current-password' }),
    ],
    async onSubmit(element) {
      const answer = await api('POST', '/api/auth/login',
        { email: valueOf(element, 'email'), password: element.querySelector('[name=password]').value },
        { auth: false });
      session.signIn(answer);
      session.lastSignOutReason = null;
      continueAfterSignIn(context.returnTo);
    },
  });
  const registerHref = context.returnTo ? `/app/register?next=${encodeURIComponent(context.returnTo)}` : '/app/register';
  replace(root,
    h('h1', {}, 'Sign in'),
    context.returnTo ? h('p', {}, 'Sign in to open this page.') : null,
    note ? h('p', { class: 'notice', role: 'status' }, note) : null,
    h('div', { class: 'card narrow' }, signIn),
    h('p', {}, 'New here? ', h('a', { href: registerHref }, 'Create a patient account'), '.'));
}

export function registerPage(root, context) {
  const next = context.query.get('next');
  const register = form({
    label: 'Create an account',
    submit: 'Create account',
    children: [
      field({ label: 'Name', name: 'name', autocomplete: 'name' }),
      field({ label: 'Email', name: 'email', type: 'email', autocomplete: 'email' }),
      field({ label: 'Password', name: 'password', type: 'password', autocomplete: 'new-password',
        hint: 'At least 8 characters.', minlength: 8 }),
    ],
    async onSubmit(element) {
      const answer = await api('POST', '/api/auth/register', {
        name: valueOf(element, 'name'),
        email: valueOf(element, 'email'),
        password: element.querySelector('[name=password]').value,
      }, { auth: false });
      session.signIn(answer);
      continueAfterSignIn(next || '/app/book');
    },
  });
  replace(root,
    h('h1', {}, 'Create an account'),
    h('p', {}, 'Patients register here to book with a doctor and wait for their turn from anywhere.'),
    h('div', { class: 'card narrow' }, register),
    h('p', {}, 'Already registered? ', h('a', { href: '/app/signin' }, 'Sign in'), '.'));
}

export function invitePage(root, context) {
  const token = context.query.get('token');
  if (!token) {
    replace(root, h('h1', {}, 'Invitation'),
      h('p', { role: 'alert' }, 'This address has no invitation in it. Open the full link you were sent, or ask an administrator for a new one.'));
    return;
  }
  const accept = form({
    label: 'Accept the invitation',
    submit: 'Create account',
    children: [
      field({ label: 'Name', name: 'name', autocomplete: 'name' }),
      field({ label: 'Password', name: 'password', type: 'password', autocomplete: 'new-password',
        hint: 'At least 8 characters.', minlength: 8 }),
    ],
    async onSubmit(element) {
      const answer = await api('POST', '/api/auth/register/invite', {
        token, name: valueOf(element, 'name'), password: element.querySelector('[name=password]').value,
      }, { auth: false });
      session.signIn(answer);
      navigate(homeFor(session.user), { replace: true });
    },
  });
  replace(root,
    h('h1', {}, 'Accept your invitation'),
    session.signedIn
      ? h('p', { class: 'notice' }, `You are signed in as ${session.user.name}. Accepting creates a new account and signs you in with it.`)
      : null,
    h('p', {}, 'Choose the name people will see and a password for your staff account.'),
    h('div', { class: 'card narrow' }, accept));
}
