// The set-up wizard, in the four steps a producer knows from checkout integrations:
// platform and events → product (and, for Kiwify and Eduzz, the signing secret) →
// settings → webhook URL (waiting for the platform's test delivery).

import { h, fill, when, field, checkbox } from './dom.js';
import { t } from './i18n.js';
import { gql } from './gql.js';
import { EVENTS, act, urlBox, productForm } from './integrations.js';
import { PLATFORMS, SUGGESTED_NEUTRAL, eventsOf, secretForm } from './platforms.js';

/** The events a new integration starts with: those that move deals in a sales pipeline. */
const SUGGESTED = ['PURCHASE_OUT_OF_SHOPPING_CART', 'PURCHASE_BILLET_PRINTED', 'PURCHASE_CANCELED', 'PURCHASE_APPROVED', 'PURCHASE_REFUNDED'];

const go = (id, step) => {
  window.location.hash = `#/wizard/${encodeURIComponent(id)}/${step}`;
};

function steps(current) {
  return h(
    'ol',
    { class: 'steps' },
    [1, 2, 3, 4].map((n) => h('li', { 'aria-current': n === current ? 'step' : false, class: n < current ? 'done' : '' }, `${n}. ${t(`wizard.step${n}`)}`)),
  );
}

/** `#/wizard` (a new integration) and `#/wizard/{id}/{step}` */
export async function step(main, view, _params, id, n) {
  const number = Number(n || 1);
  const integration = id
    ? (
        await gql(
          `query($id: ID!) { integration(id: $id) { id platform name label status events checkoutEvents hasWebhookSecret keepDealOwner tagContactsWithProductName mergeProducts webhookUrl lastTestEventAt lastEventAt
             products { id platformProductId name hottokHint } group { id visibility { everyone users { id } } } } }`,
          { id },
        )
      ).integration
    : null;
  if (!view.alive) return;
  if (id && !integration) {
    fill(main, h('p', {}, t('common.notFound')));
    return;
  }
  const body = [events, product, settings, webhook][number - 1];
  const title = integration ? t('wizard.titleOf', t(`platform.${integration.platform}`)) : t('wizard.title');
  fill(main, h('h1', { tabindex: '-1' }, title), steps(number), await body(integration, view));
}

/** Step 1: the platform (fixed once created) and the events that become deals. */
async function events(integration) {
  const name = h('input', { id: 'integration-name', required: true, value: integration?.name ?? '', autocomplete: 'off' });
  const platform = h(
    'select',
    { id: 'integration-platform', disabled: Boolean(integration) },
    PLATFORMS.map((p) => h('option', { value: p, selected: (integration?.platform ?? 'HOTMART') === p }, t(`platform.${p}`))),
  );
  const box = h('fieldset', {}, h('legend', {}, t('wizard.events')));
  const help = h('p', { class: 'muted', id: 'platform-help' });
  const draw = () => {
    const p = platform.value;
    help.textContent = t(`platform.${p}.help`);
    const hotmart = p === 'HOTMART';
    const chosen = hotmart ? (integration?.events ?? SUGGESTED) : (integration?.checkoutEvents ?? SUGGESTED_NEUTRAL);
    const list = hotmart ? EVENTS : eventsOf(p);
    const label = (e) => (hotmart ? t(`event.${e}`) : t(`checkout.${e}`));
    box.replaceChildren(h('legend', {}, t('wizard.events')), ...list.map((e) => checkbox(`event-${e}`, label(e), chosen.includes(e), { value: e, name: 'event' })));
  };
  platform.addEventListener('change', draw);
  draw();
  const error = h('p', { class: 'error', role: 'alert' });
  const next = h('button', { type: 'submit', class: 'primary', id: 'next' }, t('common.next'));
  const form = h('form', { class: 'card stack' }, field(t('wizard.platform'), platform), help, field(t('wizard.name'), name), box, error, next);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const picked = [...form.querySelectorAll('input[name="event"]:checked')].map((el) => el.value);
    if (!picked.length) {
      error.textContent = t('wizard.eventsNeeded');
      return;
    }
    const data = await act(next, () => save(integration, platform.value, name.value.trim(), picked));
    if (data) go(integration?.id ?? (data.createHotmartIntegration ?? data.createIntegration).id, 2);
  });
  return form;
}

/** Creates or edits the integration of step 1 (Hotmart by Hotmart events, others by neutral ones). */
function save(integration, platform, name, picked) {
  const events = platform === 'HOTMART' ? { events: picked } : { checkoutEvents: picked };
  if (integration) {
    return gql('mutation($id: ID!, $input: UpdateIntegrationInput!) { updateIntegration(id: $id, input: $input) { id } }', { id: integration.id, input: { name, ...events } });
  }
  if (platform === 'HOTMART') {
    return gql('mutation($input: CreateIntegrationInput!) { createHotmartIntegration(input: $input) { id } }', { input: { name, events: picked } });
  }
  return gql('mutation($input: CreateCheckoutIntegrationInput!) { createIntegration(input: $input) { id } }', { input: { platform, name, events: picked } });
}

/** Step 2: the products (Hotmart's with their hottoks) and, for Kiwify and Eduzz, the secret. */
async function product(integration) {
  const reload = () => window.dispatchEvent(new HashChangeEvent('hashchange'));
  const hottok = (p) => (integration.platform === 'HOTMART' ? ` · hottok …${p.hottokHint}` : '');
  const list = integration.products.length
    ? h('ul', { class: 'plain', id: 'wizard-products' }, integration.products.map((p) => h('li', {}, `${p.platformProductId} · ${p.name ?? ''}${hottok(p)}`)))
    : h('p', { class: 'muted' }, t('wizard.noProducts'));
  const signs = integration.platform !== 'HOTMART';
  const blocked = !integration.products.length || (signs && !integration.hasWebhookSecret);
  return h(
    'div',
    { class: 'card stack' },
    h('h2', {}, t('wizard.products')),
    list,
    productForm(integration.id, reload, integration.platform),
    signs ? h('h2', {}, t('platform.secretTitle')) : null,
    signs ? secretForm(integration, reload) : null,
    nav(integration.id, 2, blocked),
  );
}

function nav(id, current, blocked) {
  return h(
    'p',
    { class: 'actions' },
    h('a', { href: current > 1 ? `#/wizard/${encodeURIComponent(id)}/${current - 1}` : '#/wizard', class: 'button' }, t('common.back')),
    h('button', { type: 'button', class: 'primary', id: 'next', disabled: blocked, onclick: () => go(id, current + 1) }, t('common.next')),
  );
}

async function settings(integration, view) {
  let users = [];
  try {
    users = (await gql('{ users { id name email role } }')).users.filter((u) => u.role !== 'ADMIN');
  } catch {
    // Members cannot list users; they never reach this step's visibility choice anyway.
  }
  if (!view.alive) return '';
  const visibility = integration.group.visibility;
  const label = h('input', { id: 'integration-label', value: integration.label ?? '', autocomplete: 'off' });
  const everyone = h('input', { type: 'radio', name: 'visibility', id: 'visibility-everyone', value: 'everyone', checked: visibility.everyone });
  const some = h('input', { type: 'radio', name: 'visibility', id: 'visibility-some', value: 'some', checked: !visibility.everyone });
  const people = users.map((u) => checkbox(`visible-${u.id}`, u.name || u.email, visibility.users.some((v) => v.id === u.id), { value: u.id, name: 'visible-user' }));
  const next = h('button', { type: 'submit', class: 'primary', id: 'next' }, t('common.next'));
  const form = h(
    'form',
    { class: 'card stack' },
    field(`${t('wizard.label')} ${t('common.optional')}`, label),
    checkbox('keep-deal-owner', t('wizard.keepDealOwner'), integration.keepDealOwner),
    checkbox('tag-with-product', t('wizard.tagWithProduct'), integration.tagContactsWithProductName),
    checkbox('merge-products', t('wizard.mergeProducts'), integration.mergeProducts),
    h(
      'fieldset',
      {},
      h('legend', {}, t('wizard.visibility')),
      h('label', { class: 'check', for: 'visibility-everyone' }, everyone, ' ', t('wizard.everyone')),
      h('label', { class: 'check', for: 'visibility-some' }, some, ' ', t('wizard.someUsers')),
      h('div', { class: 'indent' }, people),
    ),
    h('p', { class: 'actions' }, h('a', { href: `#/wizard/${encodeURIComponent(integration.id)}/2`, class: 'button' }, t('common.back')), next),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const input = {
      label: label.value.trim(),
      keepDealOwner: form.querySelector('#keep-deal-owner').checked,
      tagContactsWithProductName: form.querySelector('#tag-with-product').checked,
      mergeProducts: form.querySelector('#merge-products').checked,
    };
    const userIds = [...form.querySelectorAll('input[name="visible-user"]:checked')].map((el) => el.value);
    const saved = await act(next, async () => {
      await gql('mutation($id: ID!, $input: UpdateIntegrationInput!) { updateIntegration(id: $id, input: $input) { id } }', { id: integration.id, input });
      return gql('mutation($id: ID!, $input: GroupVisibilityInput!) { setGroupVisibility(groupId: $id, input: $input) { id } }', {
        id: integration.group.id,
        input: { everyone: everyone.checked, userIds: everyone.checked ? [] : userIds },
      });
    });
    if (saved) go(integration.id, 4);
  });
  return form;
}

async function webhook(integration, view) {
  const state = h('p', { class: 'waiting', id: 'test-event', role: 'status', 'aria-live': 'polite' });
  const finish = h('button', { type: 'button', class: 'primary', id: 'finish', disabled: true }, t('wizard.finish'));
  const received = (at) => {
    state.className = 'received';
    state.textContent = t('wizard.received', when(at));
    finish.disabled = false;
  };
  // Kiwify's panel test is an ordinary signed delivery: any signed delivery proves the link.
  const proof = (i) => (integration.platform === 'KIWIFY' ? (i.lastTestEventAt ?? i.lastEventAt) : i.lastTestEventAt);
  if (proof(integration)) received(proof(integration));
  else {
    state.append(h('span', { class: 'spinner', 'aria-hidden': 'true' }), t(`platform.${integration.platform}.waiting`));
    const timer = setInterval(async () => {
      try {
        const data = await gql('query($id: ID!) { integration(id: $id) { lastTestEventAt lastEventAt } }', { id: integration.id });
        if (view.alive && data.integration && proof(data.integration)) {
          clearInterval(timer);
          received(proof(data.integration));
        }
      } catch {
        // Keep waiting; a passing network error is no reason to stop.
      }
    }, 1500);
    view.onLeave(() => clearInterval(timer));
  }
  finish.addEventListener('click', async () => {
    const done = await act(finish, () => gql('mutation($id: ID!) { activateIntegration(id: $id) { id status } }', { id: integration.id }));
    if (done) window.location.hash = `#/integrations/${encodeURIComponent(integration.id)}`;
  });
  return h(
    'div',
    { class: 'card stack' },
    urlBox('wizard-url', integration.webhookUrl),
    h('p', {}, t(`platform.${integration.platform}.howTo`)),
    state,
    h(
      'p',
      { class: 'actions' },
      h('a', { href: `#/wizard/${encodeURIComponent(integration.id)}/3`, class: 'button' }, t('common.back')),
      h('a', { href: `#/integrations/${encodeURIComponent(integration.id)}`, class: 'button', id: 'later' }, t('wizard.later')),
      finish,
    ),
  );
}
