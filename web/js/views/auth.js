// Sign in, register, and accept an invitation. Each ends signed in, on the page that was asked
// for (a deep link opened while signed out) or on the start page of the account's role.

import { h, replace } from '../dom.js';
import { api } from '../api.js';
import { t } from '../i18n.js';
import { field, form, valueOf } from '../forms.js';
import { navigate } from '../router.js';
import { homeFor, session } from '../session.js';

function continueAfterSignIn(returnTo) {
  const target = returnTo && returnTo.startsWith('/app/') && !returnTo.startsWith('/app/signin')
    ? returnTo : homeFor(session.user);
  navigate(target, { replace: true });
}


export function signInPage(root, context) {
  if (session.signedIn && !context.returnTo) {
    navigate(homeFor(session.user), { replace: true });
    return;
  }
  const reason = session.lastSignOutReason;
  const note = reason === 'expired' || reason === 'disabled' ? t(`auth.signedOut.${reason}`) : null;
  const signIn = form({
    label: t('auth.signIn'),
    submit: t('auth.signIn'),
    children: [
      field({ label: t('auth.email'), name: 'email', type: 'email', autocomplete: 'username' }),
      field({ label: t('auth.password'), name: 'password', type: 'password', autocomplete: 'current-password' }),
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
    h('h1', {}, t('auth.signIn')),
    context.returnTo ? h('p', {}, t('auth.signInToOpen')) : null,
    note ? h('p', { class: 'notice', role: 'status' }, note) : null,
    h('div', { class: 'card narrow' }, signIn),
    h('p', {}, t('auth.newHere'), ' ', h('a', { href: registerHref }, t('auth.createPatient'))));
}

export function registerPage(root, context) {
  const next = context.query.get('next');
  const register = form({
    label: t('auth.createTitle'),
    submit: t('auth.createAccount'),
    children: [
      field({ label: t('auth.name'), name: 'name', autocomplete: 'name' }),
      field({ label: t('auth.email'), name: 'email', type: 'email', autocomplete: 'email' }),
      field({ label: t('auth.password'), name: 'password', type: 'password', autocomplete: 'new-password',
        hint: t('auth.passwordHint'), minlength: 8 }),
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
    h('h1', {}, t('auth.createTitle')),
    h('p', {}, t('auth.registerIntro')),
    h('div', { class: 'card narrow' }, register),
    h('p', {}, t('auth.already'), ' ', h('a', { href: '/app/signin' }, t('auth.signIn'))));
}

export function invitePage(root, context) {
  const token = context.query.get('token');
  const email = context.query.get('email');
  if (!token) {
    replace(root, h('h1', {}, t('invite.title')), h('p', { role: 'alert' }, t('invite.noToken')));
    return;
  }
  const accept = form({
    label: t('invite.accept'),
    submit: t('auth.createAccount'),
    children: [
      field({ label: t('auth.name'), name: 'name', autocomplete: 'name' }),
      field({ label: t('auth.password'), name: 'password', type: 'password', autocomplete: 'new-password',
        hint: t('auth.passwordHint'), minlength: 8 }),
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
    h('h1', {}, t('invite.heading')),
    session.signedIn ? h('p', { class: 'notice' }, t('invite.signedInAs', { name: session.user.name })) : null,
    // The link the admin page makes names the address the invitation was made for: the account
    // signs in with it (the server decides; this only says it before the form is filled in).
    h('p', {}, email ? [t('invite.emailIs'), ' ', h('strong', {}, email), '. ', t('invite.emailUse')] : t('invite.emailUnknown')),
    h('p', {}, t('invite.intro')),
    h('div', { class: 'card narrow' }, accept));
}
