// The model picker: reads models/manifest.json (never a hard-coded model
// name), describes each model, and loads the chosen one in the worker with a
// download progress bar. The worker checks the file's SHA-256 against the
// manifest; a mismatch is refused with a visible error and the file is
// dropped from the offline cache. A WebGPU crash restarts the worker on the CPU.
import { LOAD_MODEL } from '../protocol/messages.js';

export const HASH_REFUSED = 'model file does not match its manifest hash — refused';

const pct = (x, digits = 1) => `${(x * 100).toFixed(digits)} %`;

/** The id of the trained model with the fewest bytes (the one a slow connection should take), if any. */
export function smallestTrained(models) {
  const trained = models.filter((m) => !m.untrained && Number.isFinite(m.bytes));
  return trained.length ? trained.reduce((a, b) => (b.bytes < a.bytes ? b : a)).id : undefined;
}

export function formatBytes(n) {
  if (!Number.isFinite(n)) return 'size unknown';
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${Math.max(1, Math.round(n / 1e3))} kB`;
}

export function accuracyText(entry) {
  if (entry.untrained) return 'none — untrained placeholder';
  if (typeof entry.test_accuracy !== 'number') return 'not measured';
  const parts = [];
  const ci = entry.test_accuracy_ci95;
  if (Array.isArray(ci) && ci.length === 2) parts.push(`95 % CI ${pct(ci[0])}–${pct(ci[1])}`);
  if (entry.test_set_size) parts.push(`${entry.test_set_size} test images`);
  return parts.length ? `${pct(entry.test_accuracy)} (${parts.join(', ')})` : pct(entry.test_accuracy);
}

/** Accuracy on the test images without a near copy in training, when the manifest has it. */
export function dedupText(entry) {
  if (typeof entry.dedup_test_accuracy !== 'number') return null;
  const ci = entry.dedup_test_accuracy_ci95;
  const range = Array.isArray(ci) && ci.length === 2 ? `95 % CI ${pct(ci[0])}–${pct(ci[1])}, ` : '';
  return `${pct(entry.dedup_test_accuracy)} (${range}${entry.dedup_test_set_size} test images with no near copy in training)`;
}

/** The external test in words: sensitivity and specificity with their n. */
export function externalText(entry) {
  const x = entry.external_test;
  if (!x || typeof x.sensitivity !== 'number') return null;
  return `sensitivity ${pct(x.sensitivity, 0)} (n = ${x.positives} tumour slices), specificity ${pct(x.specificity, 0)} `
    + `(n = ${x.negatives} healthy slices), on real slices from other sources — too few for an accuracy; see the model card`;
}

/** How a compressed variant compares with its fp32 parent on the same test images, when the manifest says. */
export function vsParentText(entry) {
  const v = entry.vs_parent;
  if (!v || typeof v.agreement !== 'number') return null;
  const p = v.mcnemar_p < 1e-4 ? v.mcnemar_p.toExponential(1) : v.mcnemar_p.toFixed(3);
  const diff = (x) => `${x >= 0 ? '+' : '−'}${Math.abs(x * 100).toFixed(1)}`;
  const ci = v.accuracy_difference_ci95;
  return `same top class on ${pct(v.agreement)} of the test images as ${entry.parent ?? 'the fp32 model'}; `
    + `accuracy ${diff(v.accuracy_difference)} points (95 % CI ${diff(ci[0])} to ${diff(ci[1])}), McNemar p = ${p}`;
}

/**
 * [term, description] pairs shown for the chosen model; `info` (the loaded
 * model's description from the library) adds the referral rule it applies.
 */
export function describe(entry, info) {
  const optional = [
    ['Deduplicated test accuracy', dedupText(entry)],
    ['Against fp32', vsParentText(entry)],
    ['External test', externalText(entry)],
  ].filter(([, v]) => v);
  return [
    ['Name', entry.name ?? entry.id],
    ['Architecture', entry.arch ?? 'not stated'],
    ['Precision', entry.precision ?? 'not stated'],
    ['Download size', formatBytes(entry.bytes)],
    ['Test accuracy', accuracyText(entry)],
    ...optional,
    ['Trained on', entry.trained_on ?? 'not stated'],
    ['Referral', info ? `${info.refer_rule[0].toUpperCase()}${info.refer_rule.slice(1)}` : 'read from the model file once it is loaded'],
  ];
}

export async function fetchManifest() {
  const url = new URL('../models/manifest.json', import.meta.url);
  let response;
  try {
    response = await fetch(url);
  } catch (e) {
    throw { kind: 'network', message: `could not load models/manifest.json: ${e.message}` };
  }
  if (!response.ok) throw { kind: 'network', message: `could not load models/manifest.json (HTTP ${response.status})` };
  const manifest = await response.json();
  if (!Array.isArray(manifest.models) || manifest.models.length === 0) throw { kind: 'model', message: 'models/manifest.json lists no models' };
  return { manifest, url };
}

/** Removes a refused file from every offline cache, so the next try downloads it again. */
async function evictFromCaches(url) {
  if (!('caches' in self)) return;
  for (const name of await caches.keys()) {
    if (name.startsWith('mriscreen-')) await (await caches.open(name)).delete(url);
  }
}

export class Models {
  /** The loaded model: { entry, info }, or null (`info`: the library's description, with its referral `threshold` and `refer_rule`). */
  current = null;
  /** Resolves to `current` once the chosen model is loaded (rejects if it failed). */
  ready;
  #first;
  #token = 0;
  #manifest = null;
  #manifestUrl = null;
  #requestedId = null;

  constructor({ client, backendChoice, ui, onLoaded }) {
    Object.assign(this, { client, backendChoice, ui, onLoaded });
    this.ready = new Promise((resolve, reject) => { this.#first = { resolve, reject }; });
    this.ready.catch(() => {});
    ui.select.addEventListener('change', () => this.use(ui.select.value));
    ui.retry.addEventListener('click', () => (this.#manifest ? this.use(ui.select.value) : this.start(this.#requestedId)));
  }

  /** Loads the manifest, fills the picker, loads `?model=` or the manifest's default. */
  async start(requestedId) {
    this.#requestedId = requestedId;
    this.ui.retry.hidden = true;
    try {
      ({ manifest: this.#manifest, url: this.#manifestUrl } = await fetchManifest());
    } catch (e) {
      this.#fail(e);
      this.#first.reject(e);
      return;
    }
    const { select } = this.ui;
    const smallest = smallestTrained(this.#manifest.models);
    for (const m of this.#manifest.models) {
      const note = m.untrained ? ' (untrained)' : m.id === smallest ? ' (smallest download)' : '';
      const option = new Option(`${m.name ?? m.id} — ${m.precision ?? '?'}, ${formatBytes(m.bytes)}${note}`, m.id);
      select.append(option);
    }
    const ids = this.#manifest.models.map((m) => m.id);
    select.value = ids.includes(requestedId) ? requestedId : ids.includes(this.#manifest.default) ? this.#manifest.default : ids[0];
    select.disabled = false;
    this.use(select.value);
  }

  /** Switches to the model `id`; later classifications wait for it. */
  use(id) {
    const entry = this.#manifest.models.find((m) => m.id === id);
    const token = ++this.#token;
    this.current = null;
    this.#showDetails(entry);
    this.ready = this.#load(entry, token);
    this.ready.catch((e) => { if (token === this.#token) this.#fail(e); });
    this.#first.resolve(this.ready);
    return this.ready;
  }

  /** The model to classify with: waits for the latest choice, also when it changes meanwhile. */
  async whenReady() {
    for (;;) {
      const pending = this.ready;
      const model = await pending;
      if (pending === this.ready) return model;
    }
  }

  /** After the worker was restarted (Cancel): the chosen model again, on the chosen backend. */
  reload() {
    return this.use(this.current?.entry.id ?? this.ui.select.value);
  }

  /** After the worker crashed: a fresh worker with the current model on the CPU. */
  async recoverOnCpu(reason) {
    const entry = this.current?.entry ?? this.#manifest.models.find((m) => m.id === this.ui.select.value);
    this.client.restart();
    const r = await this.client.request(LOAD_MODEL, { ...this.#payload(entry, 'cpu'), cpu_reason: reason });
    this.showBackend(r.backend);
    return r;
  }

  showBackend(status) {
    const badge = this.ui.badge;
    const reason = status.fallback_reason ?? (status.kind === 'cpu' && this.backendChoice === 'cpu' ? 'the address asks for the CPU (?backend=cpu)' : '');
    badge.dataset.backend = status.kind;
    badge.dataset.reason = reason;
    badge.dataset.speed = status.speed ?? '';
    badge.textContent = status.kind === 'gpu'
      ? `WebGPU (${status.adapter ?? 'unknown adapter'})${status.speed ? ` — ${status.speed}` : ''}`
      : reason ? `CPU — WebGPU not used: ${reason}` : 'CPU';
  }

  #payload(entry, backend) {
    return { url: new URL(entry.file, this.#manifestUrl).href, sha256: entry.sha256, bytes: entry.bytes, backend };
  }

  #showDetails(entry, info) {
    const { details } = this.ui;
    details.replaceChildren();
    for (const [term, text] of describe(entry, info)) {
      const dt = document.createElement('dt');
      const dd = document.createElement('dd');
      dt.textContent = term;
      dd.textContent = text;
      details.append(dt, dd);
    }
  }

  #setStatus(state, text) {
    this.ui.status.dataset.status = state;
    this.ui.status.textContent = text;
  }

  #progress(progress) {
    const { download, progress: bar, progressText } = this.ui;
    download.hidden = false;
    bar.max = progress.total || 1;
    bar.value = Math.min(progress.loaded, bar.max);
    progressText.textContent = progress.total
      ? `${formatBytes(progress.loaded)} of ${formatBytes(progress.total)} (${Math.round((100 * progress.loaded) / progress.total)} %)`
      : formatBytes(progress.loaded);
  }

  async #load(entry, token) {
    const t0 = performance.now();
    const { status, warning } = this.ui;
    this.ui.retry.hidden = true;
    this.#setStatus('loading', `Loading ${entry.name ?? entry.id}…`);
    this.ui.progressLabel.textContent = 'Downloading the model';
    delete status.dataset.loadMs;
    delete status.dataset.loadTiming;
    delete status.dataset.fullEngine;
    warning.hidden = true;
    const onStatus = (text, progress) => {
      if (token !== this.#token) return;
      if (progress) this.#progress(progress);
      else if (status.textContent !== `${text}…`) status.textContent = `${text[0].toUpperCase()}${text.slice(1)}…`;
    };
    let r;
    try {
      r = await this.client.request(LOAD_MODEL, this.#payload(entry, this.backendChoice), { onStatus });
    } catch (e) {
      if (e.kind === 'hash') await evictFromCaches(this.#payload(entry).url).catch(() => {});
      if (e.kind !== 'internal' || this.backendChoice !== 'auto') throw e;
      r = await this.recoverOnCpu(`WebGPU crashed while loading the model: ${e.message}`);
    }
    if (token !== this.#token) return this.whenReady();
    this.showBackend(r.backend);
    this.engineFiles = r.engine_files ?? [];
    this.ui.progressLabel.textContent = 'Model downloaded';
    const { info } = r;
    this.current = { entry, info };
    this.#showDetails(entry, info);
    this.#setStatus('ready', `${entry.name ?? entry.id} — ${info.arch ?? entry.arch ?? 'unknown architecture'}, ${info.precision}, ` +
      `${info.input.width}×${info.input.height} input; trained on: ${info.trained_on ?? entry.trained_on ?? 'not stated'}`);
    status.dataset.loadMs = String(performance.now() - t0);
    status.dataset.loadTiming = JSON.stringify(r.timing ?? null); // the worker's breakdown (scripts/bench-browser.mjs)
    // Why the worker loaded its full engine for this model (operators outside the CPU engine's core set).
    if (r.full_engine) status.dataset.fullEngine = r.full_engine;
    if (entry.untrained || (info.trained_on ?? '').startsWith('nothing')) {
      warning.textContent = 'Untrained placeholder model (random weights): its outputs mean nothing.';
      warning.hidden = false;
    }
    this.onLoaded?.(this.current);
    return this.current;
  }

  #fail(e) {
    const message = e?.message ?? String(e);
    this.ui.download.hidden = true;
    this.#setStatus('error', e?.kind === 'hash'
      ? `${HASH_REFUSED}. ${message}`
      : `The model could not be loaded: ${message}`);
    this.ui.status.dataset.errorKind = e?.kind ?? 'internal';
    // A download that failed or stopped midway can succeed on a second try; a refused file cannot.
    this.ui.retry.hidden = e?.kind !== 'network';
  }
}
