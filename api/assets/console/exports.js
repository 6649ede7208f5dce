// "Exportar CSV": starts an export of what the person sees under the current filter,
// follows it until its file is ready, then offers the download (served with the session
// cookie; the file opens as is in a spreadsheet in Brazil).

import { h, toast } from './dom.js';
import { t } from './i18n.js';
import { gql } from './gql.js';
import { problem } from './explain.js';

const FIELDS = 'id status rows downloadPath error';

async function follow(id, view) {
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    if (!view.alive) return null;
    const found = (await gql(`query($id: ID!) { export(id: $id) { ${FIELDS} } }`, { id })).export;
    if (found.status === 'SUCCEEDED' || found.status === 'FAILED') return found;
  }
}

/**
 * A button exporting `kind` (`deals` or `contacts`) under `filter`; the link to the file
 * appears beside it when ready.
 */
export function exportButton(kind, filter, view) {
  const button = h('button', { type: 'button', id: `export-${kind}`, class: 'small' }, t('export.start'));
  const status = h('span', { class: 'small', id: `export-${kind}-status`, role: 'status' });
  button.addEventListener('click', async () => {
    button.disabled = true;
    status.replaceChildren(t('export.running'));
    try {
      const mutation = kind === 'contacts' ? 'exportContacts(filter: $f)' : 'exportDeals(filter: $f)';
      const type = kind === 'contacts' ? 'ContactFilter' : 'DealFilter';
      const data = await gql(`mutation($f: ${type}) { ${mutation} { ${FIELDS} } }`, { f: filter });
      const done = await follow(Object.values(data)[0].id, view);
      if (!done) return;
      if (done.status === 'FAILED') {
        status.replaceChildren(t('export.failed'));
        toast(t('export.failed'), 'error');
      } else {
        status.replaceChildren(h('a', { href: done.downloadPath, download: '', id: `export-${kind}-file` }, t('export.download', done.rows)));
      }
    } catch (err) {
      status.replaceChildren();
      toast(problem(err), 'error');
    } finally {
      button.disabled = false;
    }
  });
  return h('div', { class: 'export' }, button, ' ', status);
}
