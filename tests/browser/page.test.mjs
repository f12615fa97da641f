// The served page classifies files in headless Chromium with the default
// model, agrees with the native CLI within 1e-5, survives a bad file, shows
// the research-use banner, and sends nothing off the origin.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, startServer, launch, openPage, classifyInPage, cliPredict } from './helpers.mjs';

let server, url, browser;
before(async () => {
  ({ server, url } = await startServer());
  browser = await launch();
});
after(async () => {
  await browser?.close();
  server?.close();
});

const golden = (f) => path.join(ROOT, 'tests/golden', f);

test('page and native CLI give the same probabilities', async () => {
  const files = [golden('progressive.jpg'), golden('grey16.png'), golden('rgba8.png')];
  const { context, page, requests, errors } = await openPage(browser, url);
  const shown = await classifyInPage(page, files);
  const native = cliPredict(files);
  assert.equal(shown.length, 3);
  for (const n of native) {
    const name = path.basename(n.file);
    const r = shown.find((s) => s.file === name);
    assert.ok(r, `no result shown for ${name}`);
    assert.equal(r.status, 'ok', r.text);
    assert.equal(r.backend, 'cpu');
    assert.equal(r.label, n.label, name);
    const classes = Object.keys(n.probabilities);
    assert.deepEqual(Object.keys(r.probabilities), classes);
    for (const c of classes) {
      const d = Math.abs(r.probabilities[c] - n.probabilities[c]);
      assert.ok(d <= 1e-5, `${name} ${c}: page ${r.probabilities[c]} vs native ${n.probabilities[c]} (|d| = ${d})`);
    }
  }
  // Privacy: every request stays on the page's origin and none uploads anything.
  const origin = new URL(url).origin;
  for (const r of requests) {
    assert.equal(new URL(r.url).origin, origin, `request left the origin: ${r.url}`);
    assert.equal(r.method, 'GET', `${r.method} ${r.url}`);
  }
  assert.deepEqual(errors, []);
  await context.close();
});

test('research-use banner, and what the model was trained on', async () => {
  const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'models/manifest.json'), 'utf8'));
  const entry = manifest.models.find((m) => m.id === manifest.default);
  const { context, page } = await openPage(browser, url);
  assert.match(await page.locator('.banner').innerText(), /not a diagnostic device/);
  assert.match(await page.locator('#model-status').innerText(), /trained on: /);
  // The untrained warning shows exactly when the default model is untrained.
  assert.equal(await page.locator('#model-warning').isVisible(), Boolean(entry.untrained));
  if (entry.untrained) assert.match(await page.locator('#model-warning').innerText(), /[Uu]ntrained placeholder/);
  else assert.match(await page.locator('#model-status').innerText(), /[Ss]ynth/);
  await context.close();
});

test('a bad file gets an error and the next file still works', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mriscreen-page-'));
  const bad = path.join(dir, 'notes.png');
  fs.writeFileSync(bad, 'this is not an image\n');
  const { context, page } = await openPage(browser, url);
  const shown = await classifyInPage(page, [bad, golden('grey16.png')]);
  const badResult = shown.find((s) => s.file === 'notes.png');
  assert.equal(badResult.status, 'error');
  assert.match(badResult.text, /text file/);
  assert.equal(shown.find((s) => s.file === 'grey16.png').status, 'ok');
  await context.close();
});

test('the README serve command serves a page that classifies a file', async () => {
  const { spawn } = await import('node:child_process');
  const child = spawn(path.join(ROOT, 'scripts/serve'), [], { cwd: ROOT, env: { ...process.env, PORT: '0' }, detached: true });
  try {
    const served = await new Promise((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`scripts/serve did not start:\n${out}`)), 600_000);
      const onData = (d) => {
        out += d;
        const m = out.match(/served at (http:\/\/\S+)/);
        if (m) { clearTimeout(timer); resolve(m[1]); }
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.on('exit', (code) => reject(new Error(`scripts/serve exited with ${code}:\n${out}`)));
    });
    assert.match(served, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    const { context, page } = await openPage(browser, served);
    const [r] = await classifyInPage(page, [golden('progressive.jpg')]);
    assert.equal(r.status, 'ok', r.text);
    assert.ok(['glioma', 'meningioma', 'notumor', 'pituitary'].includes(r.label));
    await context.close();
  } finally {
    process.kill(-child.pid, 'SIGTERM');
  }
});
