// Page entry: wires the model picker, the inputs, the batch queue, the
// results (articles and table), the exports and offline use together.
// Decoding and inference happen in the worker (app/worker-client.js).
import { CLASSIFY } from '../protocol/messages.js';
import { backendChoice, pageClient } from './worker-client.js';
import { Models } from './models.js';
import { Queue } from './queue.js';
import { renderResult, renderError, releaseImages, percent } from './render.js';
import { upsertRow } from './table.js';
import { toCsv, toJson, download, stamp } from './export.js';
import { setupInput } from './dropzone.js';
import { setupSamples } from './samples.js';
import { setupOffline } from './offline.js';

const $ = (sel) => document.querySelector(sel);
const params = new URLSearchParams(location.search);
const choice = backendChoice();

const client = pageClient(); // started by app/boot.js

const models = new Models({
  client, backendChoice: choice,
  ui: {
    select: $('#model-select'), details: $('#model-details'), status: $('#model-status'), warning: $('#model-warning'),
    download: $('#model-download'), progress: $('#model-progress'), progressLabel: $('#model-progress-label'),
    progressText: $('#model-progress-text'), badge: $('#backend-status'), retry: $('#model-retry'),
  },
});

const results = $('#results');
const rows = $('#results-rows');
const announcer = $('#announcer');
/** Files kept only for multi-frame scans, to classify another frame. */
const multiFrame = new Map();
/** The models used in this session, for the JSON export. */
const usedModels = {};

function announce(text) {
  announcer.textContent = text;
}

/** The wasm's per-image byte budget (src/decode/mod.rs `Limits`): checked here too, so a huge file is never read into memory. */
const MAX_IMAGE_BYTES = 64 * 1024 * 1024;

/**
 * Asks the worker; after a crash of the worker, once more on a fresh one on
 * the CPU (a second failure is reported). `signal` aborts it (Cancel).
 */
async function classifyBlob(blob, name, frame, signal) {
  if (blob.size > MAX_IMAGE_BYTES) {
    throw { kind: 'decode', message: `the file is ${blob.size} bytes, over the ${MAX_IMAGE_BYTES}-byte limit for one image; export the scan at a smaller size` };
  }
  if (blob.size === 0) {
    throw { kind: 'decode', message: 'the file is empty (0 bytes); choose the image file itself, not a shortcut or a folder' };
  }
  const ask = async () => {
    const image = await blob.arrayBuffer();
    return client.request(CLASSIFY, { name, image, frame }, { transfer: [image], signal });
  };
  // A lost WebGPU device or a crashed worker leaves the worker unusable: a fresh one on the CPU.
  const broken = (e) => e.kind === 'device-lost' || e.kind === 'internal';
  const recover = (e) => models.recoverOnCpu(e.kind === 'device-lost'
    ? `${e.message}; the scans from then on run on the CPU`
    : `the worker crashed while classifying (${e.message}) and was restarted`);
  try {
    return await ask();
  } catch (e) {
    // Cancel restarted the worker: it needs the model again (later scans wait for it).
    if (e.kind === 'cancelled') models.reload();
    if (!broken(e)) throw e;
    await recover(e);
  }
  try {
    return await ask();
  } catch (e) {
    // A second failure is reported; the next scan still gets a working worker.
    if (broken(e)) recover(e).catch(() => {});
    throw e;
  }
}

async function run({ record, blob, frame }, signal) {
  let model;
  try {
    model = await models.whenReady();
  } catch (e) {
    throw { kind: 'model', message: `no model is loaded (${e.message ?? e})` };
  }
  const r = await classifyBlob(blob, record.file, frame, signal);
  if (r.status) models.showBackend(r.status);
  const top = Math.max(...r.probabilities.map((p) => p.probability));
  const { entry, info } = model;
  // The referral is the library's decision (src/referral.rs); the page only shows it.
  usedModels[entry.id] = { name: entry.name, sha256: entry.sha256, precision: info.precision, refer_threshold: info.threshold.value, threshold_calibrated: info.threshold.calibrated, refer_rule: info.refer_rule };
  Object.assign(record, {
    label: r.label, topProbability: top, refer: r.refer, referReasons: r.refer_reasons, threshold: info.threshold.value,
    colourFraction: r.colour_fraction ?? 0, familiarityDistance: r.familiarity_distance ?? null, familiarityLimit: r.familiarity_limit ?? null,
    probabilities: Object.fromEntries(r.probabilities.map((p) => [p.class, p.probability])),
    backend: r.backend, inferenceMs: r.timings.inference_ms, totalMs: r.total_ms,
    format: r.format, width: r.width, height: r.height, frame: r.frame ?? 0, frames: r.frames ?? 1, model: entry.id,
    error: undefined, errorKind: undefined,
  });
  if (record.frames > 1) multiFrame.set(record.seq, blob);
  const article = renderResult(record, r, {
    threshold: info.threshold, temperature: info.temperature, blob,
    onFrame: (f) => queue.again(record, multiFrame.get(record.seq), f),
  });
  show(record, article);
  announce(`${record.file}: ${r.label}, ${percent(top, 0)}${record.refer ? ', refer for expert review' : ''}.`);
}

/** How many of the newest results keep their image and heat-map (about 1 MB of page memory each). */
const KEEP_IMAGES = 100;

/** Puts a result article in place of the scan's previous one, or first in the list. */
function show(record, article) {
  const old = document.getElementById(`result-${record.seq}`);
  if (!old) {
    results.prepend(article);
    for (const older of [...results.children].slice(KEEP_IMAGES)) {
      if (older.dataset.released) break;
      releaseImages(older, KEEP_IMAGES);
      multiFrame.delete(Number(older.id.replace('result-', '')));
    }
    return;
  }
  // Keep keyboard focus on the same control (e.g. the frame slider) in the new result.
  const focusedId = old.contains(document.activeElement) ? document.activeElement.id : '';
  old.replaceWith(article);
  if (focusedId) document.getElementById(focusedId)?.focus();
}

const queue = new Queue({
  run,
  onChange(record, finished) {
    if (record) upsertRow(rows, record);
    if (finished && record.status === 'error') {
      show(record, renderError(record));
      announce(`${record.file}: could not classify: ${record.error}`);
    }
    updateToolbar();
  },
});

function updateToolbar() {
  const status = $('#queue-status');
  const bar = $('#queue-progress');
  const counts = { ok: 0, error: 0, cancelled: 0 };
  for (const r of queue.records) if (r.status in counts) counts[r.status]++;
  const busy = queue.running || queue.waiting;
  if (busy) {
    const total = queue.finished + queue.waiting + (queue.running ? 1 : 0);
    status.textContent = `Classifying ${queue.finished + 1} of ${total}` + (queue.waiting ? ` (${queue.waiting} waiting)…` : '…');
    bar.max = total;
    bar.value = queue.finished;
    bar.hidden = false;
  } else {
    status.textContent = queue.records.length
      ? `Done: ${counts.ok} classified, ${counts.error} failed${counts.cancelled ? `, ${counts.cancelled} cancelled` : ''}.`
      : 'No scans yet.';
    bar.hidden = true;
  }
  status.dataset.state = busy ? 'busy' : 'idle';
  $('#cancel-button').disabled = !busy;
  const any = counts.ok + counts.error > 0;
  $('#export-csv').disabled = !any;
  $('#export-json').disabled = !any;
}

$('#cancel-button').addEventListener('click', () => {
  const { dropped, stopped } = queue.cancel();
  const waiting = dropped ? `${dropped} waiting scan${dropped === 1 ? '' : 's'} cancelled` : '';
  const running = stopped ? `${stopped.file} stopped` : '';
  announce(`${[running, waiting].filter(Boolean).join('; ') || 'Nothing to cancel'}.`);
});
$('#export-csv').addEventListener('click', () => download(toCsv(queue.records), 'text/csv;charset=utf-8', `mriscreen-results-${stamp()}.csv`));
$('#export-json').addEventListener('click', () => download(toJson(queue.records, usedModels), 'application/json', `mriscreen-results-${stamp()}.json`));

setupInput({ zone: $('#drop-zone'), input: $('#file-input'), onFiles: (files) => queue.add(files) });
setupSamples({
  box: $('#samples'), buttons: $('#sample-buttons'),
  onFile: (file, error) => (file ? queue.add([file]) : announce(error)),
});
// The service worker starts once the first model load has settled: its
// precache then revalidates the wasm and model the page has just downloaded
// (a 304 each) instead of downloading them a second time alongside it.
const firstLoad = models.ready;
models.start(params.get('model'));
firstLoad.catch(() => {}).finally(() => setupOffline({
  status: $('#offline-status'), button: $('#update-button'), engineFiles: () => models.engineFiles ?? [],
}));
