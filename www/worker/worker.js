// Module Web Worker: owns the wasm module and the loaded model, so the page
// never blocks on downloading, decoding or inference. Requests are handled
// one at a time, in arrival order; progress is posted as { id, status,
// progress } and every request ends with one { id, result } or { id, error }.
import { LOAD_MODEL, CLASSIFY } from '../protocol/messages.js';

/**
 * The backend the page asked for when it started this worker (WorkerClient
 * names the worker `mriscreen backend=auto|cpu|gpu`).
 */
const choice = /backend=(cpu|gpu)\b/.exec(self.name ?? '')?.[1] ?? 'auto';
// Fault injection (tests only, tests/browser/faults.test.mjs): a worker named with `fault=crash`
// dies on its first scan, as one whose fault is set later does (`self.mriscreenFault`).
if (/\bfault=crash\b/.test(self.name ?? '')) self.mriscreenFault = 'crash';

/**
 * Three builds of the wasm (scripts/build-web): pkg/mriscreen.js runs on the CPU
 * only; pkg/mriscreen_relaxed.js is the same built with relaxed SIMD (fused
 * multiply-adds in the matrix kernel), loaded instead wherever the browser
 * validates relaxed SIMD; pkg/mriscreen_gpu.js also carries the WebGPU backend
 * (wonnx), a larger download. The WebGPU one is loaded only where it can be
 * used: when the page asks for WebGPU, or in auto mode when the browser has an
 * adapter that is not a software rasteriser. `cpuOnly` is why a CPU build was
 * loaded in auto mode (the badge's reason), or null.
 *
 * The module is fetched and compiled (streaming) as soon as the worker
 * starts, while the page is still reading the manifest; a model download
 * then runs while the compile finishes (loadModel). A failure is reported by
 * the first request that needs the module.
 */
async function start() {
  let cpuOnly = null;
  if (choice === 'cpu') cpuOnly = 'the page asked for the CPU';
  else if (choice === 'auto') cpuOnly = await adapterVerdict();
  if (cpuOnly == null) {
    try {
      return { ...(await instantiate(GPU_BUILD)), cpuOnly };
    } catch (e) {
      // Offline before the WebGPU build was ever used here, for instance: the CPU build is cached.
      if (choice === 'gpu') throw e;
      cpuOnly = `the WebGPU build of the engine could not be loaded (${e.message || e}); the CPU build runs`;
    }
  }
  return { ...(await instantiate(CPU_BUILD)), cpuOnly };
}

const GPU_BUILD = '../pkg/mriscreen_gpu.js';

/**
 * Whether this browser runs relaxed SIMD: a module of one function,
 * `f32x4.relaxed_madd` of its three parameters, validates. A test names a
 * worker `simd=plain` to see the other build chosen.
 */
function relaxedSimd() {
  if (/\bsimd=plain\b/.test(self.name ?? '')) return false;
  const madd = [0, 97, 115, 109, 1, 0, 0, 0, // "\0asm", version 1
    1, 8, 1, 96, 3, 123, 123, 123, 1, 123, // type: (v128, v128, v128) -> v128
    3, 2, 1, 0, // one function of that type
    10, 13, 1, 11, 0, 32, 0, 32, 1, 32, 2, 253, 133, 2, 11]; // local.get 0 1 2; f32x4.relaxed_madd (0xfd 0x105)
  try {
    return WebAssembly.validate(new Uint8Array(madd));
  } catch {
    return false;
  }
}

const CPU_BUILD = relaxedSimd() ? '../pkg/mriscreen_relaxed.js' : '../pkg/mriscreen.js';

async function instantiate(url) {
  const module = await import(url);
  const exports = await module.default();
  // This build's files, for the service worker to store (it precaches neither build).
  const files = [url, url.replace(/\.js$/, '_bg.wasm')].map((u) => new URL(u, import.meta.url).href);
  return { MriScreen: module.MriScreen, memory: exports.memory, files };
}

let wasmReady = false;
let wasmReadyAt = null; // performance.now() when the module was ready (the worker's clock starts with it)
let ready = start().then((m) => { wasmReady = true; wasmReadyAt = performance.now(); return m; });
ready.catch(() => {});
// The module's memory, for scripts/bench-browser.mjs: a wasm memory never shrinks, so its size is
// the most the module has held at once.
ready.then((m) => { self.wasmMemory = m.memory; }, () => {});

/**
 * The CPU build parses the core operator set only (src/model/core_ops.rs): the
 * layers of the classifiers we ship and of most exported CNNs. A model with
 * any other operator is refused with kind `outside-core`, and this loads the
 * WebGPU build, which has tract's whole registry, to run it on the CPU; the
 * worker keeps that build for every later request.
 */
async function fullEngine(engine, id, why) {
  postMessage({ id, status: 'loading the full engine for this model\'s operators' });
  let full;
  try {
    full = await instantiate(GPU_BUILD);
  } catch (e) {
    throw { kind: 'model', message: `this model needs the full engine, which could not be loaded (${e.message || e}); connect to the internet once and load the model again. (${why})` };
  }
  const next = { ...full, cpuOnly: engine.cpuOnly };
  ready = Promise.resolve(next);
  self.wasmMemory = next.memory;
  return next;
}
/**
 * The CPU build decodes JPEG, PNG, BMP and DICOM, not TIFF or WebP (a smaller
 * first download; the Cargo feature `all-formats`). For those it answers
 * kind `format-elsewhere`: the worker then loads the WebGPU build once, only
 * to decode with it, and the loaded model classifies the decoded pixels
 * (`decode_pixels`, `classify_pixels`): the same samples, the same result.
 */
let decoder = null;
async function decodeElsewhere(id, image, options) {
  postMessage({ id, status: 'loading the full engine to decode this format' });
  decoder ??= instantiate(GPU_BUILD).catch((e) => {
    decoder = null;
    throw { kind: 'decode', message: `decoding this format needs the full engine, which could not be loaded (${e.message || e}); connect to the internet once, or save the image as PNG` };
  });
  const full = await decoder;
  postMessage({ id, status: 'classifying the decoded image' });
  return full.MriScreen.decode_pixels(image, options);
}

// Time per operation of the loaded model on the backend in use, `runs` inferences (scripts/bench-browser.mjs --profile): a Promise.
self.profileModel = (runs) => screen.profile(runs);
let screen = null;  // the loaded MriScreen
let queue = Promise.resolve();
let classifying = null; // the id of the classify request being answered
let gpuLost = null;     // why the WebGPU device in use was lost, once it was
let onGpu = false;      // whether `screen` runs on WebGPU (known here without calling into the busy wasm)

/**
 * Every WebGPU device wgpu requests in this worker, newest last; the
 * fault-injection tests destroy the newest (tests/browser/faults.test.mjs).
 * When the device in use is lost (driver reset, GPU process crash, tab in
 * the background on some systems) the scan being answered fails at once
 * with kind `device-lost` instead of waiting on a device that will never
 * answer; the page then restarts the worker on the CPU and retries it.
 */
self.gpuDevices = [];
if (self.GPUAdapter?.prototype.requestDevice) {
  const requestDevice = GPUAdapter.prototype.requestDevice;
  GPUAdapter.prototype.requestDevice = async function (...args) {
    const device = await requestDevice.apply(this, args);
    self.gpuDevices.push(device);
    if (self.gpuDevices.length > 4) self.gpuDevices.splice(0, self.gpuDevices.length - 4); // old models' devices, long freed
    device.lost.then((info) => {
      if (device !== self.gpuDevices.at(-1) || !onGpu) return; // an old model's device, freed
      gpuLost = info.message || info.reason || 'no reason given';
      if (classifying != null) postMessage({ id: classifying, error: lostError() });
    });
    return device;
  };
}

const lostError = () => ({ kind: 'device-lost', message: `the WebGPU device was lost (${gpuLost})` });

/** { kind, message }: the wasm's errors carry their kind (src/web.rs `WebError`: decode, hash, model, inference, options). */
function errorOf(e) {
  if (e && typeof e === 'object' && 'kind' in e) return { kind: String(e.kind), message: String(e.message) };
  return { kind: 'internal', message: String((e && e.message) || e) };
}

/** Downloads `url`, posting { loaded, total } as it streams. */
async function download(id, url, expectedBytes) {
  let response;
  try {
    response = await fetch(url);
  } catch (e) {
    throw { kind: 'network', message: `could not download ${url}: ${e.message} (offline, and not cached yet?)` };
  }
  if (!response.ok) throw { kind: 'network', message: `could not download ${url} (HTTP ${response.status})` };
  // The manifest's size is the decoded size; a compressed answer's Content-Length is not.
  const total = expectedBytes || (response.headers.get('Content-Encoding') ? 0 : Number(response.headers.get('Content-Length'))) || 0;
  if (!response.body) {
    const buf = new Uint8Array(await response.arrayBuffer());
    postMessage({ id, status: 'downloading the model', progress: { loaded: buf.length, total: buf.length } });
    return buf;
  }
  const reader = response.body.getReader();
  const parts = [];
  let loaded = 0;
  let lastPost = 0;
  const stopped = (why) => ({
    kind: 'network',
    message: `the download of ${url} stopped after ${loaded} of ${total || 'an unknown number of'} bytes (${why}); check the connection and press Retry`,
  });
  for (;;) {
    let chunk;
    try {
      chunk = await reader.read();
    } catch (e) {
      throw stopped(e.message || 'the connection broke');
    }
    const { done, value } = chunk;
    if (done) break;
    parts.push(value);
    loaded += value.length;
    const now = performance.now();
    if (now - lastPost > 50) {
      lastPost = now;
      postMessage({ id, status: 'downloading the model', progress: { loaded, total } });
    }
  }
  if (expectedBytes && loaded < expectedBytes) throw stopped('the server sent less than the manifest says');
  postMessage({ id, status: 'downloading the model', progress: { loaded, total: Math.max(total, loaded) } });
  const bytes = new Uint8Array(loaded);
  let at = 0;
  for (const p of parts) { bytes.set(p, at); at += p.length; }
  return bytes;
}

/** Lower-case hex SHA-256 of `bytes` by SubtleCrypto, or undefined where the browser offers none. */
async function sha256Hex(bytes) {
  if (!self.crypto?.subtle) return undefined;
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return Array.from(d, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** A Uint8Array that owns its whole buffer (so it can be transferred), whatever form serde gave. */
function bytesOf(v) {
  if (!(v instanceof Uint8Array)) return Uint8Array.from(v ?? []);
  return v.byteOffset === 0 && v.byteLength === v.buffer.byteLength ? v : v.slice();
}

/**
 * Why auto mode should not use this browser's WebGPU, or null: there is no
 * adapter, or the only one is a software rasteriser (SwiftShader, llvmpipe,
 * WARP: a CPU pretending to be a GPU), slower than the CPU backend here by
 * two orders of magnitude. The browser tells the page what wgpu does not pass
 * on: `isFallbackAdapter` and the adapter's vendor, architecture and
 * description. A hardware adapter is then timed against the CPU by the engine.
 */
async function adapterVerdict() {
  let adapter;
  try {
    adapter = await navigator.gpu?.requestAdapter();
  } catch (e) {
    return `this browser's WebGPU gave no adapter (${e.message || e})`;
  }
  if (!adapter) return 'this browser exposes no WebGPU (navigator.gpu is missing or has no adapter)';
  const info = adapter.info ?? {};
  const words = [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' ');
  if (adapter.isFallbackAdapter || info.isFallbackAdapter || /swiftshader|llvmpipe|lavapipe|softpipe|software|warp\b/i.test(words)) {
    return `the only WebGPU adapter is a software rasteriser (${words || 'a fallback adapter'}), slower than the CPU; ?backend=gpu uses it anyway`;
  }
  return null;
}

async function loadModel(id, args) {
  const t0 = performance.now();
  let downloadedAt = t0;
  const downloading = (args.url ? download(id, args.url, args.bytes) : Promise.resolve(new Uint8Array(args.model)))
    .then((b) => { downloadedAt = performance.now(); return b; });
  downloading.catch(() => {}); // awaited below, after the module
  // The browser's native SHA-256, while the module may still be compiling (the engine then does not hash
  // the bytes again; without SubtleCrypto, outside a secure context, it does).
  const digest = downloading.then(sha256Hex).catch(() => undefined);
  let engine = await ready;
  const bytes = await downloading;
  const computed = await digest;
  const t1 = performance.now();
  postMessage({ id, status: 'checking the SHA-256 and loading the model' });
  let backend = args.backend ?? 'auto';
  // The page passes `cpu_reason` when it moves a model to the CPU (a crash, a lost device).
  const cpuReason = backend === 'auto' ? engine.cpuOnly : args.cpu_reason ?? null;
  if (cpuReason) backend = 'cpu';
  const options = {
    sha256: args.sha256 ?? undefined, computed_sha256: computed, overrides: args.overrides ?? {}, backend, cpu_reason: cpuReason ?? undefined,
  };
  let next;
  let fullEngineWhy = null;
  try {
    next = await engine.MriScreen.create(bytes, options);
  } catch (e) {
    const error = errorOf(e);
    if (error.kind !== 'outside-core') throw e;
    fullEngineWhy = error.message;
    engine = await fullEngine(engine, id, fullEngineWhy);
    postMessage({ id, status: 'checking the SHA-256 and loading the model' });
    next = await engine.MriScreen.create(bytes, options);
  }
  const t2 = performance.now();
  screen?.free();
  screen = next;
  gpuLost = null;
  onGpu = screen.status().kind === 'gpu';
  // Where the load's time went (scripts/bench-browser.mjs reports it): milliseconds on the worker's
  // clock, which starts with the worker; the model's download overlaps the module's compile.
  const timing = {
    wasm_ready_at_ms: wasmReadyAt, request_at_ms: t0, download_ms: downloadedAt - t0,
    waited_ms: t1 - t0, create_ms: t2 - t1, create_phases: screen.load_phases(), hashed_by: computed ? 'SubtleCrypto' : 'the engine',
  };
  return { result: { info: screen.info(), backend: screen.status(), engine_files: engine.files, full_engine: fullEngineWhy, timing } };
}

async function classify(id, args) {
  if (!screen) throw { kind: 'model', message: 'no model is loaded yet' };
  if (gpuLost) throw lostError();
  postMessage({ id, status: `classifying ${args.name}` });
  if (self.mriscreenFault === 'crash') {
    // Fault injection (tests only): the worker dies mid-scan, answering nothing.
    self.mriscreenFault = null;
    setTimeout(() => { throw new Error('injected crash'); });
    return new Promise(() => {});
  }
  const t0 = performance.now();
  const options = args.frame == null ? undefined : { frame: args.frame };
  let p;
  try {
    classifying = id;
    const image = new Uint8Array(args.image);
    try {
      p = await screen.classify(image, options);
    } catch (e) {
      if (errorOf(e).kind !== 'format-elsewhere') throw e;
      p = await screen.classify_pixels(await decodeElsewhere(id, image, options));
    }
  } catch (e) {
    // A failed map or submit often arrives before the device's `lost` promise settles: give it a moment.
    if (onGpu && !gpuLost) await Promise.race([self.gpuDevices.at(-1)?.lost, new Promise((r) => setTimeout(r, 500))]);
    throw gpuLost ? lostError() : e;
  } finally {
    classifying = null;
  }
  p.total_ms = performance.now() - t0;
  p.status = screen.status();
  onGpu = p.status.kind === 'gpu';
  const transfer = [];
  if (p.preview) { p.preview.pixels = bytesOf(p.preview.pixels); transfer.push(p.preview.pixels.buffer); }
  if (p.heatmap) { p.heatmap.values = bytesOf(p.heatmap.values); transfer.push(p.heatmap.values.buffer); }
  return { result: p, transfer };
}

async function handle({ id, type, ...args }) {
  try {
    if (!wasmReady) postMessage({ id, status: 'starting the WebAssembly module' });
    // loadModel downloads its model while the module compiles, then waits for both.
    if (type !== LOAD_MODEL) await ready;
    let answer;
    if (type === LOAD_MODEL) answer = await loadModel(id, args);
    else if (type === CLASSIFY) answer = await classify(id, args);
    else throw { kind: 'internal', message: `unknown request ${type}` };
    postMessage({ id, result: answer.result }, answer.transfer ?? []);
  } catch (e) {
    postMessage({ id, error: errorOf(e) });
  }
}

self.onmessage = (event) => {
  queue = queue.then(() => handle(event.data));
};
