// Writes patched copies of two dependencies (the versions Cargo.lock names)
// for the page's wasm builds (docs/architecture.md, "Two wasm modules"; called
// by scripts/build-web, which points cargo at them with `--config patch`):
//
// - tract-nnef, without its one link-time registration. tract-nnef registers
//   an NNEF "patch" model transform through the `inventory` crate. On wasm
//   every inventory entry is a constructor the linker must keep, and that one
//   reaches the whole NNEF deserialiser, which can build every tract-core
//   operator (and pulls rustfft in for its FFT ones): 0.72 MB of the CPU
//   engine's gzip, measured 2026-12-05. We never run NNEF transforms.
// - dicom-encoding, with the Japanese, Korean and Chinese character sets
//   (ISO_IR 13, ISO_IR 87, ISO_IR 149, GB18030, GBK) read as ASCII, their
//   other bytes kept as `\ddd` escapes (dicom-encoding's own rule for bytes a
//   character set cannot decode). Their tables are 132 KB of the wasm, 103 KB
//   gzipped; the page reads only values that DICOM keeps in the default
//   repertoire whatever the character set (Modality, Photometric
//   Interpretation, VOI LUT Function, the image's numbers: CS, DS, IS, US),
//   never names or descriptions, so nothing it shows or computes changes.
//
//   node scripts/patch-crates.mjs OUT_DIR      (writes OUT_DIR/<crate>)
//
// A copy is rewritten only when its source version or this script changed (a
// stamp file), so cargo does not rebuild on every build. Fails loudly if a
// patched place is not as this script expects, for instance after an upgrade:
// then read the new source and update the patterns below.
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outRoot = path.resolve(ROOT, process.argv[2] ?? 'target/patched');
const self = fs.readFileSync(fileURLToPath(import.meta.url));

function fail(message) {
  console.error(`patch-crates: ${message}`);
  process.exit(1);
}

/// tract-nnef's src/transform.rs without its `inventory::submit! { ... name: "patch" ... }` block.
function withoutNnefRegistration(text, file) {
  const start = text.indexOf('inventory::submit!');
  const others = start < 0 ? -1 : text.indexOf('inventory::submit!', start + 1);
  if (start < 0 || others >= 0 || !/name:\s*"patch"/.test(text.slice(start, start + 200))) {
    fail(`expected exactly one inventory registration (the "patch" transform) in ${file}; tract changed, update this script`);
  }
  // The block ends at the brace that closes `inventory::submit! {`.
  let depth = 0;
  for (let i = text.indexOf('{', start); i < text.length; i++) {
    if (text[i] === '{') depth++;
    else if (text[i] === '}' && --depth === 0) {
      // What only the registration used is left unused: said once here rather than warned about.
      return `#![allow(unused_imports, dead_code)]\n${text.slice(0, start)}// (mriscreen: the NNEF "patch" transform is not registered in this build; scripts/patch-crates.mjs)\n${text.slice(i + 1)}`;
    }
  }
  return fail(`unbalanced braces after the registration in ${file}`);
}

/// dicom-encoding's src/text.rs with the East Asian character sets read as ASCII.
function withoutEastAsianTables(text, file) {
  const sets = { IsoIr13: 'WINDOWS_31J', IsoIr87: 'ISO_2022_JP', IsoIr149: 'WINDOWS_949', Gb18030: 'GB18030', GBK: 'GBK' };
  let out = text;
  for (const [codec, encoding] of Object.entries(sets)) {
    const re = new RegExp(`(decl_character_set!\\(${codec}CharacterSetCodec, "[^"]+", )${encoding}\\);`);
    if (!re.test(out)) fail(`expected \`decl_character_set!(${codec}CharacterSetCodec, "…", ${encoding});\` in ${file}; dicom-encoding changed, update this script`);
    out = out.replace(re, '$1ASCII); // mriscreen: read as ASCII in the page (scripts/patch-crates.mjs)');
  }
  const imports = /use encoding::all::\{([^}]*)\};/;
  const m = out.match(imports);
  if (!m) fail(`expected \`use encoding::all::{…};\` in ${file}`);
  const names = m[1].split(',').map((s) => s.trim()).filter((s) => s && !Object.values(sets).includes(s));
  return out.replace(imports, `use encoding::all::{${['ASCII', ...names].join(', ')}};`);
}

const patches = [
  { crate: 'tract-nnef', file: 'src/transform.rs', edit: withoutNnefRegistration },
  { crate: 'dicom-encoding', file: 'src/text.rs', edit: withoutEastAsianTables },
];

const meta = JSON.parse(execFileSync('cargo', ['metadata', '--format-version', '1', '--filter-platform', 'wasm32-unknown-unknown'], {
  cwd: ROOT, maxBuffer: 1 << 28, stdio: ['ignore', 'pipe', 'inherit'],
}).toString());
for (const { crate, file, edit } of patches) {
  const pkg = meta.packages.find((p) => p.name === crate && p.source?.startsWith('registry+'));
  if (!pkg) fail(`Cargo.lock names no ${crate} from crates.io (is a patch already in Cargo.toml?)`);
  const src = path.dirname(pkg.manifest_path);
  const out = path.join(outRoot, crate);
  const stamp = crypto.createHash('sha256').update(src).update(self).digest('hex');
  const stampFile = path.join(out, '.mriscreen-patch');
  if (fs.existsSync(stampFile) && fs.readFileSync(stampFile, 'utf8') === stamp) continue;
  const patched = edit(fs.readFileSync(path.join(src, file), 'utf8'), path.join(src, file));
  fs.rmSync(out, { recursive: true, force: true });
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.cpSync(src, out, { recursive: true });
  fs.writeFileSync(path.join(out, file), patched);
  fs.writeFileSync(stampFile, stamp);
}
console.log(outRoot);
