#!/usr/bin/env node
// What the page's wasm is made of (issue 14, first-visit bytes): the bytes of
// each crate's functions (twiggy, on cargo's output, which still has function
// names), the data and custom sections, and what the shipped file
// (www/pkg/mriscreen_bg.wasm, after wasm-bindgen) weighs raw, gzipped and
// brotli-compressed as scripts/precompress.mjs writes them.
//
//   scripts/build-web && node scripts/bench-wasm-size.mjs [--out bench/wasm-size/breakdown.json]
//
// Needs twiggy (`cargo install twiggy --version 0.8.0 --locked`, installed here if missing).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const outAt = args.indexOf('--out');
const OUT = path.resolve(ROOT, outAt >= 0 ? args[outAt + 1] : 'bench/wasm-size/breakdown.json');
const CARGO_WASM = path.join(ROOT, 'target/wasm32-unknown-unknown/wasm/mriscreen.wasm');
const SHIPPED = path.join(ROOT, 'www/pkg/mriscreen_bg.wasm');

for (const f of [CARGO_WASM, SHIPPED]) {
  if (!fs.existsSync(f)) {
    console.error(`bench-wasm-size: ${path.relative(ROOT, f)} is missing; run scripts/build-web first`);
    process.exit(2);
  }
}
try {
  execFileSync('twiggy', ['--version'], { stdio: 'ignore' });
} catch {
  console.error('bench-wasm-size: installing twiggy 0.8.0 (cargo install, a few minutes, once)');
  execFileSync('cargo', ['install', 'twiggy', '--version', '0.8.0', '--locked'], { stdio: 'inherit' });
}

/** The crate an item belongs to: the first path segment of its demangled name. */
function crateOf(name) {
  if (name.startsWith('"function names"') || name.startsWith('custom section')) return `(custom section: ${name.replace(/^custom section /, '')})`;
  if (name.startsWith('data segment')) return '(data: constants, strings, tables)';
  const m = name.replace(/^[<&*\s]+(mut\s+)?(dyn\s+)?/, '').match(/^([A-Za-z_][A-Za-z0-9_]*)::/);
  if (m) return m[1];
  if (/^(elem|table|type|import|export|global|memory|start)\b|^code\[|^func\[/.test(name)) return '(wasm tables, types, imports)';
  return '(other: unnamed or compiler glue)';
}

const items = JSON.parse(execFileSync('twiggy', ['top', '-n', '10000000', '--format', 'json', CARGO_WASM], { maxBuffer: 1 << 30 }).toString());
const byCrate = new Map();
for (const { name, shallow_size: bytes } of items) {
  const c = crateOf(name);
  byCrate.set(c, (byCrate.get(c) ?? 0) + bytes);
}
const total = fs.statSync(CARGO_WASM).size;
const crates = [...byCrate.entries()].sort((a, b) => b[1] - a[1]).map(([crate, bytes]) => ({ crate, bytes, percent: +(100 * bytes / total).toFixed(2) }));

function sizes(file) {
  const b = fs.readFileSync(file);
  const br = zlib.brotliCompressSync(b, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: b.length } }).length;
  return { raw: b.length, gzip_9: zlib.gzipSync(b, { level: 9 }).length, brotli_11: br };
}

const result = {
  date: new Date().toISOString(),
  note: 'crates: shallow bytes of cargo\'s wasm (before wasm-bindgen), by the crate that names each function; shipped: www/pkg/mriscreen_bg.wasm as served',
  cargo_wasm: { file: path.relative(ROOT, CARGO_WASM), ...sizes(CARGO_WASM) },
  shipped: { file: path.relative(ROOT, SHIPPED), ...sizes(SHIPPED) },
  crates,
};
fs.mkdirSync(path.dirname(OUT), { recursive: true });
fs.writeFileSync(OUT, JSON.stringify(result, null, 2) + '\n');
const mb = (n) => (n / 1e6).toFixed(2);
console.log(`shipped ${result.shipped.file}: ${mb(result.shipped.raw)} MB raw, ${mb(result.shipped.gzip_9)} MB gzip -9, ${mb(result.shipped.brotli_11)} MB brotli (quality 11)`);
console.log(`cargo's wasm: ${mb(total)} MB; by crate:`);
for (const c of crates.slice(0, 25)) console.log(`  ${mb(c.bytes).padStart(7)} MB ${String(c.percent).padStart(6)} %  ${c.crate}`);
console.log(`written to ${path.relative(ROOT, OUT)}`);
