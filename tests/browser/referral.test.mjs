// The referral is decided once, in the library (src/referral.rs): the page and
// the native CLI show the same decision and the same reasons, with the same
// numbers, for the same files and models — the shipped model (calibrated
// threshold and familiarity statistics), an untrained one without a threshold
// (held to the documented default), and one whose threshold is malformed
// (refused by both, naming the key). On the CPU.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, startServer, launch, openPage, classifyInPage, copyDist, cli, cliPredict, samples, defaultModel } from './helpers.mjs';

let browser, server, url, root;
const MODELS = {};

/** `bytes` with one more `metadata_props` entry (ModelProto field 14: a StringStringEntryProto). */
function withMetadata(bytes, key, value) {
  const varint = (n) => { const out = []; do { out.push((n & 0x7f) | (n > 0x7f ? 0x80 : 0)); n >>>= 7; } while (n); return Buffer.from(out); };
  const field = (tag, data) => Buffer.concat([Buffer.from([tag]), varint(data.length), data]);
  const entry = Buffer.concat([field(0x0a, Buffer.from(key)), field(0x12, Buffer.from(value))]);
  return Buffer.concat([bytes, field(0x72, entry)]);
}

before(async () => {
  root = copyDist();
  const dir = path.join(root, 'models');
  const untrained = path.join(dir, 'untrained.onnx');
  const made = cli(['random-model', '--alpha', '0.35', '--size', '96', '--seed', '7', '--out', untrained]);
  assert.equal(made.status, 0, made.stderr);
  fs.writeFileSync(path.join(dir, 'malformed.onnx'), withMetadata(fs.readFileSync(untrained), 'mriscreen.refer_threshold', 'high'));
  const manifestFile = path.join(dir, 'manifest.json');
  const manifest = JSON.parse(fs.readFileSync(manifestFile, 'utf8'));
  for (const id of ['untrained', 'malformed']) {
    const bytes = fs.readFileSync(path.join(dir, `${id}.onnx`));
    manifest.models.push({ id, name: `${id} (test fixture)`, file: `${id}.onnx`, sha256: crypto.createHash('sha256').update(bytes).digest('hex'), bytes: bytes.length, untrained: true });
  }
  fs.writeFileSync(manifestFile, JSON.stringify(manifest));
  MODELS.default = path.join(dir, defaultModel(root).file);
  MODELS.untrained = untrained;
  MODELS.malformed = path.join(dir, 'malformed.onnx');
  ({ server, url } = await startServer({ root }));
  browser = await launch();
});
after(async () => {
  await browser?.close();
  server?.close();
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

// Real scans, a colour photo and a grey non-MRI photo: every reason occurs.
const FILES = [
  ...samples().filter((s) => s.kind === 'real').map((s) => s.path),
  path.join(ROOT, 'tests/golden/progressive.jpg'),
  path.join(ROOT, '.cache/skimage/camera.png'),
];

/** The referral the page showed for each file: { refer, reasons }. */
async function pageReferrals(id) {
  const { context, page, errors } = await openPage(browser, `${url}?backend=cpu&model=${id}`);
  const shown = await classifyInPage(page, FILES);
  const out = await page.$$eval('.result', (nodes) => Object.fromEntries(nodes.map((n) => [n.dataset.file, {
    status: n.dataset.status, refer: n.dataset.refer === 'true', reasons: JSON.parse(n.dataset.referReasons ?? '[]'),
    flag: n.querySelector('.flag')?.textContent ?? '',
  }])));
  assert.equal(shown.length, FILES.length);
  assert.deepEqual(errors, []);
  await context.close();
  return out;
}

function assertSameReasons(file, page, native) {
  assert.equal(page.refer, native.refer, `${file}: refer`);
  assert.deepEqual(page.reasons.map((r) => r.kind), native.refer_reasons.map((r) => r.kind), `${file}: reasons`);
  for (const [p, n] of page.reasons.map((r, i) => [r, native.refer_reasons[i]])) {
    for (const [k, v] of Object.entries(p)) {
      if (typeof v === 'number') assert.ok(Math.abs(v - n[k]) <= 1e-4, `${file} ${p.kind}.${k}: page ${v}, CLI ${n[k]}`);
      else if (k !== 'message') assert.equal(v, n[k], `${file} ${p.kind}.${k}`);
    }
  }
}

for (const id of ['default', 'untrained']) {
  test(`the page and the CLI refer the same files for the same reasons (${id} model)`, { timeout: 300_000 }, async () => {
    assert.ok(fs.existsSync(FILES.at(-1)), 'scripts/setup test fetches the scikit-image photos');
    const native = cliPredict(FILES, MODELS[id]);
    const shown = await pageReferrals(id === 'default' ? defaultModel(root).id : id);
    const kinds = new Set();
    for (const n of native) {
      const file = path.basename(n.file);
      const p = shown[file];
      assert.ok(p && p.status === 'ok', `${file}: ${JSON.stringify(p)}`);
      assertSameReasons(file, p, n);
      for (const r of n.refer_reasons) kinds.add(r.kind);
      if (p.refer) assert.match(p.flag, /^Refer for expert review — /);
    }
    if (id === 'default') {
      assert.ok(kinds.has('colour') && kinds.has('unfamiliar'), `the photos are referred: ${[...kinds]}`);
      for (const s of samples().filter((x) => x.kind === 'real')) assert.equal(shown[s.file].refer, false, `${s.file} is not referred`);
    } else {
      // No calibrated threshold: held to the default, and both say so.
      const low = native.flatMap((n) => n.refer_reasons).filter((r) => r.kind === 'low_confidence');
      assert.ok(low.length > 0 && low.every((r) => r.calibrated === false && Math.abs(r.threshold - 0.9) < 1e-6), JSON.stringify(low));
      assert.ok(Object.values(shown).some((p) => /a default threshold: this model has no calibrated one/.test(p.flag)));
    }
  });
}

test('a malformed refer threshold is refused by the page and the CLI, naming the key', async () => {
  const r = cli(['predict', '--json', '--model', MODELS.malformed, FILES[0]]);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /mriscreen\.refer_threshold/);
  const { context, page } = await openPage(browser, `${url}?backend=cpu`);
  await page.selectOption('#model-select', 'malformed');
  await page.waitForSelector('#model-status[data-status=error]');
  assert.match(await page.locator('#model-status').innerText(), /mriscreen\.refer_threshold.*"high"/s);
  await context.close();
});
