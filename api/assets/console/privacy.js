// A buyer's data rights (admins): on a deal's page, the access report of everything held
// about the buyer and the erasure of their personal data; the audit log page (`#/audit`).

import { h, fill, toast, when, checkbox, field } from './dom.js';
import { t } from './i18n.js';
import { gql } from './gql.js';
import { caller } from './app.js';
import { problem } from './explain.js';

/** The report as JSON on the page, with a link that saves it as a file. */
function reportButton(contact, out) {
  const button = h('button', { type: 'button', id: 'data-report' }, t('privacy.report'));
  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      const data = await gql('query($c: ID!) { contactDataReport(contactId: $c) }', { c: contact.id });
      const text = data.contactDataReport;
      const file = URL.createObjectURL(new Blob([text], { type: 'application/json' }));
      fill(
        out,
        h('p', {}, h('a', { href: file, download: `dados-${contact.id}.json`, id: 'data-report-file' }, t('privacy.save'))),
        h('pre', { class: 'payload', id: 'data-report-json', tabindex: '0' }, text),
      );
    } catch (err) {
      toast(problem(err), 'error');
    }
    button.disabled = false;
  });
  return button;
}

function eraseForm(contact, reload) {
  const reason = h('textarea', { id: 'erase-reason', required: true, maxlength: '500', rows: '2' });
  const sure = checkbox('erase-confirm', t('privacy.confirm'), false, { required: true });
  const button = h('button', { type: 'submit', class: 'danger', id: 'erase' }, t('privacy.erase'));
  const form = h('form', { id: 'erase-form' }, field(t('privacy.reason'), reason, t('privacy.reasonHint')), sure, h('p', {}, button));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    button.disabled = true;
    try {
      const data = await gql(
        'mutation($c: ID!, $r: String!) { eraseContact(contactId: $c, reason: $r) { dealsRedacted deliveriesRedacted } }',
        { c: contact.id, r: reason.value.trim() },
      );
      toast(t('privacy.erased', data.eraseContact.dealsRedacted, data.eraseContact.deliveriesRedacted));
      reload();
    } catch (err) {
      toast(problem(err), 'error');
      button.disabled = false;
    }
  });
  return form;
}

/** The deal page's card for the buyer's data rights; nothing for members. */
export function contactRights(contact, reload) {
  if (caller.user?.role !== 'ADMIN') return null;
  const out = h('div', { id: 'data-report-out' });
  const body = contact.erasedAt
    ? [h('p', { id: 'erased-note' }, t('privacy.erasedAt', when(contact.erasedAt)))]
    : [h('p', { class: 'muted' }, t('privacy.intro')), h('p', {}, reportButton(contact, out)), out, eraseForm(contact, reload)];
  return h('section', { class: 'card', id: 'data-rights' }, h('h2', {}, t('privacy.title')), ...body);
}

function entryRow(e) {
  const who = e.actor ? e.actor.name || e.actor.email : t('audit.noActor');
  const action = t(`audit.${e.action}`);
  return h(
    'tr',
    { 'data-action': e.action },
    h('td', {}, when(e.at)),
    h('td', {}, who),
    h('td', {}, action.startsWith('audit.') ? e.action : action),
    h('td', {}, h('code', { class: 'wrap' }, e.details || '')),
  );
}

/** The audit log: who changed what, newest first, 50 at a time. */
export async function audit(main, view) {
  const query = 'query($after: String) { auditLog(first: 50, after: $after) { nodes { at action targetType details actor { name email } } pageInfo { hasNextPage endCursor } } }';
  const rows = h('tbody', {});
  const more = h('button', { type: 'button', id: 'audit-more' }, t('audit.more'));
  let after = null;
  async function load() {
    const data = await gql(query, { after });
    if (!view.alive) return;
    rows.append(...data.auditLog.nodes.map(entryRow));
    after = data.auditLog.pageInfo.endCursor;
    more.hidden = !data.auditLog.pageInfo.hasNextPage;
  }
  more.addEventListener('click', () => load().catch((err) => toast(problem(err), 'error')));
  await load();
  if (!view.alive) return;
  const head = h('tr', {}, ...['audit.at', 'audit.actor', 'audit.action', 'audit.details'].map((k) => h('th', { scope: 'col' }, t(k))));
  fill(
    main,
    h('h1', { tabindex: '-1' }, t('audit.title')),
    h('p', { class: 'muted' }, t('audit.intro')),
    h('div', { class: 'table-wrap' }, h('table', { id: 'audit' }, h('thead', {}, head), rows)),
    more,
  );
}
