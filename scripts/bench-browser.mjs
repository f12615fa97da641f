// Benchmark (not a test): cold and warm latency of both backends for a
// random-weight MobileNetV2-1.0 at 224x224 in headless Chromium, through the
// real page and worker. Writes bench/browser/latency.json.
//
//   node scripts/bench-browser.mjs [--runs 30] [--gpu-runs 10] [--rounds 1] [--compare] [--out FILE]
//                                  [--model FILE.onnx --shape 1,3,224,224] [--backend cpu|gpu]
//   node scripts/bench-browser.mjs --memory   # bench/browser/memory.json: every shipped model's
//                                             # wasm memory, and what a first visit downloads
//   node scripts/bench-browser.mjs --profile [--runs 30] [--model FILE.onnx]
//                                             # bench/browser/profile.json: where the CPU backend's
//                                             # time goes in wasm, by operation, and the load's phases
//   node scripts/bench-browser.mjs --profile --backend gpu [--gpu-runs 10]
//                                             # bench/browser/profile-webgpu.json: each WebGPU compute
//                                             # pass timed on the device (SwiftShader here)
//
// --backend times one backend only (both by default).
// --model times another ONNX file instead of the random-weight one made with
// `mriscreen random-model` (--shape: its input's, for onnxruntime-web).
// --compare also runs onnxruntime-web (scripts/bench-peers, installed by
// `scripts/setup bench`: its wasm EP with 1 thread, and its WebGPU EP) on the
// same ONNX file in the same Chromium, alternating with the page round by round
// (--rounds, default 2 with --compare), and writes both runtimes' figures and
// the ratios (ours / theirs: below 1 is faster or smaller) to
// bench/browser/compare.json.
//
// cold = from the navigation's start to the model being ready (the runtime's
// download and compilation, the model's download, our SHA-256 check and load,
// including the auto mode's self-check), plus the first inference. warm = the
// median inference time of the next runs (our page: the worker's model run;
// onnxruntime-web: session.run on a prepared tensor). Each measurement is a
// fresh browser with an empty cache. WebGPU here is SwiftShader (software).
// Runtime bytes: the wasm and the JavaScript that loads it, as the static
// server sent them (brotli, as scripts/precompress.mjs writes it), and raw
// and gzip -9 from the files. Wasm memory: the size of the worker's memory
// once the model is ready and after the last run (a wasm memory never shrinks,
// so that is the most it held); --memory measures it for every model dist/
// ships instead.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import zlib from 'node:zlib';
import { execFileSync } from 'node:child_process';
import { ROOT, DIST, WEBGPU_FLAGS, launch, newSession, openContextPage } from '../tests/browser/helpers.mjs';
import { serve } from './static-server.mjs';

const argv = process.argv.slice(2);
const arg = (name, def) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : def;
};
const compare = argv.includes('--compare');
const runs = Number(arg('runs', 30));
const gpuRuns = Number(arg('gpu-runs', 10));
const rounds = Number(arg('rounds', compare ? 2 : 1));
const out = path.resolve(ROOT, arg('out', compare ? 'bench/browser/compare.json' : 'bench/browser/latency.json'));
for (const [name, v] of [['runs', runs], ['gpu-runs', gpuRuns], ['rounds', rounds]]) {
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} must be a whole number of at least 1`);
}
if (!fs.existsSync(path.join(DIST, 'index.html'))) throw new Error('build the site first: scripts/build-web');
const ORT = path.join(ROOT, 'scripts/bench-peers/node_modules/onnxruntime-web');
const memoryMode = argv.includes('--memory');
const profileMode = argv.includes('--profile');
const profileBackend = arg('backend', 'cpu');
if (!['cpu', 'gpu'].includes(profileBackend)) throw new Error(`--backend ${profileBackend}: give cpu or gpu`);
if (profileMode && (compare || memoryMode)) throw new Error('--profile is a run of its own: leave out --compare and --memory');
if (compare && !memoryMode && !fs.existsSync(path.join(ORT, 'dist'))) throw new Error('--compare needs onnxruntime-web: run scripts/setup bench');

const site = fs.mkdtempSync(path.join(os.tmpdir(), 'mriscreen-bench-'));
// With their times: the server sends a .br or .gz copy only if it is no older than its original.
fs.cpSync(DIST, site, { recursive: true, preserveTimestamps: true });
const shape = arg('shape', '1,3,224,224');
if (!/^\d+(,\d+){3}$/.test(shape)) throw new Error(`--shape ${shape}: give the input's four dimensions, e.g. 1,3,224,224`);
const modelFile = path.join(site, 'models', 'bench.onnx');
let bytes = Buffer.alloc(0);
let sha256 = null;
if (!memoryMode) {
  if (arg('model')) fs.copyFileSync(path.resolve(arg('model')), modelFile);
  else execFileSync('cargo', ['run', '-q', '--release', '-p', 'trainer', '--', 'random-model', '--alpha', '1.0', '--size', '224', '--out', modelFile, '--force'], { cwd: ROOT, stdio: 'inherit' });
  bytes = fs.readFileSync(modelFile);
  sha256 = crypto.createHash('sha256').update(bytes).digest('hex');
  const manifest = { version: 1, default: 'bench', models: [{
    id: 'bench', name: 'MobileNetV2-1.0, random weights (benchmark)', file: path.basename(modelFile),
    sha256, bytes: bytes.length, untrained: true,
  }] };
  fs.writeFileSync(path.join(site, 'models', 'manifest.json'), JSON.stringify(manifest));
}
let ortVersion;
if (compare && !memoryMode) {
  const ortDir = path.join(site, 'ort');
  fs.mkdirSync(ortDir);
  for (const f of fs.readdirSync(path.join(ORT, 'dist'))) {
    if (/^ort(-wasm-simd-threaded\.(jsep\.|asyncify\.)?|\.(wasm|webgpu)\.min\.)(mjs|wasm)$/.test(f)) fs.copyFileSync(path.join(ORT, 'dist', f), path.join(ortDir, f));
  }
  for (const f of ['ort-bench.html', 'ort-bench.mjs']) fs.copyFileSync(path.join(ROOT, 'scripts/bench-peers', f), path.join(ortDir, f));
  console.error('bench-browser: compressing onnxruntime-web as a static host would serve it');
  execFileSync(process.execPath, [path.join(ROOT, 'scripts/precompress.mjs'), ortDir], { stdio: 'inherit' });
  ortVersion = JSON.parse(fs.readFileSync(path.join(ORT, 'package.json'), 'utf8')).version;
}

const images = fs.mkdtempSync(path.join(os.tmpdir(), 'mriscreen-bench-img-'));
const files = Array.from({ length: Math.max(runs, gpuRuns) + 1 }, (_, i) => {
  const f = path.join(images, `scan-${String(i).padStart(3, '0')}.jpg`);
  fs.copyFileSync(path.join(ROOT, 'tests/golden/progressive.jpg'), f);
  return f;
});

let answers = [];
const { server, url } = await serve(site, { port: 0, onAnswer: (a) => answers.push(a) });
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
const round1 = (x) => Math.round(x * 10) / 10;
const round2 = (x) => Math.round(x * 100) / 100;
/** Every number in a JSON value rounded to 0.1. */
const roundAll = (v) => (typeof v === 'number' ? round1(v) : Array.isArray(v) ? v.map(roundAll)
  : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, roundAll(x)])) : v);

/** Raw and gzip -9 bytes of the files answered with 200, and the bytes sent (the brotli copy when there is one). */
function runtimeBytes(isRuntime) {
  const seen = new Map();
  for (const a of answers) if (a.status === 200 && isRuntime(a.path) && !seen.has(a.path)) seen.set(a.path, a.bytes);
  let raw = 0; let gzip = 0; let sent = 0;
  for (const [p, s] of seen) {
    const b = fs.readFileSync(path.join(site, p));
    raw += b.length; gzip += zlib.gzipSync(b, { level: 9 }).length; sent += s;
  }
  return { files: [...seen.keys()].sort(), raw, gzip_9: gzip, served: sent };
}

/** The size of the worker's wasm memory: the most it has held at once (www/worker/worker.js). */
async function wasmMemory(page) {
  for (const w of page.workers()) {
    const bytes = await w.evaluate(() => self.wasmMemory?.buffer.byteLength ?? null).catch(() => null);
    if (bytes != null) return bytes;
  }
  return null;
}

/** The page with our runtime: `backend` cpu or gpu, `n` files after the first. */
async function ours(backend, n) {
  answers = [];
  const browser = await launch(WEBGPU_FLAGS);
  try {
    const session = await newSession(browser);
    // When the model becomes ready, counted from the navigation's start.
    await session.context.addInitScript(() => {
      new MutationObserver(() => {
        const s = document.getElementById('model-status');
        if (s?.dataset.status === 'ready' && window.benchReadyAt === undefined) window.benchReadyAt = performance.now();
      }).observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-status'] });
    });
    const { page } = await openContextPage(session.context, `${url}?backend=${backend}`);
    const readyAt = await page.waitForFunction(() => window.benchReadyAt).then((h) => h.jsonValue());
    const loadMs = Number(await page.$eval('#model-status', (e) => e.dataset.loadMs));
    const loadTiming = JSON.parse(await page.$eval('#model-status', (e) => e.dataset.loadTiming ?? 'null'));
    const memoryAtReady = await wasmMemory(page);
    await page.setInputFiles('#file-input', files.slice(0, n + 1));
    await page.waitForFunction((k) => document.querySelectorAll('.result').length >= k, n + 1, { timeout: 3_600_000 });
    const rows = await page.$$eval('.result', (ns) => ns.map((r) => ({
      file: r.dataset.file, status: r.dataset.status, backend: r.dataset.backend,
      inference: Number(r.dataset.inferenceMs), total: Number(r.dataset.totalMs),
    })));
    rows.sort((a, b) => a.file.localeCompare(b.file));
    if (rows.some((r) => r.status !== 'ok' || r.backend !== backend)) throw new Error(`${backend}: ${JSON.stringify(rows.find((r) => r.status !== 'ok' || r.backend !== backend))}`);
    const warm = rows.slice(1).map((r) => round2(r.inference));
    const memory = await wasmMemory(page);
    return {
      cold_ms: round1(readyAt + rows[0].inference), ready_at_ms: round1(readyAt), model_load_ms: round1(loadMs),
      load_timing: roundAll(loadTiming),
      first_inference_ms: round2(rows[0].inference), first_result_ms: round2(rows[0].total),
      warm_median_ms: round2(median(warm)), warm_min_ms: Math.min(...warm), warm_max_ms: Math.max(...warm),
      warm_median_total_ms: round2(median(rows.slice(1).map((r) => r.total))), warm_ms: warm,
      runtime_bytes: runtimeBytes((p) => p.startsWith('/pkg/')),
      wasm_memory_after_load_bytes: memoryAtReady, wasm_memory_peak_bytes: memory,
    };
  } finally {
    await browser.close();
  }
}

/** onnxruntime-web on the same file: `ep` wasm or webgpu. */
async function theirs(ep, n) {
  answers = [];
  const browser = await launch(WEBGPU_FLAGS);
  try {
    const { context } = await newSession(browser);
    const page = await context.newPage();
    const model = `/models/${path.basename(modelFile)}`;
    await page.goto(`${url}ort/ort-bench.html?ep=${ep}&runs=${n}&model=${encodeURIComponent(model)}&shape=${shape}`);
    const r = await page.waitForFunction(() => window.ortBench, null, { timeout: 3_600_000 }).then((h) => h.jsonValue());
    if (r.error) throw new Error(`onnxruntime-web ${ep}: ${r.error}`);
    return {
      cold_ms: round1(r.ready_at_ms + r.first_run_ms), ready_at_ms: round1(r.ready_at_ms), first_inference_ms: round2(r.first_run_ms),
      warm_median_ms: round2(median(r.warm_ms)), warm_min_ms: round2(Math.min(...r.warm_ms)), warm_max_ms: round2(Math.max(...r.warm_ms)), warm_ms: r.warm_ms.map(round2),
      runtime_bytes: runtimeBytes((p) => p.startsWith('/ort/') && !p.includes('ort-bench.')),
    };
  } finally {
    await browser.close();
  }
}

/**
 * --memory: every model dist/ ships, on the CPU backend, each in a fresh browser: the wasm
 * memory once it is loaded and after classifying three scans, beside the model's bytes.
 */
async function shippedModels() {
  const list = JSON.parse(fs.readFileSync(path.join(DIST, 'models/manifest.json'), 'utf8')).models;
  const rows = [];
  for (const m of list) {
    const browser = await launch();
    try {
      const { context } = await newSession(browser);
      const { page } = await openContextPage(context, `${url}?backend=cpu&model=${encodeURIComponent(m.id)}`);
      const loaded = await wasmMemory(page);
      await page.setInputFiles('#file-input', files.slice(0, 3));
      await page.waitForFunction(() => document.querySelectorAll('.result').length >= 3, null, { timeout: 600_000 });
      const row = { id: m.id, precision: m.precision, input_size: m.input_size, file_bytes: m.bytes,
        wasm_memory_after_load_bytes: loaded, wasm_memory_peak_bytes: await wasmMemory(page) };
      console.log(`${m.id}: file ${(m.bytes / 1e6).toFixed(2)} MB, wasm memory ${(loaded / 2 ** 20).toFixed(0)} MiB loaded, ${(row.wasm_memory_peak_bytes / 2 ** 20).toFixed(0)} MiB after 3 scans`);
      rows.push(row);
    } finally {
      await browser.close();
    }
  }
  return rows;
}

/**
 * What a first visit downloads, as served: the page in auto mode (on SwiftShader, so the CPU build),
 * the default model, and what the service worker stores until the page says "ready offline".
 */
async function firstVisit() {
  answers = [];
  const browser = await launch(WEBGPU_FLAGS);
  try {
    const { context } = await newSession(browser);
    const { page } = await openContextPage(context, url);
    await page.waitForSelector('#offline-status[data-status=ready]', { timeout: 120_000 });
    const sent = answers.filter((a) => a.status === 200);
    const sum = (xs) => xs.reduce((n, a) => n + a.bytes, 0);
    const kind = (p) => (p.startsWith('/pkg/') ? 'engine' : p.startsWith('/models/') ? 'model' : 'page');
    const byKind = {};
    for (const a of sent) byKind[kind(a.path)] = (byKind[kind(a.path)] ?? 0) + a.bytes;
    return {
      note: 'auto mode in Chromium with SwiftShader (so the CPU build of the engine), until "ready offline"; bytes as the static server sent them (brotli where a copy exists)',
      served_bytes: sum(sent), by_kind: byKind, requests_answered_200: sent.length, revalidated_304: answers.filter((a) => a.status === 304).length,
      files: sent.map((a) => ({ path: a.path, bytes: a.bytes, encoding: a.encoding })),
    };
  } finally {
    await browser.close();
  }
}

/** A single-mode run's end: stops the server, writes `report` to --out (default `file`), removes the temporary site. */
function finish(report, file) {
  server.close();
  const out = path.resolve(ROOT, arg('out', file));
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, JSON.stringify(report, null, 2) + '\n');
  console.log(`-> ${path.relative(ROOT, out)}`);
  fs.rmSync(site, { recursive: true, force: true });
  fs.rmSync(images, { recursive: true, force: true });
  process.exit(0);
}

if (memoryMode) {
  const report = {
    benchmark: 'wasm memory of every shipped model on the CPU backend (a wasm memory never shrinks: its size is its peak)',
    date: new Date().toISOString(), chromium: execFileSync('/usr/bin/chromium', ['--version']).toString().trim(),
    first_visit: await firstVisit(),
    models: await shippedModels(),
  };
  const fv = report.first_visit;
  console.log(`first visit: ${(fv.served_bytes / 1e6).toFixed(2)} MB as served (${Object.entries(fv.by_kind).map(([k, b]) => `${k} ${(b / 1e6).toFixed(2)} MB`).join(', ')})`);
  finish(report, 'bench/browser/memory.json');
}

/**
 * --profile: one fresh browser on `backend`: the load's phases (the worker's and the engine's,
 * a cold start), then after one warm-up scan `n` inferences with every operation timed (on
 * WebGPU by the device's timestamps, which Chromium quantises unless its developer features are on).
 */
async function profileRun(backend, n) {
  const browser = await launch([...WEBGPU_FLAGS, '--enable-webgpu-developer-features']);
  try {
    const { context } = await newSession(browser);
    const { page } = await openContextPage(context, `${url}?backend=${backend}`);
    await page.waitForSelector('#model-status[data-status=ready]', { timeout: 600_000 });
    const status = await page.$eval('#model-status', (e) => ({ loadMs: e.dataset.loadMs, timing: e.dataset.loadTiming }));
    await page.setInputFiles('#file-input', files.slice(0, 1));
    await page.waitForFunction(() => document.querySelectorAll('.result').length >= 1, null, { timeout: 600_000 });
    let profile = null;
    for (const w of page.workers()) {
      profile = await w.evaluate((k) => (self.profileModel ? self.profileModel(k) : null), n);
      if (profile) break;
    }
    if (!profile) throw new Error('no worker answered the profile request (is dist/ built from this tree? scripts/build-web)');
    return { model_load_ms: round1(Number(status.loadMs)), load_timing: roundAll(JSON.parse(status.timing ?? 'null')), profile };
  } finally {
    await browser.close();
  }
}

if (profileMode && profileBackend === 'gpu') {
  const r = await profileRun('gpu', gpuRuns);
  const report = {
    benchmark: 'where the WebGPU backend spends its time in the browser (SwiftShader here): every compute pass timed by the device\'s timestamps, and the load\'s phases',
    date: new Date().toISOString(), chromium: execFileSync('/usr/bin/chromium', ['--version']).toString().trim(),
    machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, platform: process.platform },
    model: { file: arg('model') ?? 'mriscreen random-model --alpha 1.0 --size 224', bytes: bytes.length, sha256 },
    definitions: {
      profile: 'mean milliseconds per inference by wonnx compute pass, named by the ONNX node it computes (Conv by kernel, depthwise or not; A+B where wonnx fused two), from the device\'s timestamps at each pass\'s start and end; in_ops_ms is their sum, total_ms one whole inference (submission and read-back included)',
    },
    ...r,
  };
  const p = r.profile;
  console.log(`ours: ${p.runs} runs, ${p.total_ms.toFixed(1)} ms per inference, ${p.in_ops_ms.toFixed(1)} ms in compute passes`);
  for (const o of p.ops.slice(0, 10)) console.log(`  ${o.op.padEnd(30)} ${String(o.nodes).padStart(3)} pass(es) ${o.ms.toFixed(1).padStart(8)} ms ${(100 * o.share).toFixed(1).padStart(5)} %`);
  finish(report, 'bench/browser/profile-webgpu.json');
}

if (profileMode) {
  const r = await profileRun('cpu', runs);
  const report = {
    benchmark: 'where the CPU backend spends its time in the browser (wasm, 1 thread): tract\'s operations timed one by one, and the load\'s phases',
    date: new Date().toISOString(), chromium: execFileSync('/usr/bin/chromium', ['--version']).toString().trim(),
    machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, platform: process.platform },
    model: { file: arg('model') ?? 'mriscreen random-model --alpha 1.0 --size 224', bytes: bytes.length, sha256 },
    definitions: {
      load_timing: 'the worker\'s clock (it starts with the worker): when the wasm module was ready, when the load request came, how long the download and the engine\'s create took, and create\'s phases',
      profile: 'mean milliseconds per inference by tract operation (its optimised graph), and the slowest nodes; total_ms is one whole inference while timed',
    },
    ...r,
  };
  const p = r.profile;
  console.log(`profile: ${p.runs} runs, ${p.total_ms.toFixed(2)} ms per inference, ${p.in_ops_ms.toFixed(2)} ms in operations`);
  for (const o of p.ops.slice(0, 8)) console.log(`  ${o.op.padEnd(30)} ${String(o.nodes).padStart(3)} node(s) ${o.ms.toFixed(2).padStart(8)} ms ${(100 * o.share).toFixed(1).padStart(5)} %`);
  console.log(`load: ${JSON.stringify(r.load_timing)}`);
  finish(report, 'bench/browser/profile.json');
}

const backends = [['cpu', 'wasm', runs], ['gpu', 'webgpu', gpuRuns]].filter(([b]) => !argv.includes('--backend') || b === profileBackend);
const results = { ours: { cpu: [], gpu: [] }, onnxruntime_web: { wasm: [], webgpu: [] } };
for (let round = 0; round < rounds; round++) {
  for (const [backend, ep, n] of backends) {
    // Alternate who goes first, so neither always runs on a machine the other has just warmed.
    const order = round % 2 === 0 ? ['ours', 'theirs'] : ['theirs', 'ours'];
    for (const who of order) {
      if (who === 'theirs' && !compare) continue;
      const r = who === 'ours' ? await ours(backend, n) : await theirs(ep, n);
      (who === 'ours' ? results.ours[backend] : results.onnxruntime_web[ep]).push(r);
      const label = who === 'ours' ? `mriscreen ${backend}` : `onnxruntime-web ${ep}`;
      console.log(`round ${round + 1} ${label}: warm median ${r.warm_median_ms.toFixed(1)} ms, cold ${r.cold_ms.toFixed(0)} ms, runtime ${(r.runtime_bytes.gzip_9 / 1e6).toFixed(2)} MB gzip`);
    }
  }
}
server.close();
fs.rmSync(site, { recursive: true, force: true });
fs.rmSync(images, { recursive: true, force: true });

/** Every round's warm runs pooled, the median of cold starts, and the runtime's bytes (null: not run, --backend). */
function summary(list) {
  if (!list.length) return null;
  return {
    warm_median_ms: median(list.flatMap((r) => r.warm_ms)), warm_median_by_round_ms: list.map((r) => r.warm_median_ms),
    cold_median_ms: median(list.map((r) => r.cold_ms)), cold_by_round_ms: list.map((r) => r.cold_ms),
    runtime_bytes: list[0].runtime_bytes,
  };
}
const report = {
  benchmark: 'browser latency, headless Chromium; ours through the page and its worker',
  date: new Date().toISOString(),
  chromium: execFileSync('/usr/bin/chromium', ['--version']).toString().trim(),
  webgpu_adapter: 'SwiftShader (software) unless the machine has a GPU',
  machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, platform: process.platform },
  model: { file: arg('model') ?? 'mriscreen random-model --alpha 1.0 --size 224', bytes: bytes.length, sha256, shape },
  runs, gpu_runs: gpuRuns, rounds,
  definitions: {
    cold_ms: 'navigation start to model ready, plus the first inference; a fresh browser and cache each time',
    warm_median_ms: 'median inference time of the runs after the first (ours: the worker\'s model run; onnxruntime-web: session.run)',
    runtime_bytes: 'the wasm and the JavaScript that loads it: raw, gzip -9, and as served (brotli copies)',
  },
  mriscreen: { cpu: summary(results.ours.cpu), gpu: summary(results.ours.gpu), rounds: results.ours },
};
if (compare) {
  const ort = { wasm: summary(results.onnxruntime_web.wasm), webgpu: summary(results.onnxruntime_web.webgpu) };
  report.onnxruntime_web = { version: ortVersion, settings: 'numThreads 1, proxy off, graphOptimizationLevel all', ...ort, rounds: results.onnxruntime_web };
  const ratio = (a, b) => +(a / b).toFixed(3);
  const pair = (o, t) => o && t && ({
    warm: ratio(o.warm_median_ms, t.warm_median_ms), cold: ratio(o.cold_median_ms, t.cold_median_ms),
    runtime_gzip: ratio(o.runtime_bytes.gzip_9, t.runtime_bytes.gzip_9), runtime_served: ratio(o.runtime_bytes.served, t.runtime_bytes.served),
  });
  report.ratios = { note: 'ours / onnxruntime-web, from this run: below 1 means we are faster or smaller', cpu_vs_wasm: pair(report.mriscreen.cpu, ort.wasm), gpu_vs_webgpu: pair(report.mriscreen.gpu, ort.webgpu) };
  console.log(JSON.stringify(report.ratios, null, 2));
}
fs.mkdirSync(path.dirname(out), { recursive: true });
fs.writeFileSync(out, JSON.stringify(report, null, 2) + '\n');
console.log(`-> ${path.relative(ROOT, out)}`);
