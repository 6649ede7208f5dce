// Outbound webhooks for admins (`#/webhooks`): the account's endpoints, a form to add one,
// the one-time secret with a copy button, and per endpoint (`#/webhooks/<id>`) its
// messages with their attempts, resend, recovery of a window and a test message.

import { h, fill, toast, when } from './dom.js';
import { t } from './i18n.js';
import { gql } from './gql.js';
import { problem } from './explain.js';

const TYPES = ['deal.created', 'deal.moved', 'deal.won', 'deal.lost', 'deal.reopened', 'deal.owner_changed', 'contact.created', 'contact.erased'];
const FIELDS = 'id url description eventTypes includeContactData enabled disabledReason secretHint createdAt';

/** The one-time secret, with a copy button. */
function secretBox(secret) {
  const copy = h('button', { type: 'button', id: 'copy-secret' }, t('outbound.copy'));
  copy.addEventListener('click', () => {
    navigator.clipboard.writeText(secret).then(() => toast(t('outbound.copied')), () => toast(t('outbound.copyFailed'), 'error'));
  });
  return h(
    'div',
    { class: 'card', id: 'endpoint-secret', role: 'status' },
    h('p', {}, t('outbound.secretOnce')),
    h('p', {}, h('code', { class: 'wrap', id: 'secret-value' }, secret), ' ', copy),
  );
}

function createForm(reload) {
  const url = h('input', { id: 'endpoint-url', type: 'url', required: true, maxlength: 2000 });
  const description = h('input', { id: 'endpoint-description', maxlength: 500 });
  const contact = h('input', { id: 'endpoint-contact', type: 'checkbox' });
  const boxes = TYPES.map((type) => h('input', { type: 'checkbox', value: type, 'data-type': type }));
  const form = h(
    'form',
    { class: 'card', id: 'endpoint-form' },
    h('h2', {}, t('outbound.add')),
    h('label', {}, t('outbound.url'), url),
    h('label', {}, t('outbound.description'), description),
    h('fieldset', {}, h('legend', {}, t('outbound.types')), ...boxes.map((box) => h('label', { class: 'inline' }, box, ' ', box.value))),
    h('p', { class: 'muted' }, t('outbound.typesHint')),
    h('label', { class: 'inline' }, contact, ' ', t('outbound.contactData')),
    h('p', {}, h('button', { type: 'submit', id: 'endpoint-create' }, t('outbound.create'))),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const input = {
      url: url.value.trim(),
      description: description.value.trim() || null,
      eventTypes: boxes.filter((b) => b.checked).map((b) => b.value),
      includeContactData: contact.checked,
    };
    try {
      const data = await gql(`mutation($i: WebhookEndpointInput!) { createWebhookEndpoint(input: $i) { secret endpoint { id } } }`, { i: input });
      await reload(data.createWebhookEndpoint.secret);
    } catch (err) {
      toast(problem(err), 'error');
    }
  });
  return form;
}

async function act(query, id, reload, done) {
  try {
    const data = await gql(query, { id });
    await reload(data?.rotateWebhookEndpointSecret?.secret);
    if (done) toast(done);
  } catch (err) {
    toast(problem(err), 'error');
  }
}

function endpointRow(e, reload) {
  const button = (key, query, done) => {
    const b = h('button', { type: 'button', class: 'link', 'data-act': key }, t(`outbound.${key}`));
    b.addEventListener('click', () => act(query, e.id, reload, done));
    return b;
  };
  const state = e.enabled ? t('outbound.enabled') : t('outbound.disabled', e.disabledReason || '');
  return h(
    'tr',
    { 'data-endpoint': e.id },
    h('td', {}, h('a', { href: `#/webhooks/${encodeURIComponent(e.id)}` }, e.url), e.description ? h('div', { class: 'muted' }, e.description) : null),
    h('td', {}, e.eventTypes.length ? e.eventTypes.join(', ') : t('outbound.allTypes')),
    h('td', { class: e.enabled ? '' : 'error' }, state),
    h('td', {}, `…${e.secretHint}`),
    h(
      'td',
      {},
      e.enabled
        ? button('disable', 'mutation($id: ID!) { disableWebhookEndpoint(id: $id) { id } }')
        : button('enable', 'mutation($id: ID!) { enableWebhookEndpoint(id: $id) { id } }'),
      ' ',
      button('test', 'mutation($id: ID!) { sendTestWebhook(id: $id) { id } }', t('outbound.testSent')),
      ' ',
      button('rotate', 'mutation($id: ID!) { rotateWebhookEndpointSecret(id: $id, graceHours: 24) { secret } }'),
      ' ',
      button('delete', 'mutation($id: ID!) { deleteWebhookEndpoint(id: $id) }'),
    ),
  );
}

/** The account's endpoints and the form to add one. */
export async function page(main, view) {
  async function reload(secret) {
    const data = await gql(`{ webhookEndpoints { ${FIELDS} } }`);
    if (!view.alive) return;
    const head = h('tr', {}, ...['outbound.url', 'outbound.types', 'outbound.state', 'outbound.secret', 'outbound.actions'].map((k) => h('th', { scope: 'col' }, t(k))));
    const rows = data.webhookEndpoints.map((e) => endpointRow(e, reload));
    fill(
      main,
      h('h1', { tabindex: '-1' }, t('outbound.title')),
      h('p', { class: 'muted' }, t('outbound.intro')),
      secret ? secretBox(secret) : null,
      rows.length
        ? h('div', { class: 'table-wrap' }, h('table', { id: 'endpoints' }, h('thead', {}, head), h('tbody', {}, rows)))
        : h('p', { id: 'no-endpoints' }, t('outbound.none')),
      createForm(reload),
    );
  }
  await reload(null);
}

function attemptsText(m) {
  if (!m.attempts.length) return t('outbound.noAttempt');
  return m.attempts.map((a) => `${when(a.at)} · ${a.httpStatus ?? a.error ?? ''} · ${a.durationMs} ms · ${a.trigger}`).join('\n');
}

function messageRow(m, reload) {
  const resend = h('button', { type: 'button', class: 'link', 'data-resend': m.id }, t('outbound.resend'));
  resend.addEventListener('click', async () => {
    try {
      await gql('mutation($id: ID!) { resendOutboundMessage(id: $id) { id } }', { id: m.id });
      toast(t('outbound.resent'));
      await reload();
    } catch (err) {
      toast(problem(err), 'error');
    }
  });
  return h(
    'tr',
    { 'data-message': m.id, 'data-status': m.status },
    h('td', {}, when(m.createdAt)),
    h('td', {}, m.type),
    h('td', {}, t(`outbound.status.${m.status}`), m.nextAttemptAt ? h('div', { class: 'muted' }, t('outbound.next', when(m.nextAttemptAt))) : null),
    h('td', {}, h('pre', { class: 'wrap' }, attemptsText(m))),
    h('td', {}, h('code', {}, m.id), ' ', resend),
  );
}

function recoverForm(id, reload) {
  const since = h('input', { type: 'datetime-local', id: 'recover-since', required: true });
  const form = h('form', { class: 'inline-form', id: 'recover-form' }, h('label', {}, t('outbound.recoverSince'), since), h('button', { type: 'submit' }, t('outbound.recover')));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      const data = await gql('mutation($id: ID!, $s: DateTime!) { recoverWebhookEndpoint(id: $id, since: $s) }', { id, s: new Date(since.value).toISOString() });
      toast(t('outbound.recovered', data.recoverWebhookEndpoint));
      await reload();
    } catch (err) {
      toast(problem(err), 'error');
    }
  });
  return form;
}

/** One endpoint's messages, newest first, with their attempts; refreshed every few
 * seconds while any is pending. */
export async function messages(main, view, params, id) {
  const status = params.get('status') || null;
  let timer = null;
  view.onLeave(() => clearTimeout(timer));
  async function reload() {
    clearTimeout(timer);
    const query = `query($id: ID!, $s: OutboundStatus) { webhookEndpoint(id: $id) { ${FIELDS} messages(status: $s, first: 50) { totalCount nodes { id type status createdAt nextAttemptAt attempts { at httpStatus error durationMs trigger } } } } }`;
    const data = await gql(query, { id, s: status });
    if (!view.alive) return;
    const e = data.webhookEndpoint;
    const head = h('tr', {}, ...['outbound.when', 'outbound.type', 'outbound.state', 'outbound.attempts', 'outbound.message'].map((k) => h('th', { scope: 'col' }, t(k))));
    const filter = (value, key) => h('a', { href: `#/webhooks/${encodeURIComponent(id)}${value ? `?status=${value}` : ''}`, 'aria-current': status === value ? 'page' : false }, t(key));
    fill(
      main,
      h('p', {}, h('a', { href: '#/webhooks' }, t('outbound.back'))),
      h('h1', { tabindex: '-1' }, e.url),
      h('p', { class: e.enabled ? 'muted' : 'error', id: 'endpoint-state' }, e.enabled ? t('outbound.enabled') : t('outbound.disabled', e.disabledReason || '')),
      h('p', { class: 'filters' }, filter(null, 'outbound.all'), ' · ', filter('PENDING', 'outbound.status.PENDING'), ' · ', filter('FAILED', 'outbound.status.FAILED'), ' · ', filter('DELIVERED', 'outbound.status.DELIVERED')),
      recoverForm(id, reload),
      h('p', { class: 'muted' }, t('outbound.count', e.messages.totalCount)),
      h('div', { class: 'table-wrap' }, h('table', { id: 'messages' }, h('thead', {}, head), h('tbody', {}, e.messages.nodes.map((m) => messageRow(m, reload))))),
    );
    if (e.messages.nodes.some((m) => m.status === 'PENDING')) {
      timer = setTimeout(() => reload().catch(() => {}), 2000);
    }
  }
  await reload();
}
