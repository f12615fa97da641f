// Writes patched copies of four dependencies (the versions Cargo.lock names)
// for the page's wasm builds (docs/architecture.md, "The wasm modules"; called
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
// - tract-linalg, with a 4x8 f32 matrix kernel for wasm, derived from its
//   8x8 one (rows 4-7 dropped, one v128 of A per step), which its dispatch
//   then picks for every f32 matrix product. The 8x8 kernel keeps 16
//   accumulators; with its operands that is more than x86-64's 16 vector
//   registers, so V8 spills. Measured 2026-12-06 in Chromium on this 2-core
//   x86-64 machine (`node scripts/bench-browser.mjs --profile`, the products'
//   time per MobileNetV2-1.0 inference, two runs each): 8x8 25.6-27.0 ms,
//   4x8 23.8-24.1 ms, and with relaxed SIMD's fused multiply-add (the
//   pkg/mriscreen_relaxed build) 20.1-20.4 ms; tract's 4x4 29.0-29.5 ms and
//   4x16 37.4-37.7 ms.
// - wonnx, fusing a Clip into the convolution before it (`ConvClip`), as it
//   already fuses a Relu (`ConvRelu`): its convolution shaders have a Clip
//   activation, which only its compiler's op lists and the bounds were
//   missing. MobileNets' ReLU6 (Clip 0..6) after each convolution was a
//   compute pass of its own over the activation, about a quarter of a
//   random-weight MobileNetV2's time on SwiftShader, measured 2026-12-06
//   (`node scripts/bench-browser.mjs --profile --backend gpu`). The native
//   build keeps crates.io's wonnx and runs the Clip as its own pass.
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

/** `text` with `from` replaced by `to`, where `from` occurs exactly `count` times. */
function replaceExactly(text, file, from, to, count = 1) {
  const found = text.split(from).length - 1;
  if (found !== count) fail(`expected ${count} of \`${from}\` in ${file}, found ${found}; wonnx changed, update this script`);
  return text.split(from).join(to);
}

/// wonnx's optimizer fusing Conv → Clip into one ConvClip node (the Clip's bounds become its attributes).
function withConvClipFusion(text, file) {
  let out = replaceExactly(text, file, '["Conv", "Relu", ..] | ["Conv", "LeakyRelu", ..] => {', '["Conv", "Relu", ..] | ["Conv", "LeakyRelu", ..] | ["Conv", "Clip", ..] => {');
  out = replaceExactly(out, file, '"Relu" => "ConvRelu",', '"Relu" => "ConvRelu",\n                        "Clip" => "ConvClip", // mriscreen (scripts/patch-crates.mjs)');
  // A Clip's bounds are inputs (opset 11 on): constant ones become the fused node's attributes.
  const copy = 'attributes.extend(relu_def.proto.get_attribute().iter().cloned());';
  out = replaceExactly(out, file, copy, `${copy}
                    // mriscreen: a Clip's constant bounds, as float-list attributes (scripts/patch-crates.mjs).
                    if relu_def.proto.get_op_type() == "Clip" {
                        for (input, name) in relu.inputs.iter().zip(CLIP_INPUT_NAMES).skip(1) {
                            if let NodeDefinition::Tensor(t) = &input.source_node.definition {
                                let value: Vec<f32> = if t.get_float_data().is_empty() {
                                    pod_collect_to_vec(t.get_raw_data())
                                } else {
                                    t.get_float_data().to_vec()
                                };
                                attributes.push(attribute(*name, value));
                            }
                        }
                    }`);
  // Its 3x3 padding rewrite applies to the fused convolutions too.
  return replaceExactly(out, file, '"Conv" | "ConvRelu" | "ConvLeakyRelu" => {', '"Conv" | "ConvRelu" | "ConvLeakyRelu" | "ConvClip" => {');
}

/// wonnx's compiler accepting ConvClip, with the Clip's bounds for the shaders' Clip activation.
function withConvClipShaders(text, file) {
  let out = replaceExactly(text, file, '"ConvLeakyRelu" | "ConvMish"', '"ConvLeakyRelu" | "ConvMish" | "ConvClip"', 2);
  const alpha = 'let alpha = node.get_attribute_value("alpha", Some(0.01))?;\n                    context.insert("alpha", &alpha);';
  return replaceExactly(out, file, alpha, `${alpha}
                    // mriscreen: a fused Conv+Clip's bounds, written as wonnx writes a Clip's (scripts/patch-crates.mjs).
                    if op == "ConvClip" {
                        let min: Vec<f32> = node.get_attribute_value("min", Some(vec![f32::MIN]))?;
                        let max: Vec<f32> = node.get_attribute_value("max", Some(vec![f32::MAX]))?;
                        context.insert("min", &format!("{:.1}", min.first().copied().unwrap_or(f32::MIN)));
                        context.insert("max", &format!("{:.1}", max.first().copied().unwrap_or(f32::MAX)));
                    }`);
}

/// A crate as a path dependency gets its warnings shown, which crates.io's never are.
function quiet(text) {
  return `#![allow(warnings)] // mriscreen: a patched copy of a crates.io crate (scripts/patch-crates.mjs)\n${text}`;
}

/** The text from `open` (at or after `from`) to its matching close brace, exclusive, and the close's index. */
function braceBody(text, from, file) {
  const open = text.indexOf('{', from);
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    if (text[i] === '{') depth++;
    else if (text[i] === '}' && --depth === 0) return { start: open + 1, end: i };
  }
  return fail(`unbalanced braces in ${file}`);
}

/// tract-linalg's wasm f32 GEMM kernels plus a 4x8 one (8 accumulators), derived from its 8x8.
function withF32Kernel4x8(text, file) {
  const fnAt = text.indexOf('unsafe fn kernel_f32_8x8(');
  const cfg = '#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]\n';
  const start = text.lastIndexOf(cfg, fnAt);
  const { end } = braceBody(text, fnAt, file);
  if (fnAt < 0 || start < 0) fail(`expected kernel_f32_8x8 in ${file}; tract-linalg changed, update this script`);
  let k = text.slice(start, end + 1).replace('kernel_f32_8x8', 'kernel_f32_4x8');
  // The multiply-add loop: one v128 of A (4 rows) per k step instead of two.
  const arm = 'FusedKerSpec::AddMatMul { k, pa, pb, packing: _ } =>';
  const mm = k.indexOf(arm);
  if (mm < 0) fail(`expected AddMatMul in kernel_f32_8x8 (${file})`);
  const body = braceBody(k, mm + arm.length, file);
  const rows = [0, 1, 2, 3].map((r) => `                        let s${r} = i32x4_shuffle::<${r}, ${r}, ${r}, ${r}>(av, av);
                        a${r}lo = madd_f32x4!(a${r}lo, s${r}, blo);
                        a${r}hi = madd_f32x4!(a${r}hi, s${r}, bhi);`).join('\n');
  k = `${k.slice(0, body.start)}
                    let a = pa as *const v128;
                    let b = pb as *const v128;
                    for i in 0..k {
                        let av = v128_load(a.add(i));
                        let blo = v128_load(b.add(2 * i));
                        let bhi = v128_load(b.add(2 * i + 1));
${rows}
                    }
                ${k.slice(body.end)}`;
  // Rows 4-7 go everywhere else: declarations, accumulator lists, row pairs, row products.
  k = k.split('\n').filter((line) => !/let mut a[4-7](lo|hi) =|\(&mut a[4-7]lo, &mut a[4-7]hi\),|^\s*\(a[4-7]lo, a[4-7]hi\),|\br[4-7]\b/.test(line)).join('\n');
  k = k.replace(/, \(a[4-7]lo, a[4-7]hi\)/g, '').replace(/, a[4-7](lo|hi)\b/g, '');
  if (/\ba[4-7](lo|hi)\b|\bs[4-7]\b/.test(k)) fail(`rows 4-7 left in the derived 4x8 kernel (${file}); update this script`);
  return `${text}

// mriscreen: a 4x8 tile, derived from kernel_f32_8x8 by scripts/patch-crates.mjs (why: there).
${k}

bail_stub!(wasm32; unsafe fn kernel_f32_4x8(*const FusedKerSpec<f32>) -> isize);

MMMRustKernel!(wasm32; kernel_f32_4x8 => wasm_f32_4x8<f32>(4,8)@(4,8));
`;
}

/// tract-linalg's wasm dispatch sending f32 matrix products to the 4x8 kernel.
function withF32Gemm4x8(text, file) {
  return replaceExactly(text, file, '(DatumType::F32, _) => Some(wasm_f32_8x8.name.as_str()),', '(DatumType::F32, _) => Some(wasm_f32_4x8.name.as_str()), // mriscreen (scripts/patch-crates.mjs)');
}

const patches = [
  { crate: 'tract-nnef', files: [['src/transform.rs', withoutNnefRegistration]] },
  { crate: 'dicom-encoding', files: [['src/text.rs', withoutEastAsianTables]] },
  { crate: 'tract-linalg', files: [['src/wasm/mmm_f32_gemm.rs', withF32Kernel4x8], ['src/wasm/mod.rs', withF32Gemm4x8]] },
  { crate: 'wonnx', files: [['src/optimizer.rs', withConvClipFusion], ['src/compiler.rs', withConvClipShaders], ['src/lib.rs', quiet]] },
];

const meta = JSON.parse(execFileSync('cargo', ['metadata', '--format-version', '1', '--filter-platform', 'wasm32-unknown-unknown'], {
  cwd: ROOT, maxBuffer: 1 << 28, stdio: ['ignore', 'pipe', 'inherit'],
}).toString());
for (const { crate, files } of patches) {
  const pkg = meta.packages.find((p) => p.name === crate && p.source?.startsWith('registry+'));
  if (!pkg) fail(`Cargo.lock names no ${crate} from crates.io (is a patch already in Cargo.toml?)`);
  const src = path.dirname(pkg.manifest_path);
  const out = path.join(outRoot, crate);
  const stamp = crypto.createHash('sha256').update(src).update(self).digest('hex');
  const stampFile = path.join(out, '.mriscreen-patch');
  if (fs.existsSync(stampFile) && fs.readFileSync(stampFile, 'utf8') === stamp) continue;
  const patched = files.map(([file, edit]) => [file, edit(fs.readFileSync(path.join(src, file), 'utf8'), path.join(src, file))]);
  fs.rmSync(out, { recursive: true, force: true });
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.cpSync(src, out, { recursive: true });
  for (const [file, text] of patched) fs.writeFileSync(path.join(out, file), text);
  fs.writeFileSync(stampFile, stamp);
}
console.log(outRoot);
