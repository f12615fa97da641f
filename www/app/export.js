// Exports of the results table as CSV and JSON, built and downloaded in the
// browser (a Blob; nothing is sent anywhere). File names only: no image data,
// and nothing from inside a DICOM file that could identify a patient.

export const NOTICE = 'mriscreen results. Research software, not a diagnostic device; not for clinical decisions.';

/** Records that have an outcome (classified, failed or cancelled). */
const finished = (records) => records.filter((r) => ['ok', 'error', 'cancelled'].includes(r.status));

/** Class names in first-seen order. */
function classesOf(records) {
  const classes = [];
  for (const r of records) for (const c of Object.keys(r.probabilities ?? {})) if (!classes.includes(c)) classes.push(c);
  return classes;
}

function row(r, classes) {
  const ok = r.status === 'ok';
  return {
    file: r.file,
    status: r.status,
    label: ok ? r.label : '',
    top_probability: ok ? r.topProbability : '',
    refer: ok ? r.refer : '',
    // The reasons' kinds (src/referral.rs); the numbers are in the columns beside.
    refer_reasons: ok ? r.referReasons.map((x) => x.kind).join(' ') : '',
    refer_threshold: ok ? r.threshold : '',
    colour_fraction: ok ? r.colourFraction : '',
    familiarity_distance: ok && r.familiarityDistance != null ? r.familiarityDistance : '',
    familiarity_limit: ok && r.familiarityLimit != null ? r.familiarityLimit : '',
    ...Object.fromEntries(classes.map((c) => [`p_${c}`, ok ? r.probabilities[c] ?? '' : ''])),
    backend: ok ? r.backend : '',
    inference_ms: ok ? Number(r.inferenceMs.toFixed(2)) : '',
    total_ms: ok ? Number(r.totalMs.toFixed(2)) : '',
    format: r.format ?? '',
    width: r.width ?? '',
    height: r.height ?? '',
    frame: r.frame ?? '',
    frames: r.frames ?? '',
    model: r.model ?? '',
    error: r.status === 'error' ? r.error : '',
  };
}

/** A CSV cell: quoted when needed; a leading = + - @ is defused so a spreadsheet never runs a file name as a formula. */
function cell(v) {
  let s = String(v);
  if (typeof v === 'string' && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\n\r]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

export function toCsv(records) {
  const done = finished(records);
  const classes = classesOf(done);
  const rows = done.map((r) => row(r, classes));
  const header = Object.keys(row({ status: 'cancelled', file: '' }, classes));
  return [`# ${NOTICE}`, header.join(','), ...rows.map((r) => header.map((k) => cell(r[k])).join(','))].join('\r\n') + '\r\n';
}

export function toJson(records, models) {
  const done = finished(records);
  const classes = classesOf(done);
  return JSON.stringify({
    notice: NOTICE,
    exported_at: new Date().toISOString(),
    classes,
    models,
    // Each reason in full, with its numbers (threshold, fraction, distance and limit).
    results: done.map((r) => ({ ...row(r, classes), refer_reasons: r.status === 'ok' ? r.referReasons : [] })),
  }, null, 2) + '\n';
}

/** Saves `text` as a file through a temporary object URL. */
export function download(text, type, name) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export function stamp(date = new Date()) {
  const p = (n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}${p(date.getMonth() + 1)}${p(date.getDate())}-${p(date.getHours())}${p(date.getMinutes())}${p(date.getSeconds())}`;
}
