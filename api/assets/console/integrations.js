// Integrations: the list, one integration (status, URL, products, credentials, imports
// with live progress) and its webhook deliveries.

import { h, fill, when, copy, toast, field, checkbox, select, badge } from './dom.js';
import { t, named } from './i18n.js';
import { gql, subscribe } from './gql.js';
import { importableOf, secretForm } from './platforms.js';
import { explain, problem } from './explain.js';

export const EVENTS = [
  'PURCHASE_OUT_OF_SHOPPING_CART', 'PURCHASE_BILLET_PRINTED', 'PURCHASE_CANCELED', 'PURCHASE_EXPIRED',
  'PURCHASE_APPROVED', 'PURCHASE_COMPLETE', 'PURCHASE_DELAYED', 'PURCHASE_PROTEST', 'PURCHASE_REFUNDED',
  'PURCHASE_CHARGEBACK', 'SUBSCRIPTION_CANCELLATION', 'SWITCH_PLAN', 'UPDATE_SUBSCRIPTION_CHARGE_DATE',
  'CLUB_FIRST_ACCESS', 'CLUB_MODULE_COMPLETED',
];

const HEALTH_KIND = { OK: 'won', WARNING: 'warn', FAILING: 'lost' };
const STATUS_KIND = { ACTIVE: 'won', PAUSED: 'warn', DRAFT: 'muted' };

/** Runs a mutation from a button: disables it meanwhile and reports the outcome. */
export async function act(button, work, done) {
  button.disabled = true;
  try {
    const result = await work();
    if (done) toast(done);
    return result;
  } catch (err) {
    toast(problem(err), 'error');
    return undefined;
  } finally {
    button.disabled = false;
  }
}

/** A read-only URL with a copy button. */
export function urlBox(id, url, labelledBy = null) {
  const input = h('input', { id, type: 'text', readonly: true, value: url, class: 'mono', 'aria-labelledby': labelledBy });
  return h(
    'div',
    { class: 'field' },
    labelledBy ? null : h('label', { for: id }, t('wizard.url')),
    h(
      'div',
      { class: 'inline' },
      input,
      h('button', { type: 'button', id: `${id}-copy`, onclick: async () => { input.select(); toast((await copy(url)) ? t('common.copied') : url); } }, t('common.copy')),
    ),
  );
}

/** `#/integrations` */
export async function list(main, view) {
  const data = await gql('{ integrations { id name status lastEventAt health { status } products { id } } }');
  if (!view.alive) return;
  const rows = data.integrations.map((i) =>
    h(
      'li',
      { class: 'card row-card' },
      h('a', { href: `#/integrations/${encodeURIComponent(i.id)}`, class: 'title' }, i.name),
      badge(t(`status.${i.status}`), STATUS_KIND[i.status]),
      badge(t(`health.${i.health.status}`), HEALTH_KIND[i.health.status]),
      h('span', { class: 'muted small' }, `${t('integration.lastEvent')}: ${i.lastEventAt ? when(i.lastEventAt) : t('integration.never')}`),
    ),
  );
  fill(
    main,
    h('h1', { tabindex: '-1' }, t('integrations.title')),
    rows.length
      ? h('ul', { class: 'plain', id: 'integrations' }, rows)
      : h('p', { class: 'empty', id: 'integrations-empty' }, t('integrations.empty'), ' ', h('a', { href: '#/wizard' }, t('integrations.start'))),
  );
}

const RUN = `id kind status from to windowsTotal windowsDone salesSeen dealsCreated dealsUpdated skipped failedSales healed error createdAt finishedAt`;
const FINAL = ['SUCCEEDED', 'FAILED', 'CANCELED'];

/** `#/integrations/{id}` */
export async function detail(main, view, _params, id) {
  const data = await gql(
    `query($id: ID!) { integration(id: $id) { id platform name label status events checkoutEvents hasWebhookSecret webhookUrl hasCredentials lastEventAt lastTestEventAt
       health { status reasons refusedLastHour failedDeliveries }
       products { id hotmartProductId platformProductId name label hottokHint refreshedAt refreshError variations { code } }
       group { id name } }
     importRuns(integrationId: $id) { ${RUN} } }`,
    { id },
  );
  if (!view.alive) return;
  const i = data.integration;
  if (!i) {
    fill(main, h('p', {}, t('common.notFound')));
    return;
  }
  const reload = () => detail(main, view, null, id);
  const toggle =
    i.status === 'ACTIVE'
      ? h('button', { type: 'button', id: 'pause', onclick: (e) => act(e.target, () => gql('mutation($id: ID!) { pauseIntegration(id: $id) { id } }', { id })).then(reload) }, t('integration.pause'))
      : i.status === 'PAUSED'
        ? h('button', { type: 'button', id: 'activate', onclick: (e) => act(e.target, () => gql('mutation($id: ID!) { activateIntegration(id: $id) { id } }', { id })).then(reload) }, t('integration.activate'))
        : h('a', { href: `#/wizard/${encodeURIComponent(id)}/2`, class: 'button' }, t('integration.continueSetup'));
  fill(
    main,
    h('h1', { tabindex: '-1' }, i.name, ' ', badge(t(`status.${i.status}`), STATUS_KIND[i.status]), ' ', badge(t(`health.${i.health.status}`), HEALTH_KIND[i.health.status])),
    h(
      'p',
      { class: 'actions' },
      toggle,
      h('a', { href: `#/integrations/${encodeURIComponent(id)}/deliveries`, class: 'button' }, t('integration.deliveries')),
      h('a', { href: `#/pipeline?group=${encodeURIComponent(i.group.id)}`, class: 'button' }, t('nav.pipeline')),
    ),
    h('p', { class: 'muted' }, `${t('integration.lastEvent')}: ${i.lastEventAt ? when(i.lastEventAt) : t('integration.never')}`),
    i.health.reasons.length
      ? h('section', { class: 'card warn' }, h('h2', {}, t('integration.reasons')), h('ul', {}, i.health.reasons.map((r) => h('li', {}, explain(r)))))
      : null,
    webhook(i, reload),
    i.platform === 'HOTMART' ? null : h('section', { class: 'card' }, h('h2', {}, t('platform.secretTitle')), secretForm(i, reload)),
    products(i, reload),
    i.platform === 'EDUZZ' ? h('section', { class: 'card', id: 'no-import' }, h('p', { class: 'muted' }, t('platform.EDUZZ.noImport'))) : credentials(i, reload),
    i.platform === 'EDUZZ' ? null : imports(i, data.importRuns, view),
  );
}

function webhook(i, reload) {
  const grace = h('input', { id: 'grace-hours', type: 'number', min: '0', max: '168', value: '24', inputmode: 'numeric' });
  const rotate = h('button', { type: 'submit', id: 'rotate' }, t('integration.rotate'));
  const form = h('form', { class: 'inline' }, field(t('integration.graceHours'), grace), rotate);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const done = await act(rotate, () => gql('mutation($id: ID!, $h: Int) { rotateWebhookToken(id: $id, graceHours: $h) { id } }', { id: i.id, h: Number(grace.value) || 0 }), t('integration.rotated'));
    if (done) reload();
  });
  return h('section', { class: 'card' }, h('h2', { id: 'webhook-url-heading' }, t('wizard.url')), urlBox('webhook-url', i.webhookUrl, 'webhook-url-heading'), form);
}

function products(i, reload) {
  const hotmart = i.platform === 'HOTMART';
  const heads = hotmart ? ['wizard.productId', 'wizard.productName', 'Hottok', 'integration.variations', 'integration.refreshedAt', ''] : [`platform.${i.platform}.productId`, 'wizard.productName'];
  const refresh = (hotmartProductId) => (event) =>
    act(event.target, () => gql('mutation($id: ID!, $input: RefreshProductsInput) { refreshHotmartProducts(integrationId: $id, input: $input) { id } }', { id: i.id, input: hotmartProductId ? { hotmartProductId } : null }), t('integration.refreshQueued'));
  const rows = i.products.map((p) =>
    h(
      'tr',
      {},
      h('td', {}, p.platformProductId),
      h('td', {}, p.name ?? t('common.none')),
      hotmart ? h('td', { class: 'mono' }, `…${p.hottokHint}`) : null,
      hotmart ? h('td', {}, String(p.variations.length)) : null,
      hotmart ? h('td', {}, p.refreshError ? h('span', { class: 'error' }, explain(p.refreshError)) : when(p.refreshedAt)) : null,
      hotmart ? h('td', {}, i.hasCredentials ? h('button', { type: 'button', onclick: refresh(p.hotmartProductId) }, t('integration.refresh')) : null) : null,
    ),
  );
  return h(
    'section',
    { class: 'card' },
    h('h2', {}, t('integration.products')),
    h(
      'div',
      { class: 'scroll' },
      h(
        'table',
        {},
        h('thead', {}, h('tr', {}, heads.map((k) => h('th', { scope: 'col' }, k ? t(k) : '')))),
        h('tbody', {}, rows),
      ),
    ),
    hotmart && i.hasCredentials && i.products.length ? h('button', { type: 'button', id: 'refresh-all', onclick: refresh(null) }, t('integration.refreshAll')) : null,
    h('details', {}, h('summary', {}, t('wizard.addProduct')), productForm(i.id, reload, i.platform)),
  );
}

/** The form that registers a product (id, and for Hotmart its hottok), used here and by the wizard. */
export function productForm(integrationId, done, platform = 'HOTMART') {
  const hotmart = platform === 'HOTMART';
  const id = h('input', { id: 'product-id', required: true, inputmode: hotmart ? 'numeric' : 'text', autocomplete: 'off' });
  const hottok = hotmart ? h('input', { id: 'product-hottok', type: 'password', required: true, autocomplete: 'off' }) : null;
  const name = h('input', { id: 'product-name', autocomplete: 'off' });
  const label = h('input', { id: 'product-label', autocomplete: 'off' });
  const submit = h('button', { type: 'submit', id: 'add-product' }, t('wizard.addProduct'));
  const form = h(
    'form',
    { class: 'stack', id: 'product-form' },
    field(hotmart ? t('wizard.productId') : t(`platform.${platform}.productId`), id),
    hotmart ? field(t('wizard.hottok'), hottok) : null,
    field(`${t('wizard.productName')} ${t('common.optional')}`, name),
    field(`${t('wizard.productLabel')} ${t('common.optional')}`, label),
    submit,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const input = hotmart ? { hotmartProductId: id.value.trim(), hottok: hottok.value.trim() } : { platformProductId: id.value.trim() };
    if (name.value.trim()) input.name = name.value.trim();
    if (label.value.trim()) input.label = label.value.trim();
    const mutation = hotmart
      ? 'mutation($id: ID!, $input: AddProductInput!) { addHotmartProduct(integrationId: $id, input: $input) { id } }'
      : 'mutation($id: ID!, $input: ProductInput!) { addProduct(integrationId: $id, input: $input) { id } }';
    const added = await act(submit, () => gql(mutation, { id: integrationId, input }), t('common.saved'));
    if (added) done();
  });
  return form;
}

function credentials(i, reload) {
  const clientId = h('input', { id: 'client-id', required: true, autocomplete: 'off' });
  const secret = h('input', { id: 'client-secret', type: 'password', required: true, autocomplete: 'off' });
  const kiwify = i.platform === 'KIWIFY';
  const account = kiwify ? h('input', { id: 'account-id', required: true, autocomplete: 'off' }) : null;
  const submit = h('button', { type: 'submit', id: 'save-credentials' }, t('common.save'));
  const form = h('form', { class: 'stack' }, field(t('integration.clientId'), clientId), field(t('integration.clientSecret'), secret), kiwify ? field(t('platform.KIWIFY.accountId'), account) : null, submit);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const input = { clientId: clientId.value.trim(), clientSecret: secret.value.trim() };
    if (kiwify) input.accountId = account.value.trim();
    const mutation = kiwify
      ? 'mutation($id: ID!, $input: PlatformCredentialsInput!) { setCheckoutCredentials(integrationId: $id, input: $input) { id } }'
      : 'mutation($id: ID!, $input: CredentialsInput!) { setHotmartCredentials(integrationId: $id, input: $input) { id } }';
    const saved = await act(submit, () => gql(mutation, { id: i.id, input }), t('common.saved'));
    if (saved) reload();
  });
  return h(
    'section',
    { class: 'card' },
    h('h2', {}, t('integration.credentials')),
    h('p', { class: i.hasCredentials ? 'muted' : 'warn', id: 'credentials-state' }, t(i.hasCredentials ? 'integration.credentialsSet' : 'integration.credentialsMissing')),
    form,
  );
}

function day(offset) {
  const date = new Date(Date.now() + offset * 86400000);
  return `${date.getFullYear()}-${String(date.getMonth() + 1).padStart(2, '0')}-${String(date.getDate()).padStart(2, '0')}`;
}

function imports(i, runs, view) {
  if (!importableOf(i).length) return h('section', { class: 'card' }, h('h2', {}, t('integration.import')), h('p', { class: 'muted' }, t('integration.nothingImportable')));
  const list = h('ul', { class: 'plain', id: 'import-runs' });
  const show = (run) => {
    const row = runRow(run);
    const old = list.querySelector(`[data-run="${CSS.escape(run.id)}"]`);
    if (old) old.replaceWith(row);
    else list.prepend(row);
  };
  [...runs].reverse().forEach(show);
  runs.filter((r) => !FINAL.includes(r.status)).forEach((r) => follow(r.id, show, view));
  if (!runs.length) list.append(h('li', { class: 'muted', 'data-empty': '' }, t('integration.noRuns')));

  const from = h('input', { id: 'import-from', type: 'date', required: true, value: day(-30) });
  const to = h('input', { id: 'import-to', type: 'date', required: true, value: day(0) });
  const label = h('input', { id: 'import-label', autocomplete: 'off' });
  // Only the events an import can find (an abandoned cart, for one, is in no sales list).
  const hotmart = i.platform === 'HOTMART';
  const label_ = (e) => (hotmart ? t(`event.${e}`) : t(`checkout.${e}`));
  const events = importableOf(i).map((e) => checkbox(`import-event-${e}`, label_(e), true, { value: e, name: 'import-event' }));
  const products = i.products.map((p) => checkbox(`import-product-${p.platformProductId}`, p.name || p.platformProductId, false, { value: hotmart ? p.hotmartProductId : p.id, name: 'import-product' }));
  const submit = h('button', { type: 'submit', id: 'start-import', class: 'primary', disabled: !i.hasCredentials }, t('integration.startImport'));
  const form = h(
    'form',
    { class: 'stack', id: 'import-form' },
    h('div', { class: 'inline' }, field(t('integration.from'), from), field(t('integration.to'), to)),
    h('fieldset', {}, h('legend', {}, t('wizard.events')), events),
    products.length ? h('fieldset', {}, h('legend', {}, t('integration.importProducts')), products) : null,
    field(`${t('integration.importLabel')} ${t('common.optional')}`, label),
    submit,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const ticked = (name) => [...form.querySelectorAll(`input[name="${name}"]:checked`)].map((el) => el.value);
    const end = new Date(`${to.value}T23:59:59`);
    const input = {
      from: new Date(`${from.value}T00:00:00`).toISOString(),
      to: new Date(Math.min(end.getTime(), Date.now())).toISOString(),
      events: ticked('import-event'),
    };
    const productIds = ticked('import-product');
    if (productIds.length) input[hotmart ? 'hotmartProductIds' : 'productIds'] = productIds;
    if (label.value.trim()) input.label = label.value.trim();
    const mutation = hotmart
      ? `mutation($id: ID!, $input: StartImportInput!) { run: startHotmartImport(integrationId: $id, input: $input) { ${RUN} } }`
      : `mutation($id: ID!, $input: StartCheckoutImportInput!) { run: startImport(integrationId: $id, input: $input) { ${RUN} } }`;
    const data = await act(submit, () => gql(mutation, { id: i.id, input }));
    if (!data) return;
    list.querySelector('[data-empty]')?.remove();
    show(data.run);
    follow(data.run.id, show, view);
  });
  return h('section', { class: 'card' }, h('h2', {}, t('integration.import')), form, h('h3', {}, t('integration.runs')), list);
}

/** Follows a run live over the websocket; if the socket fails, polls until it ends. */
function follow(id, show, view) {
  let last = null;
  const poll = async () => {
    while (view.alive && !(last && FINAL.includes(last.status))) {
      await new Promise((resolve) => setTimeout(resolve, 2000));
      try {
        const data = await gql(`query($id: ID!) { importRun(id: $id) { ${RUN} } }`, { id });
        if (data.importRun && view.alive) show((last = data.importRun));
      } catch {
        // Keep trying while the page is open.
      }
    }
  };
  const stop = subscribe(
    `subscription($id: ID!) { importRunUpdated(id: $id) { ${RUN} } }`,
    { id },
    (data) => {
      if (view.alive) show((last = data.importRunUpdated));
    },
    (error) => {
      if (error && view.alive && !(last && FINAL.includes(last.status))) poll();
    },
  );
  view.onLeave(stop);
}

/** How far a run is, in days of its period (its windows split the period evenly). */
function daysDone(run) {
  const total = Math.max(1, Math.ceil((Date.parse(run.to) - Date.parse(run.from)) / 86_400_000));
  const done = run.windowsTotal ? Math.round((total * run.windowsDone) / run.windowsTotal) : 0;
  return [Math.min(done, total), total];
}

function runRow(run) {
  const kind = { SUCCEEDED: 'won', FAILED: 'lost', CANCELED: 'muted', RUNNING: 'warn', QUEUED: 'muted' }[run.status];
  const [done, total] = daysDone(run);
  return h(
    'li',
    { class: 'run', 'data-run': run.id, 'data-status': run.status },
    h('div', { class: 'row' }, badge(t(`import.${run.status}`), kind), ' ', h('span', { class: 'small muted' }, `${named('runKind', run.kind)} · ${when(run.from)} → ${when(run.to)}`)),
    h('progress', { max: String(Math.max(run.windowsTotal, 1)), value: String(run.windowsDone), 'aria-label': t('integration.days', done, total) }),
    h('div', { class: 'small' }, t('integration.days', done, total), ' · ', t('integration.counters', run.salesSeen, run.dealsCreated, run.dealsUpdated, run.skipped, run.failedSales)),
    run.error ? h('div', { class: 'error small' }, explain(run.error)) : null,
  );
}

const STATUSES = ['PENDING', 'PROCESSED', 'DUPLICATE', 'IGNORED', 'TEST', 'FAILED', 'REJECTED'];
const REPLAYABLE = ['FAILED', 'IGNORED'];

/** `#/integrations/{id}/deliveries?status=…` */
export async function deliveries(main, view, params, id) {
  const status = STATUSES.includes(params.get('status')) ? params.get('status') : null;
  const body = h('tbody', {});
  const more = h('button', { type: 'button', hidden: true }, t('common.more'));
  const total = h('span', { class: 'count' });
  let after = null;
  let name = '';
  const load = async () => {
    const data = await gql(
      `query($id: ID!, $status: DeliveryStatus, $after: String) { integration(id: $id) { name
         deliveries(status: $status, first: 25, after: $after) { totalCount pageInfo { hasNextPage endCursor }
           nodes { id eventId event status reason attempts receivedAt processedAt payload } } } }`,
      { id, status, after },
    );
    if (!view.alive || !data.integration) return data.integration;
    name = data.integration.name;
    const page = data.integration.deliveries;
    total.textContent = String(page.totalCount);
    body.append(...page.nodes.flatMap(deliveryRows));
    after = page.pageInfo.endCursor;
    more.hidden = !page.pageInfo.hasNextPage;
    return data.integration;
  };
  const found = await load();
  if (!view.alive) return;
  if (!found) {
    fill(main, h('p', {}, t('common.notFound')));
    return;
  }
  more.addEventListener('click', () => act(more, load));
  const filter = select('delivery-status', [['', t('common.all')], ...STATUSES.map((s) => [s, t(`delivery.${s}`)])], status ?? '', {
    onchange: (event) => {
      const query = event.target.value ? `?status=${event.target.value}` : '';
      window.location.hash = `#/integrations/${encodeURIComponent(id)}/deliveries${query}`;
    },
  });
  fill(
    main,
    h('p', {}, h('a', { href: `#/integrations/${encodeURIComponent(id)}` }, `← ${name}`)),
    h('h1', { tabindex: '-1' }, t('deliveries.title', name), ' ', total),
    h('form', { class: 'filters', role: 'search', onsubmit: (e) => e.preventDefault() }, h('div', { class: 'field' }, h('label', { for: 'delivery-status' }, t('deliveries.filter')), filter)),
    body.children.length
      ? h(
          'div',
          { class: 'scroll' },
          h(
            'table',
            { id: 'deliveries' },
            h('thead', {}, h('tr', {}, ['deliveries.received', 'deliveries.event', 'deliveries.filter', 'deliveries.reason', 'deliveries.attempts', ''].map((k) => h('th', { scope: 'col' }, k ? t(k) : '')))),
            body,
          ),
        )
      : h('p', { class: 'empty' }, t('deliveries.empty')),
    more,
  );
}

function deliveryRows(d) {
  const payload = h('tr', { class: 'payload', hidden: true }, h('td', { colspan: '6' }, h('pre', {}, pretty(d.payload))));
  const show = h('button', { type: 'button', class: 'link', 'aria-expanded': 'false' }, t('deliveries.payload'));
  show.addEventListener('click', () => {
    payload.hidden = !payload.hidden;
    show.setAttribute('aria-expanded', String(!payload.hidden));
    show.textContent = t(payload.hidden ? 'deliveries.payload' : 'deliveries.hidePayload');
  });
  const statusCell = h('td', {}, badge(t(`delivery.${d.status}`), d.status.toLowerCase()));
  const replay = REPLAYABLE.includes(d.status)
    ? h('button', {
        type: 'button',
        class: 'replay',
        onclick: async (event) => {
          const data = await act(event.target, () => gql('mutation($id: ID!) { replayDelivery(id: $id) { id status } }', { id: d.id }), t('deliveries.replayed'));
          if (data) {
            fill(statusCell, badge(t(`delivery.${data.replayDelivery.status}`), data.replayDelivery.status.toLowerCase()));
            event.target.remove();
          }
        },
      }, t('deliveries.replay'))
    : null;
  const row = h(
    'tr',
    { 'data-delivery': d.id, 'data-status': d.status },
    h('td', {}, when(d.receivedAt)),
    h('td', {}, d.event ? named('event', d.event) : t('common.none')),
    statusCell,
    h('td', { class: 'reason' }, explain(d.reason)),
    h('td', {}, String(d.attempts)),
    h('td', { class: 'actions' }, show, replay),
  );
  return [row, payload];
}

function pretty(payload) {
  try {
    return JSON.stringify(JSON.parse(payload), null, 2);
  } catch {
    return payload;
  }
}
