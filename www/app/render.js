// One result per scan: thumbnail with the heat-map overlay and its opacity
// slider, the top class and its calibrated confidence, the refer flag, a bar
// per class, latency and backend, DICOM facts (never identifying ones), and
// for multi-frame DICOM a frame slider. Plain DOM, no HTML strings.
import { drawGrey, drawHeatmap, drawLegend, drawFromFile } from './heatmap.js';

export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v != null) e.setAttribute(k, v);
  e.append(...children.filter((c) => c != null));
  return e;
}

export const percent = (p, digits = 1) => `${(p * 100).toFixed(digits)} %`;
export const backendName = (kind) => (kind === 'gpu' ? 'WebGPU' : kind === 'cpu' ? 'CPU' : '—');

function bars(probabilities) {
  const box = el('div', { class: 'bars' });
  for (const { class: cls, probability } of probabilities) {
    const fill = el('span');
    fill.style.width = percent(probability).replace(' ', '');
    box.append(el('span', {}, cls),
      el('span', { class: 'bar', role: 'img', 'aria-label': `${cls} ${percent(probability)}` }, fill),
      el('span', { class: 'prob', 'data-class': cls, 'data-probability': String(probability) }, percent(probability)));
  }
  return box;
}

/** One referral reason (src/referral.rs `ReferReason`) in words. */
export function reasonText(reason) {
  switch (reason.kind) {
    case 'colour':
      return `this image is in colour (${percent(reason.fraction, 0)} of its pixels) — MRI slices are grey, so it may not be a scan, and the model was trained on grey MRI only`;
    case 'unfamiliar':
      return `this image is unlike the images the model was trained on (feature distance ${reason.distance.toFixed(2)}, limit ${reason.limit.toFixed(2)}), so its answer says little`;
    case 'low_confidence':
      return `the model is unsure: ${percent(reason.top_probability, 0)} is below ${percent(reason.threshold, 0)}${reason.calibrated ? '' : ' (a default threshold: this model has no calibrated one)'}`;
    default:
      return `reason “${reason.kind}”`;
  }
}

/** The referral as the library decided it; `threshold` is the model's ({ value, calibrated }). */
function referFlag(record, threshold) {
  if (!record.refer) {
    const note = threshold.calibrated ? '' : ' (a default threshold: this model has no calibrated one)';
    return el('p', { class: 'flag no-refer' }, `No referral flag: ${percent(record.topProbability, 0)} is at or above ${percent(threshold.value, 0)}${note}. Still not a diagnosis.`);
  }
  return el('p', { class: 'flag refer', 'data-reasons': record.referReasons.map((r) => r.kind).join(' ') },
    `Refer for expert review — ${record.referReasons.map(reasonText).join('; ')}.`);
}

function dicomLine(d) {
  if (!d) return null;
  const w = d.window;
  const num = (v) => (Number.isFinite(v) ? String(Math.round(v * 100) / 100) : String(v));
  const window = w == null ? 'none (robust range used)'
    : typeof w === 'object' ? `centre ${num(w.center)} / width ${num(w.width)}${w.source ? ` (${String(w.source).toLowerCase()})` : ''}` : String(w);
  const frames = d.frames ?? 1;
  return el('p', { class: 'meta dicom' }, `DICOM: ${d.transfer_syntax} (${d.transfer_syntax_uid}); ${d.modality ?? 'modality not stated'}, ` +
    `${d.photometric_interpretation}; ${d.columns}×${d.rows}, ${frames} frame${frames === 1 ? '' : 's'}; window ${window}`);
}

function viewer(record, r, blob, onFrame) {
  const id = record.seq;
  const thumb = el('canvas', { class: 'thumb', role: 'img', 'aria-label': `Scan ${record.file}` });
  const heat = el('canvas', { class: 'heatmap', role: 'img', 'aria-label': r.heatmap ? `Heat-map for ${r.heatmap.class}` : 'No heat-map', hidden: r.heatmap ? null : '' });
  const figure = el('figure', { class: 'viewer' }, el('div', { class: 'stack' }, thumb, heat));
  if (r.preview) drawGrey(thumb, r.preview);
  else drawFromFile(thumb, blob).then((ok) => { if (!ok) thumb.setAttribute('aria-label', `No preview for ${record.file}`); });

  if (r.heatmap && r.preview) {
    const shown = drawHeatmap(heat, r.heatmap);
    record.heatmap = 'drawn';
    heat.dataset.shown = String(shown);
    const slider = el('input', { type: 'range', id: `opacity-${id}`, class: 'opacity', min: '0', max: '100', value: '60' });
    heat.style.opacity = '0.6';
    slider.addEventListener('input', () => { heat.style.opacity = String(slider.value / 100); });
    const legend = el('canvas', { 'aria-hidden': 'true' });
    drawLegend(legend);
    figure.append(
      el('figcaption', {}, `Heat-map: where the model found evidence for “${r.heatmap.class}”.`),
      el('span', { class: 'legend' }, 'weak', legend, 'strong'),
      el('label', { for: `opacity-${id}` }, 'Heat-map opacity'), slider);
  } else {
    record.heatmap = 'none';
    figure.append(el('figcaption', {}, r.heatmap === null ? 'No heat-map: this model has no feature-map output.' : 'No heat-map available.'));
  }

  if (r.frames > 1) {
    const slider = el('input', { type: 'range', id: `frame-${id}`, class: 'frame-slider', min: '0', max: String(r.frames - 1), value: String(r.frame ?? 0) });
    const out = el('output', { for: `frame-${id}` }, `frame ${(r.frame ?? 0) + 1} of ${r.frames}`);
    slider.addEventListener('input', () => { out.textContent = `frame ${Number(slider.value) + 1} of ${r.frames}`; });
    slider.addEventListener('change', () => onFrame(Number(slider.value)));
    figure.append(el('label', { for: `frame-${id}` }, 'Frame (classified again when changed)'), slider, out);
  }
  return figure;
}

/** The article for a classified scan; `blob` is the file (for the fallback thumbnail). */
export function renderResult(record, r, { threshold, temperature, blob, onFrame }) {
  const calibrated = temperature != null && temperature !== 1 ? 'calibrated' : 'not calibrated';
  const frameText = r.frames > 1 ? `, frame ${r.frame + 1} of ${r.frames}` : '';
  const figure = viewer(record, r, blob, onFrame);
  const summary = el('div', { class: 'summary' },
    el('p', { class: 'top' }, 'Top class: ', el('strong', {}, r.label), ` — ${percent(record.topProbability)} confidence (${calibrated})`),
    referFlag(record, threshold),
    bars(r.probabilities),
    el('p', { class: 'meta' }, `${r.width}×${r.height} ${r.format}${frameText}; ran on ${backendName(r.backend)}: ` +
      `${r.timings.inference_ms.toFixed(1)} ms inference, ${r.total_ms.toFixed(1)} ms total; model ${record.model}`),
    dicomLine(r.dicom));
  return el('article', {
    class: 'result', id: `result-${record.seq}`, tabindex: '-1',
    'data-file': record.file, 'data-label': r.label, 'data-backend': r.backend, 'data-status': 'ok',
    'data-refer': String(record.refer), 'data-refer-reasons': JSON.stringify(record.referReasons), 'data-top-probability': String(record.topProbability),
    'data-heatmap': record.heatmap, 'data-format': r.format, 'data-frame': String(record.frame), 'data-frames': String(record.frames),
    'data-inference-ms': String(r.timings.inference_ms), 'data-total-ms': String(r.total_ms),
  }, el('h3', {}, `${record.file}: ${r.label}`), el('div', { class: 'result-body' }, figure, summary));
}

/**
 * Drops an older result's image, heat-map and frame slider (the canvases
 * are most of a result's memory), keeping its text; the table and the
 * exports keep the whole result. A long session then stays light.
 */
export function releaseImages(article, keep) {
  const figure = article.querySelector('figure.viewer');
  if (!figure) return;
  figure.replaceWith(el('p', { class: 'meta released' },
    `Image and heat-map released to save memory (only the newest ${keep} results keep theirs); the result stays in the table and the exports.`));
  // The class bars become one line of text: the same numbers in a few DOM nodes instead of dozens.
  const bars = article.querySelector('.bars');
  if (bars) {
    const text = [...bars.querySelectorAll('.prob')].map((p) => `${p.dataset.class} ${p.textContent}`).join(', ');
    bars.replaceWith(el('p', { class: 'probabilities' }, `Probabilities: ${text}.`));
  }
  article.dataset.released = 'true';
}

export function renderError(record) {
  return el('article', { class: 'result', id: `result-${record.seq}`, tabindex: '-1', 'data-file': record.file, 'data-status': 'error', 'data-error-kind': record.errorKind },
    el('h3', {}, record.file), el('p', {}, `Could not classify: ${record.error}`));
}
