// The page on WebGPU (SwiftShader in headless Chromium) and without it: with
// the WebGPU flags it runs on WebGPU and matches the CPU path; without them it
// runs on the CPU and says why.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ROOT, WEBGPU_FLAGS, startServer, launch, openPage, classifyInPage, cliPredict, backendBadge } from './helpers.mjs';

let server, url;
before(async () => { ({ server, url } = await startServer()); });
after(() => server?.close());

const files = [path.join(ROOT, 'tests/golden/progressive.jpg'), path.join(ROOT, 'tests/golden/grey16.png')];

test('with WebGPU the page runs on it and agrees with the CPU', async () => {
  const browser = await launch(WEBGPU_FLAGS);
  try {
    const { page, errors } = await openPage(browser, url);
    const badge = await backendBadge(page);
    assert.equal(badge.kind, 'gpu', `expected WebGPU, got: ${badge.text}`);
    assert.match(badge.text, /^WebGPU/);
    const shown = await classifyInPage(page, files);
    const native = cliPredict(files);
    for (const n of native) {
      const r = shown.find((s) => s.file === path.basename(n.file));
      assert.equal(r.status, 'ok', r.text);
      assert.equal(r.backend, 'gpu');
      assert.equal(r.label, n.label);
      for (const [c, p] of Object.entries(n.probabilities)) {
        assert.ok(Math.abs(r.probabilities[c] - p) <= 1e-4, `${r.file} ${c}: WebGPU ${r.probabilities[c]} vs CPU ${p}`);
      }
    }
    assert.deepEqual(errors, []);
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
    const [r] = await classifyInPage(page, [files[0]]);
    assert.equal(r.status, 'ok', r.text);
    assert.equal(r.backend, 'cpu');
  } finally {
    await browser.close();
  }
});

test('?backend=cpu forces the CPU even where WebGPU works', async () => {
  const browser = await launch(WEBGPU_FLAGS);
  try {
    const { page } = await openPage(browser, `${url}?backend=cpu`);
    const badge = await backendBadge(page);
    assert.equal(badge.kind, 'cpu');
    assert.equal(badge.text, 'CPU');
  } finally {
    await browser.close();
  }
});
