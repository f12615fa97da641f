// The page on WebGPU (SwiftShader in headless Chromium) and without it.
// SwiftShader is a software rasteriser: auto mode runs the CPU there and
// says why; ?backend=gpu still runs WebGPU.
// The one WebGPU test is the acceptance check: a sample classified on
// WebGPU, agreeing with the native CLI, with the heat-map drawn (screenshot
// saved for review); then offline, after a reload, the same label. WebGPU on
// SwiftShader is slow (~8 s per cold model load), so every other test here
// stays on the CPU.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WEBGPU_FLAGS, startServer, launch, openPage, openContextPage, classifySample, classifyInPage, cliPredict, backendBadge,
  samples, waitReadyOffline, screenshot } from './helpers.mjs';

let server, url, answers;
before(async () => { ({ server, url, answers } = await startServer()); });

/** The wasm builds the server sent since answer number `from`: 'cpu' (pkg/mriscreen_bg.wasm or its relaxed-SIMD twin) and/or 'gpu'. */
const wasmBuildsSent = (from) => [...new Set(answers.slice(from).filter((a) => a.status === 200 && a.path.endsWith('_bg.wasm'))
  .map((a) => (a.path.endsWith('/mriscreen_gpu_bg.wasm') ? 'gpu' : 'cpu')))].sort();
after(() => server?.close());

test('acceptance: a sample on WebGPU with its heat-map, then the same label offline after a reload', async () => {
  const browser = await launch(WEBGPU_FLAGS);
  try {
    // SwiftShader is a software rasteriser, which auto mode passes over: ask for WebGPU.
    const from = answers.length;
    const { context, page, errors, violations } = await openPage(browser, `${url}?backend=gpu`);
    const badge = await backendBadge(page);
    assert.equal(badge.kind, 'gpu', `expected WebGPU, got: ${badge.text}`);
    assert.match(badge.text, /^WebGPU/);
    const sample = samples().find((s) => s.class === 'glioma');
    const r = await classifySample(page, sample.class);
    assert.equal(r.status, 'ok', r.text);
    assert.equal(r.backend, 'gpu');
    const [n] = cliPredict([sample.path]);
    assert.equal(r.label, n.label);
    for (const [c, p] of Object.entries(n.probabilities)) {
      assert.ok(Math.abs(r.probabilities[c] - p) <= 1e-4, `${c}: WebGPU ${r.probabilities[c]} vs CPU ${p}`);
    }
    const result = page.locator(`.result[data-file="${sample.file}"]`);
    const shot = await screenshot(result, 'webgpu-result-heatmap.png');
    console.log(`# screenshot: ${shot}`);
    // The heat-map is drawn over the thumbnail, with some visible evidence, and its opacity follows the slider.
    assert.equal(r.heatmap, 'drawn', 'heat-map (needs a model with a `features` output and the wasm `heatmap` field)');
    const heat = await result.locator('canvas.heatmap').evaluate((c) => ({
      shown: Number(c.dataset.shown), w: c.width, h: c.height, opacity: getComputedStyle(c).opacity,
    }));
    const thumb = await result.locator('canvas.thumb').evaluate((c) => ({ w: c.width, h: c.height }));
    assert.deepEqual([heat.w, heat.h], [thumb.w, thumb.h], 'heat-map aligned with the preview');
    assert.ok(heat.shown > 0, 'heat-map has visible pixels');
    await result.locator('input.opacity').fill('20');
    assert.equal(await result.locator('canvas.heatmap').evaluate((c) => getComputedStyle(c).opacity), '0.2');

    // Only the WebGPU build of the wasm was downloaded; the service worker then stored it too.
    await waitReadyOffline(page);
    assert.deepEqual(wasmBuildsSent(from), ['gpu']);
    await context.setOffline(true);
    await page.reload();
    await page.waitForSelector('#model-status[data-status=ready]', { timeout: 120_000 });
    const again = await classifySample(page, sample.class);
    assert.equal(again.status, 'ok', again.text);
    assert.equal(again.label, r.label);
    assert.equal(again.backend, 'gpu', 'offline, the WebGPU build comes from the service worker');
    assert.deepEqual(errors, []);
    assert.deepEqual(violations, [], 'Content-Security-Policy violations');
    await context.close();
  } finally {
    await browser.close();
  }
});

test('without WebGPU the page runs on the CPU and says why', async () => {
  const browser = await launch([]);
  try {
    const { page } = await openPage(browser, url);
    const badge = await backendBadge(page);
    assert.equal(badge.kind, 'cpu');
    assert.match(badge.text, /^CPU — WebGPU not used: /);
    assert.ok(badge.reason.length > 0);
    const r = await classifySample(page, 'notumor');
    assert.equal(r.status, 'ok', r.text);
    assert.equal(r.backend, 'cpu');
  } finally {
    await browser.close();
  }
});

test('?backend=cpu uses the CPU even where WebGPU works, and says so', async () => {
  const browser = await launch(WEBGPU_FLAGS);
  try {
    const context = await browser.newContext();
    const { page } = await openContextPage(context, `${url}?backend=cpu`);
    const badge = await backendBadge(page);
    assert.equal(badge.kind, 'cpu');
    assert.equal(badge.text, 'CPU — WebGPU not used: the address asks for the CPU (?backend=cpu)');
    assert.match(badge.reason, /\?backend=cpu/);
  } finally {
    await browser.close();
  }
});

test('auto mode passes over a software rasteriser for the CPU, says why, and never downloads the WebGPU build', async () => {
  const browser = await launch(WEBGPU_FLAGS);
  try {
    const context = await browser.newContext();
    const from = answers.length;
    const { page, errors } = await openContextPage(context, url);
    const badge = await backendBadge(page);
    assert.equal(badge.kind, 'cpu', badge.text);
    assert.match(badge.text, /^CPU — WebGPU not used: the only WebGPU adapter is a software rasteriser \(.+\), slower than the CPU; \?backend=gpu uses it anyway$/);
    const r = await classifySample(page, 'glioma');
    assert.equal(r.status, 'ok', r.text);
    assert.equal(r.backend, 'cpu');
    assert.deepEqual(errors, []);
    await waitReadyOffline(page); // the service worker's precache has run too
    assert.deepEqual(wasmBuildsSent(from), ['cpu']);
  } finally {
    await browser.close();
  }
});

test('the CPU build with relaxed SIMD where the browser validates it, the plain one where not, with the same result', async () => {
  const browser = await launch([]);
  try {
    const probabilities = {};
    for (const simd of ['relaxed', 'plain']) {
      const context = await browser.newContext();
      // worker.js reads `simd=plain` from its name as "no relaxed SIMD here" (Chromium has it).
      if (simd === 'plain') {
        await context.addInitScript(() => {
          const Original = window.Worker;
          window.Worker = class extends Original {
            constructor(url, options) { super(url, { ...options, name: `${options?.name ?? ''} simd=plain` }); }
          };
        });
      }
      const from = answers.length;
      const { page, errors } = await openContextPage(context, `${url}?backend=cpu`);
      const r = await classifySample(page, 'glioma');
      assert.equal(r.status, 'ok', r.text);
      assert.equal(r.backend, 'cpu');
      const sent = new Set(answers.slice(from).filter((a) => a.status === 200 && a.path.endsWith('_bg.wasm')).map((a) => path.basename(a.path)));
      assert.deepEqual([...sent], [simd === 'relaxed' ? 'mriscreen_relaxed_bg.wasm' : 'mriscreen_bg.wasm']);
      assert.deepEqual(errors, []);
      probabilities[simd] = r.probabilities;
      await context.close();
    }
    // One rounding instead of two in each multiply-add: the same answer to well within the CLI comparisons' 1e-4.
    for (const [c, p] of Object.entries(probabilities.plain)) {
      assert.ok(Math.abs(probabilities.relaxed[c] - p) <= 1e-5, `${c}: relaxed SIMD ${probabilities.relaxed[c]} vs plain ${p}`);
    }
  } finally {
    await browser.close();
  }
});

/** An uncompressed 16-bit grey TIFF (little-endian, one strip) of a bright disc fading out, with stripes. */
function greyTiff16(w, h) {
  const entries = [[256, 3, w], [257, 3, h], [258, 3, 16], [259, 3, 1], [262, 3, 1], [273, 4, 0], [277, 3, 1], [278, 3, h], [279, 4, w * h * 2]];
  const data = 8 + 2 + entries.length * 12 + 4;
  entries[5][2] = data; // StripOffsets
  const buf = Buffer.alloc(data + w * h * 2);
  buf.write('II', 0, 'latin1');
  buf.writeUInt16LE(42, 2);
  buf.writeUInt32LE(8, 4);
  buf.writeUInt16LE(entries.length, 8);
  entries.forEach(([tag, type, value], i) => {
    const at = 10 + i * 12;
    buf.writeUInt16LE(tag, at);
    buf.writeUInt16LE(type, at + 2);
    buf.writeUInt32LE(1, at + 4);
    if (type === 3) buf.writeUInt16LE(value, at + 8);
    else buf.writeUInt32LE(value, at + 8);
  });
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const fade = Math.max(0, 1 - Math.hypot(x - w / 2, y - h / 2) / (w / 2));
      buf.writeUInt16LE(Math.round(65535 * fade * (0.7 + 0.3 * Math.sin(x / 4))), data + (y * w + x) * 2);
    }
  }
  return buf;
}

test('the CPU-only build has the WebGPU build decode TIFF and WebP files, and they classify as the CLI classifies them', async () => {
  const browser = await launch(WEBGPU_FLAGS);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mriscreen-formats-'));
  try {
    const context = await browser.newContext();
    const from = answers.length;
    const { page, errors } = await openContextPage(context, url);
    assert.equal((await backendBadge(page)).kind, 'cpu');
    const jpeg = await classifySample(page, 'glioma');
    assert.equal(jpeg.status, 'ok', jpeg.text);
    assert.deepEqual(wasmBuildsSent(from), ['cpu'], 'a JPEG needs only the CPU build');
    const files = { TIFF: path.join(dir, 'grey16.tiff'), WebP: path.join(dir, 'disc.webp') };
    fs.writeFileSync(files.TIFF, greyTiff16(96, 80));
    // Chromium's own WebP encoder makes the WebP file.
    const webp = await page.evaluate(async () => {
      const canvas = new OffscreenCanvas(96, 80);
      const g = canvas.getContext('2d');
      const disc = g.createRadialGradient(48, 40, 4, 48, 40, 44);
      disc.addColorStop(0, '#eee');
      disc.addColorStop(1, '#111');
      g.fillStyle = disc;
      g.fillRect(0, 0, 96, 80);
      const blob = await canvas.convertToBlob({ type: 'image/webp', quality: 0.9 });
      return [...new Uint8Array(await blob.arrayBuffer())];
    });
    assert.equal(Buffer.from(webp.slice(8, 12)).toString('latin1'), 'WEBP');
    fs.writeFileSync(files.WebP, Buffer.from(webp));
    const shown = await classifyInPage(page, Object.values(files));
    const native = cliPredict(Object.values(files));
    Object.entries(files).forEach(([format, file], i) => {
      const r = shown.find((s) => s.file === path.basename(file));
      assert.equal(r?.status, 'ok', `${format}: ${r?.text}`);
      assert.equal(r.format, format);
      assert.equal(r.backend, 'cpu');
      assert.equal(r.label, native[i].label, format);
      for (const [c, p] of Object.entries(native[i].probabilities)) {
        assert.ok(Math.abs(r.probabilities[c] - p) <= 1e-4, `${format} ${c}: page ${r.probabilities[c]} vs CLI ${p}`);
      }
    });
    assert.deepEqual(wasmBuildsSent(from), ['cpu', 'gpu'], 'the WebGPU build was fetched to decode them');
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
