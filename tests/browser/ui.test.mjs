// The page as a person uses it, on the CPU (?backend=cpu): keyboard only,
// text contrast, drag and drop, paste, the batch queue and its Cancel button,
// and the CSV/JSON exports (contents checked; file names only). Faults (a
// crashed worker, a lost device, a cut download) are in faults.test.mjs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServer, launch, openPage, openContextPage, shownResults, waitForResults, classifyInPage, classifySample, samples, defaultModel,
  sampleCopies } from './helpers.mjs';

let server, url, browser, tmp;
before(async () => {
  ({ server, url } = await startServer());
  url = `${url}?backend=cpu`;
  browser = await launch();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mriscreen-ui-'));
});
after(async () => {
  await browser?.close();
  server?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** What has keyboard focus: tag, id, classes, text, and whether a focus outline is drawn. */
const focused = (page) => page.evaluate(() => {
  const e = document.activeElement;
  const s = getComputedStyle(e);
  return { tag: e.tagName, id: e.id, cls: e.className, text: e.textContent.trim(), outline: s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2 };
});

test('keyboard only: Tab reaches the controls with a visible focus, Enter classifies a sample and opens the picker', async () => {
  const { context, page } = await openPage(browser, url);
  const seen = [];
  let f;
  for (let i = 0; i < 40; i++) {
    await page.keyboard.press('Tab');
    f = await focused(page);
    seen.push(f.id || f.cls || f.tag);
    if (f.cls.includes('sample-button')) break;
  }
  assert.ok(f.cls.includes('sample-button'), `Tab never reached a sample button: ${seen.join(' → ')}`);
  for (const id of ['model-select', 'drop-zone']) assert.ok(seen.includes(id), `Tab skipped #${id}: ${seen.join(' → ')}`);
  assert.ok(f.outline, 'the focused sample button shows a focus outline');
  await page.keyboard.press('Enter');
  await waitForResults(page, 1);
  const [r] = await shownResults(page);
  assert.equal(r.status, 'ok', r.text);
  assert.match(await page.locator('#announcer').innerText(), new RegExp(`${r.file}: ${r.label}`));
  // The drop zone is a button: Enter opens the file picker.
  // (Listening first: Playwright intercepts the picker only once someone listens.)
  const chooserOpened = page.waitForEvent('filechooser');
  await page.focus('#drop-zone');
  assert.equal((await focused(page)).tag, 'BUTTON');
  await page.keyboard.press('Enter');
  const chooser = await chooserOpened;
  assert.ok(chooser.isMultiple(), 'the picker takes many files');
  await chooser.setFiles([samples()[1].path]);
  await waitForResults(page, 2);
  await context.close();
});

test('text contrast is at least 4.5:1 everywhere, results and errors included', async () => {
  const { context, page } = await openPage(browser, url);
  const bad = path.join(tmp, 'broken.png');
  fs.writeFileSync(bad, 'not a png');
  await classifySample(page, 'glioma');
  await classifyInPage(page, [bad]);
  const low = await page.evaluate(() => {
    const rgba = (c) => (c.match(/[\d.]+/g) ?? []).map(Number);
    const lum = ([r, g, b]) => {
      const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
      return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    const background = (e) => {
      for (let n = e; n; n = n.parentElement) {
        const c = rgba(getComputedStyle(n).backgroundColor);
        if (c.length === 3 || c[3] > 0) return c;
      }
      return [255, 255, 255];
    };
    const out = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let t = walker.nextNode(); t; t = walker.nextNode()) {
      const e = t.parentElement;
      if (!t.textContent.trim() || !e.checkVisibility() || e.closest('.visually-hidden') || e.closest('button:disabled')) continue;
      const fg = rgba(getComputedStyle(e).color);
      const [l1, l2] = [lum(fg), lum(background(e))].sort((a, b) => b - a);
      const ratio = (l1 + 0.05) / (l2 + 0.05);
      if (ratio < 4.5) out.push(`${e.tagName}.${e.className} "${t.textContent.trim().slice(0, 30)}": ${ratio.toFixed(2)}`);
    }
    return out;
  });
  assert.deepEqual(low, []);
  await context.close();
});

test('drag and drop, and paste, add scans', async () => {
  const { context, page } = await openPage(browser, url);
  const sample = samples()[2];
  await page.evaluate(async (file) => {
    const blob = await (await fetch(`samples/${file}`)).blob();
    const dt = new DataTransfer();
    dt.items.add(new File([blob], `dropped-${file}`, { type: 'image/jpeg' }));
    document.querySelector('#drop-zone').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    const pasted = new DataTransfer();
    pasted.items.add(new File([blob], 'image.png', { type: 'image/jpeg' }));
    document.body.dispatchEvent(new ClipboardEvent('paste', { clipboardData: pasted, bubbles: true, cancelable: true }));
  }, sample.file);
  await waitForResults(page, 2);
  const shown = await shownResults(page);
  assert.deepEqual(shown.map((r) => r.file).sort(), [`dropped-${sample.file}`, 'pasted-1.jpg']);
  assert.ok(shown.every((r) => r.status === 'ok'), JSON.stringify(shown.map((r) => r.text)));
  assert.equal(shown[0].label, shown[1].label);
  await context.close();
});

test('a batch can be cancelled: every scan ends done or cancelled, and the page says so', async () => {
  const files = sampleCopies(tmp, 60, 'batch');
  const { context, page } = await openPage(browser, url);
  await page.setInputFiles('#file-input', files);
  await page.waitForSelector('#cancel-button:not([disabled])');
  await page.click('#cancel-button');
  await page.waitForSelector('#queue-status[data-state=idle]', { timeout: 120_000 });
  const rows = await page.$$eval('#results-rows tr', (trs) => trs.map((tr) => tr.dataset.status));
  const count = (s) => rows.filter((r) => r === s).length;
  assert.equal(rows.length, 60);
  assert.ok(count('cancelled') >= 1, `nothing was cancelled: ${rows}`);
  assert.equal(count('ok') + count('cancelled'), 60, String(rows));
  assert.equal(await page.locator('.result').count(), count('ok'));
  assert.match(await page.locator('#queue-status').innerText(), /cancelled/);
  assert.ok(await page.locator('#cancel-button').isDisabled());
  // Stopping the running scan restarts the worker; the model is loaded again and the next scan works
  // (tests/browser/faults.test.mjs checks which scan was stopped).
  await page.waitForSelector('#model-status[data-status=ready]', { timeout: 60_000 });
  const r = await classifySample(page, 'glioma');
  assert.equal(r.status, 'ok', r.text);
  await context.close();
});

test('a long session: only the newest 100 results keep their image and heat-map; every result stays in the table', async () => {
  const files = sampleCopies(tmp, 103, 'long');
  const { context, page } = await openPage(browser, url);
  await page.setInputFiles('#file-input', files);
  await page.waitForSelector('#queue-status[data-state=idle]', { timeout: 300_000 });
  const shown = await page.$$eval('.result', (ns) => ns.map((n) => ({
    file: n.dataset.file, released: n.dataset.released === 'true', canvases: n.querySelectorAll('canvas').length, text: n.textContent,
  })));
  assert.equal(shown.length, 103);
  assert.deepEqual(shown.filter((r) => r.released).map((r) => r.file), ['long-002.jpg', 'long-001.jpg', 'long-000.jpg']);
  assert.ok(shown.slice(0, 100).every((r) => !r.released && r.canvases > 0));
  for (const r of shown.slice(100)) {
    assert.equal(r.canvases, 0);
    assert.match(r.text, /released to save memory .* stays in the table and the exports/);
    assert.match(r.text, /Top class: /, 'the result text is kept');
    assert.match(r.text, /Probabilities: glioma \d+\.\d %, meningioma \d+\.\d %, notumor \d+\.\d %, pituitary \d+\.\d %\./);
  }
  assert.equal(await page.locator('#results-rows tr[data-status=ok]').count(), 103);
  await context.close();
});

test('CSV and JSON exports hold the table: file names and results, nothing else', async () => {
  const { context, page } = await openPage(browser, url);
  const bad = path.join(tmp, 'bad, "quoted".png');
  fs.writeFileSync(bad, 'not an image');
  await classifySample(page, 'glioma');
  await classifySample(page, 'pituitary');
  await classifyInPage(page, [bad]);
  const shown = await shownResults(page);

  const [csvDownload] = await Promise.all([page.waitForEvent('download'), page.click('#export-csv')]);
  assert.match(csvDownload.suggestedFilename(), /^mriscreen-results-\d{8}-\d{6}\.csv$/);
  const csv = fs.readFileSync(await csvDownload.path(), 'utf8');
  const lines = csv.trimEnd().split('\r\n');
  assert.match(lines[0], /^# .*not a diagnostic device/);
  const header = lines[1].split(',');
  for (const col of ['file', 'status', 'label', 'top_probability', 'refer', 'p_glioma', 'p_meningioma', 'p_notumor', 'p_pituitary', 'backend', 'model', 'error']) {
    assert.ok(header.includes(col), `CSV column ${col} missing: ${lines[1]}`);
  }
  assert.equal(lines.length, 2 + 3);
  const rows = lines.slice(2, 4).map((l) => Object.fromEntries(l.split(',').map((v, i) => [header[i], v])));
  for (const row of rows) {
    const r = shown.find((s) => s.file === row.file);
    assert.ok(r, `CSV row for an unknown file: ${row.file}`);
    assert.equal(row.status, 'ok');
    assert.equal(row.label, r.label);
    assert.equal(row.backend, 'cpu');
    assert.equal(row.model, defaultModel().id);
    assert.equal(row.refer, r.refer);
    for (const c of ['glioma', 'meningioma', 'notumor', 'pituitary']) assert.ok(Math.abs(Number(row[`p_${c}`]) - r.probabilities[c]) < 1e-6);
  }
  assert.ok(lines[4].startsWith('"bad, ""quoted"".png",error,'), `the failed file, quoted: ${lines[4]}`);
  assert.ok(!csv.includes(tmp), 'no paths, only file names');

  const [jsonDownload] = await Promise.all([page.waitForEvent('download'), page.click('#export-json')]);
  const json = JSON.parse(fs.readFileSync(await jsonDownload.path(), 'utf8'));
  assert.match(json.notice, /not a diagnostic device/);
  assert.equal(json.results.length, 3);
  assert.deepEqual(json.results.map((r) => r.file).sort(), ['bad, "quoted".png', 'real-glioma.jpg', 'real-pituitary.jpg']);
  assert.equal(json.models[defaultModel().id].sha256, defaultModel().sha256);
  assert.equal(typeof json.results.find((r) => r.status === 'ok').top_probability, 'number');
  await context.close();
});

test('a touch tablet, portrait and landscape: nothing scrolls sideways, controls are finger-sized, a tapped sample classifies', async () => {
  for (const viewport of [{ width: 768, height: 1024 }, { width: 1024, height: 768 }, { width: 390, height: 844 }]) {
    const context = await browser.newContext({ viewport, hasTouch: true, isMobile: true });
    const { page } = await openContextPage(context, url);
    await page.tap('.sample-button[data-class="glioma"]');
    await waitForResults(page, 1);
    const layout = await page.evaluate(() => ({
      overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth,
      // Every visible button and the file picker's drop zone: at least 40 CSS px tall.
      small: [...document.querySelectorAll('button, #drop-zone, select')]
        .filter((e) => e.offsetParent !== null)
        .map((e) => ({ id: e.id || e.className || e.tagName, h: e.getBoundingClientRect().height }))
        .filter((b) => b.h < 40),
    }));
    assert.ok(layout.overflow <= 0, `${viewport.width}×${viewport.height}: page is ${layout.overflow} px wider than the screen`);
    assert.deepEqual(layout.small, [], `${viewport.width}×${viewport.height}: controls under 40 px tall`);
    const [r] = await shownResults(page);
    assert.equal(r.status, 'ok', r.text);
    await context.close();
  }
});
