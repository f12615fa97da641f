// Offline use (service worker, web manifest) on the CPU: ready offline, then
// with the network off a reload still classifies with the same label; a new
// build is offered, not forced, and replaces the old cache once accepted; and
// the whole site works under a sub-path.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServer, launch, launchProfile, openPage, openContextPage, classifySample, copyDist, waitReadyOffline, defaultModel, DIST } from './helpers.mjs';

let browser;
const cleanup = [];
before(async () => { browser = await launch(); });
after(async () => {
  await browser?.close();
  for (const f of cleanup) f();
});

test('offline: after "ready offline", a reload without network classifies a sample with the same label', async () => {
  const { server, url } = await startServer();
  cleanup.push(() => server.close());
  const { context, page, errors } = await openPage(browser, `${url}?backend=cpu`);
  await waitReadyOffline(page);
  const online = await classifySample(page, 'meningioma');
  await context.setOffline(true);
  await page.reload();
  await page.waitForSelector('#model-status[data-status=ready]', { timeout: 60_000 });
  assert.equal(await page.evaluate(() => navigator.onLine), false);
  const offline = await classifySample(page, 'meningioma');
  assert.equal(offline.status, 'ok', offline.text);
  assert.equal(offline.label, online.label);
  assert.deepEqual(offline.probabilities, online.probabilities);
  assert.deepEqual(errors, []);
  await context.close();
});

test('first visit: the wasm and the model are downloaded once; the service worker revalidates them', async () => {
  const { server, url, answers } = await startServer();
  // A profile on disk, as a user's is: an incognito context's in-memory HTTP
  // cache keeps no entry as large as the wasm or the model.
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'mriscreen-profile-'));
  cleanup.push(() => { server.close(); fs.rmSync(profile, { recursive: true, force: true }); });
  const context = await launchProfile(profile);
  const { page } = await openContextPage(context, `${url}?backend=cpu`);
  await waitReadyOffline(page);
  const model = defaultModel();
  for (const suffix of ['.wasm', `/${model.file.split('/').pop()}`]) {
    const mine = answers.filter((a) => a.path.endsWith(suffix));
    assert.equal(mine.filter((a) => a.status === 200).length, 1, `${suffix}: ${JSON.stringify(mine)}`);
    assert.ok(mine.some((a) => a.status === 304), `${suffix}: the service worker revalidated it (${JSON.stringify(mine)})`);
  }
  // The wasm came brotli-compressed, as a static host serves it (scripts/precompress.mjs).
  const wasm = answers.find((a) => a.path.endsWith('.wasm') && a.status === 200);
  const raw = fs.statSync(path.join(DIST, wasm.path)).size;
  assert.equal(wasm.encoding, 'br', JSON.stringify(wasm));
  assert.ok(wasm.bytes < raw / 3, `${wasm.bytes} bytes sent for ${raw}`);
  const cached = await page.evaluate(async (file) => {
    const name = (await caches.keys()).find((c) => c.startsWith('mriscreen-'));
    const hit = await (await caches.open(name)).match(new URL(`models/${file}`, location.href).href);
    return hit ? (await hit.arrayBuffer()).byteLength : 0;
  }, model.file.split('/').pop());
  assert.equal(cached, model.bytes, 'the cached model is the whole file');
  await context.close();
});

test('web manifest and icons', async () => {
  const manifest = JSON.parse(fs.readFileSync(path.join(DIST, 'manifest.webmanifest'), 'utf8'));
  assert.equal(manifest.start_url, './');
  assert.equal(manifest.display, 'standalone');
  for (const size of [192, 512]) {
    const icon = manifest.icons.find((i) => i.sizes === `${size}x${size}`);
    const png = fs.readFileSync(path.join(DIST, icon.src));
    assert.equal(png.subarray(1, 4).toString(), 'PNG');
    assert.deepEqual([png.readUInt32BE(16), png.readUInt32BE(20)], [size, size]);
  }
  const sw = fs.readFileSync(path.join(DIST, 'sw.js'), 'utf8');
  assert.doesNotMatch(sw, /const VERSION = 'dev'/, 'scripts/build-web stamps the build id');
  assert.match(sw, /const SHELL = \[".\/",/);
});

test('an update is offered, applied only when the user agrees, and the old cache is deleted', async () => {
  const root = copyDist();
  const { server, url } = await startServer({ root });
  cleanup.push(() => { server.close(); fs.rmSync(root, { recursive: true, force: true }); });
  const { context, page } = await openPage(browser, `${url}?backend=cpu`);
  await waitReadyOffline(page);
  const oldVersion = await page.getAttribute('#offline-status', 'data-version');
  // A new build: another version in sw.js.
  const swFile = path.join(root, 'sw.js');
  fs.writeFileSync(swFile, fs.readFileSync(swFile, 'utf8').replace(`const VERSION = '${oldVersion}'`, "const VERSION = 'next-build'"));
  await page.evaluate(() => { window.__sameDocument = true; });
  await page.evaluate(async () => (await navigator.serviceWorker.getRegistration()).update());
  const button = page.locator('#update-button');
  await button.waitFor({ state: 'visible', timeout: 60_000 });
  assert.equal(await button.innerText(), 'Update available — reload');
  // Not applied behind the user's back: same document, old worker in control.
  await page.waitForTimeout(500);
  assert.equal(await page.evaluate(() => window.__sameDocument), true);
  await Promise.all([page.waitForEvent('load'), button.click()]);
  await waitReadyOffline(page);
  assert.equal(await page.evaluate(() => window.__sameDocument), undefined, 'the page reloaded');
  assert.equal(await page.getAttribute('#offline-status', 'data-version'), 'next-build');
  const caches = await page.evaluate(() => caches.keys());
  assert.deepEqual(caches.filter((c) => c.startsWith('mriscreen-')), ['mriscreen-next-build']);
  await context.close();
});

test('under a sub-path: every request stays below it, the service worker scope is the sub-path', async () => {
  const { server, url } = await startServer({ prefix: '/sub/path/' });
  cleanup.push(() => server.close());
  assert.ok(url.endsWith('/sub/path/'));
  const { context, page, requests, errors } = await openPage(browser, `${url}?backend=cpu`);
  await waitReadyOffline(page);
  const r = await classifySample(page, 'notumor');
  assert.equal(r.status, 'ok', r.text);
  assert.equal(await page.evaluate(async () => (await navigator.serviceWorker.getRegistration()).scope), url);
  for (const q of requests) {
    const u = new URL(q.url);
    if (u.protocol === 'blob:') continue;
    assert.ok(u.pathname.startsWith('/sub/path/'), `request outside the sub-path: ${q.url}`);
  }
  assert.deepEqual(errors, []);
  await context.close();
});
