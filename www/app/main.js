// Page code: loads the manifest and the default model into the worker,
// classifies the chosen files, and renders one result element per file.
import { LOAD_MODEL, CLASSIFY } from '../shared/messages.js';

const pending = new Map();
let nextId = 1;
let worker = startWorker();

/** A fresh module worker; a crashed one is replaced by calling this again. */
function startWorker() {
  const w = new Worker(new URL('../worker/worker.js', import.meta.url), { type: 'module' });
  w.onmessage = ({ data }) => {
    const p = pending.get(data.id);
    if (!p) return;
    if (data.status) { p.onStatus?.(data.status); return; }
    pending.delete(data.id);
    if (data.error) p.reject(data.error); else p.resolve(data.result);
  };
  w.onerror = (e) => {
    for (const p of pending.values()) p.reject({ kind: 'internal', message: e.message || 'the worker failed' });
    pending.clear();
  };
  return w;
}

function request(type, payload, transfer = [], onStatus) {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject, onStatus });
    worker.postMessage({ id, type, ...payload }, transfer);
  });
}

const $ = (sel) => document.querySelector(sel);
const modelStatus = $('#model-status');
const fileInput = $('#file-input');
const results = $('#results');

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.append(...children);
  return e;
}

/** `?backend=cpu|gpu|auto` chooses the backend (default auto: WebGPU, else CPU). */
const backendChoice = new URLSearchParams(location.search).get('backend') ?? 'auto';

function showBackend(status) {
  const badge = $('#backend-status');
  badge.dataset.backend = status.kind;
  badge.textContent = status.kind === 'gpu'
    ? `WebGPU (${status.adapter ?? 'unknown adapter'})`
    : status.fallback_reason ? `CPU — WebGPU not used: ${status.fallback_reason}` : 'CPU';
  badge.dataset.reason = status.fallback_reason ?? '';
}

/** The loaded model's bytes and hash, kept to restart on the CPU after a crash. */
let loaded = null;

/** Loads `bytes` in the worker on `backend`; returns { info, backend status }. */
function loadModel(bytes, sha256, backend) {
  // A copy is sent so that `loaded.bytes` survives the transfer.
  return request(LOAD_MODEL, { model: bytes.slice(0), sha256, backend }, [], (s) => { modelStatus.textContent = s; });
}

/**
 * A WebGPU failure that takes the wasm instance down (a trap, not an error)
 * leaves the worker unusable: replace it with a fresh one on the CPU.
 */
async function restartOnCpu(reason) {
  worker.terminate();
  for (const p of pending.values()) p.reject({ kind: 'internal', message: 'the worker was restarted' });
  pending.clear();
  worker = startWorker();
  const result = await loadModel(loaded.bytes, loaded.sha256, 'cpu');
  result.backend.fallback_reason = reason;
  showBackend(result.backend);
  return result;
}

async function loadDefaultModel() {
  const t0 = performance.now();
  const manifestUrl = new URL('../models/manifest.json', import.meta.url);
  const manifest = await (await fetch(manifestUrl)).json();
  const entry = manifest.models.find((m) => m.id === manifest.default);
  if (!entry) throw { kind: 'model', message: `manifest names default model "${manifest.default}" but does not list it` };
  const response = await fetch(new URL(entry.file, manifestUrl));
  if (!response.ok) throw { kind: 'model', message: `could not download ${entry.file} (HTTP ${response.status})` };
  loaded = { bytes: await response.arrayBuffer(), sha256: entry.sha256 };
  let info;
  try {
    const result = await loadModel(loaded.bytes, loaded.sha256, backendChoice);
    info = result.info;
    showBackend(result.backend);
  } catch (e) {
    if (e.kind !== 'internal' || backendChoice !== 'auto') throw e;
    ({ info } = await restartOnCpu(`WebGPU crashed while loading the model: ${e.message}`));
  }
  modelStatus.textContent = `${entry.name} — ${info.arch ?? 'unknown architecture'}, ${info.precision}, ` +
    `${info.input.width}×${info.input.height} input; trained on: ${info.trained_on ?? 'not stated'}`;
  modelStatus.dataset.status = 'ready';
  modelStatus.dataset.loadMs = String(performance.now() - t0);
  if (entry.untrained || (info.trained_on ?? '').startsWith('nothing')) {
    const w = $('#model-warning');
    w.textContent = 'Untrained placeholder model (random weights): its outputs mean nothing.';
    w.hidden = false;
  }
  fileInput.disabled = false;
}

/** Classifies one file; after a crash of the worker, once more on the CPU. */
async function classifyFile(bytes, name) {
  try {
    return await request(CLASSIFY, { name, image: bytes.slice(0) });
  } catch (e) {
    if (e.kind !== 'internal' || !loaded) throw e;
    await restartOnCpu(`the worker crashed while classifying: ${e.message}`);
    return request(CLASSIFY, { name, image: bytes });
  }
}

function renderResult(name, r) {
  const bars = el('div', { class: 'bars' });
  for (const { class: cls, probability } of r.probabilities) {
    const fill = el('span');
    fill.style.width = `${(probability * 100).toFixed(1)}%`;
    bars.append(el('span', {}, cls), el('span', { class: 'bar', role: 'img', 'aria-label': `${cls} ${(probability * 100).toFixed(1)} percent` }, fill),
      el('span', { class: 'prob', 'data-class': cls, 'data-probability': String(probability) }, `${(probability * 100).toFixed(1)} %`));
  }
  const backend = r.backend === 'cpu' ? 'CPU' : 'WebGPU';
  if (r.status) showBackend(r.status);
  return el('article', {
    class: 'result', 'data-file': name, 'data-label': r.label, 'data-backend': r.backend, 'data-status': 'ok',
    'data-inference-ms': String(r.timings.inference_ms), 'data-total-ms': String(r.total_ms),
  },
    el('h3', {}, `${name}: ${r.label}`), bars,
    el('p', { class: 'meta' }, `${r.width}×${r.height} ${r.format}; ${backend}, ${r.timings.inference_ms.toFixed(1)} ms inference, ${r.total_ms.toFixed(1)} ms total`));
}

function renderError(name, e) {
  return el('article', { class: 'result', 'data-file': name, 'data-status': 'error', role: 'alert' },
    el('h3', {}, name), el('p', {}, `Could not classify: ${e.message ?? e}`));
}

fileInput.addEventListener('change', async () => {
  for (const file of fileInput.files) {
    let node;
    try {
      const bytes = await file.arrayBuffer();
      node = renderResult(file.name, await classifyFile(bytes, file.name));
    } catch (e) {
      node = renderError(file.name, e);
    }
    results.prepend(node);
  }
  fileInput.value = '';
});

loadDefaultModel().catch((e) => {
  modelStatus.textContent = `The model could not be loaded: ${e.message ?? e}`;
  modelStatus.dataset.status = 'error';
});
