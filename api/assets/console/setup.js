// The pipeline's set-up (admins): per group, who sees it and which deals members see; per
// origin, its stages (add, rename, reorder, delete with a target), lost reasons, the
// WhatsApp message (with a preview), and the sellers new leads rotate among; a hand-made
// origin; the account's labels.

import { h, fill, toast, select, field, checkbox } from './dom.js';
import { t } from './i18n.js';
import { gql } from './gql.js';
import { caller } from './app.js';
import { problem } from './explain.js';

const SCOPES = ['ALL', 'OWN_AND_UNOWNED', 'OWN'];

const GROUPS = `{ groups { id name visibility { everyone memberScope users { id } }
  origins { id name checkoutEvent messageTemplate assignees { id }
    stages { id name position dealCount } lostReasons { id name } } } }`;

/** Runs a mutation from a form's button; a success redraws the page. */
async function run(button, query, variables, done, reload) {
  button.disabled = true;
  try {
    await gql(query, variables);
    toast(done);
    reload();
  } catch (err) {
    toast(problem(err), 'error');
    button.disabled = false;
  }
}

/** The message with made-up facts, as a buyer would read it. */
export function preview(template) {
  const sample = {
    '{primeiro_nome}': 'Maria',
    '{nome}': 'Maria Souza',
    '{produto}': t('setup.sampleProduct'),
    '{valor}': 'R$ 197,00',
    '{pix}': '00020126…',
    '{boleto}': '34191.79001 01043.510047 91020.150008 8 91230000019700',
    '{link}': 'pay.exemplo.com.br/c/123',
  };
  return Object.entries(sample).reduce((text, [key, value]) => text.split(key).join(value), template ?? '');
}

function stageRow(origin, stage, index, reload) {
  const name = h('input', { id: `stage-name-${stage.id}`, value: stage.name, maxlength: '100', required: true, 'aria-label': t('setup.stageName') });
  const save = h('button', { type: 'submit', class: 'small' }, t('setup.rename'));
  const rename = h('form', { class: 'inline' }, name, save);
  rename.addEventListener('submit', (event) => {
    event.preventDefault();
    run(save, 'mutation($s: ID!, $i: StageInput!) { updateStage(stageId: $s, input: $i) { id } }', { s: stage.id, i: { name: name.value.trim() } }, t('common.saved'), reload);
  });
  const move = (delta, label) => {
    const button = h('button', { type: 'button', class: 'small', 'aria-label': t(label, stage.name), disabled: index + delta < 0 || index + delta >= origin.stages.length }, delta < 0 ? '↑' : '↓');
    button.addEventListener('click', () =>
      run(button, 'mutation($s: ID!, $i: StageInput!) { updateStage(stageId: $s, input: $i) { id } }', { s: stage.id, i: { position: index + delta } }, t('common.saved'), reload),
    );
    return button;
  };
  const others = origin.stages.filter((s) => s.id !== stage.id);
  const target = others.length ? select(`stage-target-${stage.id}`, others.map((s) => [s.id, s.name]), others[0].id, { 'aria-label': t('setup.moveDealsTo') }) : null;
  const remove = h('button', { type: 'submit', class: 'small danger', disabled: !others.length }, t('setup.deleteStage'));
  const del = h('form', { class: 'inline' }, stage.dealCount ? [h('span', { class: 'muted small' }, t('setup.dealsGoTo', stage.dealCount)), target] : null, remove);
  del.addEventListener('submit', (event) => {
    event.preventDefault();
    run(remove, 'mutation($s: ID!, $to: ID) { deleteStage(stageId: $s, moveDealsTo: $to) }', { s: stage.id, to: stage.dealCount ? target.value : null }, t('setup.stageDeleted'), reload);
  });
  return h('li', { class: 'stage-row', 'data-stage': stage.id }, rename, move(-1, 'setup.up'), move(1, 'setup.down'), del);
}

function stagesCard(origin, reload) {
  const name = h('input', { id: `new-stage-${origin.id}`, maxlength: '100', required: true, 'aria-label': t('setup.newStage') });
  const add = h('button', { type: 'submit', class: 'small', id: `add-stage-${origin.id}` }, t('setup.addStage'));
  const form = h('form', { class: 'inline' }, name, add);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    run(add, 'mutation($o: ID!, $i: StageInput!) { createStage(originId: $o, input: $i) { id } }', { o: origin.id, i: { name: name.value.trim() } }, t('setup.stageAdded'), reload);
  });
  return h('div', {}, h('h3', {}, t('setup.stages')), h('ol', { class: 'plain stages' }, origin.stages.map((s, i) => stageRow(origin, s, i, reload))), form);
}

function reasonsCard(origin, reload) {
  const rows = origin.lostReasons.map((r) => {
    const remove = h('button', { type: 'button', class: 'small link', 'aria-label': t('setup.deleteReason', r.name) }, '✕');
    remove.addEventListener('click', () => run(remove, 'mutation($id: ID!) { deleteLostReason(id: $id) }', { id: r.id }, t('common.saved'), reload));
    return h('li', {}, r.name, ' ', remove);
  });
  const name = h('input', { id: `new-reason-${origin.id}`, maxlength: '100', required: true, 'aria-label': t('setup.newReason') });
  const add = h('button', { type: 'submit', class: 'small' }, t('setup.addReason'));
  const form = h('form', { class: 'inline' }, name, add);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    run(add, 'mutation($o: ID!, $n: String!) { createLostReason(originId: $o, name: $n) { id } }', { o: origin.id, n: name.value.trim() }, t('common.saved'), reload);
  });
  return h('div', {}, h('h3', {}, t('setup.lostReasons')), h('ul', { class: 'plain reasons' }, rows), form);
}

function templateCard(origin, reload) {
  const id = `template-${origin.id}`;
  const text = h('textarea', { id, rows: '4', maxlength: '2000' }, origin.messageTemplate ?? '');
  const shown = h('p', { class: 'preview', id: `preview-${origin.id}`, 'aria-live': 'polite' }, preview(text.value));
  text.addEventListener('input', () => {
    shown.textContent = preview(text.value);
  });
  const save = h('button', { type: 'submit', class: 'small', id: `save-template-${origin.id}` }, t('common.save'));
  const form = h(
    'form',
    { 'data-template': origin.id },
    h('h3', {}, h('label', { for: id }, t('setup.template'))),
    h('small', {}, t('setup.templateHint')),
    text,
    h('p', { class: 'muted small' }, t('setup.preview')),
    shown,
    h('p', {}, save),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    run(save, 'mutation($o: ID!, $i: UpdateOriginInput!) { updateOrigin(originId: $o, input: $i) { id } }', { o: origin.id, i: { messageTemplate: text.value } }, t('common.saved'), reload);
  });
  return form;
}

function assigneesCard(origin, users, reload) {
  const chosen = new Set(origin.assignees.map((u) => u.id));
  const boxes = users.map((u) => checkbox(`assignee-${origin.id}-${u.id}`, u.name || u.email, chosen.has(u.id), { value: u.id }));
  const save = h('button', { type: 'submit', class: 'small' }, t('common.save'));
  const form = h('form', {}, h('h3', {}, t('setup.rotation')), h('small', {}, t('setup.rotationHint')), h('div', { class: 'checks' }, boxes), h('p', {}, save));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const ids = [...form.querySelectorAll('input[type=checkbox]:checked')].map((b) => b.value);
    run(save, 'mutation($o: ID!, $u: [ID!]!) { setOriginAssignees(originId: $o, userIds: $u) { id } }', { o: origin.id, u: ids }, t('common.saved'), reload);
  });
  return form;
}

function originCard(origin, users, reload) {
  return h(
    'section',
    { class: 'card', 'data-origin-setup': origin.name },
    h('h2', {}, origin.name, origin.checkoutEvent ? null : h('span', { class: 'muted small' }, ` · ${t('setup.handMade')}`)),
    h('div', { class: 'grid' }, stagesCard(origin, reload), reasonsCard(origin, reload), templateCard(origin, reload), assigneesCard(origin, users, reload)),
  );
}

function visibilityCard(group, users, reload) {
  const seen = new Set(group.visibility.users.map((u) => u.id));
  const everyone = h('input', { type: 'checkbox', id: 'visibility-everyone', checked: group.visibility.everyone });
  const people = users.map((u) => checkbox(`visible-${u.id}`, u.name || u.email, seen.has(u.id), { value: u.id, 'data-visible': u.id }));
  const scope = select('member-scope', SCOPES.map((s) => [s, t(`scope.${s}`)]), group.visibility.memberScope);
  const save = h('button', { type: 'submit', class: 'small' }, t('common.save'));
  const form = h(
    'form',
    { class: 'card', id: 'visibility' },
    h('h2', {}, t('setup.visibility')),
    h('label', { class: 'check', for: 'visibility-everyone' }, everyone, ' ', t('wizard.everyone')),
    h('div', { class: 'checks' }, people),
    field(t('setup.memberScope'), scope),
    h('p', {}, save),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const ids = [...form.querySelectorAll('input[data-visible]:checked')].map((b) => b.value);
    const input = { everyone: everyone.checked, userIds: everyone.checked ? null : ids, memberScope: scope.value };
    run(save, 'mutation($g: ID!, $i: GroupVisibilityInput!) { setGroupVisibility(groupId: $g, input: $i) { id } }', { g: group.id, i: input }, t('common.saved'), reload);
  });
  return form;
}

function newOriginForm(group, reload) {
  const name = h('input', { id: 'new-origin', maxlength: '100', required: true });
  const add = h('button', { type: 'submit', class: 'small' }, t('setup.addOrigin'));
  const form = h('form', { class: 'card' }, h('h2', {}, t('setup.newOrigin')), h('small', {}, t('setup.newOriginHint')), h('p', { class: 'inline' }, h('label', { for: 'new-origin' }, t('team.name')), name, add));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    run(add, 'mutation($g: ID!, $i: CreateOriginInput!) { createOrigin(groupId: $g, input: $i) { id } }', { g: group.id, i: { name: name.value.trim() } }, t('common.saved'), reload);
  });
  return form;
}

function labelsCard(labels, reload) {
  const rows = labels.map((l) => {
    const remove = h('button', { type: 'button', class: 'small link', 'aria-label': t('setup.deleteLabel', l.name) }, '✕');
    remove.addEventListener('click', () => run(remove, 'mutation($id: ID!) { deleteLabel(id: $id) }', { id: l.id }, t('common.saved'), reload));
    return h('li', {}, l.name, ' ', remove);
  });
  const name = h('input', { id: 'new-label', maxlength: '100', required: true, 'aria-label': t('setup.newLabel') });
  const add = h('button', { type: 'submit', class: 'small' }, t('setup.addLabel'));
  const form = h('form', { class: 'inline' }, name, add);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    run(add, 'mutation($i: CreateLabelInput!) { createLabel(input: $i) { id } }', { i: { name: name.value.trim() } }, t('common.saved'), reload);
  });
  return h('section', { class: 'card', id: 'labels' }, h('h2', {}, t('pipeline.label')), h('ul', { class: 'plain' }, rows), form);
}

/** `#/setup?group=…` (admins). */
export async function page(main, view, params) {
  if (caller.user?.role !== 'ADMIN') {
    fill(main, h('p', {}, t('common.notFound')));
    return;
  }
  const [groups, users, labels] = await Promise.all([gql(GROUPS), gql('{ users { id name email role } }'), gql('{ labels { id name } }')]);
  if (!view.alive) return;
  const title = h('h1', { tabindex: '-1' }, t('nav.setup'));
  const reload = () => window.dispatchEvent(new HashChangeEvent('hashchange'));
  if (!groups.groups.length) {
    fill(main, title, h('p', { class: 'empty' }, h('a', { href: '#/wizard' }, t('pipeline.noGroups'))), labelsCard(labels.labels, reload));
    return;
  }
  const group = groups.groups.find((g) => g.id === params.get('group')) ?? groups.groups[0];
  const pick = select('setup-group', groups.groups.map((g) => [g.id, g.name]), group.id, {
    onchange: (event) => {
      window.location.hash = `#/setup?group=${encodeURIComponent(event.target.value)}`;
    },
  });
  fill(
    main,
    title,
    h('form', { class: 'filters', onsubmit: (e) => e.preventDefault() }, field(t('pipeline.group'), pick)),
    visibilityCard(group, users.users, reload),
    group.origins.map((o) => originCard(o, users.users, reload)),
    newOriginForm(group, reload),
    labelsCard(labels.labels, reload),
  );
  main.querySelector('h1').focus();
}
