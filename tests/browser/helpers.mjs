// Shared by the browser tests: serve dist/ (or a changed copy of it), launch
// Debian's Chromium through playwright-core, record what a session requests
// and any Content-Security-Policy violation, run the native CLI for comparison.
import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve } from '../../scripts/static-server.mjs';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const DIST = path.join(ROOT, 'dist');
export const SAMPLES = path.join(ROOT, 'www/samples');
/** Where screenshots for review go (not committed). */
export const SCREENSHOTS = path.join(ROOT, 'bench/screenshots');

const BASE_FLAGS = ['--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync'];

/** WebGPU in headless Chromium on a machine without a GPU: SwiftShader (docs/architecture.md, "Facts that shaped wgpu-bridge"). */
export const WEBGPU_FLAGS = ['--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader', '--enable-features=Vulkan'];

/**
 * Serves dist/ (or `root`) on a free loopback port, optionally under a
 * sub-path; resolves to { server, url, answers }, where `answers` records
 * every file answer ({ path, status, bytes }).
 */
export async function startServer({ root = DIST, prefix = '/' } = {}) {
  if (!fs.existsSync(path.join(root, 'index.html'))) throw new Error(`${root} is not built: run scripts/build-web first`);
  const answers = [];
  const started = await serve(root, { port: 0, prefix, onAnswer: (a) => answers.push(a) });
  return { ...started, answers };
}

/** A temporary copy of dist/ to change (a tampered model, a new version); removed by the caller. */
export function copyDist() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mriscreen-site-'));
  // With their times: the server sends a .br or .gz copy only if it is no older than its original.
  fs.cpSync(DIST, dir, { recursive: true, preserveTimestamps: true });
  return dir;
}

/** The default model's manifest entry. */
export function defaultModel(root = DIST) {
  const manifest = JSON.parse(fs.readFileSync(path.join(root, 'models/manifest.json'), 'utf8'));
  return manifest.models.find((m) => m.id === manifest.default);
}

/** The committed samples, real ones first: [{ file, class, kind, path }]. */
export function samples() {
  const list = JSON.parse(fs.readFileSync(path.join(SAMPLES, 'samples.json'), 'utf8'));
  return list.samples.map((s) => ({ ...s, path: path.join(SAMPLES, s.file) }));
}

/** `n` copies of the first real sample in `dir`, named `<stem>-000.jpg`…; their paths. */
export function sampleCopies(dir, n, stem) {
  const src = fs.readFileSync(samples()[0].path);
  return Array.from({ length: n }, (_, i) => {
    const f = path.join(dir, `${stem}-${String(i).padStart(3, '0')}.jpg`);
    fs.writeFileSync(f, src);
    return f;
  });
}

/** Launches headless Chromium; `extraArgs` e.g. the WebGPU flags. */
export function launch(extraArgs = []) {
  return chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: [...BASE_FLAGS, ...extraArgs] });
}

/** Headless Chromium with a persistent profile in `dir` (its HTTP cache on disk); a context. */
export function launchProfile(dir, extraArgs = []) {
  return chromium.launchPersistentContext(dir, { executablePath: '/usr/bin/chromium', headless: true, args: [...BASE_FLAGS, ...extraArgs] });
}

/**
 * A fresh browser context that records every request (page, workers and
 * service worker) and every CSP violation; returns { context, requests, violations }.
 */
export async function newSession(browser, options = {}) {
  const context = await browser.newContext({ acceptDownloads: true, ...options });
  const requests = [];
  const violations = [];
  context.on('request', (r) => requests.push({ url: r.url(), method: r.method(), body: r.postDataBuffer(), headers: r.headers() }));
  context.on('console', (m) => { if (/Content.Security.Policy|Refused to/i.test(m.text())) violations.push(m.text()); });
  await context.exposeBinding('__reportCsp', (_src, text) => violations.push(text));
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__reportCsp(`${e.violatedDirective} blocked ${e.blockedURI || 'inline'} at ${e.sourceFile}:${e.lineNumber}`);
    });
  });
  return { context, requests, violations };
}

/**
 * Opens the page in a new session and waits for the model; returns
 * { context, page, requests (the whole session's), violations, errors }.
 */
export async function openPage(browser, url) {
  const session = await newSession(browser);
  const { page, errors } = await openContextPage(session.context, url);
  return { ...session, page, errors };
}

/** Like openPage, in a given browser context; `requests` are this page's. */
export async function openContextPage(context, url) {
  const page = await context.newPage();
  const requests = [];
  const errors = [];
  page.on('request', (r) => requests.push({ url: r.url(), method: r.method(), body: r.postDataBuffer() }));
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(url);
  await page.waitForSelector('#model-status[data-status=ready]', { timeout: 120_000 });
  return { context, page, requests, errors };
}

/** Every result shown: its data-* hooks, text and probabilities. */
export function shownResults(page) {
  return page.$$eval('.result', (nodes) => nodes.map((n) => ({
    file: n.dataset.file, status: n.dataset.status, label: n.dataset.label, backend: n.dataset.backend, refer: n.dataset.refer,
    heatmap: n.dataset.heatmap, frame: n.dataset.frame, frames: n.dataset.frames, format: n.dataset.format, text: n.textContent,
    probabilities: Object.fromEntries([...n.querySelectorAll('.prob')].map((p) => [p.dataset.class, Number(p.dataset.probability)])),
  })));
}

/** Waits until at least `n` results are shown. */
export function waitForResults(page, n) {
  return page.waitForFunction((k) => document.querySelectorAll('.result').length >= k, n, { timeout: 120_000 });
}

/** Chooses files in the page and waits until `count` more results are shown; returns them all. */
export async function classifyInPage(page, files, count = files.length) {
  const before = await page.locator('.result').count();
  await page.setInputFiles('#file-input', files);
  await waitForResults(page, before + count);
  return shownResults(page);
}

/** Clicks the "try a sample" button for `cls` (a `kind` = "real" or "synthetic" one) and returns its result. */
export async function classifySample(page, cls, kind = 'real') {
  const sample = samples().find((s) => s.class === cls && (s.kind ?? 'synthetic') === kind);
  const before = await page.locator('.result').count();
  await page.click(`.sample-button[data-class="${cls}"][data-kind="${kind}"]`);
  await waitForResults(page, before + 1);
  return (await shownResults(page)).find((r) => r.file === sample.file);
}

/** The backend badge: { kind, text, reason }. */
export function backendBadge(page) {
  return page.$eval('#backend-status', (b) => ({ kind: b.dataset.backend, text: b.textContent, reason: b.dataset.reason }));
}

/** Waits for the service worker's "ready offline". */
export function waitReadyOffline(page) {
  return page.waitForSelector('#offline-status[data-status=ready]', { timeout: 120_000 });
}

/** Saves a screenshot of `locator` under bench/screenshots/ (ignored by git); returns its path. */
export async function screenshot(locator, name) {
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  const ignore = path.join(SCREENSHOTS, '.gitignore');
  if (!fs.existsSync(ignore)) fs.writeFileSync(ignore, '# review screenshots written by tests/browser; not committed\n*\n');
  const file = path.join(SCREENSHOTS, name);
  await locator.screenshot({ path: file });
  return file;
}

/** Runs the native CLI (`target/debug/mriscreen`, built if missing): { status, stdout, stderr }. */
export function cli(args) {
  const bin = process.env.MRISCREEN_BIN ?? path.join(ROOT, 'target/debug/mriscreen');
  if (!fs.existsSync(bin)) execFileSync('cargo', ['build', '-q', '-p', 'trainer'], { cwd: ROOT, stdio: 'inherit' });
  try {
    const stdout = execFileSync(bin, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    return { status: 0, stdout: stdout.toString(), stderr: '' };
  } catch (e) {
    if (e.status == null) throw e;
    return { status: e.status, stdout: e.stdout.toString(), stderr: e.stderr.toString() };
  }
}

/** `mriscreen predict --json` (CPU backend) with the repository's default model or `model`. */
export function cliPredict(files, model) {
  const r = cli(['predict', '--json', ...(model ? ['--model', model] : []), ...files]);
  // Exit status 1 when a file failed; the JSON is still complete.
  if (r.status > 1) throw new Error(`mriscreen predict failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout);
}
