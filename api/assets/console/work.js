// A seller's actions on the deal page: move to a stage, won, lost with a reason, reopen,
// a note, claim, and the buttons that contact the buyer (WhatsApp, phone).

import { h, toast, select } from './dom.js';
import { t } from './i18n.js';
import { gql } from './gql.js';
import { caller } from './app.js';
import { problem } from './explain.js';

/** The fields the actions need, added to the deal page's query. */
export const WORK_FIELDS = `version whatsappUrl stage { id name } origin { id name lostReasons { id name } }
  group { id name origins { id name stages { id name } } }`;

/** Only a wa.me link becomes the WhatsApp button. */
export function whatsappUrl(value) {
  if (!value) return null;
  try {
    const url = new URL(value);
    return url.protocol === 'https:' && url.hostname === 'wa.me' ? url.href : null;
  } catch {
    return null;
  }
}

/** `tel:` only for a phone of digits (and a leading +). */
function telUrl(phone) {
  return phone && /^\+?[0-9]{8,15}$/.test(phone) ? `tel:${phone}` : null;
}

/**
 * Runs a mutation for the deal; a stale edit (`CONFLICT`) says so and reloads the page, so
 * the seller sees what a colleague changed.
 */
async function run(button, query, variables, done, reload) {
  button.disabled = true;
  try {
    await gql(query, variables);
    toast(done);
    reload();
  } catch (err) {
    if (err.code === 'CONFLICT') {
      toast(t('work.conflict'), 'error');
      reload();
    } else {
      toast(problem(err), 'error');
    }
  } finally {
    button.disabled = false;
  }
}

function contactButtons(d) {
  const wa = whatsappUrl(d.whatsappUrl);
  const tel = telUrl(d.contact.phone);
  return h(
    'p',
    { class: 'inline' },
    wa ? h('a', { class: 'button primary', id: 'whatsapp', href: wa, target: '_blank', rel: 'noopener noreferrer' }, t('work.whatsapp')) : null,
    tel ? h('a', { class: 'button', id: 'call', href: tel }, t('work.call')) : null,
  );
}

function moveForm(d, reload) {
  const options = d.group.origins.flatMap((o) => o.stages.map((s) => [s.id, `${o.name} › ${s.name}`]));
  const stage = select('move-stage', options, d.stage.id);
  const button = h('button', { type: 'submit', id: 'move' }, t('work.move'));
  const form = h('form', { class: 'inline' }, h('label', { for: 'move-stage' }, t('work.moveTo')), stage, button);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    run(
      button,
      'mutation($d: ID!, $s: ID!, $v: Int) { moveDeal(dealId: $d, input: {stageId: $s, expectedVersion: $v}) { id } }',
      { d: d.id, s: stage.value, v: d.version },
      t('work.moved'),
      reload,
    );
  });
  return form;
}

function closeForms(d, reload) {
  const won = h('button', { type: 'button', id: 'win', class: 'primary' }, t('work.win'));
  won.addEventListener('click', () =>
    run(won, 'mutation($d: ID!, $v: Int) { winDeal(dealId: $d, expectedVersion: $v) { id } }', { d: d.id, v: d.version }, t('work.won'), reload),
  );
  const reasons = d.origin.lostReasons;
  const reason = reasons.length ? select('lose-reason', reasons.map((r) => [r.id, r.name]), reasons[0].id) : null;
  const note = h('input', { id: 'lose-note', maxlength: '5000', placeholder: t('work.loseNote'), 'aria-label': t('work.loseNote') });
  const lose = h('button', { type: 'submit', id: 'lose' }, t('work.lose'));
  const form = h(
    'form',
    { class: 'inline' },
    reason ? h('label', { for: 'lose-reason' }, t('work.reason')) : null,
    reason,
    note,
    lose,
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    run(
      lose,
      'mutation($d: ID!, $r: ID, $n: String, $v: Int) { loseDeal(dealId: $d, input: {lostReasonId: $r, note: $n, expectedVersion: $v}) { id } }',
      { d: d.id, r: reason?.value ?? null, n: note.value || null, v: d.version },
      t('work.lost'),
      reload,
    );
  });
  return [h('p', {}, won), form];
}

function reopenButton(d, reload) {
  const button = h('button', { type: 'button', id: 'reopen' }, t('work.reopen'));
  button.addEventListener('click', () =>
    run(button, 'mutation($d: ID!) { reopenDeal(dealId: $d) { id } }', { d: d.id }, t('work.reopened'), reload),
  );
  return h('p', {}, button);
}

function noteForm(d, reload) {
  const text = h('textarea', { id: 'note-text', rows: '3', maxlength: '5000', required: true });
  const button = h('button', { type: 'submit', id: 'add-note' }, t('work.addNote'));
  const form = h('form', {}, h('label', { for: 'note-text' }, t('work.note')), text, h('p', {}, button));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    if (!text.value.trim()) return;
    run(button, 'mutation($d: ID!, $t: String!) { addDealNote(dealId: $d, text: $t) { effect } }', { d: d.id, t: text.value }, t('work.noted'), reload);
  });
  return form;
}

/** The "Trabalhar o negócio" card of a deal page. */
export function actions(d, reload) {
  const mine = caller.user?.role === 'ADMIN' || d.owner?.id === caller.user?.id;
  const claim = !d.owner && caller.user?.role !== 'ADMIN';
  const body = [contactButtons(d)];
  if (claim) {
    const button = h('button', { type: 'button', id: 'claim', class: 'primary' }, t('work.claim'));
    button.addEventListener('click', () =>
      run(button, 'mutation($d: ID!) { claimDeal(dealId: $d) { id } }', { d: d.id }, t('work.claimed'), reload),
    );
    body.push(h('p', {}, button));
  }
  if (mine && d.status === 'OPEN') body.push(moveForm(d, reload), ...closeForms(d, reload));
  if (mine && d.status !== 'OPEN') body.push(reopenButton(d, reload));
  if (mine) body.push(noteForm(d, reload));
  return h('section', { class: 'card', id: 'work' }, h('h2', {}, t('work.title')), ...body);
}
