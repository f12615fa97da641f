// Benchmark (not a test): memory over a long session. Classifies --cpu scans
// (default 1,000) in one page session on the CPU backend and --gpu (default
// 200) on WebGPU (SwiftShader in headless Chromium), and every 50 scans
// records the worker's wasm memory, the page's JS heap after a garbage
// collection, its DOM node count, and the resident memory of Chromium's
// renderer and GPU processes; then runs `mriscreen predict` over --native
// (default 10,000) files, sampling its resident memory. Each part is written
// to bench/soak/<part>.json (a count of 0 skips a part and keeps its last
// file); bench/soak/soak.json has the growth of every part, (last − at 100
// scans) / at 100 scans (native: after 1,000 files), and soak.svg the plot.
//
//   node scripts/bench-soak.mjs [--cpu 1000] [--gpu 200] [--native 10000] [--out bench/soak/soak.json]
//
// Uses the built site (scripts/build-web) and target/debug/mriscreen (built if
// missing; MRISCREEN_BIN overrides).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, execFileSync } from 'node:child_process';
import { ROOT, DIST, WEBGPU_FLAGS, launch, openPage, samples } from '../tests/browser/helpers.mjs';
import { serve } from './static-server.mjs';

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
};
const counts = { cpu: Number(arg('cpu', 1000)), gpu: Number(arg('gpu', 200)), native: Number(arg('native', 10000)) };
const out = path.resolve(ROOT, arg('out', 'bench/soak/soak.json'));
const EVERY = 50;
if (!fs.existsSync(path.join(DIST, 'index.html'))) throw new Error('build the site first: scripts/build-web');
const MB = 1024 * 1024;

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mriscreen-soak-'));
const sources = samples().filter((s) => s.kind === 'real').map((s) => s.path);
/** `n` scans named uniquely, hard links to the real samples in turn. */
function scanFiles(n, stem) {
  const dir = fs.mkdtempSync(path.join(work, `${stem}-`));
  return Array.from({ length: n }, (_, i) => {
    const src = sources[i % sources.length];
    const f = path.join(dir, `${stem}-${String(i).padStart(5, '0')}${path.extname(src)}`);
    fs.linkSync(src, f);
    return f;
  });
}

/** pid → { ppid, cmd } of every process. */
function processes() {
  const all = new Map();
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      all.set(Number(pid), { ppid, cmd: fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8') });
    } catch {
      // The process ended meanwhile.
    }
  }
  return all;
}

/**
 * Resident memory (bytes) of the processes of `type` (renderer, gpu-process)
 * of the Chromium this script launched (its child and that one's
 * descendants; other browsers on the machine are not counted).
 */
function rss(type) {
  const all = processes();
  const ours = new Set([...all].filter(([, p]) => p.ppid === process.pid && p.cmd.includes('chromium')).map(([pid]) => pid));
  for (let grew = true; grew;) {
    grew = false;
    for (const [pid, p] of all) if (!ours.has(pid) && ours.has(p.ppid)) { ours.add(pid); grew = true; }
  }
  let total = 0;
  for (const pid of ours) {
    if (!all.get(pid).cmd.includes(`--type=${type}`)) continue;
    try {
      const kb = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
      total += kb ? Number(kb[1]) * 1024 : 0;
    } catch {
      // The process ended meanwhile.
    }
  }
  return total;
}

async function browserSoak(url, backend, n) {
  const browser = await launch(backend === 'gpu' ? WEBGPU_FLAGS : []);
  try {
    const { page } = await openPage(browser, `${url}?backend=${backend}`);
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Performance.enable');
    const [worker] = page.workers();
    const samplesTaken = [];
    const files = scanFiles(n, backend);
    for (let done = 0; done < n; done += EVERY) {
      const batch = files.slice(done, done + EVERY);
      await page.setInputFiles('#file-input', batch);
      await page.waitForFunction((k) => document.querySelectorAll('#results-rows tr[data-status=ok], #results-rows tr[data-status=error]').length >= k,
        done + batch.length, { timeout: 3_600_000, polling: 250 });
      await page.waitForSelector('#queue-status[data-state=idle]', { timeout: 600_000 });
      await cdp.send('HeapProfiler.collectGarbage');
      const metrics = Object.fromEntries((await cdp.send('Performance.getMetrics')).metrics.map((m) => [m.name, m.value]));
      const wasm = await worker.evaluate(async () => {
        const bindings = await import(new URL('../pkg/mriscreen.js', self.location.href).href);
        return (await bindings.default()).memory.buffer.byteLength;
      });
      const failed = await page.locator('#results-rows tr[data-status=error]').count();
      const sample = {
        scans: done + batch.length, failed,
        wasm_memory_bytes: wasm, js_heap_used_bytes: metrics.JSHeapUsedSize, dom_nodes: metrics.Nodes,
        renderer_rss_bytes: rss('renderer'), gpu_process_rss_bytes: rss('gpu-process'),
      };
      samplesTaken.push(sample);
      console.log(`${backend} ${sample.scans}: wasm ${(wasm / MB).toFixed(1)} MB, JS heap ${(sample.js_heap_used_bytes / MB).toFixed(1)} MB, `
        + `${sample.dom_nodes} DOM nodes, renderer ${(sample.renderer_rss_bytes / MB).toFixed(0)} MB, GPU process ${(sample.gpu_process_rss_bytes / MB).toFixed(0)} MB`);
    }
    return samplesTaken;
  } finally {
    await browser.close();
  }
}

async function nativeSoak(n) {
  const bin = process.env.MRISCREEN_BIN ?? path.join(ROOT, 'target/debug/mriscreen');
  if (!fs.existsSync(bin)) execFileSync('cargo', ['build', '-q', '-p', 'trainer'], { cwd: ROOT, stdio: 'inherit' });
  const files = scanFiles(n, 'native');
  const taken = [];
  const child = spawn(bin, ['predict', ...files], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  let lines = 0;
  let next = EVERY * 20;
  child.stdout.on('data', (chunk) => {
    for (const b of chunk) if (b === 10) lines++;
    while (lines >= next) {
      const kb = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      taken.push({ files: next, rss_bytes: kb ? Number(kb[1]) * 1024 : null });
      console.log(`native ${next}: RSS ${(taken.at(-1).rss_bytes / MB).toFixed(1)} MB`);
      next += EVERY * 20;
    }
  });
  const code = await new Promise((resolve) => child.on('exit', resolve));
  if (code > 1) throw new Error(`mriscreen predict exited with ${code}`);
  return taken;
}

/** (last − reference) / reference of `key`, the reference being the sample at `at`. */
function growth(series, key, x, at) {
  const ref = series.find((s) => s[x] >= at) ?? series[0];
  const last = series.at(-1);
  return ref && last && ref[key] ? (last[key] - ref[key]) / ref[key] : null;
}

function svg(report) {
  const panels = [
    ['Page on the CPU backend', report.browser_cpu, 'scans', ['wasm_memory_bytes', 'js_heap_used_bytes', 'renderer_rss_bytes']],
    ['Page on WebGPU (SwiftShader)', report.browser_gpu, 'scans', ['wasm_memory_bytes', 'js_heap_used_bytes', 'renderer_rss_bytes', 'gpu_process_rss_bytes']],
    ['mriscreen predict (native)', report.native, 'files', ['rss_bytes']],
  ];
  const colours = { wasm_memory_bytes: '#1f5fa8', js_heap_used_bytes: '#b5541c', renderer_rss_bytes: '#2d7a3a', gpu_process_rss_bytes: '#6b3fa0', rss_bytes: '#2d7a3a' };
  const names = { wasm_memory_bytes: 'wasm memory', js_heap_used_bytes: 'JS heap (page)', renderer_rss_bytes: 'renderer RSS', gpu_process_rss_bytes: 'GPU process RSS', rss_bytes: 'RSS' };
  const W = 320; const H = 220; const L = 50; const B = 190; const T = 30;
  const parts = [];
  panels.forEach(([title, series, x, keys], i) => {
    const ox = i * (W + 20);
    parts.push(`<text x="${ox + L}" y="18" font-size="13" font-weight="bold">${title}</text>`);
    if (!series?.length) { parts.push(`<text x="${ox + L}" y="100" font-size="12">not measured</text>`); return; }
    const xmax = Math.max(...series.map((s) => s[x]));
    const ymax = Math.max(...series.flatMap((s) => keys.map((k) => s[k] ?? 0))) / MB * 1.1;
    const px = (v) => ox + L + (v / xmax) * (W - L - 10);
    const py = (v) => B - (v / MB / ymax) * (B - T);
    parts.push(`<line x1="${ox + L}" y1="${B}" x2="${ox + W - 10}" y2="${B}" stroke="#333"/><line x1="${ox + L}" y1="${T}" x2="${ox + L}" y2="${B}" stroke="#333"/>`);
    for (const f of [0, 0.5, 1]) {
      parts.push(`<text x="${ox + L - 4}" y="${py(f * ymax * MB) + 4}" font-size="10" text-anchor="end">${(f * ymax).toFixed(0)}</text>`);
      parts.push(`<text x="${px(f * xmax)}" y="${B + 14}" font-size="10" text-anchor="middle">${Math.round(f * xmax)}</text>`);
    }
    parts.push(`<text x="${ox + 12}" y="${(T + B) / 2}" font-size="10" transform="rotate(-90 ${ox + 12} ${(T + B) / 2})" text-anchor="middle">MB</text>`);
    parts.push(`<text x="${ox + (W + L) / 2}" y="${B + 28}" font-size="10" text-anchor="middle">${x}</text>`);
    keys.forEach((k, j) => {
      const pts = series.filter((s) => s[k] != null).map((s) => `${px(s[x]).toFixed(1)},${py(s[k]).toFixed(1)}`).join(' ');
      parts.push(`<polyline fill="none" stroke="${colours[k]}" stroke-width="2" points="${pts}"/>`);
      parts.push(`<text x="${ox + W - 12}" y="${T + 12 + j * 12}" font-size="10" text-anchor="end" fill="${colours[k]}">${names[k]}</text>`);
    });
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${3 * (W + 20)}" height="${H + 20}" font-family="sans-serif">\n`
    + `<rect width="100%" height="100%" fill="#fff"/>\n${parts.join('\n')}\n</svg>\n`;
}

// Each part writes its own file, so one can be measured again alone (e.g. --cpu 0 --gpu 0 for the native part).
const dir = path.dirname(out);
const partFile = (name) => path.join(dir, `${name}.json`);
const machine = `${os.cpus().length} × ${os.cpus()[0]?.model}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB`;
const { server, url } = await serve(DIST, { port: 0 });
try {
  fs.mkdirSync(dir, { recursive: true });
  const save = (name, samplesTaken) => fs.writeFileSync(partFile(name), `${JSON.stringify({ date: new Date().toISOString(), machine, every: EVERY, samples: samplesTaken }, null, 2)}\n`);
  if (counts.cpu) save('browser_cpu', await browserSoak(url, 'cpu', counts.cpu));
  if (counts.gpu) save('browser_gpu', await browserSoak(url, 'gpu', counts.gpu));
  if (counts.native) save('native', await nativeSoak(counts.native));
  const read = (name) => (fs.existsSync(partFile(name)) ? JSON.parse(fs.readFileSync(partFile(name), 'utf8')) : null);
  const parts = { browser_cpu: read('browser_cpu'), browser_gpu: read('browser_gpu'), native: read('native') };
  const report = Object.fromEntries(Object.entries(parts).map(([k, v]) => [k, v?.samples ?? []]));
  const growthOf = {
    browser_cpu: ['scans', 100, ['wasm_memory_bytes', 'js_heap_used_bytes', 'renderer_rss_bytes']],
    browser_gpu: ['scans', 100, ['wasm_memory_bytes', 'js_heap_used_bytes', 'renderer_rss_bytes', 'gpu_process_rss_bytes']],
    native: ['files', 1000, ['rss_bytes']],
  };
  const summary = {
    measured: Object.fromEntries(Object.entries(parts).map(([k, v]) => [k, v ? { date: v.date, machine: v.machine } : null])),
    growth: Object.fromEntries(Object.entries(growthOf).map(([k, [x, at, keys]]) => [k, Object.fromEntries(keys.map((key) => [key, growth(report[k], key, x, at)]))])),
  };
  fs.writeFileSync(out, `${JSON.stringify(summary, null, 2)}\n`);
  fs.writeFileSync(path.join(dir, 'soak.svg'), svg(report));
  console.log(`growth after the first 100 scans (1,000 files natively): ${JSON.stringify(summary.growth)}`);
  console.log(`written: ${path.relative(ROOT, dir)}/ (browser_cpu.json, browser_gpu.json, native.json, soak.json, soak.svg)`);
} finally {
  server.close();
  fs.rmSync(work, { recursive: true, force: true });
}
