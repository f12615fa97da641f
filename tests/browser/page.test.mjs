// The served page classifies files in headless Chromium with the default
// model, agrees with the native CLI within 1e-5, survives a corrupt file,
// shows the research-use banner, breaks no CSP rule, and sends nothing off
// the origin. All on the CPU (?backend=cpu); WebGPU is webgpu.test.mjs's.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, startServer, launch, newSession, openPage, classifyInPage, classifySample, cliPredict, samples, defaultModel } from './helpers.mjs';

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
const CLASSES = ['glioma', 'meningioma', 'notumor', 'pituitary'];

test('page and native CLI give the same probabilities', async () => {
  const files = [golden('progressive.jpg'), golden('grey16.png'), golden('rgba8.png')];
  const { context, page, errors, violations } = await openPage(browser, `${url}?backend=cpu`);
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
  assert.deepEqual(errors, []);
  assert.deepEqual(violations, [], 'Content-Security-Policy violations');
  await context.close();
});

test('the real samples are shown with their true class, as the CLI gives it', async () => {
  const { context, page, errors } = await openPage(browser, `${url}?backend=cpu`);
  const real = samples().filter((s) => s.kind === 'real');
  assert.deepEqual(real.map((s) => s.class).sort(), CLASSES, 'one real sample per class');
  const native = cliPredict(real.map((s) => s.path));
  for (const s of real) {
    const r = await classifySample(page, s.class, 'real');
    assert.equal(r.status, 'ok', r.text);
    assert.equal(r.label, s.class, `${s.file} on the page`);
    assert.equal(native.find((n) => path.basename(n.file) === s.file).label, s.class, `${s.file} in the CLI`);
  }
  assert.deepEqual(errors, []);
  await context.close();
});

test('a sample is classified, with its class bars, refer flag and latency', async () => {
  const { context, page, errors, violations } = await openPage(browser, `${url}?backend=cpu`);
  const sample = samples().find((s) => s.class === 'meningioma');
  const r = await classifySample(page, sample.class);
  assert.equal(r.status, 'ok', r.text);
  assert.equal(r.backend, 'cpu');
  assert.ok(CLASSES.includes(r.label));
  assert.deepEqual(Object.keys(r.probabilities).sort(), CLASSES);
  const sum = Object.values(r.probabilities).reduce((a, b) => a + b, 0);
  assert.ok(Math.abs(sum - 1) < 1e-4, `probabilities sum to ${sum}`);
  // The refer flag is the library's decision (tests/browser/referral.test.mjs compares it with the CLI's).
  assert.match(r.text, r.refer === 'true' ? /Refer for expert review/ : /No referral flag: \d+ % is at or above \d+ %/);
  assert.match(r.text, /ran on CPU: [\d.]+ ms inference/);
  // The thumbnail is drawn (from `preview`, or by the browser for a JPEG).
  const drawn = await page.$eval('.result canvas.thumb', (c) => c.width > 0 && c.height > 0 && c.width <= 256 && c.height <= 256);
  assert.ok(drawn, 'thumbnail canvas');
  // The table has the same outcome, and the live region said it.
  const row = await page.$eval('#results-rows tr', (tr) => ({ file: tr.dataset.file, status: tr.dataset.status, text: tr.textContent }));
  assert.deepEqual([row.file, row.status], [sample.file, 'ok']);
  assert.ok(row.text.includes(r.label));
  assert.match(await page.locator('#announcer').innerText(), new RegExp(`${sample.file}: ${r.label}`));
  assert.deepEqual(errors, []);
  assert.deepEqual(violations, [], 'Content-Security-Policy violations');
  await context.close();
});

test('a colour photo is referred for review whatever the model says; a grey scan is not flagged for colour', async () => {
  const { context, page, errors } = await openPage(browser, `${url}?backend=cpu`);
  const shown = await classifyInPage(page, [golden('progressive.jpg'), samples().find((s) => s.class === 'notumor').path]);
  const photo = shown.find((s) => s.file === 'progressive.jpg');
  assert.equal(photo.status, 'ok', photo.text);
  assert.equal(photo.refer, 'true');
  assert.match(photo.text, /Refer for expert review — this image is in colour \(\d+ % of its pixels\)/);
  assert.match(photo.text, /trained on grey MRI only/);
  const reasons = await page.$eval('.result[data-file="progressive.jpg"] .flag.refer', (p) => p.dataset.reasons);
  assert.match(reasons, /\bcolour\b/);
  const scan = shown.find((s) => s.file === 'real-notumor.jpg');
  assert.doesNotMatch(scan.text, /in colour/);
  const row = await page.$eval('#results-rows tr[data-file="progressive.jpg"]', (tr) => tr.textContent);
  assert.match(row, /refer/);
  assert.deepEqual(errors, []);
  await context.close();
});

test('a grey photo unlike the training images is referred as such, with the distance and the limit', async () => {
  const camera = path.join(ROOT, '.cache/skimage/camera.png');
  assert.ok(fs.existsSync(camera), 'scripts/setup test fetches the scikit-image photos');
  const { context, page, errors } = await openPage(browser, `${url}?backend=cpu`);
  const shown = await classifyInPage(page, [camera, samples().find((s) => s.class === 'glioma').path]);
  const photo = shown.find((s) => s.file === 'camera.png');
  assert.equal(photo.status, 'ok', photo.text);
  assert.equal(photo.refer, 'true');
  assert.match(photo.text, /unlike the images the model was trained on \(feature distance [\d.]+, limit [\d.]+\)/);
  assert.doesNotMatch(photo.text, /in colour/);
  const reasons = await page.$eval('.result[data-file="camera.png"] .flag.refer', (p) => p.dataset.reasons);
  assert.match(reasons, /\bunfamiliar\b/);
  const sample = shown.find((s) => s.file === 'real-glioma.jpg');
  assert.equal(sample.refer, 'false', sample.text);
  assert.deepEqual(errors, []);
  await context.close();
});

test('research-use banner, and what the model was trained on', async () => {
  const entry = defaultModel();
  const { context, page } = await openPage(browser, `${url}?backend=cpu`);
  assert.match(await page.locator('.banner').innerText(), /not a diagnostic device/);
  assert.match(await page.locator('#model-status').innerText(), /trained on: /);
  // The untrained warning shows exactly when the default model is untrained.
  assert.equal(await page.locator('#model-warning').isVisible(), Boolean(entry.untrained));
  if (entry.untrained) assert.match(await page.locator('#model-warning').innerText(), /[Uu]ntrained placeholder/);
  else assert.ok((await page.locator('#model-status').innerText()).includes(`trained on: ${entry.trained_on}`), 'the manifest says what the model was trained on');
  await context.close();
});

test('a corrupt file gets an error and the next file still works', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mriscreen-page-'));
  const notes = path.join(dir, 'notes.png');
  fs.writeFileSync(notes, 'this is not an image\n');
  // A real JPEG cut in half.
  const jpeg = fs.readFileSync(samples()[0].path);
  const cut = path.join(dir, 'cut.jpg');
  fs.writeFileSync(cut, jpeg.subarray(0, 600));
  const { context, page } = await openPage(browser, `${url}?backend=cpu`);
  const shown = await classifyInPage(page, [notes, cut, golden('grey16.png')]);
  const bad = shown.find((s) => s.file === 'notes.png');
  assert.equal(bad.status, 'error');
  assert.match(bad.text, /text file/);
  assert.equal(shown.find((s) => s.file === 'cut.jpg').status, 'error');
  assert.equal(shown.find((s) => s.file === 'grey16.png').status, 'ok');
  const rows = await page.$$eval('#results-rows tr', (trs) => trs.map((tr) => tr.dataset.status));
  assert.deepEqual(rows, ['error', 'error', 'ok']);
  await context.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('an empty file and one over the 64 MiB budget are refused before reading; the next file still works', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mriscreen-huge-'));
  const empty = path.join(dir, 'empty.png');
  fs.writeFileSync(empty, '');
  const huge = path.join(dir, 'huge.dcm');
  // Sparse: 65 MiB on paper, nothing on disk.
  fs.writeFileSync(huge, '');
  fs.truncateSync(huge, 65 * 1024 * 1024);
  const { context, page } = await openPage(browser, `${url}?backend=cpu`);
  const shown = await classifyInPage(page, [empty, huge, golden('grey16.png')]);
  assert.match(shown.find((s) => s.file === 'empty.png').text, /empty \(0 bytes\)/);
  const big = shown.find((s) => s.file === 'huge.dcm');
  assert.equal(big.status, 'error');
  assert.match(big.text, /over the 67108864-byte limit/);
  assert.equal(shown.find((s) => s.file === 'grey16.png').status, 'ok');
  await context.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('privacy: during a session nothing leaves the origin, nothing is posted, no image bytes or names are sent', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mriscreen-private-'));
  const scan = path.join(dir, 'private-scan-7f3a.jpg');
  fs.copyFileSync(samples()[0].path, scan);
  const { context, page, requests } = await openPage(browser, `${url}?backend=cpu`);
  await classifyInPage(page, [scan]);
  await classifySample(page, 'pituitary');
  await Promise.all([page.waitForEvent('download'), page.click('#export-csv')]);
  const origin = new URL(url).origin;
  const head = fs.readFileSync(scan).subarray(0, 64);
  assert.ok(requests.length > 5, 'requests were recorded');
  for (const r of requests) {
    assert.equal(new URL(r.url).origin, origin, `request left the origin: ${r.url}`);
    assert.equal(r.method, 'GET', `${r.method} ${r.url}`);
    assert.equal(r.body, null, `request with a body: ${r.url}`);
    assert.ok(!r.url.includes('private-scan'), `the file name was sent: ${r.url}`);
    assert.ok(!r.url.includes(head.toString('base64').slice(0, 16)), `image bytes in a URL: ${r.url}`);
    for (const v of Object.values(r.headers)) assert.ok(!v.includes('private-scan'), `the file name was sent in a header of ${r.url}`);
  }
  await context.close();
  fs.rmSync(dir, { recursive: true, force: true });
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
    const { context, page } = await openPage(browser, `${served}?backend=cpu`);
    const [r] = await classifyInPage(page, [golden('progressive.jpg')]);
    assert.equal(r.status, 'ok', r.text);
    assert.ok(CLASSES.includes(r.label));
    await context.close();
  } finally {
    process.kill(-child.pid, 'SIGTERM');
  }
});

test('a file name that is markup stays text', async () => {
  const { context, page, errors } = await openPage(browser, `${url}?backend=cpu`);
  await page.evaluate(() => { window.__pwned = 0; });
  const name = '<img src=x onerror="window.__pwned=1"><b>bold</b>.png';
  const shown = await classifyInPage(page, [{ name, mimeType: 'image/png', buffer: fs.readFileSync(golden('grey16.png')) }]);
  const r = shown.find((s) => s.file === name);
  assert.ok(r, `no result for the name: ${shown.map((s) => s.file)}`);
  assert.equal(r.status, 'ok', r.text);
  assert.ok(r.text.includes(name), 'the name is shown as written');
  assert.equal(await page.locator('.result img[src="x"], .result b').count(), 0, 'no element made from the name');
  assert.equal(await page.evaluate(() => window.__pwned), 0, 'no handler ran');
  assert.deepEqual(errors, []);
  await context.close();
});

/** Every module main.js imports, directly or not, as paths under www/. */
function moduleGraph(entry) {
  const seen = new Set();
  const visit = (rel) => {
    if (seen.has(rel)) return;
    seen.add(rel);
    const text = fs.readFileSync(path.join(ROOT, 'www', rel), 'utf8');
    for (const [, spec] of text.matchAll(/^import [^;]*? from '([^']+)';/gms)) visit(path.posix.join(path.posix.dirname(rel), spec));
  };
  visit(entry);
  seen.delete(entry);
  return seen;
}

test('the engine\'s worker starts before main.js\'s modules have loaded, once, and the page preloads the whole module graph', async () => {
  const html = fs.readFileSync(path.join(ROOT, 'www/index.html'), 'utf8');
  const preloaded = new Set([...html.matchAll(/<link rel="modulepreload" href="([^"]+)">/g)].map((m) => m[1]));
  assert.deepEqual([...preloaded].sort(), [...moduleGraph('app/main.js')].sort(), 'index.html preloads exactly main.js\'s imports');

  const { context } = await newSession(browser);
  const page = await context.newPage();
  // When the worker is created, and how many: the page's own clock.
  await page.addInitScript(() => {
    window.workerStarts = [];
    const Original = window.Worker;
    window.Worker = class extends Original {
      constructor(...args) { super(...args); window.workerStarts.push({ at: performance.now(), mainLoaded: !!window.mainLoaded }); }
    };
  });
  await page.route('**/app/main.js', async (route) => {
    // main.js arrives half a second late and marks when its body starts (after its imports, before
    // anything of its own); the worker must not wait for it.
    const response = await route.fetch();
    await new Promise((r) => setTimeout(r, 500));
    await route.fulfill({ response, body: `window.mainLoaded = true;\n${await response.text()}` });
  });
  await page.goto(`${url}?backend=cpu`);
  await page.waitForSelector('#model-status[data-status=ready]', { timeout: 60_000 });
  const starts = await page.evaluate(() => window.workerStarts);
  assert.equal(starts.length, 1, `one worker: ${JSON.stringify(starts)}`);
  assert.equal(starts[0].mainLoaded, false, 'app/boot.js started it before main.js ran');
  await context.close();
});
