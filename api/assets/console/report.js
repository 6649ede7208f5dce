// The recovery report: per group and period, the sales recovered from abandoned carts,
// pending payments and refused cards (count and value), those a person worked, per origin
// and per seller, as tables and a bar chart the console draws itself (SVG).

import { h, fill, money, select, field } from './dom.js';
import { t } from './i18n.js';
import { gql } from './gql.js';

const REPORT = `query($g: ID!, $from: DateTime!, $to: DateTime!) { pipelineReport(groupId: $g, from: $from, to: $to) {
  currency recoveredDeals recoveredValue recoveredByTeam
  origins { origin { id name } entered open won lost wonValue }
  sellers { user { id name email } won lost wonValue activitiesDone medianFirstActionMinutes } } }`;

const SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attrs, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
  if (text !== undefined) el.textContent = text;
  return el;
}

/** Horizontal bars, one per row: `[label, value, shown]`; scales to its container. */
export function barChart(rows, title) {
  const line = 28;
  const width = 600;
  const labelWidth = 200;
  const max = Math.max(1, ...rows.map(([, v]) => v));
  const chart = svg('svg', { viewBox: `0 0 ${width} ${Math.max(1, rows.length) * line + 8}`, role: 'img', class: 'chart', id: 'report-chart' });
  chart.append(svg('title', {}, title));
  rows.forEach(([label, value, shown], i) => {
    const y = i * line + 4;
    const bar = Math.round(((width - labelWidth - 110) * value) / max);
    chart.append(
      svg('text', { x: labelWidth - 8, y: y + 17, 'text-anchor': 'end', class: 'chart-label' }, label.length > 26 ? `${label.slice(0, 25)}…` : label),
      svg('rect', { x: labelWidth, y, width: Math.max(bar, value > 0 ? 2 : 0), height: line - 8, rx: 3, class: 'chart-bar' }),
      svg('text', { x: labelWidth + bar + 6, y: y + 17, class: 'chart-value' }, shown),
    );
  });
  return chart;
}

const day = (d) => d.toISOString().slice(0, 10);

function table(id, headers, rows) {
  return h(
    'div',
    { class: 'scroll' },
    h('table', { id }, h('thead', {}, h('tr', {}, headers.map((k) => h('th', { scope: 'col' }, t(k))))), h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c) => h('td', {}, c)))))),
  );
}

/** `#/report?group=…&from=aaaa-mm-dd&to=aaaa-mm-dd` (both days included). */
export async function page(main, view, params) {
  const groups = await gql('{ groups { id name } }');
  if (!view.alive) return;
  const title = h('h1', { tabindex: '-1' }, t('nav.report'));
  if (!groups.groups.length) {
    fill(main, title, h('p', { class: 'empty' }, t('pipeline.noGroups')));
    return;
  }
  const group = groups.groups.find((g) => g.id === params.get('group')) ?? groups.groups[0];
  const today = new Date();
  const from = params.get('from') ?? day(new Date(today.getTime() - 29 * 86_400_000));
  const to = params.get('to') ?? day(today);
  const pick = select('report-group', groups.groups.map((g) => [g.id, g.name]), group.id);
  const fromInput = h('input', { id: 'report-from', type: 'date', value: from, required: true });
  const toInput = h('input', { id: 'report-to', type: 'date', value: to, required: true });
  const form = h('form', { class: 'filters' }, field(t('pipeline.group'), pick), field(t('report.from'), fromInput), field(t('report.to'), toInput), h('button', { type: 'submit' }, t('report.show')));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const query = new URLSearchParams({ group: pick.value, from: fromInput.value, to: toInput.value });
    window.location.hash = `#/report?${query}`;
  });
  // The days are the person's own: from the start of `from` to the end of `to`.
  const start = new Date(`${from}T00:00:00`);
  const end = new Date(new Date(`${to}T00:00:00`).getTime() + 86_400_000);
  const data = await gql(REPORT, { g: group.id, from: start.toISOString(), to: end.toISOString() });
  if (!view.alive) return;
  const r = data.pipelineReport;
  const cur = (v) => money(v, r.currency);
  const summary = h(
    'section',
    { class: 'card', id: 'report-summary' },
    h('h2', {}, t('report.recovered')),
    h('p', { class: 'big' }, h('strong', { id: 'recovered-deals' }, String(r.recoveredDeals)), ' · ', h('strong', { id: 'recovered-value' }, cur(r.recoveredValue))),
    h('p', { class: 'muted' }, t('report.byTeam', r.recoveredByTeam)),
  );
  const origins = r.origins.map((o) => [o.origin.name, o.entered, o.open, o.won, o.lost, cur(o.wonValue)]);
  const sellers = r.sellers.map((s) => [
    s.user ? s.user.name || s.user.email : t('pipeline.unassigned'),
    s.won,
    s.lost,
    cur(s.wonValue),
    s.activitiesDone,
    s.medianFirstActionMinutes === null ? '—' : t('report.minutes', Math.round(s.medianFirstActionMinutes)),
  ]);
  fill(
    main,
    title,
    form,
    summary,
    h(
      'section',
      { class: 'card' },
      h('h2', {}, t('report.perOrigin')),
      barChart(r.origins.map((o) => [o.origin.name, o.wonValue, cur(o.wonValue)]), t('report.chart')),
      table('report-origins', ['deal.origin', 'report.entered', 'deal.OPEN', 'deal.WON', 'deal.LOST', 'report.wonValue'], origins),
    ),
    h(
      'section',
      { class: 'card' },
      h('h2', {}, t('report.perSeller')),
      table('report-sellers', ['pipeline.owner', 'deal.WON', 'deal.LOST', 'report.wonValue', 'report.activities', 'report.firstAction'], sellers),
    ),
  );
  main.querySelector('h1').focus();
}
