// The model picker (fed by models/manifest.json), its download progress, the
// referral rule read from the model file, and a tampered model file refused
// with a visible error. On the CPU; changed sites are temporary copies of dist/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { DIST, startServer, launch, newSession, openPage, classifySample, copyDist, defaultModel } from './helpers.mjs';

let browser;
const sites = [];
before(async () => { browser = await launch(); });
after(async () => {
  await browser?.close();
  for (const s of sites) { s.server.close(); fs.rmSync(s.root, { recursive: true, force: true }); }
});

/** A copy of dist/ changed by `change(root)`, served; returns its URL. */
async function site(change) {
  const root = copyDist();
  change(root);
  const { server, url } = await startServer({ root });
  sites.push({ server, root });
  return url;
}

test('the picker lists the manifest, shows what each model is, and a second model; the referral rule comes from the model file, not the manifest', async () => {
  const entry = defaultModel();
  const url = await site((root) => {
    const file = path.join(root, 'models/manifest.json');
    const manifest = JSON.parse(fs.readFileSync(file, 'utf8'));
    manifest.models.push({
      ...entry, id: 'second', name: 'Second entry (test copy)', untrained: false, trained_on: 'SynthTumor (test fixture)',
      test_accuracy: 0.874, test_accuracy_ci95: [0.842, 0.903], test_set_size: 400, refer_threshold: 0.05,
    });
    fs.writeFileSync(file, JSON.stringify(manifest));
  });
  const { context, page } = await openPage(browser, `${url}?backend=cpu`);
  const options = await page.$$eval('#model-select option', (os) => os.map((o) => ({ value: o.value, text: o.textContent, selected: o.selected })));
  const shipped = JSON.parse(fs.readFileSync(path.join(DIST, 'models/manifest.json'), 'utf8')).models.map((m) => m.id);
  assert.deepEqual(options.map((o) => o.value), [...shipped, 'second']);
  assert.deepEqual(options.filter((o) => o.selected).map((o) => o.value), [entry.id], 'the manifest\'s default is the one chosen');
  const models = JSON.parse(fs.readFileSync(path.join(DIST, 'models/manifest.json'), 'utf8')).models;
  const smallest = models.filter((m) => !m.untrained).reduce((a, b) => (b.bytes < a.bytes ? b : a));
  assert.deepEqual(options.filter((o) => o.text.includes('(smallest download)')).map((o) => o.value), [smallest.id], 'the smallest trained model is marked, and only it');
  const details = await page.locator('#model-details').innerText();
  assert.match(details, new RegExp(`Precision\\s+${entry.precision}`));
  assert.match(details, /Download size\s+[\d.]+ [MK]B/);
  assert.match(details, /Trained on/);
  await page.waitForFunction(() => !document.querySelector('#model-details').textContent.includes('once it is loaded'));
  const referral = (text) => text.split('\n').find((l) => /^Refer for expert review when/.test(l));
  const rule = referral(await page.locator('#model-details').innerText());
  assert.match(rule, /below 0\.\d{3} \(the model's calibrated threshold\)/, 'the shipped model carries a calibrated threshold');
  // The download progress bar ran to the file's size.
  const bar = await page.$eval('#model-progress', (p) => ({ value: p.value, max: p.max }));
  assert.equal(bar.max, entry.bytes);
  assert.equal(bar.value, entry.bytes);
  assert.match(await page.locator('#model-progress-text').innerText(), /100 %/);
  // The worker says where the load's time went (scripts/bench-browser.mjs reports it).
  const timing = JSON.parse(await page.$eval('#model-status', (e) => e.dataset.loadTiming));
  assert.ok(timing.create_ms > 0 && timing.download_ms >= 0 && timing.wasm_ready_at_ms > 0, JSON.stringify(timing));
  assert.equal(timing.hashed_by, 'SubtleCrypto', 'the browser hashed the download');
  assert.deepEqual(timing.create_phases.map((p) => p.name).slice(0, 2), ['SHA-256 (computed by the caller)', 'ONNX parse and checks']);
  assert.ok(timing.create_phases.some((p) => p.name === 'tract: optimise'), 'the CPU backend\'s phases are listed');
  assert.equal(await page.$eval('#model-status', (e) => e.dataset.fullEngine ?? null), null, 'the shipped model runs on the CPU engine\'s core operators');

  await page.selectOption('#model-select', 'second');
  await page.waitForSelector('#model-status[data-status=ready]');
  assert.match(await page.locator('#model-status').innerText(), /^Second entry/);
  const second = await page.locator('#model-details').innerText();
  assert.match(second, /Test accuracy\s+87\.4 % \(95 % CI 84\.2 %–90\.3 %, 400 test images\)/);
  // The manifest's stale refer_threshold (0.05) is not used: the same file, the same rule.
  assert.equal(referral(second), rule);
  const r = await classifySample(page, 'glioma');
  assert.equal(r.refer, 'false');
  assert.match(r.text, /model second/);
  await context.close();
});

test('a model with an operator outside the CPU engine\'s core set loads with the full engine and classifies', async () => {
  // The DenseNet student with every Relu turned into a Tanh: both are `op_type` strings of four bytes
  // (field 4, length 4), so the file stays valid protobuf. tract has Tanh; the core set does not.
  const models = JSON.parse(fs.readFileSync(path.join(DIST, 'models/manifest.json'), 'utf8')).models;
  const densenet = models.find((m) => m.arch === 'densenet32' || /densenet/.test(m.id));
  const bytes = fs.readFileSync(path.join(DIST, 'models', densenet.file));
  const relu = Buffer.from([0x22, 0x04, ...Buffer.from('Relu')]);
  const tanh = Buffer.from([0x22, 0x04, ...Buffer.from('Tanh')]);
  let count = 0;
  for (let at = bytes.indexOf(relu); at >= 0; at = bytes.indexOf(relu, at + 1)) { tanh.copy(bytes, at); count++; }
  assert.ok(count > 0, 'the fixture has Relu nodes to rename');
  const url = await site((root) => {
    fs.writeFileSync(path.join(root, 'models/tanh-densenet.onnx'), bytes);
    const file = path.join(root, 'models/manifest.json');
    const manifest = JSON.parse(fs.readFileSync(file, 'utf8'));
    const sha256 = crypto.createHash('sha256').update(bytes).digest('hex');
    manifest.models.push({ ...densenet, id: 'tanh', name: 'Tanh DenseNet (test copy)', file: 'tanh-densenet.onnx', sha256 });
    manifest.default = 'tanh';
    fs.writeFileSync(file, JSON.stringify(manifest));
  });
  const { context, page } = await openPage(browser, `${url}?backend=cpu`);
  await page.waitForSelector('#model-status[data-status=ready]', { timeout: 120_000 });
  assert.match(await page.$eval('#model-status', (e) => e.dataset.fullEngine), /outside the core set this engine has \(Tanh\)/);
  const r = await classifySample(page, 'glioma');
  assert.ok(['true', 'false'].includes(r.refer), JSON.stringify(r));
  assert.match(r.text, /model tanh/);
  await context.close();
});

test('a tampered model file is refused with a visible error', async () => {
  const entry = defaultModel();
  const url = await site((root) => {
    const file = path.join(root, 'models', entry.file);
    const bytes = fs.readFileSync(file);
    bytes[bytes.length >> 1] ^= 0xff;
    fs.writeFileSync(file, bytes);
  });
  const { context } = await newSession(browser);
  const page = await context.newPage();
  await page.goto(`${url}?backend=cpu`);
  const status = page.locator('#model-status[data-status=error]');
  await status.waitFor({ timeout: 60_000 });
  assert.ok(await status.isVisible());
  assert.match(await status.innerText(), /model file does not match its manifest hash — refused/);
  assert.equal(await status.getAttribute('data-error-kind'), 'hash');
  // Scans added now get an error, not a result from a refused model.
  await page.click('.sample-button[data-class="glioma"]');
  await page.waitForSelector('.result[data-status=error]');
  assert.match(await page.locator('.result').innerText(), /no model is loaded/);
  await context.close();
});

test('model names and metadata from the manifest stay text', async () => {
  const entry = defaultModel();
  const markup = '<img src=x onerror="window.__pwned=1">';
  const url = await site((root) => {
    const file = path.join(root, 'models/manifest.json');
    const manifest = JSON.parse(fs.readFileSync(file, 'utf8'));
    manifest.models.push({ ...entry, id: 'hostile', name: `Hostile ${markup}`, trained_on: `data ${markup}` });
    fs.writeFileSync(file, JSON.stringify(manifest));
  });
  const { context, page } = await openPage(browser, `${url}?backend=cpu&model=hostile`);
  await page.evaluate(() => { window.__pwned = 0; });
  const option = await page.$eval('#model-select option[value="hostile"]', (o) => o.textContent);
  assert.ok(option.includes(markup), option);
  const details = await page.locator('#model-details').innerText();
  assert.ok(details.includes(`data ${markup}`), details);
  assert.equal(await page.locator('img[src="x"]').count(), 0, 'no element made from the metadata');
  assert.equal(await page.evaluate(() => window.__pwned), 0);
  await context.close();
});
