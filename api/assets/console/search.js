// The header's search: a buyer by name, e-mail or phone (with or without the ninth digit),
// each result opening its deal.

import { h, fill, when } from './dom.js';
import { t } from './i18n.js';
import { gql } from './gql.js';
import { exportButton } from './exports.js';

/** The search box of the header. */
export function box() {
  const input = h('input', { id: 'search', type: 'search', placeholder: t('search.placeholder'), 'aria-label': t('search.label'), autocomplete: 'off', maxlength: '200' });
  const form = h('form', { role: 'search', class: 'search' }, input);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const q = input.value.trim();
    if (q) window.location.hash = `#/search?q=${encodeURIComponent(q)}`;
  });
  return form;
}

/** `#/search?q=…`: the deals of the buyers found. */
export async function page(main, view, params) {
  const q = params.get('q') ?? '';
  const data = await gql(
    'query($s: String!) { deals(filter: {search: $s}, first: 50) { totalCount nodes { id status lastEventAt origin { name } stage { name } contact { name email phone } } } }',
    { s: q },
  );
  if (!view.alive) return;
  const rows = data.deals.nodes.map((d) =>
    h(
      'li',
      { class: 'result' },
      h('a', { href: `#/deals/${encodeURIComponent(d.id)}` }, d.contact.name || d.contact.email),
      ` · ${d.contact.email}${d.contact.phone ? ` · ${d.contact.phone}` : ''} · ${d.origin.name} › ${d.stage.name} · ${t(`deal.${d.status}`)} · `,
      h('time', { datetime: d.lastEventAt }, when(d.lastEventAt)),
    ),
  );
  fill(
    main,
    h('h1', { tabindex: '-1' }, t('search.title', q)),
    rows.length ? exportButton('contacts', { search: q }, view) : null,
    rows.length ? h('ul', { class: 'plain', id: 'search-results' }, rows) : h('p', { class: 'muted', id: 'search-results' }, t('search.none')),
  );
  main.querySelector('h1').focus();
}
