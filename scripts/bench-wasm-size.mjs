#!/usr/bin/env node
// What the page's two wasm builds are made of (issue 14, first-visit bytes):
// the bytes of each crate's functions (twiggy, on cargo's output, which still
// has function names), the data and custom sections, and what each shipped
// file (www/pkg/mriscreen_bg.wasm, the CPU build; www/pkg/mriscreen_gpu_bg.wasm,
// with WebGPU) weighs raw, gzipped and brotli-compressed.
//
//   scripts/build-web && node scripts/bench-wasm-size.mjs [--out bench/wasm-size/breakdown.json] [--wasm-opt]
//
// Needs twiggy (`cargo install twiggy --version 0.8.0 --locked`, installed here if missing).
// --wasm-opt also runs binaryen's wasm-opt -Oz and -Os on the shipped file (into a temporary
// folder; a few minutes each) and records what they would save raw, gzipped and as brotli: the
// build does not run it because it made the compressed file larger (README, "Performance").
// `scripts/setup bench` installs binaryen from Debian.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const outAt = args.indexOf('--out');
const OUT = path.resolve(ROOT, outAt >= 0 ? args[outAt + 1] : 'bench/wasm-size/breakdown.json');
// The three builds (scripts/build-web): the CPU-only module a first visit downloads, plain or
// with relaxed SIMD, and the one with the WebGPU backend, loaded only where a hardware adapter
// can use it.
const BUILDS = {
  cpu: { cargo: 'target/wasm32-unknown-unknown/wasm/mriscreen.cargo.wasm', shipped: 'www/pkg/mriscreen_bg.wasm' },
  cpu_relaxed_simd: { cargo: 'target/wasm32-unknown-unknown/wasm/mriscreen_relaxed.cargo.wasm', shipped: 'www/pkg/mriscreen_relaxed_bg.wasm' },
  gpu: { cargo: 'target/wasm32-unknown-unknown/wasm/mriscreen_gpu.cargo.wasm', shipped: 'www/pkg/mriscreen_gpu_bg.wasm' },
};
const SHIPPED = path.join(ROOT, BUILDS.cpu.shipped);

for (const f of Object.values(BUILDS).flatMap((b) => [b.cargo, b.shipped])) {
  if (!fs.existsSync(path.join(ROOT, f))) {
    console.error(`bench-wasm-size: ${f} is missing; run scripts/build-web first`);
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

/** Shallow bytes by crate of one of cargo's wasm files (before wasm-bindgen, function names still in). */
function byCrate(file) {
  const items = JSON.parse(execFileSync('twiggy', ['top', '-n', '10000000', '--format', 'json', file], { maxBuffer: 1 << 30 }).toString());
  const totals = new Map();
  for (const { name, shallow_size: bytes } of items) {
    const c = crateOf(name);
    totals.set(c, (totals.get(c) ?? 0) + bytes);
  }
  const total = fs.statSync(file).size;
  return [...totals.entries()].sort((a, b) => b[1] - a[1]).map(([crate, bytes]) => ({ crate, bytes, percent: +(100 * bytes / total).toFixed(2) }));
}

function sizes(file) {
  const b = fs.readFileSync(file);
  const br = zlib.brotliCompressSync(b, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: b.length } }).length;
  return { raw: b.length, gzip_9: zlib.gzipSync(b, { level: 9 }).length, brotli_11: br };
}

// The features wasm-bindgen's output uses (Rust's wasm32 defaults); binaryen refuses the module without them.
const WASM_FEATURES = ['--enable-bulk-memory', '--enable-sign-ext', '--enable-mutable-globals',
  '--enable-nontrapping-float-to-int', '--enable-reference-types', '--enable-multivalue'];

function wasmOpt() {
  let version;
  try {
    version = execFileSync('wasm-opt', ['--version']).toString().trim();
  } catch {
    console.error('bench-wasm-size: --wasm-opt needs binaryen\'s wasm-opt on PATH (scripts/setup bench installs it)');
    process.exit(2);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mriscreen-wasm-opt-'));
  try {
    const levels = {};
    for (const level of ['-Oz', '-Os']) {
      const out = path.join(dir, `opt${level}.wasm`);
      console.error(`bench-wasm-size: wasm-opt ${level} (a few minutes)`);
      const t0 = Date.now();
      execFileSync('wasm-opt', [level, ...WASM_FEATURES, SHIPPED, '-o', out], { stdio: 'inherit' });
      levels[level] = { seconds: +((Date.now() - t0) / 1000).toFixed(1), ...sizes(out) };
    }
    return { version, features: WASM_FEATURES, levels };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const builds = {};
for (const [name, b] of Object.entries(BUILDS)) {
  const cargo = path.join(ROOT, b.cargo);
  builds[name] = { cargo_wasm: { file: b.cargo, ...sizes(cargo) }, shipped: { file: b.shipped, ...sizes(path.join(ROOT, b.shipped)) }, crates: byCrate(cargo) };
}
const result = {
  date: new Date().toISOString(),
  note: 'per build (cpu: what every first visit downloads; gpu: with the WebGPU backend, loaded only where a hardware adapter can use it): shipped = www/pkg as served; crates = shallow bytes of cargo\'s wasm (before wasm-bindgen), by the crate that names each function',
  ...builds,
};
if (args.includes('--wasm-opt')) result.wasm_opt = { of: BUILDS.cpu.shipped, ...wasmOpt() };
fs.mkdirSync(path.dirname(OUT), { recursive: true });
fs.writeFileSync(OUT, JSON.stringify(result, null, 2) + '\n');
const mb = (n) => (n / 1e6).toFixed(2);
for (const [name, b] of Object.entries(builds)) {
  console.log(`${name}: ${b.shipped.file}: ${mb(b.shipped.raw)} MB raw, ${mb(b.shipped.gzip_9)} MB gzip -9, ${mb(b.shipped.brotli_11)} MB brotli (quality 11)`);
}
for (const [level, r] of Object.entries(result.wasm_opt?.levels ?? {})) {
  const pct = (k) => `${r[k] > result.cpu.shipped[k] ? '+' : ''}${(100 * (r[k] / result.cpu.shipped[k] - 1)).toFixed(1)} %`;
  console.log(`wasm-opt ${level} (cpu build): ${mb(r.raw)} MB raw (${pct('raw')}), ${mb(r.gzip_9)} MB gzip (${pct('gzip_9')}), ${mb(r.brotli_11)} MB brotli (${pct('brotli_11')})`);
}
const cpuCrates = new Map(builds.cpu.crates.map((c) => [c.crate, c.bytes]));
console.log('by crate (cargo\'s wasm), gpu build and what the cpu build keeps of it:');
for (const c of builds.gpu.crates.slice(0, 25)) console.log(`  ${mb(c.bytes).padStart(7)} MB ${mb(cpuCrates.get(c.crate) ?? 0).padStart(7)} MB  ${c.crate}`);
console.log(`written to ${path.relative(ROOT, OUT)}`);
