// Writes a copy of tract-nnef (the version Cargo.lock names) without its one
// link-time registration, for the page's CPU-only engine (docs/architecture.md,
// "Two wasm modules"; called by scripts/build-web).
//
// Why: tract-nnef registers an NNEF "patch" model transform through the
// `inventory` crate. On wasm every inventory entry is a constructor the linker
// must keep, and that one reaches the whole NNEF deserialiser, which can build
// every tract-core operator (and pulls rustfft in for its FFT ones): 0.72 MB of
// the CPU engine's gzip, measured 2026-12-05. We never run NNEF transforms.
//
//   node scripts/patch-tract-nnef.mjs OUT_DIR
//
// Prints OUT_DIR. The copy is rewritten only when the source version or this
// script changed (a stamp file), so cargo does not rebuild tract on every build.
// Fails loudly if the registration is not where this script expects it, for
// instance after a tract upgrade: then read the new src/transform.rs and update
// the pattern below.
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.resolve(ROOT, process.argv[2] ?? 'target/patched/tract-nnef');

const meta = JSON.parse(execFileSync('cargo', ['metadata', '--format-version', '1', '--filter-platform', 'wasm32-unknown-unknown'], {
  cwd: ROOT, maxBuffer: 1 << 28, stdio: ['ignore', 'pipe', 'inherit'],
}).toString());
const pkg = meta.packages.find((p) => p.name === 'tract-nnef' && p.source?.startsWith('registry+'));
if (!pkg) {
  console.error('patch-tract-nnef: Cargo.lock names no tract-nnef from crates.io (is a patch already in Cargo.toml?)');
  process.exit(2);
}
const src = path.dirname(pkg.manifest_path);
const self = fs.readFileSync(fileURLToPath(import.meta.url));
const stamp = crypto.createHash('sha256').update(src).update(self).digest('hex');
const stampFile = path.join(out, '.mriscreen-patch');
if (fs.existsSync(stampFile) && fs.readFileSync(stampFile, 'utf8') === stamp) {
  console.log(out);
  process.exit(0);
}

const file = 'src/transform.rs';
const text = fs.readFileSync(path.join(src, file), 'utf8');
// The registration: `inventory::submit! { ModelTransformFactory { name: "patch", ... } }`.
const start = text.indexOf('inventory::submit!');
const others = start < 0 ? -1 : text.indexOf('inventory::submit!', start + 1);
if (start < 0 || others >= 0 || !/name:\s*"patch"/.test(text.slice(start, start + 200))) {
  console.error(`patch-tract-nnef: expected exactly one inventory registration (the "patch" transform) in ${path.join(src, file)}; tract changed, update this script`);
  process.exit(1);
}
// The block ends at the brace that closes `inventory::submit! {`.
let depth = 0;
let end = -1;
for (let i = text.indexOf('{', start); i < text.length; i++) {
  if (text[i] === '{') depth++;
  else if (text[i] === '}' && --depth === 0) { end = i + 1; break; }
}
if (end < 0) {
  console.error(`patch-tract-nnef: unbalanced braces after the registration in ${file}`);
  process.exit(1);
}

fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(path.dirname(out), { recursive: true });
fs.cpSync(src, out, { recursive: true });
const removed = '// (mriscreen: the NNEF "patch" transform is not registered in this build; scripts/patch-tract-nnef.mjs)\n';
fs.writeFileSync(path.join(out, file), text.slice(0, start) + removed + text.slice(end));
fs.writeFileSync(stampFile, stamp);
console.log(out);
