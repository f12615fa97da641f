// Faults injected into a running page, and survived: the worker dying
// mid-scan, the WebGPU device lost mid-batch, Cancel stopping the scan that is
// running, the model download cut halfway, and a storage quota too small to
// keep the app offline. Each ends with a result for every scan (or a reported
// error), a badge or message that says what happened, and a page that still
// classifies.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { WEBGPU_FLAGS, DIST, startServer, launch, openPage, newSession, shownResults, waitForResults, classifySample,
  backendBadge, samples, sampleCopies } from './helpers.mjs';

let server, url, browser, tmp;
before(async () => {
  ({ server, url } = await startServer());
  browser = await launch();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mriscreen-faults-'));
});
after(async () => {
  await browser?.close();
  server?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** Status of every row of the results table, by file name. */
const rowStatus = (page) => page.$$eval('#results-rows tr', (trs) => Object.fromEntries(trs.map((tr) => [tr.dataset.file, tr.dataset.status])));

/**
 * From now on the page counts the workers it starts, in `window.workersStarted`;
 * while `window.crashNewWorkers` is true, each new one is named so that it dies
 * on its first scan (worker.js reads `fault=crash` from its name before any
 * request can arrive, which injecting after Playwright reports the worker
 * could not guarantee).
 */
const countWorkers = (page) => page.evaluate(() => {
  window.workersStarted = 0;
  const Original = window.Worker;
  window.Worker = class extends Original {
    constructor(url, options) {
      super(url, window.crashNewWorkers ? { ...options, name: `${options?.name ?? ''} fault=crash` } : options);
      window.workersStarted += 1;
    }
  };
});

/** Sets the test-only fault `kind` in a page's model worker. */
const injectFault = (worker, kind) => worker.evaluate((k) => { self.mriscreenFault = k; }, kind);

test('the worker dies mid-scan: a fresh one retries the scan once, and a second death is reported', async () => {
  const { context, page } = await openPage(browser, `${url}?backend=cpu`);
  const started = [];
  page.on('worker', (w) => started.push(w));
  await countWorkers(page);
  const [worker] = page.workers();
  await injectFault(worker, 'crash');
  const r = await classifySample(page, 'glioma');
  assert.equal(r.status, 'ok', r.text);
  assert.equal(await page.evaluate(() => window.workersStarted), 1, 'one fresh worker');
  // Playwright reports a new worker once it has attached, which can come a moment after the result.
  for (const until = Date.now() + 30_000; started.length < 1 && Date.now() < until;) await new Promise((res) => setTimeout(res, 50));
  const badge = await backendBadge(page);
  assert.equal(badge.kind, 'cpu');
  assert.match(badge.reason, /worker crashed while classifying .*injected crash.* and was restarted/);

  // Every worker from now on dies on its first scan: the retry dies too, and the scan is reported.
  await page.evaluate(() => { window.crashNewWorkers = true; });
  await injectFault(started[0], 'crash');
  const [sample] = samples();
  const failed = await classifySample(page, 'meningioma');
  assert.equal(failed.status, 'error', failed.text);
  assert.match(failed.text, /worker failed.*injected crash/);
  await page.evaluate(() => { window.crashNewWorkers = false; });
  // The next scan gets a working worker (restarted after the reported failure).
  const next = await classifySample(page, sample.class);
  assert.equal(next.status, 'ok', next.text);
  await context.close();
});

test('Cancel stops the scan that is running as well as the waiting ones; the model is loaded again', async () => {
  const files = sampleCopies(tmp, 40, 'cancel');
  const { context, page } = await openPage(browser, `${url}?backend=cpu`);
  await page.setInputFiles('#file-input', files);
  await page.waitForSelector('#results-rows tr[data-status=ok]');
  // Count the workers the page starts from now on, and record the model status: a replaced
  // worker has to load the model again.
  await countWorkers(page);
  await page.evaluate(() => {
    const status = document.querySelector('#model-status');
    window.modelStatuses = [];
    new MutationObserver(() => window.modelStatuses.push(status.dataset.status))
      .observe(status, { attributes: true, attributeFilter: ['data-status'] });
  });
  // Once a scan has finished and another is running, read which one and press Cancel in the same
  // task, so the two agree (between two scans, for a moment, none is running).
  const stopped = await page.waitForFunction(() => {
    const running = document.querySelector('#results-rows tr[data-status=running]');
    if (!running) return null;
    document.querySelector('#cancel-button').click();
    return running.dataset.file;
  }, null, { timeout: 60_000 }).then((h) => h.jsonValue());
  assert.ok(stopped, 'a scan was running when Cancel was pressed');
  await page.waitForSelector('#queue-status[data-state=idle]', { timeout: 60_000 });
  const rows = await rowStatus(page);
  assert.equal(rows[stopped], 'cancelled', `the running scan ${stopped}: ${rows[stopped]}`);
  const values = Object.values(rows);
  assert.equal(values.length, 40);
  assert.ok(values.every((s) => s === 'ok' || s === 'cancelled'), JSON.stringify(rows));
  assert.equal(await page.locator('.result').count(), values.filter((s) => s === 'ok').length);
  assert.match(await page.locator('#announcer').innerText(), new RegExp(`${stopped} stopped`));
  // The worker was replaced to stop the scan: the page loaded the model again, and it is ready.
  await page.waitForFunction(() => {
    const s = window.modelStatuses;
    return s.includes('loading') && s.at(-1) === 'ready';
  }, null, { timeout: 60_000 });
  assert.equal(await page.evaluate(() => window.workersStarted), 1, 'the worker was replaced to stop the scan');
  const r = await classifySample(page, 'glioma');
  assert.equal(r.status, 'ok', r.text);
  await context.close();
});

test('the WebGPU device is lost mid-batch: the batch finishes on the CPU, no result is lost, the badge says why', { timeout: 300_000 }, async () => {
  const gpuBrowser = await launch(WEBGPU_FLAGS);
  try {
    const { context, page } = await openPage(gpuBrowser, `${url}?backend=gpu`);
    assert.equal((await backendBadge(page)).kind, 'gpu');
    const [worker] = page.workers();
    const files = sampleCopies(tmp, 4, 'lost');
    await page.setInputFiles('#file-input', files);
    await waitForResults(page, 1);
    await worker.evaluate(() => self.gpuDevices.at(-1).destroy());
    await waitForResults(page, 4);
    await page.waitForSelector('#queue-status[data-state=idle]', { timeout: 120_000 });
    const shown = await shownResults(page);
    assert.equal(shown.length, 4);
    assert.ok(shown.every((r) => r.status === 'ok'), JSON.stringify(shown.map((r) => r.text)));
    assert.ok(shown.some((r) => r.backend === 'gpu'), 'the first scans ran on WebGPU');
    assert.ok(shown.some((r) => r.backend === 'cpu'), 'the rest ran on the CPU');
    assert.equal(new Set(shown.map((r) => r.label)).size, 1, 'the same file gets the same label on both backends');
    const badge = await backendBadge(page);
    assert.equal(badge.kind, 'cpu');
    assert.match(badge.reason, /WebGPU device was lost/);
    await context.close();
  } finally {
    await gpuBrowser.close();
  }
});

/**
 * A proxy in front of the static server that, while `cut` names a path,
 * answers it with its full Content-Length but only half the bytes, then
 * drops the connection (a download interrupted halfway).
 */
async function interruptingProxy(target) {
  const state = { cut: null };
  const upstream = new URL(target);
  const proxy = http.createServer((req, res) => {
    const { pathname } = new URL(req.url, upstream);
    if (state.cut && pathname.endsWith(state.cut)) {
      const bytes = fs.readFileSync(path.join(DIST, 'models', state.cut));
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': bytes.length, 'Cache-Control': 'no-store' });
      res.write(bytes.subarray(0, bytes.length >> 1), () => setTimeout(() => res.socket.destroy(), 50));
      return;
    }
    const forward = http.request({ host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode, up.headers);
      up.pipe(res);
    });
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  await new Promise((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  return { proxy, state, url: `http://127.0.0.1:${proxy.address().port}/` };
}

test('a model download cut halfway: a clear error and Retry; no partial file is cached; Retry loads it', async () => {
  const { proxy, state, url: proxied } = await interruptingProxy(url);
  try {
    const manifest = JSON.parse(fs.readFileSync(path.join(DIST, 'models/manifest.json'), 'utf8'));
    const other = manifest.models.find((m) => m.id !== manifest.default && !m.untrained);
    const { context, page } = await openPage(browser, `${proxied}?backend=cpu`);
    await page.waitForSelector('#offline-status[data-status=ready]', { timeout: 120_000 });
    // The service worker now controls the page and caches a model on first use.
    state.cut = path.basename(other.file);
    await page.selectOption('#model-select', other.id);
    await page.waitForSelector('#model-status[data-status=error]', { timeout: 60_000 });
    const status = await page.locator('#model-status').innerText();
    assert.match(status, /stopped after \d+ of \d+ bytes/, status);
    assert.match(status, /press Retry/);
    assert.equal(await page.locator('#model-status').getAttribute('data-error-kind'), 'network');
    assert.ok(await page.locator('#model-retry').isVisible(), 'a Retry button');
    const modelUrl = new URL(other.file, new URL('models/manifest.json', proxied)).href;
    const cached = () => page.evaluate(async (u) => {
      const sizes = [];
      for (const name of await caches.keys()) {
        const hit = await (await caches.open(name)).match(u);
        if (hit) sizes.push((await hit.arrayBuffer()).byteLength);
      }
      return sizes;
    }, modelUrl);
    assert.deepEqual(await cached(), [], 'no partial model in the offline cache');

    state.cut = null;
    await page.click('#model-retry');
    await page.waitForSelector('#model-status[data-status=ready]', { timeout: 60_000 });
    assert.ok(await page.locator('#model-retry').isHidden());
    const r = await classifySample(page, 'glioma');
    assert.equal(r.status, 'ok', r.text);
    await page.waitForFunction(async (u) => {
      for (const name of await caches.keys()) if (await (await caches.open(name)).match(u)) return true;
      return false;
    }, modelUrl, { timeout: 30_000 });
    assert.deepEqual(await cached(), [other.bytes], 'the whole file is cached after the retry');
    await context.close();
  } finally {
    proxy.close();
  }
});

test('storage quota too small for offline use: the page says so and still classifies online', async () => {
  const { context } = await newSession(browser);
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send('Storage.overrideQuotaForOrigin', { origin: new URL(url).origin, quotaSize: 64 * 1024 });
  await page.goto(`${url}?backend=cpu`);
  await page.waitForSelector('#model-status[data-status=ready]', { timeout: 120_000 });
  await page.waitForSelector('#offline-status[data-status=unavailable]', { timeout: 120_000 });
  const text = await page.locator('#offline-status').innerText();
  assert.match(text, /storage for the site is full or too small/, text);
  assert.match(text, /still works online/);
  const r = await classifySample(page, 'glioma');
  assert.equal(r.status, 'ok', r.text);
  assert.equal(await page.evaluate(async () => (await caches.keys()).length), 0, 'no half-filled cache is left');
  await context.close();
});
