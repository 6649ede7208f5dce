// The team (admins): invite a person with a role and a first password, change a role,
// set a password. "Minha conta" (everyone): change one's own password.

import { h, fill, toast, select, field } from './dom.js';
import { t } from './i18n.js';
import { gql } from './gql.js';
import { caller } from './app.js';
import { problem } from './explain.js';

const ROLES = ['MEMBER', 'ADMIN'];

/** Shows a failure in plain words and keeps the form as it was. */
function failed(err) {
  toast(problem(err), 'error');
}

function roleControl(user, reload) {
  const id = `role-${user.id}`;
  const role = select(id, ROLES.map((r) => [r, t(`role.${r}`)]), user.role, { 'aria-label': t('team.roleOf', user.name || user.email) });
  const button = h('button', { type: 'submit', class: 'small' }, t('common.save'));
  const form = h('form', { class: 'inline', 'data-role-form': user.id }, role, button);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    button.disabled = true;
    try {
      await gql('mutation($u: ID!, $r: Role!) { setUserRole(userId: $u, role: $r) { id role } }', { u: user.id, r: role.value });
      toast(t('common.saved'));
      reload();
    } catch (err) {
      failed(err);
      role.value = user.role;
      button.disabled = false;
    }
  });
  return form;
}

function passwordControl(user) {
  const id = `password-${user.id}`;
  const password = h('input', { id, type: 'password', autocomplete: 'new-password', minlength: '10', required: true, 'aria-label': t('team.passwordOf', user.name || user.email) });
  const button = h('button', { type: 'submit', class: 'small' }, t('team.setPassword'));
  const form = h('form', { class: 'inline', 'data-password-form': user.id }, password, button);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    button.disabled = true;
    try {
      await gql('mutation($u: ID!, $p: String!) { setUserPassword(userId: $u, password: $p) { id } }', { u: user.id, p: password.value });
      password.value = '';
      toast(t('team.passwordSet'));
    } catch (err) {
      failed(err);
    }
    button.disabled = false;
  });
  return form;
}

function inviteForm(reload) {
  const name = h('input', { id: 'invite-name', required: true, maxlength: '200', autocomplete: 'off' });
  const email = h('input', { id: 'invite-email', type: 'email', required: true, autocomplete: 'off' });
  const role = select('invite-role', ROLES.map((r) => [r, t(`role.${r}`)]), 'MEMBER');
  const password = h('input', { id: 'invite-password', type: 'password', minlength: '10', required: true, autocomplete: 'new-password' });
  const button = h('button', { type: 'submit', class: 'primary', id: 'invite' }, t('team.invite'));
  const form = h(
    'form',
    { class: 'card', id: 'invite-form' },
    h('h2', {}, t('team.inviteTitle')),
    field(t('team.name'), name),
    field(t('login.email'), email),
    field(t('team.role'), role),
    field(t('team.firstPassword'), password, t('team.firstPasswordHint')),
    h('p', {}, button),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    button.disabled = true;
    try {
      const input = { name: name.value.trim(), email: email.value.trim(), role: role.value, password: password.value };
      await gql('mutation($i: CreateUserInput!) { createUser(input: $i) { id } }', { i: input });
      toast(t('team.invited', input.email));
      reload();
    } catch (err) {
      failed(err);
      button.disabled = false;
    }
  });
  return form;
}

/** `#/team` (admins). */
export async function page(main, view) {
  if (caller.user?.role !== 'ADMIN') {
    fill(main, h('p', {}, t('common.notFound')));
    return;
  }
  const data = await gql('{ users { id name email role } }');
  if (!view.alive) return;
  const reload = () => window.dispatchEvent(new HashChangeEvent('hashchange'));
  const rows = data.users.map((u) =>
    h(
      'tr',
      { 'data-user': u.id },
      h('td', {}, u.name, u.id === caller.user.id ? h('span', { class: 'muted' }, ` (${t('team.you')})`) : null),
      h('td', {}, u.email),
      h('td', {}, roleControl(u, reload)),
      h('td', {}, passwordControl(u)),
    ),
  );
  fill(
    main,
    h('h1', { tabindex: '-1' }, t('nav.team')),
    h(
      'div',
      { class: 'card scroll' },
      h(
        'table',
        { id: 'team' },
        h('caption', { class: 'offscreen' }, t('nav.team')),
        h('thead', {}, h('tr', {}, ['team.name', 'login.email', 'team.role', 'team.password'].map((k) => h('th', { scope: 'col' }, t(k))))),
        h('tbody', {}, rows),
      ),
    ),
    inviteForm(reload),
  );
  main.querySelector('h1').focus();
}

/** `#/account`: the signed-in person's own password. */
export async function account(main) {
  const current = h('input', { id: 'current-password', type: 'password', required: true, autocomplete: 'current-password' });
  const next = h('input', { id: 'new-password', type: 'password', required: true, minlength: '10', autocomplete: 'new-password' });
  const button = h('button', { type: 'submit', class: 'primary', id: 'change-password' }, t('account.change'));
  const form = h(
    'form',
    { class: 'card narrow' },
    field(t('account.current'), current),
    field(t('account.new'), next, t('team.firstPasswordHint')),
    h('p', {}, button),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    button.disabled = true;
    try {
      await gql('mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }', { c: current.value, n: next.value });
      current.value = '';
      next.value = '';
      toast(t('account.changed'));
    } catch (err) {
      failed(err);
    }
    button.disabled = false;
  });
  fill(main, h('h1', { tabindex: '-1' }, t('nav.account')), h('p', {}, caller.user.name, ' · ', caller.user.email, ' · ', t(`role.${caller.user.role}`)), form);
  main.querySelector('h1').focus();
}
