//! Helpers shared by the integration tests: generated images and models.
#![allow(dead_code)]

use image::{DynamicImage, GrayImage, ImageBuffer, Luma, Rgb, RgbImage};
use mriscreen::model::random::{self, RandomNet};
use mriscreen::CLASSES;
use std::io::Cursor;

/// A brain-MRI-like phantom: dark background, a bright skull ring, grey
/// tissue and a brighter blob. Deterministic.
pub fn phantom(w: u32, h: u32) -> GrayImage {
    GrayImage::from_fn(w, h, |x, y| {
        let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
        let (dx, dy) = ((x as f32 - cx) / (0.42 * w as f32), (y as f32 - cy) / (0.46 * h as f32));
        let r = (dx * dx + dy * dy).sqrt();
        let blob = ((x as f32 - 0.62 * w as f32).powi(2) + (y as f32 - 0.4 * h as f32).powi(2)).sqrt() < 0.08 * w as f32;
        let v = if r > 1.0 {
            4.0
        } else if r > 0.92 {
            220.0
        } else if blob {
            245.0
        } else {
            100.0 + 40.0 * ((x as f32 * 0.21).sin() * (y as f32 * 0.17).cos())
        };
        Luma([v as u8])
    })
}

pub fn phantom_rgb(w: u32, h: u32) -> RgbImage {
    let g = phantom(w, h);
    RgbImage::from_fn(w, h, |x, y| {
        let v = g.get_pixel(x, y)[0];
        Rgb([v, v.saturating_sub(10), v.saturating_add(5)])
    })
}

/// 16-bit greyscale using the full 12-bit range typical of MRI exports.
pub fn phantom16(w: u32, h: u32) -> ImageBuffer<Luma<u16>, Vec<u16>> {
    let g = phantom(w, h);
    ImageBuffer::from_fn(w, h, |x, y| Luma([u16::from(g.get_pixel(x, y)[0]) * 16 + (x % 16) as u16]))
}

pub fn encode(img: &DynamicImage, format: image::ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).expect("encoding a generated image");
    out.into_inner()
}

pub fn png(img: impl Into<DynamicImage>) -> Vec<u8> {
    encode(&img.into(), image::ImageFormat::Png)
}

pub fn jpeg(img: impl Into<DynamicImage>) -> Vec<u8> {
    encode(&img.into(), image::ImageFormat::Jpeg)
}

/// A small random CNN with the product's four classes at 64 px.
pub fn tiny_model() -> Vec<u8> {
    random::tiny_cnn(&RandomNet::new(&CLASSES, 64, 42))
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc32(&body).to_be_bytes());
}

/// A well-formed PNG header that claims `w` × `h` 8-bit grey pixels, with a
/// tiny (and insufficient) IDAT: a decompression-bomb probe.
pub fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
    chunk(&mut out, b"IEND", &[]);
    out
}

/// Path of a committed fixture under tests/golden.
pub fn golden(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name)
}

/// How a third-party (PyTorch- or Keras-style) test model is shaped.
#[derive(Clone, Copy)]
pub struct ThirdParty {
    pub nhwc: bool,
    pub fixed_size: bool,
    pub declare_output: bool,
    pub outputs: usize,
    pub flatten: FlattenStyle,
    /// The classifier's weight stored [in, out] and transposed by a node in the graph (Transpose on a constant).
    pub transposed_weight: bool,
}

/// How the graph flattens the pooled features before the classifier.
#[derive(Clone, Copy, PartialEq)]
pub enum FlattenStyle {
    /// A `Flatten` node.
    Op,
    /// tf2onnx's Keras Flatten: Shape → Slice (the batch) → Concat with [-1] → Reshape.
    ShapeSlice,
    /// PyTorch's `x.view(x.size(0), -1)` in older exports: Shape → Gather (index 0) → Unsqueeze → Concat with [-1] → Reshape.
    ShapeGather,
}

impl Default for ThirdParty {
    fn default() -> Self {
        ThirdParty { nhwc: false, fixed_size: true, declare_output: true, outputs: 3, flatten: FlattenStyle::Op, transposed_weight: false }
    }
}

/// A classifier as PyTorch exports it: no mriscreen metadata, a symbolic
/// batch, a bias-free conv, Flatten, Gemm with transB=1, output "output".
/// With `nhwc`, a Keras-style `[N,H,W,3]` input transposed inside the graph.
pub fn third_party(t: ThirdParty) -> Vec<u8> {
    use mriscreen::model::builder::{attr_int, attr_ints, i64_tensor, raw_tensor, ConvAttrs, Dim, GraphBuilder};
    use mriscreen::model::pb::tensor_proto::DataType;
    let mut rng = mriscreen::rng::Rng::new(9);
    let mut b = GraphBuilder::new("torch_jit");
    let hw: Dim = if t.fixed_size { 32.into() } else { "height".into() };
    let x = if t.nhwc {
        let x = b.input("image", &["batch".into(), hw.clone(), hw.clone(), 3.into()]);
        b.node("Transpose", &[&x], vec![attr_ints("perm", &[0, 3, 1, 2])])
    } else {
        b.input("image", &["batch".into(), 3.into(), hw.clone(), hw])
    };
    let w = b.constant("conv.weight", &[6, 3, 3, 3], &rng.vec(6 * 27, -0.3, 0.3));
    let y = b.conv(&x, &w, None, 3, ConvAttrs::new(2, 1));
    let y = b.relu(&y);
    let y = b.global_average_pool(&y);
    let y = match t.flatten {
        FlattenStyle::Op => b.flatten(&y),
        FlattenStyle::ShapeSlice => {
            let shape = b.node("Shape", &[&y], vec![]);
            let (start, end, axis) = (b.initializer(i64_tensor("start", &[0])), b.initializer(i64_tensor("end", &[1])), b.initializer(i64_tensor("axis", &[0])));
            let batch = b.node("Slice", &[&shape, &start, &end, &axis], vec![]);
            let rest = b.initializer(i64_tensor("minus_one", &[-1]));
            let target = b.node("Concat", &[&batch, &rest], vec![attr_int("axis", 0)]);
            b.node("Reshape", &[&y, &target], vec![])
        }
        FlattenStyle::ShapeGather => {
            let shape = b.node("Shape", &[&y], vec![]);
            let zero = b.initializer(raw_tensor("zero", DataType::Int64, &[], 0i64.to_le_bytes().to_vec()));
            let batch = b.node("Gather", &[&shape, &zero], vec![attr_int("axis", 0)]);
            let axes = b.initializer(i64_tensor("axes", &[0]));
            let batch = b.node("Unsqueeze", &[&batch, &axes], vec![]);
            let rest = b.initializer(i64_tensor("minus_one", &[-1]));
            let target = b.node("Concat", &[&batch, &rest], vec![attr_int("axis", 0)]);
            b.node("Reshape", &[&y, &target], vec![])
        }
    };
    let weights = rng.vec(t.outputs * 6, -1.0, 1.0);
    let bias = b.constant("fc.bias", &[t.outputs], &rng.vec(t.outputs, -0.1, 0.1));
    if t.transposed_weight {
        // Stored [in, out] = the transpose of [out, in], and transposed back by the graph.
        let stored: Vec<f32> = (0..6 * t.outputs).map(|k| weights[(k % t.outputs) * 6 + k / t.outputs]).collect();
        let w = b.constant("fc.weight_t", &[6, t.outputs], &stored);
        let w = b.node("Transpose", &[&w], vec![attr_ints("perm", &[1, 0])]);
        b.gemm(&y, &w, &bias, true);
    } else {
        let w = b.constant("fc.weight", &[t.outputs, 6], &weights);
        b.gemm(&y, &w, &bias, true);
    }
    b.rename_last_output("output");
    if t.declare_output {
        b.output("output", &["batch".into(), (t.outputs as i64).into()]);
    } else {
        b.graph_output_untyped("output");
    }
    b.to_bytes()
}

/// The parity case shared by the native test and the in-browser test: a
/// random MobileNetV2-0.5 at 96 px (depthwise convs, BN, Clip, residual
/// adds, Gemm) and a 150×130 phantom PNG.
pub fn parity_case() -> (Vec<u8>, Vec<u8>) {
    let model = random::mobilenet_v2(0.5, &RandomNet::new(&CLASSES, 96, 7));
    (model, png(phantom(150, 130)))
}

/// Probabilities the native build computed for [`parity_case`], committed in
/// tests/golden/parity_expected.json (regenerate: `MRISCREEN_BLESS=1 cargo
/// test --test parity`).
pub const PARITY_EXPECTED: &str = include_str!("../golden/parity_expected.json");

/// Runs `bytes` on WebGPU (wonnx) and on the CPU (tract) with a preprocessed
/// phantom and asserts max |Δlogit| ≤ 1e-4 · max |logit|, and the feature maps
/// within 1e-3 of their largest value (single activations carry more
/// rounding than averaged logits: measured up to 1.5e-4 on llvmpipe).
pub async fn gpu_matches_cpu(name: &str, bytes: &[u8], classes: Option<&[&str]>) {
    use mriscreen::backend::{CpuBackend, GpuBackend};
    use mriscreen::model::{LoadOptions, ModelPackage, Overrides};
    let overrides = Overrides { classes: classes.map(|c| c.iter().map(|s| s.to_string()).collect()), ..Default::default() };
    let package = ModelPackage::read(bytes, &LoadOptions { overrides, ..Default::default() }).unwrap();
    let image = DynamicImage::from(phantom(200, 170));
    let input = mriscreen::preprocess::preprocess(&image, &package.info.input);
    let cpu = CpuBackend::load(&package).unwrap().run(&input).unwrap();
    let gpu = GpuBackend::load(&package)
        .await
        .unwrap_or_else(|e| panic!("{name}: {e} (natively a Vulkan driver is needed: apt-get install mesa-vulkan-drivers)"));
    let got = gpu.run(&input).await.unwrap_or_else(|e| panic!("{name}: {e}"));
    let scale = cpu.logits.iter().fold(0f32, |m, v| m.max(v.abs()));
    let diff = cpu.logits.iter().zip(&got.logits).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert_eq!(cpu.features.is_some(), got.features.is_some(), "{name}: features on one backend only");
    let (mut fscale, mut fdiff) = (0f32, 0f32);
    if let (Some(a), Some(b)) = (&cpu.features, &got.features) {
        assert_eq!((a.channels, a.height, a.width), (b.channels, b.height, b.width), "{name}");
        fscale = a.data.iter().fold(0f32, |m, v| m.max(v.abs()));
        fdiff = a.data.iter().zip(&b.data).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    }
    let line = format!("{name}: max |Δlogit| {diff:.2e} (max |logit| {scale:.3}), features {fdiff:.2e} (max {fscale:.3}), on {}", gpu.adapter());
    #[cfg(target_arch = "wasm32")]
    wasm_bindgen_test::console_log!("{line}");
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("{line}");
    assert!(scale > 0.0 && diff <= 1e-4 * scale, "{name}: tract {:?} vs wonnx {:?}", cpu.logits, got.logits);
    assert!(fdiff <= 1e-3 * fscale.max(1.0), "{name}: features differ by {fdiff}");
}

/// `y` → GlobalAveragePool → Flatten → `logits` [1, n], and the encoded model.
pub fn classifier_head(mut b: mriscreen::model::builder::GraphBuilder, y: &str, n: i64) -> Vec<u8> {
    let y = b.global_average_pool(y);
    b.flatten(&y);
    b.rename_last_output("logits");
    b.output("logits", &[1.into(), n.into()]);
    b.to_bytes()
}

/// One Clip with its bounds as constant inputs (an absent bound: an empty input name), then the head.
pub fn clip_model(lo: Option<f32>, hi: Option<f32>) -> Vec<u8> {
    let mut b = mriscreen::model::builder::GraphBuilder::new("clip");
    let x = b.input("input", &[1.into(), 3.into(), 8.into(), 8.into()]);
    let lo = lo.map(|v| b.constant("lo", &[], &[v])).unwrap_or_default();
    let hi = hi.map(|v| b.constant("hi", &[], &[v])).unwrap_or_default();
    let y = b.node("Clip", &[&x, &lo, &hi], vec![]);
    classifier_head(b, &y, 3)
}
