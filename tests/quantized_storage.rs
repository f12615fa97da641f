//! Every quantized storage form runs right on both backends: a model whose
//! weights are stored as int8 (one scale per output channel, the channels'
//! magnitudes spread ×100), int4 per channel, int4 in blocks of 32 input
//! channels, and uint8 with zero points (as other tools write it) must give
//! the logits of an fp32 twin holding the same dequantized values, on the
//! CPU (tract) and on WebGPU (wonnx; natively Vulkan, llvmpipe in CI),
//! within 1e-5 of the logit scale. Neither backend reads these forms itself:
//! the loader expands them (`mriscreen::model::expand`).

mod common;

use mriscreen::backend::{CpuBackend, GpuBackend};
use mriscreen::block_on;
use mriscreen::model::builder::{attr_int, raw_tensor, ConvAttrs, GraphBuilder};
use mriscreen::model::pb::tensor_proto::DataType;
use mriscreen::model::quant::{Axes, Scheme, Storage};
use mriscreen::model::{LoadOptions, ModelPackage};
use mriscreen::rng::Rng;

/// Conv 3→64 (3×3) → Relu → Conv 64→32 (1×1) → Relu → GAP → Gemm 32→4.
/// `store` puts each weight (name, dims, values) into the graph.
fn net(store: &mut dyn FnMut(&mut GraphBuilder, &str, &[usize], &[f32]) -> String) -> Vec<u8> {
    let mut rng = Rng::new(17);
    // Output channel o scaled by 10^(2·o/(O−1) − 1): magnitudes from 0.1× to 10×.
    let spread = |v: Vec<f32>, out: usize| -> Vec<f32> {
        let per = v.len() / out;
        v.iter().enumerate().map(|(i, x)| x * 10f32.powf(2.0 * (i / per) as f32 / (out - 1) as f32 - 1.0)).collect()
    };
    let mut b = GraphBuilder::new("storage");
    let x = b.input("input", &[1.into(), 3.into(), 32.into(), 32.into()]);
    let w1 = store(&mut b, "c1.weight", &[64, 3, 3, 3], &spread(rng.vec(64 * 27, -0.5, 0.5), 64));
    let b1 = b.constant("c1.bias", &[64], &rng.vec(64, -0.1, 0.1));
    let y = b.conv(&x, &w1, Some(&b1), 3, ConvAttrs::new(2, 1));
    let y = b.relu(&y);
    let w2 = store(&mut b, "c2.weight", &[32, 64, 1, 1], &spread(rng.vec(32 * 64, -0.3, 0.3), 32));
    let b2 = b.constant("c2.bias", &[32], &rng.vec(32, -0.1, 0.1));
    let y = b.conv(&y, &w2, Some(&b2), 1, ConvAttrs::new(1, 0));
    let y = b.relu(&y);
    let y = b.global_average_pool(&y);
    let y = b.flatten(&y);
    let fc = store(&mut b, "fc.weight", &[4, 32], &rng.vec(128, -1.0, 1.0));
    let fcb = b.constant("fc.bias", &[4], &[0.1, -0.1, 0.0, 0.2]);
    b.gemm(&y, &fc, &fcb, true);
    b.rename_last_output("logits");
    b.output("logits", &[1.into(), 4.into()]);
    b.metadata("mriscreen.classes", r#"["glioma","meningioma","notumor","pituitary"]"#);
    b.to_bytes()
}

/// The model with `storage`, and its fp32 twin holding the values the storage stands for.
fn pair(storage: Storage) -> (Vec<u8>, Vec<u8>) {
    let mut values = Vec::new();
    let quantized = net(&mut |b, name, dims, data| {
        let s = mriscreen::model::quant::store(name, dims, data, storage);
        values.push((name.to_string(), s.values.clone()));
        b.store(name, dims, data, storage)
    });
    let twin = net(&mut |b, name, dims, _| {
        let v = &values.iter().find(|(n, _)| n == name).expect("same weights").1;
        b.constant(name, dims, v)
    });
    (quantized, twin)
}

/// uint8 with zero point 128 per output channel (asymmetric storage, as
/// onnx's own helpers can write it), and its twin.
fn uint8_pair() -> (Vec<u8>, Vec<u8>) {
    let mut values = Vec::new();
    let quantized = net(&mut |b, name, dims, data| {
        let out = dims[0];
        let per = data.len() / out;
        let scales: Vec<f32> = data.chunks(per).map(|c| c.iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0).collect();
        let q: Vec<u8> = data.iter().enumerate().map(|(i, v)| ((v / scales[i / per]).round() + 128.0).clamp(0.0, 255.0) as u8).collect();
        values.push((name.to_string(), q.iter().enumerate().map(|(i, &q)| (f32::from(q) - 128.0) * scales[i / per]).collect::<Vec<f32>>()));
        let stored = b.initializer(raw_tensor(&format!("{name}.u8"), DataType::Uint8, dims, q));
        let scale = b.constant(&format!("{name}.scale"), &[out], &scales);
        let zero = b.initializer(raw_tensor(&format!("{name}.zero"), DataType::Uint8, &[out], vec![128; out]));
        b.node("DequantizeLinear", &[&stored, &scale, &zero], vec![attr_int("axis", 0)])
    });
    let twin = net(&mut |b, name, dims, _| {
        let v = &values.iter().find(|(n, _)| n == name).expect("same weights").1;
        b.constant(name, dims, v)
    });
    (quantized, twin)
}

fn cases() -> Vec<(&'static str, (Vec<u8>, Vec<u8>))> {
    vec![
        ("int8 per channel, scales spread ×100", pair(Storage::Int { scheme: Scheme::int8(), axes: Axes::OUT_FIRST })),
        ("int4 per channel", pair(Storage::Int { scheme: Scheme::int4(0), axes: Axes::OUT_FIRST })),
        ("int4 in blocks of 32", pair(Storage::Int { scheme: Scheme::int4(32), axes: Axes::OUT_FIRST })),
        ("fp16", pair(Storage::Fp16)),
        ("uint8 with zero points", uint8_pair()),
    ]
}

fn input(package: &ModelPackage) -> Vec<f32> {
    mriscreen::preprocess::preprocess(&image::DynamicImage::from(common::phantom(90, 70)), &package.info.input)
}

fn relative(a: &[f32], b: &[f32]) -> f32 {
    let scale = b.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

#[test]
fn quantized_weights_equal_their_fp32_twin_on_the_cpu() {
    for (name, (q, twin)) in cases() {
        let (pq, pt) = (ModelPackage::read(&q, &LoadOptions::default()).unwrap(), ModelPackage::read(&twin, &LoadOptions::default()).unwrap());
        let x = input(&pq);
        let a = CpuBackend::load(&pq).unwrap_or_else(|e| panic!("{name}: {e}")).run(&x).unwrap().logits;
        let b = CpuBackend::load(&pt).unwrap().run(&x).unwrap().logits;
        let d = relative(&a, &b);
        eprintln!("{name}: CPU {d:.1e}");
        assert!(d <= 1e-5, "{name}: {a:?} vs twin {b:?}");
    }
}

#[test]
fn quantized_weights_equal_their_fp32_twin_on_webgpu() {
    for (name, (q, twin)) in cases() {
        let (pq, pt) = (ModelPackage::read(&q, &LoadOptions::default()).unwrap(), ModelPackage::read(&twin, &LoadOptions::default()).unwrap());
        let x = input(&pq);
        let run = |p: &ModelPackage| {
            block_on(async {
                let gpu = GpuBackend::load(p).await.unwrap_or_else(|e| panic!("{name}: {e} (natively a Vulkan driver is needed: apt-get install mesa-vulkan-drivers)"));
                gpu.run(&x).await.unwrap().logits
            })
        };
        let (a, b) = (run(&pq), run(&pt));
        let d = relative(&a, &b);
        eprintln!("{name}: WebGPU {d:.1e}");
        assert!(d <= 1e-5, "{name}: {a:?} vs twin {b:?}");
    }
}

#[test]
fn int4_files_are_opset_21_and_smaller() {
    let (q, twin) = pair(Storage::Int { scheme: Scheme::int4(32), axes: Axes::OUT_FIRST });
    let p = ModelPackage::read(&q, &LoadOptions::default()).unwrap();
    assert!(q.len() * 3 < twin.len(), "{} vs {} bytes", q.len(), twin.len());
    use prost::Message;
    let raw = mriscreen::model::pb::ModelProto::decode(q.as_slice()).unwrap();
    assert_eq!(raw.opset_import[0].version, 21);
    assert_eq!(raw.ir_version, 10);
    assert!(raw.graph.unwrap().initializer.iter().any(|t| t.data_type == DataType::Int4 as i32));
    // Once read, the graph holds float32 weights only.
    assert!(p.proto.graph.as_ref().unwrap().initializer.iter().all(|t| t.data_type == DataType::Float as i32));
}
