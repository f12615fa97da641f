// Every model the manifest ships — the fp32 original and its fp16, int8 and
// int4 variants — loads from the picker and classifies the real samples as
// the native CLI does with the same file, on the CPU; and on WebGPU
// (SwiftShader) it gives the CPU's probabilities. The variants' details say
// how they compare with their fp32 parent.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { DIST, WEBGPU_FLAGS, startServer, launch, openPage, classifySample, cliPredict, samples, backendBadge } from './helpers.mjs';

let server, url;
before(async () => { ({ server, url } = await startServer()); });
after(() => server?.close());

const shipped = () => JSON.parse(fs.readFileSync(path.join(DIST, 'models/manifest.json'), 'utf8')).models;
const real = () => samples().filter((s) => s.kind === 'real');

async function choose(page, id) {
  if (await page.$eval('#model-select', (s) => s.value) !== id) {
    await page.selectOption('#model-select', id);
  }
  await page.waitForFunction((m) => {
    const s = document.querySelector('#model-status');
    return s?.dataset.status === 'ready' && document.querySelector('#model-select').value === m;
  }, id, { timeout: 180_000 });
}

test('every shipped model loads from the picker and classifies the real samples as the CLI does (CPU)', { timeout: 600_000 }, async () => {
  const browser = await launch();
  try {
    const { page, errors } = await openPage(browser, `${url}?backend=cpu`);
    const models = shipped();
    assert.ok(models.some((m) => m.precision === 'int4') && models.some((m) => m.precision === 'fp16'), 'the variants are shipped');
    for (const m of models) {
      await choose(page, m.id);
      const details = await page.locator('#model-details').innerText();
      assert.match(details, new RegExp(`Precision\\s+${m.precision}`));
      if (m.vs_parent) assert.match(details, /Against fp32\s+same top class on [\d.]+ % of the test images/, m.id);
      const native = cliPredict(real().map((s) => s.path), path.join(DIST, 'models', m.file));
      for (const s of real()) {
        const r = await classifySample(page, s.class);
        assert.equal(r.status, 'ok', `${m.id}: ${r.text}`);
        const n = native.find((p) => p.file.endsWith(s.file));
        assert.equal(r.label, n.label, `${m.id} on ${s.file}`);
        for (const [c, p] of Object.entries(n.probabilities)) {
          assert.ok(Math.abs(r.probabilities[c] - p) <= 1e-4, `${m.id} ${s.file} ${c}: page ${r.probabilities[c]} vs CLI ${p}`);
        }
      }
    }
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

test('CPU and WebGPU agree on every shipped model in Chromium', { timeout: 900_000 }, async () => {
  const browser = await launch(WEBGPU_FLAGS);
  try {
    const { page } = await openPage(browser, `${url}?backend=gpu`);
    const sample = real().find((s) => s.class === 'glioma');
    for (const m of shipped()) {
      await choose(page, m.id);
      const badge = await backendBadge(page);
      assert.equal(badge.kind, 'gpu', `${m.id}: ${badge.text}`);
      const r = await classifySample(page, sample.class);
      assert.equal(r.backend, 'gpu', `${m.id}: ${r.text}`);
      const [n] = cliPredict([sample.path], path.join(DIST, 'models', m.file));
      assert.equal(r.label, n.label, m.id);
      for (const [c, p] of Object.entries(n.probabilities)) {
        assert.ok(Math.abs(r.probabilities[c] - p) <= 1e-4, `${m.id} ${c}: WebGPU ${r.probabilities[c]} vs CPU ${p}`);
      }
    }
  } finally {
    await browser.close();
  }
});
