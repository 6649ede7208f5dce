// The checkouts the wizard sets up, and what differs between them: the events each sends
// (neutral names), whether products carry a hottok, and the secret that signs deliveries.

import { h, field } from './dom.js';
import { t } from './i18n.js';
import { gql } from './gql.js';
import { problem } from './explain.js';

export const PLATFORMS = ['HOTMART', 'KIWIFY', 'EDUZZ'];

const NEUTRAL = [
  'CART_ABANDONED', 'PAYMENT_PENDING', 'PAYMENT_REFUSED', 'PAYMENT_EXPIRED', 'PURCHASE_APPROVED',
  'PURCHASE_COMPLETE', 'PAYMENT_OVERDUE', 'REFUND_REQUESTED', 'REFUNDED', 'CHARGEBACK', 'SUBSCRIPTION_CANCELED',
];

/** What each platform never sends (the product's table of neutral events). */
const NEVER = {
  KIWIFY: ['PAYMENT_EXPIRED', 'PURCHASE_COMPLETE', 'REFUND_REQUESTED'],
  EDUZZ: ['PURCHASE_COMPLETE'],
};

/** The neutral events a platform sends, in the table's order. */
export const eventsOf = (platform) => NEUTRAL.filter((e) => !(NEVER[platform] ?? []).includes(e));

/** The events a new integration of a platform starts with. */
export const SUGGESTED_NEUTRAL = ['CART_ABANDONED', 'PAYMENT_PENDING', 'PAYMENT_REFUSED', 'PURCHASE_APPROVED', 'REFUNDED'];

/** Hotmart's events an import finds (its sales history and subscriptions). */
const HOTMART_IMPORTABLE = [
  'PURCHASE_BILLET_PRINTED', 'PURCHASE_CANCELED', 'PURCHASE_EXPIRED', 'PURCHASE_APPROVED', 'PURCHASE_COMPLETE',
  'PURCHASE_DELAYED', 'PURCHASE_PROTEST', 'PURCHASE_REFUNDED', 'PURCHASE_CHARGEBACK', 'SUBSCRIPTION_CANCELLATION',
];

/** The neutral events Kiwify's sales list reports. */
const KIWIFY_IMPORTABLE = ['PAYMENT_PENDING', 'PAYMENT_REFUSED', 'PURCHASE_APPROVED', 'REFUNDED', 'CHARGEBACK'];

/** The integration's events an import can find: Hotmart's by name, Kiwify's neutral; none for Eduzz. */
export function importableOf(integration) {
  if (integration.platform === 'HOTMART') return integration.events.filter((e) => HOTMART_IMPORTABLE.includes(e));
  if (integration.platform === 'KIWIFY') return integration.checkoutEvents.filter((e) => KIWIFY_IMPORTABLE.includes(e));
  return [];
}

/** The form that stores the secret a Kiwify or Eduzz integration's deliveries are signed with. */
export function secretForm(integration, done) {
  const secret = h('input', { id: 'webhook-secret', type: 'password', required: true, autocomplete: 'off' });
  const submit = h('button', { type: 'submit', id: 'save-secret' }, t('common.save'));
  const state = h('p', { class: integration.hasWebhookSecret ? 'received' : 'muted', id: 'secret-state' }, t(integration.hasWebhookSecret ? 'platform.secretSet' : 'platform.secretMissing'));
  const error = h('p', { class: 'error', role: 'alert' });
  const form = h('form', { class: 'stack', id: 'secret-form' }, field(t(`platform.${integration.platform}.secret`), secret), h('p', { class: 'muted' }, t(`platform.${integration.platform}.secretHelp`)), state, error, submit);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    submit.disabled = true;
    error.textContent = '';
    try {
      await gql('mutation($id: ID!, $s: String!) { setWebhookSecret(integrationId: $id, secret: $s) { hasWebhookSecret } }', { id: integration.id, s: secret.value.trim() });
      done();
    } catch (err) {
      error.textContent = problem(err);
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}
