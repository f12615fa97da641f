// Benchmark (not a test): cold and warm latency of both backends for a
// random-weight MobileNetV2-1.0 at 224x224 in headless Chromium, through the
// real page and worker. Writes bench/browser-latency.json.
//
//   node scripts/bench-browser.mjs [--runs 30] [--out bench/browser-latency.json]
//
// cold = model download + SHA-256 check + load (incl. the auto mode's
// self-check) + the first classification; warm = median inference time of the
// next --runs classifications. WebGPU here is SwiftShader (software).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { ROOT, DIST, WEBGPU_FLAGS, launch, openPage } from '../tests/browser/helpers.mjs';
import { serve } from './static-server.mjs';

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
};
const runs = Number(arg('runs', 30));
const out = path.resolve(ROOT, arg('out', 'bench/browser-latency.json'));
if (!fs.existsSync(path.join(DIST, 'index.html'))) throw new Error('build the site first: scripts/build-web');

const site = fs.mkdtempSync(path.join(os.tmpdir(), 'mriscreen-bench-'));
fs.cpSync(DIST, site, { recursive: true });
const modelFile = path.join(site, 'models', 'mobilenet_v2_1.0-random.onnx');
execFileSync('cargo', ['run', '-q', '--release', '-p', 'trainer', '--', 'random-model', '--alpha', '1.0', '--size', '224', '--out', modelFile, '--force'], { cwd: ROOT, stdio: 'inherit' });
const bytes = fs.readFileSync(modelFile);
const manifest = { version: 1, default: 'bench', models: [{
  id: 'bench', name: 'MobileNetV2-1.0, random weights (benchmark)', file: path.basename(modelFile),
  sha256: crypto.createHash('sha256').update(bytes).digest('hex'), bytes: bytes.length, untrained: true,
}] };
fs.writeFileSync(path.join(site, 'models', 'manifest.json'), JSON.stringify(manifest));

const images = fs.mkdtempSync(path.join(os.tmpdir(), 'mriscreen-bench-img-'));
const files = Array.from({ length: runs + 1 }, (_, i) => {
  const f = path.join(images, `scan-${String(i).padStart(3, '0')}.jpg`);
  fs.copyFileSync(path.join(ROOT, 'tests/golden/progressive.jpg'), f);
  return f;
});

const { server, url } = await serve(site, { port: 0 });
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor((s.length - 1) / 2)]; };
const results = {};
for (const backend of ['gpu', 'cpu']) {
  const browser = await launch(WEBGPU_FLAGS);
  try {
    const { page } = await openPage(browser, `${url}?backend=${backend === 'gpu' ? 'gpu' : 'cpu'}`);
    const loadMs = Number(await page.$eval('#model-status', (e) => e.dataset.loadMs));
    await page.setInputFiles('#file-input', files);
    await page.waitForFunction((n) => document.querySelectorAll('.result').length >= n, files.length, { timeout: 3_600_000 });
    const rows = await page.$$eval('.result', (ns) => ns.map((n) => ({
      file: n.dataset.file, status: n.dataset.status, backend: n.dataset.backend,
      inference: Number(n.dataset.inferenceMs), total: Number(n.dataset.totalMs),
    })));
    rows.sort((a, b) => a.file.localeCompare(b.file));
    if (rows.some((r) => r.status !== 'ok' || r.backend !== backend)) throw new Error(`${backend}: ${JSON.stringify(rows[0])}`);
    const warm = rows.slice(1).map((r) => r.inference);
    results[backend] = {
      cold_ms: loadMs + rows[0].total, model_load_ms: loadMs, first_result_ms: rows[0].total,
      warm_median_ms: median(warm), warm_min_ms: Math.min(...warm), warm_max_ms: Math.max(...warm),
      warm_median_total_ms: median(rows.slice(1).map((r) => r.total)), runs: warm.length,
    };
    console.log(backend, JSON.stringify(results[backend]));
  } finally {
    await browser.close();
  }
}
server.close();
const report = {
  benchmark: 'browser latency, headless Chromium, MobileNetV2-1.0 224x224 random weights, through the page and its worker',
  chromium: execFileSync('/usr/bin/chromium', ['--version']).toString().trim(),
  webgpu_adapter: 'SwiftShader (software) unless the machine has a GPU',
  machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, platform: process.platform },
  gpu: results.gpu, cpu: results.cpu,
  reference: 'onnxruntime-web 1.30, same machine class: WebGPU (SwiftShader) 2.06 s warm, wasm 1 thread 30.8 ms warm (README, section Benchmark)',
};
fs.mkdirSync(path.dirname(out), { recursive: true });
fs.writeFileSync(out, JSON.stringify(report, null, 2) + '\n');
console.log(`-> ${path.relative(ROOT, out)}`);
