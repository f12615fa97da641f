// Shared by the browser tests: serve dist/, launch Debian's Chromium through
// playwright-core, run the native CLI for comparison.
import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve } from '../../scripts/static-server.mjs';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const DIST = path.join(ROOT, 'dist');

const BASE_FLAGS = ['--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync'];

/** WebGPU in headless Chromium on a machine without a GPU: SwiftShader (DESIGN.md). */
export const WEBGPU_FLAGS = ['--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader', '--enable-features=Vulkan'];

/** Serves dist/ on a free loopback port. */
export async function startServer() {
  if (!fs.existsSync(path.join(DIST, 'index.html'))) throw new Error('dist/ is not built: run scripts/build-web first');
  return serve(DIST, { port: 0 });
}

/** Launches headless Chromium; `extraArgs` e.g. the WebGPU flags. */
export function launch(extraArgs = []) {
  return chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: [...BASE_FLAGS, ...extraArgs] });
}

/** Opens the page and waits for the model; records every request URL. */
export async function openPage(browser, url) {
  return openContextPage(await browser.newContext(), url);
}

/** Like openPage, in a given browser context. */
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

/** Chooses files in the page and waits until `count` results are shown; returns them. */
export async function classifyInPage(page, files, count = files.length) {
  const before = await page.locator('.result').count();
  await page.setInputFiles('#file-input', files);
  await page.waitForFunction((n) => document.querySelectorAll('.result').length >= n, before + count, { timeout: 120_000 });
  return page.$$eval('.result', (nodes) => nodes.map((n) => ({
    file: n.dataset.file,
    status: n.dataset.status,
    label: n.dataset.label,
    backend: n.dataset.backend,
    text: n.textContent,
    probabilities: Object.fromEntries([...n.querySelectorAll('.prob')].map((p) => [p.dataset.class, Number(p.dataset.probability)])),
  })));
}

/** The backend badge: { kind, text, reason }. */
export function backendBadge(page) {
  return page.$eval('#backend-status', (b) => ({ kind: b.dataset.backend, text: b.textContent, reason: b.dataset.reason }));
}

/** `mriscreen predict --json` with the repository's default model (CPU backend). */
export function cliPredict(files) {
  const bin = process.env.MRISCREEN_BIN ?? path.join(ROOT, 'target/debug/mriscreen');
  if (!fs.existsSync(bin)) execFileSync('cargo', ['build', '-q', '-p', 'trainer'], { cwd: ROOT, stdio: 'inherit' });
  let out;
  try {
    out = execFileSync(bin, ['predict', '--json', ...files], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    out = e.stdout; // exit status 1 when a file failed; the JSON is still complete
  }
  return JSON.parse(out.toString());
}
