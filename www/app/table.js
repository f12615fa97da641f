// The results table: one row per queued scan, kept in step with its record.
import { el, percent, backendName } from './render.js';

const STATUS_TEXT = { queued: 'waiting', running: 'classifying…', ok: 'done', error: 'error', cancelled: 'cancelled' };

/** Creates or updates the row for `record` in `tbody`. */
export function upsertRow(tbody, record) {
  let row = tbody.querySelector(`tr[data-seq="${record.seq}"]`);
  if (!row) {
    row = el('tr', { 'data-seq': String(record.seq) });
    tbody.append(row);
  }
  row.dataset.file = record.file;
  row.dataset.status = record.status;
  const ok = record.status === 'ok';
  const name = ok || record.status === 'error' ? el('a', { href: `#result-${record.seq}` }, record.file) : record.file;
  row.replaceChildren(
    el('td', {}, String(record.seq)),
    el('td', { class: 'file' }, name),
    el('td', {}, record.status === 'error' ? `error: ${record.error}` : STATUS_TEXT[record.status]),
    el('td', {}, ok ? record.label : ''),
    el('td', {}, ok ? percent(record.topProbability) : ''),
    el('td', {}, ok ? (record.refer ? 'refer' : 'no') : ''),
    el('td', {}, ok ? backendName(record.backend) : ''),
    el('td', {}, ok ? `${record.totalMs.toFixed(0)} ms` : ''),
  );
}
