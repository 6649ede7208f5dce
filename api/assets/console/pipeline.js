// The pipeline (one column per origin of a group, cards paged by cursor) and a deal's
// detail page with its timeline.

import { contactRights } from './privacy.js';
import { h, fill, when, money, copy, toast, select, badge } from './dom.js';
import { t, lang, named } from './i18n.js';
import { gql, subscribe } from './gql.js';
import { caller } from './app.js';
import { actions, whatsappUrl, WORK_FIELDS } from './work.js';
import { ACTIVITY_FIELDS, dealActivities } from './activities.js';
import { draggable, dragging } from './drag.js';
import { exportButton } from './exports.js';
import { problem } from './explain.js';

const PAGE = 20;
const CARD = `id status value currency lastEventAt createdAt version whatsappUrl stage { id }
  contact { name email } owner { id name } product { name }
  payment { method pixCode billetUrl refusalReason }`;

/** Only web addresses become links: a payload could carry `javascript:`. */
export function safeUrl(value) {
  try {
    const url = new URL(value);
    return url.protocol === 'https:' || url.protocol === 'http:' ? url.href : null;
  } catch {
    return null;
  }
}


async function optional(query) {
  try {
    return await gql(query);
  } catch {
    return null;
  }
}

/** `#/pipeline?group=…&status=…&owner=…&product=…&label=…` */
export async function board(main, view, params) {
  const [groups, users, labels, products] = await Promise.all([
    gql('{ groups { id name origins { id name entryStatus stages { id name } } } }'),
    optional('{ users { id name email } }'),
    optional('{ labels { id name } }'),
    optional('{ integrations { group { id } products { id name hotmartProductId } } }'),
  ]);
  if (!view.alive) return;
  const title = h('h1', { tabindex: '-1' }, t('pipeline.title'));
  if (!groups.groups.length) {
    const hint = caller.user?.role === 'ADMIN' ? h('a', { href: '#/wizard' }, t('pipeline.noGroups')) : t('pipeline.noGroups');
    fill(main, title, h('p', { class: 'empty' }, hint));
    return;
  }
  const group = groups.groups.find((g) => g.id === params.get('group')) ?? groups.groups[0];
  const chosen = {
    group: group.id,
    status: params.get('status') ?? '',
    owner: params.get('owner') ?? '',
    product: params.get('product') ?? '',
    label: params.get('label') ?? '',
    origin: params.get('origin') ?? '',
  };
  const groupProducts = (products?.integrations ?? []).filter((i) => i.group.id === group.id).flatMap((i) => i.products);
  const change = (key) => (event) => {
    const next = { ...chosen, [key]: event.target.value };
    if (key === 'group') Object.assign(next, { product: '', owner: '', status: '', label: '', origin: '' });
    const query = new URLSearchParams(Object.entries(next).filter(([, v]) => v));
    window.location.hash = `#/pipeline?${query}`;
  };
  const filter = (id, key, options) =>
    h('div', { class: 'field' }, h('label', { for: id }, t(key)), select(id, options, chosen[id.replace('filter-', '')], { onchange: change(id.replace('filter-', '')) }));
  const filters = h(
    'form',
    { class: 'filters', role: 'search', onsubmit: (e) => e.preventDefault() },
    filter('filter-group', 'pipeline.group', groups.groups.map((g) => [g.id, g.name])),
    filter('filter-origin', 'pipeline.origin', [['', t('pipeline.allOrigins')], ...group.origins.map((o) => [o.id, o.name])]),
    filter('filter-status', 'pipeline.status', [['', t('common.all')], ...['OPEN', 'WON', 'LOST'].map((s) => [s, t(`deal.${s}`)])]),
    users ? filter('filter-owner', 'pipeline.owner', [['', t('common.all')], ...users.users.map((u) => [u.id, u.name || u.email])]) : null,
    groupProducts.length
      ? filter('filter-product', 'pipeline.product', [['', t('common.all')], ...groupProducts.map((p) => [p.id, p.name || p.hotmartProductId])])
      : null,
    labels?.labels.length ? filter('filter-label', 'pipeline.label', [['', t('common.all')], ...labels.labels.map((l) => [l.id, l.name])]) : null,
  );
  const dealFilter = { groupId: group.id };
  if (chosen.status) dealFilter.status = chosen.status;
  if (chosen.owner) dealFilter.ownerId = chosen.owner;
  if (chosen.product) dealFilter.productId = chosen.product;
  if (chosen.label) dealFilter.labelId = chosen.label;
  const origin = group.origins.find((o) => o.id === chosen.origin);
  const reload = () => board(main, view, params).catch((err) => toast(problem(err), 'error'));
  // One origin: its stages as columns, each card movable; else one column per origin.
  const columns = origin
    ? origin.stages.map((stage) =>
        column({ id: `stage-${stage.id}`, name: stage.name, stage: stage.id }, { ...dealFilter, originId: origin.id, stageId: stage.id }, view, { stages: origin.stages, reload }),
      )
    : group.origins.map((o) => column({ id: o.id, name: o.name }, { ...dealFilter, originId: o.id }, view, null));
  // One export control per page: the board's live redraws keep it, and an export under way.
  view.exportControl ??= exportButton('deals', origin ? { ...dealFilter, originId: origin.id } : dealFilter, view);
  fill(main, title, filters, view.exportControl, h('div', { class: 'board', id: 'board' }, columns.map((c) => c.element)));
  await Promise.all(columns.map((c) => c.load()));
  live(group.id, view, reload);
}

/**
 * Keeps the board current: a deal changed by a colleague or a new lead redraws it (at most
 * once a second, never under a card being dragged); when the websocket fails, it is redrawn
 * every 15 s instead.
 */
function live(groupId, view, reload) {
  if (view.live) return;
  view.live = true;
  let timer = null;
  const soon = () => {
    if (timer || !view.alive) return;
    timer = setTimeout(() => {
      timer = null;
      if (dragging()) soon();
      else if (view.alive) reload();
    }, 1000);
  };
  const stop = subscribe(
    'subscription($g: ID!) { dealsChanged(groupId: $g) { id version } }',
    { g: groupId },
    soon,
    (error) => {
      if (!error || !view.alive) return;
      const poll = setInterval(() => (view.alive ? dragging() || reload() : clearInterval(poll)), 15000);
      view.onLeave(() => clearInterval(poll));
    },
  );
  view.onLeave(() => {
    stop();
    clearTimeout(timer);
  });
}

function column(origin, filter, view, movable) {
  const headingId = `origin-${origin.id}`;
  const count = h('span', { class: 'count' });
  const cards = h('ol', { class: 'cards', 'aria-labelledby': headingId });
  const more = h('button', { type: 'button', class: 'more', hidden: true }, t('common.more'));
  const status = h('p', { class: 'muted', role: 'status' }, t('common.loading'));
  let after = null;
  let first = true;
  const load = async () => {
    more.disabled = true;
    const data = await gql(
      `query($filter: DealFilter, $after: String) { deals(filter: $filter, first: ${PAGE}, after: $after) {
         nodes { ${CARD} } pageInfo { hasNextPage endCursor } ${first ? 'totalCount' : ''} } }`,
      { filter, after },
    );
    if (!view.alive) return;
    if (first) count.textContent = String(data.deals.totalCount);
    first = false;
    cards.append(...data.deals.nodes.map((d) => card(d, movable)));
    status.textContent = cards.children.length ? '' : t('pipeline.empty');
    after = data.deals.pageInfo.endCursor;
    more.hidden = !data.deals.pageInfo.hasNextPage;
    more.disabled = false;
  };
  more.addEventListener('click', () => load().catch((err) => toast(problem(err), 'error')));
  const element = h(
    'section',
    { class: 'column', 'data-origin': origin.name, 'data-stage': origin.stage },
    h('h2', { id: headingId }, origin.name, ' ', count),
    status,
    cards,
    more,
  );
  return { element, load };
}

/** "há 5 min", "há 2 dias" (or "5 min ago"). */
function ago(at) {
  const minutes = Math.round((Date.parse(at) - Date.now()) / 60000);
  if (minutes > -1) return t('pipeline.justNow');
  const format = new Intl.RelativeTimeFormat(lang() === 'en' ? 'en' : 'pt-BR', { numeric: 'always' });
  if (Math.abs(minutes) < 60) return format.format(minutes, 'minute');
  if (Math.abs(minutes) < 48 * 60) return format.format(Math.round(minutes / 60), 'hour');
  return format.format(Math.round(minutes / 1440), 'day');
}

/** The card's "Mover para" control: keyboard- and touch-friendly, a select and a button. */
function canMove(deal, movable) {
  const mine = caller.user?.role === 'ADMIN' || deal.owner?.id === caller.user?.id;
  return !!movable && mine && deal.status === 'OPEN';
}

function mover(deal, movable) {
  if (!canMove(deal, movable)) return null;
  const id = `move-${deal.id}`;
  const stage = select(id, movable.stages.map((s) => [s.id, s.name]), deal.stage.id, { 'aria-label': t('work.moveTo') });
  const button = h('button', { type: 'submit', class: 'small' }, t('work.move'));
  const form = h('form', { class: 'mover' }, stage, button);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    button.disabled = true;
    try {
      await gql('mutation($d: ID!, $s: ID!, $v: Int) { moveDeal(dealId: $d, input: {stageId: $s, expectedVersion: $v}) { id } }', {
        d: deal.id,
        s: stage.value,
        v: deal.version,
      });
      toast(t('work.moved'));
    } catch (err) {
      toast(err.code === 'CONFLICT' ? t('work.conflict') : problem(err), 'error');
    }
    movable.reload();
  });
  return form;
}

function card(deal, movable) {
  const wa = whatsappUrl(deal.whatsappUrl);
  const drag = canMove(deal, movable);
  const li = h(
    'li',
    { class: 'deal-card', 'data-deal': deal.id },
    drag ? h('span', { class: 'grip', title: t('pipeline.drag'), 'aria-hidden': 'true' }, '⠿') : null,
    h('a', { href: `#/deals/${encodeURIComponent(deal.id)}`, class: 'title' }, deal.contact.name || deal.contact.email),
    deal.contact.name ? h('div', { class: 'muted small' }, deal.contact.email) : null,
    h('div', { class: 'row' }, h('strong', {}, money(deal.value, deal.currency)), badge(t(`deal.${deal.status}`), deal.status.toLowerCase())),
    h('div', { class: 'muted small' }, deal.owner ? deal.owner.name : t('pipeline.unassigned')),
    deal.product?.name ? h('div', { class: 'muted small' }, deal.product.name) : null,
    h('div', { class: 'muted small age' }, h('time', { datetime: deal.createdAt }, ago(deal.createdAt))),
    payment(deal.payment),
    wa ? h('a', { class: 'whatsapp small', href: wa, target: '_blank', rel: 'noopener noreferrer' }, t('work.whatsapp')) : null,
    mover(deal, movable),
  );
  if (drag) draggable(li, deal, movable.reload);
  return li;
}

function payment(p) {
  if (!p) return null;
  const billet = p.billetUrl ? safeUrl(p.billetUrl) : null;
  return h(
    'div',
    { class: 'payment' },
    p.method ? badge(named('method', p.method), 'method') : null,
    p.pixCode
      ? h('button', { type: 'button', class: 'link pix', onclick: async () => { await copy(p.pixCode); toast(t('common.copied')); } }, t('pipeline.pix'))
      : null,
    billet ? h('a', { href: billet, target: '_blank', rel: 'noopener noreferrer', class: 'billet' }, t('pipeline.billet')) : null,
    p.refusalReason ? h('div', { class: 'muted small' }, p.refusalReason) : null,
  );
}

const DEAL = `id status value currency transactions lostReason createdAt closedAt lastEventAt
  contact { id name email erasedAt phone document labels { name } }
  group { id name } origin { name } product { name hotmartProductId } owner { id name }
  payment { method installments offerCode couponCode pixCode pixQrCodeUrl pixExpiresAt billetUrl billetBarcode refusalReason }
  subscription { subscriberCode planName recurrenceNumber nextChargeAt }
  attribution { affiliateCode affiliateName src sck xcod parentTransaction }
  timeline { at event source effect description author { name } }
  ${WORK_FIELDS} ${ACTIVITY_FIELDS}`;

function facts(rows) {
  return h(
    'dl',
    { class: 'facts' },
    rows.filter(([, value]) => value !== null && value !== undefined && value !== '').map(([key, value]) => [h('dt', {}, t(key)), h('dd', {}, value)]),
  );
}

/** `#/deals/{id}` */
export async function deal(main, view, _params, id) {
  const data = await gql(`query($id: ID!) { deal(id: $id) { ${DEAL} } }`, { id });
  if (!view.alive) return;
  const d = data.deal;
  if (!d) {
    fill(main, h('p', {}, t('common.notFound')));
    return;
  }
  fill(
    main,
    h('p', {}, h('a', { href: `#/pipeline?group=${encodeURIComponent(d.group.id)}` }, `← ${d.group.name}`)),
    h('h1', { tabindex: '-1' }, d.contact.name || d.contact.email, ' ', badge(t(`deal.${d.status}`), d.status.toLowerCase())),
    actions(d, () => deal(main, view, _params, id)),
    dealActivities(d, () => deal(main, view, _params, id)),
    contactRights(d.contact, () => deal(main, view, _params, id)),
    h(
      'div',
      { class: 'grid' },
      h(
        'section',
        { class: 'card' },
        h('h2', {}, t('deal.contact')),
        facts([
          ['login.email', d.contact.email],
          ['deal.phone', d.contact.phone],
          ['deal.document', d.contact.document],
          ['pipeline.label', d.contact.labels.map((l) => l.name).join(', ')],
        ]),
      ),
      h(
        'section',
        { class: 'card' },
        h('h2', {}, t('deal.title')),
        facts([
          ['deal.origin', d.origin.name],
          ['deal.stage', d.stage.name],
          ['pipeline.product', d.product?.name ?? d.product?.hotmartProductId],
          ['deal.value', money(d.value, d.currency)],
          ['pipeline.owner', d.owner?.name ?? t('pipeline.unassigned')],
          ['deal.createdAt', when(d.createdAt)],
          ['deal.closedAt', d.closedAt ? when(d.closedAt) : null],
          ['deal.lostReason', d.lostReason],
          ['deal.transactions', d.transactions.join(', ')],
        ]),
        await assign(d, view),
      ),
      d.payment
        ? h(
            'section',
            { class: 'card' },
            h('h2', {}, t('deal.payment')),
            facts([
              ['deal.method', d.payment.method ? named('method', d.payment.method) : null],
              ['deal.installments', d.payment.installments],
              ['deal.refusal', d.payment.refusalReason],
              ['deal.pixExpires', d.payment.pixExpiresAt ? when(d.payment.pixExpiresAt) : null],
              ['deal.billetBarcode', d.payment.billetBarcode],
            ]),
            payment(d.payment),
          )
        : null,
      d.subscription
        ? h(
            'section',
            { class: 'card' },
            h('h2', {}, t('deal.subscription')),
            h('p', {}, [d.subscription.planName, d.subscription.subscriberCode, d.subscription.recurrenceNumber ? `#${d.subscription.recurrenceNumber}` : null].filter(Boolean).join(' · ')),
          )
        : null,
      d.attribution
        ? h(
            'section',
            { class: 'card' },
            h('h2', {}, t('deal.attribution')),
            h('p', {}, Object.entries(d.attribution).filter(([, v]) => v).map(([k, v]) => `${named('attribution', k)}: ${v}`).join(' · ')),
          )
        : null,
    ),
    h(
      'section',
      { class: 'card' },
      h('h2', {}, t('deal.timeline')),
      h(
        'ol',
        { class: 'timeline', id: 'timeline' },
        d.timeline.map((entry) =>
          h(
            'li',
            {},
            h('time', { datetime: entry.at }, when(entry.at)),
            ' ',
            h('strong', {}, named('event', entry.event)),
            ' ',
            badge(named('source', entry.source), 'source'),
            ' ',
            badge(named('effect', entry.effect), 'effect'),
            entry.author ? ` ${entry.author.name}` : null,
            h('div', {}, entry.description),
          ),
        ),
      ),
    ),
  );
}

async function assign(d, view) {
  if (caller.user?.role !== 'ADMIN') return null;
  const users = await optional('{ users { id name email } }');
  if (!users || !view.alive) return null;
  const owner = select('assign-owner', [['', t('pipeline.unassigned')], ...users.users.map((u) => [u.id, u.name || u.email])], d.owner?.id ?? '');
  const form = h(
    'form',
    { class: 'inline' },
    h('label', { for: 'assign-owner' }, t('pipeline.owner')),
    owner,
    h('button', { type: 'submit' }, t('deal.assign')),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      await gql('mutation($deal: ID!, $user: ID) { assignDeal(dealId: $deal, userId: $user) { id } }', { deal: d.id, user: owner.value || null });
      toast(t('common.saved'));
    } catch (err) {
      toast(problem(err), 'error');
    }
  });
  return form;
}
