// The console: sign-in, the shell (header and navigation), and the router that picks a
// view from the address's hash (`#/pipeline`, `#/integrations/…`, `#/wizard`…).

import { h, fill, toast } from './dom.js';
import { t, lang, toggleLang } from './i18n.js';
import { gql, session } from './gql.js';
import * as pipeline from './pipeline.js';
import * as integrations from './integrations.js';
import * as wizard from './wizard.js';
import * as activities from './activities.js';
import * as search from './search.js';
import * as team from './team.js';
import * as setup from './setup.js';
import * as report from './report.js';
import * as privacy from './privacy.js';
import * as outbound from './outbound.js';
import { problem } from './explain.js';

const ROUTES = [
  [/^\/?$/, pipeline.board],
  [/^\/pipeline$/, pipeline.board],
  [/^\/deals\/([^/]+)$/, pipeline.deal],
  [/^\/integrations$/, integrations.list],
  [/^\/integrations\/([^/]+)$/, integrations.detail],
  [/^\/integrations\/([^/]+)\/deliveries$/, integrations.deliveries],
  [/^\/activities$/, activities.page],
  [/^\/search$/, search.page],
  [/^\/report$/, report.page],
  [/^\/account$/, team.account],
  [/^\/team$/, team.page],
  [/^\/setup$/, setup.page],
  [/^\/audit$/, privacy.audit],
  [/^\/webhooks$/, outbound.page],
  [/^\/webhooks\/([^/]+)$/, outbound.messages],
  [/^\/wizard$/, wizard.step],
  [/^\/wizard\/([^/]+)\/([1-4])$/, wizard.step],
];

/** Who is signed in (`me`), loaded once per sign-in. */
export const caller = { user: null };

let current = null;

/**
 * Renders the view for the current address. Each view gets a `view` handle: `view.alive`
 * turns false when the user navigates away, and `view.onLeave(fn)` registers clean-up
 * (timers, subscriptions).
 */
async function render() {
  if (current) {
    current.alive = false;
    for (const fn of current.cleanups) fn();
  }
  const view = {
    alive: true,
    cleanups: [],
    onLeave(fn) {
      this.cleanups.push(fn);
    },
  };
  current = view;
  window.scrollTo(0, 0);
  document.documentElement.lang = lang();
  const main = document.getElementById('main');
  if (!session.signedIn) {
    header(null);
    return signIn(main, view);
  }
  if (!caller.user) {
    try {
      caller.user = (await gql('{ me { id name email role } }')).me;
    } catch (err) {
      if (!session.signedIn) return render();
      fill(main, h('p', { class: 'error', role: 'alert' }, problem(err)));
      return;
    }
  }
  header(caller.user);
  const [path, query] = window.location.hash.slice(1).split('?');
  const params = new URLSearchParams(query || '');
  for (const [pattern, show] of ROUTES) {
    const match = (path || '/').match(pattern);
    if (!match) continue;
    fill(main, h('p', { class: 'muted' }, t('common.loading')));
    try {
      await show(main, view, params, ...match.slice(1).map(decodeURIComponent));
      // A new page: the keyboard and a screen reader start at its heading.
      if (view.alive && !main.contains(document.activeElement)) main.querySelector('h1')?.focus({ preventScroll: true });
    } catch (err) {
      if (view.alive) fill(main, h('p', { class: 'error', role: 'alert' }, problem(err)));
    }
    return;
  }
  fill(main, h('p', {}, t('common.notFound')));
}

function header(user) {
  const nav = document.getElementById('nav');
  const here = window.location.hash || '#/';
  const link = (href, key) =>
    h('a', { href, 'aria-current': here === href || here.startsWith(`${href}/`) || here.startsWith(`${href}?`) ? 'page' : false }, t(key));
  const language = h('button', { type: 'button', class: 'link', id: 'language', onclick: () => { toggleLang(); render(); } }, t('nav.language'));
  if (!user) {
    fill(nav, language);
    return;
  }
  fill(
    nav,
    h(
      'ul',
      { 'aria-label': t('nav.menu') },
      h('li', {}, link('#/pipeline', 'nav.pipeline')),
      h('li', {}, activitiesLink(link)),
      // Members never see the set-up pages.
      h('li', {}, link('#/report', 'nav.report')),
      user.role === 'ADMIN' ? h('li', {}, link('#/integrations', 'nav.integrations')) : null,
      user.role === 'ADMIN' ? h('li', {}, link('#/wizard', 'nav.wizard')) : null,
      user.role === 'ADMIN' ? h('li', {}, link('#/setup', 'nav.setup')) : null,
      user.role === 'ADMIN' ? h('li', {}, link('#/team', 'nav.team')) : null,
      user.role === 'ADMIN' ? h('li', {}, link('#/webhooks', 'nav.webhooks')) : null,
      user.role === 'ADMIN' ? h('li', {}, link('#/audit', 'nav.audit')) : null,
    ),
    search.box(),
    h('a', { class: 'who', href: '#/account', id: 'account' }, user.name || user.email),
    language,
    h('button', { type: 'button', class: 'link', id: 'sign-out', onclick: signOut }, t('nav.signOut')),
  );
}

/** "Minhas atividades", with a badge counting what is due by the end of today. */
function activitiesLink(link) {
  const a = link('#/activities', 'nav.activities');
  a.id = 'nav-activities';
  activities
    .dueCount()
    .then((n) => {
      if (n > 0) a.append(' ', h('span', { class: 'nav-count', id: 'activities-badge', 'aria-label': t('activity.badge', n) }, String(n)));
    })
    .catch(() => {});
  return a;
}

function signIn(main, view) {
  const email = h('input', { id: 'email', type: 'email', autocomplete: 'username', required: true });
  const password = h('input', { id: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const error = h('p', { class: 'error', role: 'alert' });
  const submit = h('button', { type: 'submit', class: 'primary' }, t('login.submit'));
  const form = h(
    'form',
    { class: 'card narrow', id: 'login' },
    h('h1', {}, t('login.title')),
    h('div', { class: 'field' }, h('label', { for: 'email' }, t('login.email')), email),
    h('div', { class: 'field' }, h('label', { for: 'password' }, t('login.password')), password),
    error,
    submit,
    h('p', { class: 'muted' }, t('login.hint')),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    submit.disabled = true;
    error.textContent = '';
    try {
      const data = await gql(
        'mutation($email: String!, $password: String!) { login(email: $email, password: $password) { user { id name email role } } }',
        { email: email.value.trim(), password: password.value },
      );
      caller.user = data.login.user;
      // Stay on the page that was asked for (a bookmark, or where the session expired).
      render();
    } catch (err) {
      error.textContent = err.code === 'UNAUTHENTICATED' ? t('login.failed') : problem(err);
      submit.disabled = false;
      password.select();
    }
  });
  fill(main, form);
  if (view.alive) email.focus();
}

async function signOut() {
  try {
    await gql('mutation { logout }');
  } catch {
    // The session is forgotten here whatever the server said.
  }
  session.clear();
  caller.user = null;
  toast(t('nav.signOut'));
  render();
}

window.addEventListener('hashchange', render);
window.addEventListener('crm:signed-out', () => {
  caller.user = null;
  render();
});
render();
