// DICOM in the page (decoded in wasm), on the CPU: pydicom's MR_small in its
// explicit, implicit, big-endian and RLE forms all classify with one label;
// JPEG-LS / JPEG 2000 are "not supported" by name; a corrupt file fails alone;
// a multi-frame file starts at its middle frame and a slider classifies
// another; no identifying tag is shown or exported.
// The pydicom files come from `scripts/setup test` (.cache/dicom/; or
// MRISCREEN_DICOM_DIR); they are not committed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, startServer, launch, openPage, classifyInPage, shownResults } from './helpers.mjs';
import { multiFrameDicom } from './dicom-writer.mjs';

const DIR = process.env.MRISCREEN_DICOM_DIR ?? path.join(ROOT, '.cache/dicom');
const SUPPORTED = ['MR_small.dcm', 'MR_small_implicit.dcm', 'MR_small_bigendian.dcm', 'MR_small_RLE.dcm'];
const UNSUPPORTED = ['MR_small_jpeg_ls_lossless.dcm', 'MR_small_jp2klossless.dcm'];
const missing = [...SUPPORTED, ...UNSUPPORTED].filter((f) => !fs.existsSync(path.join(DIR, f)));
/** The files come with `scripts/setup test`; without them these tests fail (a skip would hide it). */
function requireFiles() {
  assert.deepEqual(missing, [], `pydicom test files missing in ${DIR}: run scripts/setup test`);
}
/** Identifying values inside MR_small.dcm (PatientName, PatientID) and the multi-frame file. */
const IDENTIFYING = ['CompressedSamples', '4MR1', 'Doe^Jane', 'Doe', 'ID-0042-SECRET', '19700101'];

let server, url, browser, tmp;
before(async () => {
  ({ server, url } = await startServer());
  url = `${url}?backend=cpu`;
  browser = await launch();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mriscreen-dicom-'));
});
after(async () => {
  await browser?.close();
  server?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** Page text, table and both exports contain none of the identifying values. */
async function assertNothingIdentifying(page) {
  const text = await page.locator('body').innerText();
  const attributes = await page.$$eval('.result, #results-rows tr', (ns) => ns.map((n) => JSON.stringify(n.dataset)).join());
  const [csv] = await Promise.all([page.waitForEvent('download'), page.click('#export-csv')]);
  const [json] = await Promise.all([page.waitForEvent('download'), page.click('#export-json')]);
  const exported = fs.readFileSync(await csv.path(), 'utf8') + fs.readFileSync(await json.path(), 'utf8');
  for (const v of IDENTIFYING) {
    assert.ok(!text.includes(v), `identifying value "${v}" shown on the page`);
    assert.ok(!attributes.includes(v), `identifying value "${v}" in a data attribute`);
    assert.ok(!exported.includes(v), `identifying value "${v}" exported`);
  }
}

test('MR_small.dcm explicit, implicit, big-endian and RLE: all classify with the same label', async () => {
  requireFiles();
  const { context, page, errors } = await openPage(browser, url);
  const shown = await classifyInPage(page, SUPPORTED.map((f) => path.join(DIR, f)));
  const results = SUPPORTED.map((f) => shown.find((r) => r.file === f));
  for (const r of results) {
    assert.equal(r.status, 'ok', `${r.file}: ${r.text}`);
    assert.equal(r.format, 'DICOM', r.file);
    assert.match(r.text, /DICOM: .*1\.2\.840\.10008\.1\.2/, `${r.file}: transfer syntax shown`);
  }
  const [first, ...rest] = results;
  for (const r of rest) {
    assert.equal(r.label, first.label, `${r.file} vs ${first.file}`);
    for (const [c, p] of Object.entries(first.probabilities)) {
      assert.ok(Math.abs(r.probabilities[c] - p) <= 1e-5, `${r.file} ${c}: ${r.probabilities[c]} vs ${p} (same pixels, other encoding)`);
    }
  }
  // The thumbnail comes from the wasm's preview (the browser cannot show DICOM).
  const thumb = await page.$eval(`.result[data-file="MR_small.dcm"] canvas.thumb`, (c) => [c.width, c.height]);
  assert.deepEqual(thumb, [64, 64]);
  await assertNothingIdentifying(page);
  assert.deepEqual(errors, []);
  await context.close();
});

test('JPEG-LS and JPEG 2000 DICOM: "not supported", naming the syntax; the next file still works', async () => {
  requireFiles();
  const { context, page } = await openPage(browser, url);
  const shown = await classifyInPage(page, [...UNSUPPORTED, 'MR_small.dcm'].map((f) => path.join(DIR, f)));
  const ls = shown.find((r) => r.file === UNSUPPORTED[0]);
  const j2k = shown.find((r) => r.file === UNSUPPORTED[1]);
  for (const [r, name] of [[ls, /JPEG[- ]?LS/i], [j2k, /JPEG[- ]?2000/i]]) {
    assert.equal(r.status, 'error', r.text);
    assert.match(r.text, /not supported/);
    assert.match(r.text, name);
  }
  assert.equal(shown.find((r) => r.file === 'MR_small.dcm').status, 'ok');
  await context.close();
});

test('a corrupt DICOM file gets an error and the next file still works', async () => {
  const good = multiFrameDicom({ frames: 1 });
  const cut = path.join(tmp, 'cut.dcm');
  fs.writeFileSync(cut, good.subarray(0, good.length - 3000));
  const garbage = path.join(tmp, 'garbage.dcm');
  fs.writeFileSync(garbage, Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), Buffer.alloc(300, 0xab)]));
  const fine = path.join(tmp, 'single.dcm');
  fs.writeFileSync(fine, good);
  const { context, page } = await openPage(browser, url);
  const shown = await classifyInPage(page, [cut, garbage, fine]);
  assert.equal(shown.find((r) => r.file === 'cut.dcm').status, 'error');
  assert.equal(shown.find((r) => r.file === 'garbage.dcm').status, 'error');
  const ok = shown.find((r) => r.file === 'single.dcm');
  assert.equal(ok.status, 'ok', ok.text);
  assert.equal(ok.format, 'DICOM');
  await context.close();
});

test('multi-frame DICOM: the middle frame first, the frame slider classifies another', async () => {
  const file = path.join(tmp, 'three-frames.dcm');
  fs.writeFileSync(file, multiFrameDicom({ frames: 3 }));
  const { context, page } = await openPage(browser, url);
  const [r] = await classifyInPage(page, [file]);
  assert.equal(r.status, 'ok', r.text);
  assert.equal(r.frames, '3');
  assert.equal(r.frame, '1', 'the middle frame first');
  const slider = page.locator('.result input.frame-slider');
  assert.equal(await slider.getAttribute('max'), '2');
  await slider.focus();
  await page.keyboard.press('Home'); // keyboard: frame 0
  await page.waitForSelector('.result[data-frame="0"][data-status=ok]');
  const [again] = await shownResults(page);
  assert.equal(again.frames, '3');
  assert.equal(await page.locator('.result').count(), 1, 'the result is replaced, not added');
  assert.match(again.text, /frame 1 of 3/);
  await assertNothingIdentifying(page);
  await context.close();
});
