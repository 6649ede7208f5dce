// What the API says in its own words — delivery and health reasons, import errors, error
// codes — in the console's language. The API keeps stable English texts and codes; each
// known shape of text has a key here, and a text of no known shape is shown as it came.

import { t, named } from './i18n.js';

const run = (kind) => t(kind === 'import' ? 'why.import' : 'why.reconciliation');
const secret = (name) => (name === 'hottok' ? 'hottok' : t('why.signature'));

/**
 * Each shape: its pattern, its key, and how each captured part is shown (`null` as it
 * came). Captured texts that are themselves reasons (an attempt's error) are explained too.
 */
const SHAPES = [
  [/^(\w+) test event$/, 'why.test'],
  [/^integration is (\w+)$/, 'why.inactive', (s) => named('status', s.toUpperCase())],
  [/^unknown event "(.*)"$/, 'why.unknownEvent'],
  [/^event (\S+) is not selected$/, 'why.notSelected', (e) => named('event', e)],
  [/^no product id in the delivery$/, 'why.noProduct'],
  [/^product (.+) is not registered$/, 'why.unregistered'],
  [/^event id already received in delivery (\S+), with a different body$/, 'why.duplicateDiffers'],
  [/^event id already received in delivery (\S+)$/, 'why.duplicateOf'],
  [/^event id already received$/, 'why.duplicate'],
  [/^attempt (\d+): ([\s\S]*)$/, 'why.attempt', null, (e) => explain(e)],
  [/^replayed$/, 'why.replayed'],
  [/^(\d+) deliveries with a wrong (hottok|signature) were refused in the last hour while (\w+)'s own were accepted/, 'why.intruder', null, secret],
  [/^(\d+) deliveries were refused in the last hour because their hottok is wrong/, 'why.hottokWrong'],
  [/^(\d+) deliveries were refused in the last hour because their signature is wrong or missing: the (.+) here no longer matches (\w+)'s/, 'why.signatureWrong'],
  [/^reconciliation recovered (\d+) sales in the last day and no webhook arrived in that time: .* in (\w+)$/, 'why.webhookMissing'],
  [/^reconciliation recovered (\d+) sales in the last day that no webhook delivered/, 'why.webhooksLost'],
  [/^(\d+) deliveries failed to process/, 'why.failedDeliveries'],
  [/^(\w+) rejected the API credentials in (?:the last )?(import|reconciliation)/, 'why.credentials', null, run],
  [/^the last (import|reconciliation) failed: ([\s\S]*)$/, 'why.runFailed', run, (e) => explain(e)],
  [/^reconciliation is off for Eduzz/, 'why.eduzzOff'],
  [/^(\w+) rejected the API credentials \((\d+)\)/, 'why.apiCredentials'],
  [/^(\w+) answered 502: the query is too slow/, 'why.tooSlow'],
  [/^(\w+) answered (\d+): ([\s\S]*)$/, 'why.answered'],
  [/^cannot reach (\w+): ([\s\S]*)$/, 'why.unreachable'],
  [/^unexpected answer from (\w+): ([\s\S]*)$/, 'why.unexpected'],
  [/^Hotmart refused transaction_status (\w+)/, 'why.statusRefused'],
  [/^(?:\w+: )?(\S+) cannot be imported/, 'why.notImportable', (e) => named('event', e)],
];

/** A reason or error text of the API in the console's language. */
export function explain(text) {
  if (!text) return '';
  for (const [pattern, key, ...shown] of SHAPES) {
    const found = pattern.exec(text);
    if (found) return t(key, ...found.slice(1).map((part, i) => (shown[i] ? shown[i](part) : part)));
  }
  return text;
}

/** An error of the API (its `code`, its message) as a sentence for a person. */
export function problem(err) {
  const code = err?.code ?? 'INTERNAL';
  if (code === 'BAD_USER_INPUT') return t('problem.BAD_USER_INPUT', explain(err.message));
  const key = `problem.${code}`;
  const text = t(key);
  return text === key ? t('common.error', explain(err?.message)) : text;
}
