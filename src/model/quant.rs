//! Weight quantization: the one scheme that `mriscreen quantize`
//! (post-training), quantization-aware training (its fake-quantized weights)
//! and the graph builder share, and how each precision is written into an
//! ONNX file (docs/architecture.md, "The ONNX contract").
//!
//! - **Symmetric integers**, no zero point: q ∈ [−qmax, qmax] with qmax = 127
//!   (int8) or 7 (int4), value = q · scale.
//! - **Groups**: one scale per output channel (`DequantizeLinear` with
//!   `axis` = the output axis), or, when [`Scheme::block`] is set and the
//!   input-channel axis holds at least one whole block, one scale per block of
//!   that many consecutive input channels (opset 21 `block_size`, `axis` = the
//!   input axis; the last block may be shorter). Depthwise and other layers
//!   with fewer input channels than a block fall back to per-channel.
//! - **Range setting** (after Banner et al. 2019 and Nagel et al. 2021, "A
//!   White Paper on Neural Network Quantization", §3.4): per group, the
//!   clipping value is the one of [`CLIP_STEPS`] + 1 candidates between
//!   [`CLIP_MIN`] · max|w| and max|w| that minimises the squared weight error;
//!   min–max (the candidate 1.0) is one of them, so the result is never worse
//!   than min–max on that measure. Ties go to the wider range.
//! - **Scales are float16** (half the bytes of float32, which is what lets
//!   int8 files stay under a quarter of fp32 and int4 files under 15 %), so
//!   `DequantizeLinear` yields float16 and a `Cast` returns float32; the
//!   value the graph computes is therefore `f16(q · scale)`, and
//!   [`Quantized::dequantized`] returns exactly that, which is what
//!   quantization-aware training trains against.
//! - **Biases** and every other float tensor of a compressed model are
//!   stored as float16 + `Cast` ([`store_bias`]).

use super::builder::{attr_int, raw_tensor};
use super::pb::{tensor_proto::DataType, NodeProto, TensorProto};
use half::f16;
use serde::{Deserialize, Serialize};

/// Smallest clipping value tried, as a fraction of the group's max |w|.
pub const CLIP_MIN: f32 = 0.3;
/// Candidate clipping values between [`CLIP_MIN`] and 1 (evenly spaced).
pub const CLIP_STEPS: usize = 70;
/// Default int4 block along the input channels.
pub const DEFAULT_BLOCK: usize = 32;

/// How each group's clipping value is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Range {
    /// The candidate with the least squared weight error (module docs).
    #[default]
    Mse,
    /// The group's max |w|: nothing is clipped.
    MinMax,
}

/// Bits, grouping and range setting of an integer weight format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scheme {
    /// 8 or 4.
    pub bits: u8,
    /// Input channels per scale; 0 means one scale per output channel.
    pub block: usize,
    #[serde(default)]
    pub range: Range,
}

impl Scheme {
    /// int8, one scale per output channel.
    pub fn int8() -> Self {
        Scheme { bits: 8, block: 0, range: Range::Mse }
    }

    /// int4 in blocks of `block` input channels (per-channel where a block does not fit).
    pub fn int4(block: usize) -> Self {
        Scheme { bits: 4, block, range: Range::Mse }
    }

    /// The same with `range` setting.
    pub fn with_range(self, range: Range) -> Self {
        Scheme { range, ..self }
    }

    /// Checks bits (8 or 4) and block (0 or a positive even number).
    pub fn validate(&self) -> Result<(), String> {
        if self.bits != 8 && self.bits != 4 {
            return Err(format!("{} bits: only 8 and 4 are supported", self.bits));
        }
        if self.block % 2 != 0 {
            return Err(format!("block {} must be a positive multiple of 2 (e.g. 32), or 0 for one scale per output channel", self.block));
        }
        Ok(())
    }

    pub fn qmax(&self) -> f32 {
        f32::from((1u8 << (self.bits - 1)) - 1)
    }
}

/// Which axes of a weight tensor hold its output and its input channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Axes {
    pub out: usize,
    pub inp: usize,
}

impl Axes {
    /// Conv `[O, I, kh, kw]` and Gemm with `transB=1` (`[N, K]`).
    pub const OUT_FIRST: Axes = Axes { out: 0, inp: 1 };
    /// MatMul and Gemm with `transB=0` (`[K, N]`).
    pub const IN_FIRST: Axes = Axes { out: 1, inp: 0 };
}

/// How one tensor's elements share scales.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Grouping {
    /// One scale per index along `axis`.
    PerChannel { axis: usize },
    /// One scale per `block` consecutive indices along `axis` (and per index of every other axis).
    Blocked { axis: usize, block: usize },
}

/// The grouping `scheme` gives a tensor of shape `dims`.
pub fn grouping(dims: &[usize], axes: Axes, scheme: Scheme) -> Grouping {
    let inp = dims.get(axes.inp).copied().unwrap_or(0);
    if scheme.block > 0 && inp >= scheme.block && dims.len() > axes.out {
        Grouping::Blocked { axis: axes.inp, block: scheme.block }
    } else {
        Grouping::PerChannel { axis: axes.out.min(dims.len().saturating_sub(1)) }
    }
}

impl Grouping {
    /// The scale tensor's shape for a weight of shape `dims`.
    pub fn scale_dims(&self, dims: &[usize]) -> Vec<usize> {
        match *self {
            Grouping::PerChannel { axis } => vec![dims.get(axis).copied().unwrap_or(1)],
            Grouping::Blocked { axis, block } => dims.iter().enumerate().map(|(d, &n)| if d == axis { n.div_ceil(block) } else { n }).collect(),
        }
    }

    /// For every element (row-major), the index of its scale.
    pub fn scale_index(&self, dims: &[usize]) -> Vec<u32> {
        let n: usize = dims.iter().product();
        let (axis, block) = match *self {
            Grouping::PerChannel { axis } => (axis, 0),
            Grouping::Blocked { axis, block } => (axis, block),
        };
        let len = dims.get(axis).copied().unwrap_or(1).max(1);
        let inner: usize = dims.get(axis + 1..).map_or(1, |d| d.iter().product::<usize>()).max(1);
        (0..n)
            .map(|i| {
                let c = (i / inner) % len;
                if block == 0 {
                    c as u32
                } else {
                    let (outer, rest) = (i / (inner * len), i % inner);
                    ((outer * len.div_ceil(block) + c / block) * inner + rest) as u32
                }
            })
            .collect()
    }
}

/// A quantized weight tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Quantized {
    pub dims: Vec<usize>,
    pub scheme: Scheme,
    pub grouping: Grouping,
    /// Integers in [−qmax, qmax], row-major like the weights.
    pub q: Vec<i8>,
    pub scales: Vec<f16>,
}

/// The value `DequantizeLinear` with a float16 scale yields: `f16(q · scale)`
/// (the product is exact in f32: at most 7 + 11 significant bits).
fn dequantize_one(q: i8, scale: f32) -> f32 {
    f16::from_f32(f32::from(q) * scale).to_f32()
}

/// q = round(v / scale) clamped, computed as v · (1/scale).
fn quantize_one(v: f32, inv_scale: f32, qmax: f32) -> i8 {
    (v * inv_scale).round().clamp(-qmax, qmax) as i8
}

/// The float16 scale for clipping value `clip` (never zero: the smallest
/// float16 stands in when the clip underflows).
fn scale_for(clip: f32, qmax: f32) -> f16 {
    let s = f16::from_f32(clip / qmax);
    if s.to_f32() > 0.0 && s.is_finite() {
        s
    } else if clip > 0.0 && clip.is_finite() {
        if s.is_finite() { f16::from_bits(1) } else { f16::MAX }
    } else {
        f16::ONE
    }
}

/// The scale minimising Σ (v − q·s)² over the candidate clips (module
/// docs), or min–max's.
fn best_scale(values: &[f32], qmax: f32, range: Range) -> f16 {
    let amax = values.iter().fold(0f32, |m, v| m.max(v.abs()));
    if !(amax > 0.0) || !amax.is_finite() {
        return f16::ONE;
    }
    if range == Range::MinMax {
        return scale_for(amax, qmax);
    }
    let mut best = (f64::INFINITY, scale_for(amax, qmax));
    for k in 0..=CLIP_STEPS {
        let r = 1.0 - (1.0 - CLIP_MIN) * k as f32 / CLIP_STEPS as f32;
        let s16 = scale_for(amax * r, qmax);
        let (s, inv) = (s16.to_f32(), 1.0 / s16.to_f32());
        let err: f32 = values
            .iter()
            .map(|&v| {
                let d = v - f32::from(quantize_one(v, inv, qmax)) * s;
                d * d
            })
            .sum();
        if f64::from(err) < best.0 {
            best = (f64::from(err), s16);
        }
    }
    best.1
}

/// Quantizes `data` (shape `dims`) with `scheme`; `axes` says which axes are
/// the output and input channels.
pub fn quantize(data: &[f32], dims: &[usize], axes: Axes, scheme: Scheme) -> Quantized {
    let grouping = grouping(dims, axes, scheme);
    let index = grouping.scale_index(dims);
    let groups: usize = grouping.scale_dims(dims).iter().product();
    let qmax = scheme.qmax();
    // Gather each group's values (counting sort by scale index).
    let mut start = vec![0usize; groups + 1];
    for &g in &index {
        start[g as usize + 1] += 1;
    }
    for g in 0..groups {
        start[g + 1] += start[g];
    }
    let mut fill = start.clone();
    let mut sorted = vec![0f32; data.len()];
    for (&v, &g) in data.iter().zip(&index) {
        sorted[fill[g as usize]] = v;
        fill[g as usize] += 1;
    }
    let scales: Vec<f16> = (0..groups).map(|g| best_scale(&sorted[start[g]..start[g + 1]], qmax, scheme.range)).collect();
    let inverse: Vec<f32> = scales.iter().map(|s| 1.0 / s.to_f32()).collect();
    let q = data.iter().zip(&index).map(|(&v, &g)| quantize_one(v, inverse[g as usize], qmax)).collect();
    Quantized { dims: dims.to_vec(), scheme, grouping, q, scales }
}

impl Quantized {
    /// The float32 values the file's graph computes for this tensor.
    pub fn dequantized(&self) -> Vec<f32> {
        let index = self.grouping.scale_index(&self.dims);
        self.q.iter().zip(&index).map(|(&q, &g)| dequantize_one(q, self.scales[g as usize].to_f32())).collect()
    }
}

/// `data` as the file's graph would compute it after quantizing with
/// `scheme`: the fake-quantized weights of quantization-aware training.
pub fn fake_quantize(data: &[f32], dims: &[usize], axes: Axes, scheme: Scheme) -> Vec<f32> {
    quantize(data, dims, axes, scheme).dequantized()
}

/// Signal-to-quantization-noise ratio in dB: 10·log10(Σv² / Σ(v − v̂)²);
/// infinite when the two are equal.
pub fn sqnr_db(original: &[f32], approx: &[f32]) -> f64 {
    let (mut signal, mut noise) = (0f64, 0f64);
    for (&a, &b) in original.iter().zip(approx) {
        signal += f64::from(a).powi(2);
        noise += (f64::from(a) - f64::from(b)).powi(2);
    }
    if noise == 0.0 { f64::INFINITY } else { 10.0 * (signal / noise).log10() }
}

/// How one weight is stored in a file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Storage {
    Fp32,
    Fp16,
    Int { scheme: Scheme, axes: Axes },
}

/// The initializers and nodes that store one tensor; a float32 value named
/// like the tensor carries it into the graph.
#[derive(Debug, Clone, Default)]
pub struct Stored {
    pub initializers: Vec<TensorProto>,
    pub nodes: Vec<NodeProto>,
    /// The smallest default-domain opset the nodes need.
    pub opset: i64,
    /// What the graph computes for the tensor.
    pub values: Vec<f32>,
}

/// A storage node. Unnamed (names are optional in ONNX; errors name a node
/// by its output, which is the tensor's name): in an int8 MobileNetV2 the
/// names of its 159 storage nodes would be 4 KB, 0.2 % of the file.
fn node(op: &str, inputs: Vec<String>, output: &str, attribute: Vec<super::pb::AttributeProto>) -> NodeProto {
    NodeProto { op_type: op.into(), input: inputs, output: vec![output.into()], attribute, ..Default::default() }
}

fn cast_to_float(from: &str, to: &str) -> NodeProto {
    node("Cast", vec![from.into()], to, vec![attr_int("to", DataType::Float as i64)])
}

fn f16_bytes(values: impl Iterator<Item = f16>) -> Vec<u8> {
    values.flat_map(|v| v.to_le_bytes()).collect()
}

/// Stores tensor `name` (shape `dims`) as `storage` says.
pub fn store(name: &str, dims: &[usize], data: &[f32], storage: Storage) -> Stored {
    match storage {
        Storage::Fp32 => Stored {
            initializers: vec![super::builder::f32_tensor(name, dims, data)],
            nodes: vec![],
            opset: 1,
            values: data.to_vec(),
        },
        Storage::Fp16 => {
            let halves: Vec<f16> = data.iter().map(|&v| f16::from_f32(v)).collect();
            let stored = format!("{name}.fp16");
            Stored {
                initializers: vec![raw_tensor(&stored, DataType::Float16, dims, f16_bytes(halves.iter().copied()))],
                nodes: vec![cast_to_float(&stored, name)],
                opset: 1,
                values: halves.iter().map(|h| h.to_f32()).collect(),
            }
        }
        Storage::Int { scheme, axes } => {
            let quantized = quantize(data, dims, axes, scheme);
            let (elem, suffix, raw) = if scheme.bits == 4 {
                (DataType::Int4, "int4", super::tensor_data::pack_4bit(&quantized.q))
            } else {
                (DataType::Int8, "int8", quantized.q.iter().map(|&v| v as u8).collect())
            };
            let (stored, scale, dq) = (format!("{name}.{suffix}"), format!("{name}.scale"), format!("{name}.dq"));
            let mut attrs = Vec::new();
            match quantized.grouping {
                Grouping::PerChannel { axis } => attrs.push(attr_int("axis", axis as i64)),
                Grouping::Blocked { axis, block } => {
                    attrs.push(attr_int("axis", axis as i64));
                    attrs.push(attr_int("block_size", block as i64));
                }
            }
            // Float16 scales need DequantizeLinear-19; int4 and blocks need 21.
            let opset = if scheme.bits == 4 || matches!(quantized.grouping, Grouping::Blocked { .. }) { 21 } else { 19 };
            Stored {
                initializers: vec![
                    raw_tensor(&stored, elem, dims, raw),
                    raw_tensor(&scale, DataType::Float16, &quantized.grouping.scale_dims(dims), f16_bytes(quantized.scales.iter().copied())),
                ],
                nodes: vec![node("DequantizeLinear", vec![stored, scale], &dq, attrs), cast_to_float(&dq, name)],
                opset,
                values: quantized.dequantized(),
            }
        }
    }
}

/// A bias (or any other float tensor) of a model stored in `precision`:
/// float32 in an fp32 model, float16 + `Cast` otherwise.
pub fn store_bias(name: &str, dims: &[usize], data: &[f32], precision: super::Precision) -> Stored {
    store(name, dims, data, if precision == super::Precision::Fp32 { Storage::Fp32 } else { Storage::Fp16 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_follow_the_input_axis_and_fall_back_per_channel() {
        // Conv [4, 40, 3, 3] in blocks of 32: 2 blocks (32 + 8) per output channel and tap.
        let g = grouping(&[4, 40, 3, 3], Axes::OUT_FIRST, Scheme::int4(32));
        assert_eq!(g, Grouping::Blocked { axis: 1, block: 32 });
        assert_eq!(g.scale_dims(&[4, 40, 3, 3]), vec![4, 2, 3, 3]);
        let idx = g.scale_index(&[4, 40, 3, 3]);
        // Element [1, 33, 2, 0] → scale [1, 1, 2, 0].
        let flat = ((33 + 40) * 3 + 2) * 3;
        assert_eq!(idx[flat], ((2 + 1) * 3 + 2) * 3);
        // Depthwise [8, 1, 3, 3]: one input channel, so per output channel.
        assert_eq!(grouping(&[8, 1, 3, 3], Axes::OUT_FIRST, Scheme::int4(32)), Grouping::PerChannel { axis: 0 });
        // MatMul [K, N]: blocks run along K (axis 0).
        assert_eq!(grouping(&[64, 10], Axes::IN_FIRST, Scheme::int4(32)), Grouping::Blocked { axis: 0, block: 32 });
        assert_eq!(grouping(&[64, 10], Axes::IN_FIRST, Scheme::int8()), Grouping::PerChannel { axis: 1 });
    }

    #[test]
    fn round_trip_is_within_half_a_step() {
        let data: Vec<f32> = (0..2 * 64).map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0 * if i < 64 { 1.0 } else { 0.01 }).collect();
        for scheme in [Scheme::int8(), Scheme::int4(32)] {
            let q = quantize(&data, &[2, 64], Axes::OUT_FIRST, scheme);
            let back = q.dequantized();
            let index = q.grouping.scale_index(&[2, 64]);
            for ((&v, &b), &g) in data.iter().zip(&back).zip(&index) {
                let s = q.scales[g as usize].to_f32();
                let clip = s * scheme.qmax();
                // Inside the clipping range the error is half a step (plus float16 rounding of the product).
                let bound = if v.abs() <= clip { 0.5 * s + clip * 1e-3 } else { v.abs() - clip + 0.5 * s + clip * 1e-3 };
                assert!((v - b).abs() <= bound, "{scheme:?}: {v} → {b} (scale {s})");
            }
            assert!(q.q.iter().all(|&x| f32::from(x).abs() <= scheme.qmax()));
        }
    }

    #[test]
    fn clipping_search_beats_min_max_on_an_outlier() {
        // Many small weights and one outlier: min–max wastes the int4 range on the outlier.
        let mut data: Vec<f32> = (0..64).map(|i| ((i % 13) as f32 - 6.0) / 60.0).collect();
        data[5] = 1.0;
        let q = quantize(&data, &[1, 64], Axes::OUT_FIRST, Scheme::int4(0));
        let minmax: Vec<f32> = {
            let s = f16::from_f32(1.0 / 7.0).to_f32();
            data.iter().map(|&v| dequantize_one(quantize_one(v, 1.0 / s, 7.0), s)).collect()
        };
        let err = |w: &[f32]| data.iter().zip(w).map(|(a, b)| (a - b).powi(2)).sum::<f32>();
        assert!(err(&q.dequantized()) < err(&minmax), "{} vs min-max {}", err(&q.dequantized()), err(&minmax));
        assert!(sqnr_db(&data, &q.dequantized()) > sqnr_db(&data, &minmax));
        // Asked for, min–max is exactly that.
        let mm = quantize(&data, &[1, 64], Axes::OUT_FIRST, Scheme::int4(0).with_range(Range::MinMax));
        assert_eq!(mm.dequantized(), minmax);
    }

    #[test]
    fn zero_and_tiny_groups_do_not_break() {
        let q = quantize(&[0.0; 8], &[2, 4], Axes::OUT_FIRST, Scheme::int8());
        assert_eq!(q.dequantized(), vec![0.0; 8]);
        let tiny = [1e-12f32, -1e-12, 0.0, 0.0];
        let q = quantize(&tiny, &[1, 4], Axes::OUT_FIRST, Scheme::int8());
        assert!(q.scales[0].to_f32() > 0.0 && q.dequantized().iter().all(|v| v.is_finite()));
        assert_eq!(sqnr_db(&[1.0, 2.0], &[1.0, 2.0]), f64::INFINITY);
    }

    #[test]
    fn stored_values_are_what_the_loader_computes() {
        use crate::model::pb::{GraphProto, ModelProto};
        let data: Vec<f32> = (0..4 * 64 * 9).map(|i| ((i * 7919 % 1000) as f32 / 1000.0 - 0.5) * (1.0 + (i / 576) as f32)).collect();
        for storage in [
            Storage::Fp16,
            Storage::Int { scheme: Scheme::int8(), axes: Axes::OUT_FIRST },
            Storage::Int { scheme: Scheme::int4(32), axes: Axes::OUT_FIRST },
        ] {
            let s = store("w", &[4, 64, 3, 3], &data, storage);
            let mut model = ModelProto {
                graph: Some(GraphProto { initializer: s.initializers.clone(), node: s.nodes.clone(), ..Default::default() }),
                ..Default::default()
            };
            // Keep the value alive as a graph output so the expansion keeps it.
            model.graph.as_mut().unwrap().output.push(super::super::builder::value_info("w", DataType::Float, &[]));
            crate::model::expand::expand_weights(&mut model).unwrap();
            let g = model.graph.unwrap();
            let t = g.initializer.iter().find(|t| t.name == "w").expect("expanded to `w`");
            assert_eq!(crate::model::tensor_data::values_f32(t).unwrap(), s.values, "{storage:?}");
            assert!(g.node.is_empty(), "{storage:?}: every storage node folds");
        }
    }

    #[test]
    fn schemes_are_validated() {
        assert!(Scheme::int4(32).validate().is_ok());
        assert!(Scheme::int4(0).validate().is_ok());
        assert!(Scheme::int4(3).validate().is_err());
        assert!(Scheme { bits: 2, ..Scheme::int8() }.validate().is_err());
    }
}
