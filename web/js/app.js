// The app shell: which page an address shows, who may see it, and the navigation bar.
//
// A page that needs an account shows the sign-in form in place when nobody is signed in, at the
// same address, so that signing in continues to the page that was asked for.

import { t } from './i18n.js';  // first: sets <html lang> and loads the catalogue before any page draws
import { h, replace } from './dom.js';
import { list } from './format.js';
import { live } from './live.js';
import { navigate, onNavigate } from './router.js';
import { homeFor, session } from './session.js';
import { invitePage, registerPage, signInPage } from './views/auth.js';
import { appointmentsPage, bookPage } from './views/patient.js';
import { waitingPage } from './views/waiting.js';
import { consolePage } from './views/console.js';
import { adminPage } from './views/admin.js';
import { reportsPage } from './views/reports.js';

const ROUTES = [
  { pattern: /^\/app\/?$/, page: homePage },
  { pattern: /^\/app\/signin$/, page: signInPage, open: true },
  { pattern: /^\/app\/register$/, page: registerPage, open: true },
  { pattern: /^\/app\/invite$/, page: invitePage, open: true },
  { pattern: /^\/app\/book$/, page: bookPage, roles: ['patient'] },
  { pattern: /^\/app\/appointments$/, page: appointmentsPage, roles: ['patient'] },
  { pattern: /^\/app\/waiting\/([^/]+)$/, page: waitingPage, roles: ['patient', 'doctor', 'admin'] },
  { pattern: /^\/app\/console$/, page: consolePage, roles: ['doctor', 'admin'] },
  { pattern: /^\/app\/admin$/, page: adminPage, roles: ['admin'] },
  { pattern: /^\/app\/reports$/, page: reportsPage, roles: ['doctor', 'admin'] },
];


const main = document.getElementById('main');
// The shell's own words (index.html keeps only what shows before any script runs).
document.querySelector('.skip-link').textContent = t('app.skip');
document.querySelector('.brand').textContent = t('app.name');
document.getElementById('nav').setAttribute('aria-label', t('nav.label'));
let cleanup = null;
let renderCount = 0;

async function render() {
  renderCount += 1;
  const thisRender = renderCount;
  if (cleanup) {
    try { cleanup(); } catch { /* a page that failed to clean up must not block the next one */ }
    cleanup = null;
  }
  live.stop();
  drawNav();
  const path = location.pathname;
  const route = ROUTES.find((candidate) => candidate.pattern.test(path));
  const context = {
    params: route ? path.match(route.pattern).slice(1).map(decodeURIComponent) : [],
    query: new URLSearchParams(location.search),
    stillShown: () => thisRender === renderCount,
  };
  let page = route ? route.page : notFoundPage;
  if (route && !route.open && route.page !== homePage && !session.signedIn) {
    page = signInPage;
    context.returnTo = path + location.search;
  } else if (route?.roles && !route.roles.includes(session.user.role)) {
    page = wrongRolePage(route.roles);
  }
  main.replaceChildren();
  main.removeAttribute('aria-busy');
  try {
    cleanup = (await page(main, context)) || null;
  } catch (error) {
    if (thisRender !== renderCount) return;
    replace(main, h('h1', { tabindex: '-1' }, t('app.failed')),
      h('p', { role: 'alert' }, error?.message || t('app.wrong')));
  }
  if (thisRender !== renderCount) return;
  const heading = main.querySelector('h1');
  document.title = heading ? `${heading.textContent} · ${t('app.name')}` : t('app.name');
  if (document.activeElement === document.body || !main.contains(document.activeElement)) {
    if (heading) {
      heading.setAttribute('tabindex', '-1');
      heading.focus({ preventScroll: true });
    }
  }
}

function homePage() {
  navigate(session.signedIn ? homeFor(session.user) : '/app/signin', { replace: true });
}

function notFoundPage(root) {
  replace(root, h('h1', {}, t('app.notFound')),
    h('p', {}, t('app.notFoundText'), ' ', h('a', { href: '/app/' }, t('app.goStart'))));
}

function wrongRolePage(roles) {
  return (root) => {
    replace(root, h('h1', {}, t('app.wrongRole')),
      h('p', {}, t('app.wrongRoleText', { roles: list(roles.map((role) => t(`role.plural.${role}`))),
        name: session.user.name, role: t(`role.${session.user.role}`) }), ' ',
      h('a', { href: homeFor(session.user) }, t('app.goYourStart'))));
  };
}

function drawNav() {
  const nav = document.getElementById('nav');
  const link = (href, text) => h('a', { href, 'aria-current': location.pathname === href ? 'page' : null }, text);
  if (!session.signedIn) {
    replace(nav, h('ul', {}, h('li', {}, link('/app/signin', t('auth.signIn'))), h('li', {}, link('/app/register', t('nav.register')))));
    return;
  }
  const role = session.user.role;
  const items = [];
  if (role === 'patient') items.push(link('/app/appointments', t('nav.appointments')), link('/app/book', t('nav.book')));
  if (role === 'doctor') items.push(link('/app/console', t('console.title')));
  if (role === 'admin') items.push(link('/app/admin', t('admin.title')), link('/app/console', t('console.title')));
  if (role === 'doctor' || role === 'admin') items.push(link('/app/reports', t('nav.reports')));
  items.push(h('button', { type: 'button', class: 'link-button', onclick: signOut }, t('nav.signOut')));
  replace(nav, h('ul', {}, items.map((item) => h('li', {}, item))));
}

async function signOut() {
  // Forget the session here first, so the socket the server is about to close (4001) is not taken
  // for an expired token and refreshed; then end it on the server, which also clears the session
  // cookie. A token that ran out while the phone slept is refreshed first, or the server could not be told.
  await session.ensureFresh();
  const { token, refreshable } = session;
  session.signOut('signout');
  if (refreshable) {
    try {
      await fetch('/api/auth/logout', { method: 'POST', credentials: 'same-origin',
        headers: { Authorization: `Bearer ${token}` } });
    } catch {
      // Signing out never depends on the server: the local session is already forgotten.
    }
  }
  navigate('/app/signin');
}

// Signed out by expiry or from another tab: redraw, so the page asks to sign in and comes back.
session.addEventListener('signedout', () => {
  if (session.lastSignOutReason !== 'signout') render();
});

onNavigate(render);
render();
