// The peer side of `node scripts/bench-browser.mjs --compare`: onnxruntime-web
// runs the same ONNX file as the page, in the same Chromium, and leaves its
// timings in window.ortBench. Query: ep=wasm|webgpu, model=URL, runs=N,
// shape=1,3,224,224. Times are from the navigation's start (performance.now()),
// as the page's are, so both cold starts count the same things: the runtime's
// download and compilation, the model's download and load, the first run.
const q = new URLSearchParams(location.search);
const ep = q.get('ep') ?? 'wasm';
const runs = Number(q.get('runs') ?? 30);
const shape = (q.get('shape') ?? '1,3,224,224').split(',').map(Number);
const status = document.getElementById('status');

async function bench() {
  const ort = await import(ep === 'webgpu' ? './ort.webgpu.min.mjs' : './ort.wasm.min.mjs');
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  ort.env.wasm.wasmPaths = new URL('./', import.meta.url).href;
  const session = await ort.InferenceSession.create(q.get('model'), {
    executionProviders: [ep], graphOptimizationLevel: 'all',
  });
  const readyAt = performance.now();
  // The same deterministic input every run (values in [-1, 1), as the page's normalisation gives).
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  let x = 12345;
  for (let i = 0; i < data.length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    data[i] = x / 2 ** 31 - 1;
  }
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', data, shape) };
  const once = async () => {
    const t = performance.now();
    const out = await session.run(feeds);
    const logits = Array.from(out[session.outputNames[0]].data);
    return { ms: performance.now() - t, logits };
  };
  const first = await once();
  const warm = [];
  for (let i = 0; i < runs; i++) warm.push((await once()).ms);
  return { ep, ready_at_ms: readyAt, first_run_ms: first.ms, warm_ms: warm, logits: first.logits };
}

bench().then((r) => {
  window.ortBench = r;
  status.textContent = 'done';
}, (e) => {
  window.ortBench = { error: String(e?.stack ?? e) };
  status.textContent = `failed: ${e}`;
});
