// Activities: the deal page's follow-ups (schedule, complete) and "Minhas atividades",
// the signed-in person's overdue, today's and upcoming activities, with the menu's badge.

import { h, fill, toast, select, when } from './dom.js';
import { t } from './i18n.js';
import { gql } from './gql.js';
import { caller } from './app.js';
import { problem } from './explain.js';

export const KINDS = ['CALL', 'WHATSAPP', 'EMAIL', 'MEETING', 'TASK'];

/** The fields the deal page asks for its activities. */
export const ACTIVITY_FIELDS = 'activities { id kind title dueAt doneAt assignee { id name email } }';

const startOfDay = (d) => new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();

/** Overdue, today or upcoming, by the person's own clock. */
export function bucketOf(dueAt, now = new Date()) {
  const due = new Date(dueAt).getTime();
  if (due < now.getTime()) return 'overdue';
  return due < startOfDay(now) + 86_400_000 ? 'today' : 'upcoming';
}

async function complete(button, id, done) {
  button.disabled = true;
  try {
    await gql('mutation($id: ID!) { completeActivity(id: $id) { id doneAt } }', { id });
    toast(t('activity.completed'));
    done();
  } catch (err) {
    toast(problem(err), 'error');
    button.disabled = false;
  }
}

function item(a, done, withDeal) {
  const finish = h('button', { type: 'button', class: 'small', 'data-complete': a.id }, t('activity.complete'));
  finish.addEventListener('click', () => complete(finish, a.id, done));
  const deal = withDeal && a.deal ? h('a', { href: `#/deals/${encodeURIComponent(a.deal.id)}` }, a.deal.contact.name || a.deal.contact.email) : null;
  return h(
    'li',
    { class: `activity ${bucketOf(a.dueAt)}`, 'data-activity': a.id },
    h('strong', {}, `${t(`activity.kind.${a.kind}`)}: `),
    a.title,
    ' · ',
    h('time', { datetime: a.dueAt }, when(a.dueAt)),
    deal ? ' · ' : null,
    deal,
    a.doneAt ? h('span', { class: 'muted' }, ` · ${t('activity.done')}`) : finish,
  );
}

/** The deal page's card: its open activities and the form that schedules one. */
export function dealActivities(d, reload) {
  const open = (d.activities ?? []).filter((a) => !a.doneAt);
  const list = open.length ? h('ul', { class: 'plain', id: 'deal-activities' }, open.map((a) => item(a, reload, false))) : h('p', { class: 'muted', id: 'deal-activities' }, t('activity.none'));
  const kind = select('activity-kind', KINDS.map((k) => [k, t(`activity.kind.${k}`)]), 'CALL');
  const title = h('input', { id: 'activity-title', required: true, maxlength: '200', autocomplete: 'off' });
  const tomorrow = new Date(Date.now() + 86_400_000);
  tomorrow.setMinutes(0, 0, 0);
  const local = new Date(tomorrow.getTime() - tomorrow.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
  const due = h('input', { id: 'activity-due', type: 'datetime-local', required: true, value: local });
  const button = h('button', { type: 'submit', id: 'schedule' }, t('activity.schedule'));
  const form = h(
    'form',
    { class: 'stack', id: 'schedule-form' },
    h('label', { for: 'activity-kind' }, t('activity.kind')),
    kind,
    h('label', { for: 'activity-title' }, t('activity.title')),
    title,
    h('label', { for: 'activity-due' }, t('activity.due')),
    due,
    h('p', {}, button),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    button.disabled = true;
    try {
      const input = { kind: kind.value, title: title.value.trim(), dueAt: new Date(due.value).toISOString() };
      await gql('mutation($d: ID!, $i: ScheduleActivityInput!) { scheduleActivity(dealId: $d, input: $i) { id } }', { d: d.id, i: input });
      toast(t('activity.scheduled'));
      reload();
    } catch (err) {
      toast(problem(err), 'error');
      button.disabled = false;
    }
  });
  return h('section', { class: 'card', id: 'activities' }, h('h2', {}, t('activity.titleDeal')), list, h('details', {}, h('summary', {}, t('activity.schedule')), form));
}

const MINE = `query($a: ID) { activities(filter: {assigneeId: $a, done: false}, first: 200) { totalCount
  nodes { id kind title dueAt doneAt deal { id contact { name email } } } } }`;

/** `#/activities`: the signed-in person's open activities, by when they are due. */
export async function page(main, view) {
  const data = await gql(MINE, { a: caller.user.id });
  if (!view.alive) return;
  const reload = () => window.dispatchEvent(new HashChangeEvent('hashchange'));
  const nodes = data.activities.nodes;
  const section = (bucket) => {
    const rows = nodes.filter((a) => bucketOf(a.dueAt) === bucket);
    return h(
      'section',
      { class: 'card', id: `activities-${bucket}` },
      h('h2', {}, `${t(`activity.${bucket}`)} (${rows.length})`),
      rows.length ? h('ul', { class: 'plain' }, rows.map((a) => item(a, reload, true))) : h('p', { class: 'muted' }, t('activity.none')),
    );
  };
  fill(main, h('h1', { tabindex: '-1' }, t('nav.activities')), section('overdue'), section('today'), section('upcoming'));
  main.querySelector('h1').focus();
}

/** How many of the person's activities are due by the end of today (the menu's badge). */
export async function dueCount() {
  const end = new Date(startOfDay(new Date()) + 86_400_000).toISOString();
  const data = await gql('query($a: ID, $b: DateTime) { activities(filter: {assigneeId: $a, done: false, dueBefore: $b}, first: 1) { totalCount } }', { a: caller.user.id, b: end });
  return data.activities.totalCount;
}
