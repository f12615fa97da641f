//! Compressed weights expanded to float32 once, when a model is read, so that
//! both backends see plain float graphs: `Constant` nodes become
//! initializers, and a `Cast` to float or a `DequantizeLinear` whose inputs
//! are all constant is evaluated here (in graph order, so `DequantizeLinear →
//! Cast` chains fold too). Neither backend can be trusted with the storage
//! forms themselves (docs/architecture.md, "Facts measured about wonnx
//! 0.5.1"): wonnx has no FLOAT16, INT8 or `DequantizeLinear`, and tract (up
//! to at least 0.23.5) applies only the first scale of a per-axis
//! `DequantizeLinear`, ignores `block_size`, and has no INT4 type at all.
//!
//! `DequantizeLinear` follows the ONNX definition (opset 21): y = (x −
//! zero_point) · scale per tensor, per `axis`, or blocked along `axis` in
//! blocks of `block_size`; the result has the scale's type, so a FLOAT16
//! scale gives values rounded to float16, as a runtime computing in that
//! type would.

use super::pb::{tensor_proto::DataType, AttributeProto, ModelProto, NodeProto, TensorProto};
use super::builder::f32_tensor;
use super::tensor_data::{element_count, values_f32};
use std::collections::{HashMap, HashSet};

/// Largest total of expanded float32 weights accepted (1 GiB): a 512 MiB
/// file of packed int4 weights would need 4 GiB, more than a browser tab has.
pub const MAX_EXPANDED_BYTES: usize = 1 << 30;

/// Why compressed weights cannot be expanded.
#[derive(Debug, thiserror::Error)]
pub enum ExpandError {
    #[error("node `{node}` ({op}): {reason}; re-export the model (e.g. with `mriscreen quantize` from its fp32 original)")]
    Node { node: String, op: String, reason: String },
    #[error("the model's weights take {bytes} bytes once expanded to float32, over the {limit}-byte limit; use a smaller model")]
    TooLarge { bytes: usize, limit: usize },
}

fn refuse(node: &NodeProto, reason: impl Into<String>) -> ExpandError {
    let name = if node.name.is_empty() { node.output.first().cloned().unwrap_or_default() } else { node.name.clone() };
    ExpandError::Node { node: name, op: node.op_type.clone(), reason: reason.into() }
}

fn attr<'a>(node: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

fn dims_usize(dims: &[i64]) -> Vec<usize> {
    dims.iter().map(|&d| d.max(0) as usize).collect()
}

/// Expands `model`'s constant weights in place (see the module docs).
/// Returns how many nodes were folded.
pub fn expand_weights(model: &mut ModelProto) -> Result<usize, ExpandError> {
    let Some(graph) = model.graph.as_mut() else { return Ok(0) };
    let mut order: Vec<String> = graph.initializer.iter().map(|t| t.name.clone()).collect();
    let mut inits: HashMap<String, TensorProto> = graph.initializer.drain(..).map(|t| (t.name.clone(), t)).collect();
    let mut kept = Vec::with_capacity(graph.node.len());
    let mut folded = 0;
    let mut expanded_bytes = inits.values().filter(|t| t.data_type == DataType::Float as i32).map(|t| element_count(&t.dims) * 4).sum::<usize>();
    let nodes = std::mem::take(&mut graph.node);
    // How many nodes (and graph outputs) read each value.
    let mut readers: HashMap<&str, usize> = HashMap::new();
    for name in nodes.iter().flat_map(|n| n.input.iter()).chain(graph.output.iter().map(|o| &o.name)) {
        *readers.entry(name.as_str()).or_default() += 1;
    }
    for node in &nodes {
        // A Cast from float to float (after a DequantizeLinear with float16 scales) whose input
        // nothing else reads: the same tensor under the Cast's name, moved rather than copied.
        let float = |input: &&str| inits.get(*input).is_some_and(|t| t.data_type == DataType::Float as i32);
        if let Some(mut t) = sole_float_cast(node, &readers).filter(float).and_then(|input| inits.remove(input)) {
            t.name = node.output[0].clone();
            if !inits.contains_key(&t.name) {
                order.push(t.name.clone());
            }
            inits.insert(t.name.clone(), t);
            folded += 1;
            continue;
        }
        let Some(t) = fold(node, &inits)? else {
            kept.push(node.clone());
            continue;
        };
        if t.data_type == DataType::Float as i32 {
            expanded_bytes += element_count(&t.dims) * 4;
            if expanded_bytes > MAX_EXPANDED_BYTES {
                return Err(ExpandError::TooLarge { bytes: expanded_bytes, limit: MAX_EXPANDED_BYTES });
            }
        }
        if !inits.contains_key(&t.name) {
            order.push(t.name.clone());
        }
        inits.insert(t.name.clone(), t);
        folded += 1;
    }
    graph.node = kept;
    // Only what the remaining graph reads stays (the int8 or fp16 originals go).
    let used: HashSet<&str> =
        graph.node.iter().flat_map(|n| n.input.iter().map(String::as_str)).chain(graph.output.iter().map(|o| o.name.as_str())).collect();
    let (keep, gone): (Vec<String>, Vec<String>) = order.into_iter().partition(|n| used.contains(n.as_str()));
    graph.initializer = keep.iter().filter_map(|n| inits.remove(n)).collect();
    // A folded value is a constant now: no graph input (IR < 4 lists
    // initializers as inputs) or value_info may describe it any more.
    let constant: HashSet<&str> = gone.iter().chain(&keep).map(String::as_str).collect();
    let gone: HashSet<&str> = gone.iter().map(String::as_str).collect();
    graph.input.retain(|i| !gone.contains(i.name.as_str()));
    graph.value_info.retain(|v| !constant.contains(v.name.as_str()));
    Ok(folded)
}

/// The input of `node` if it is a Cast to float whose input only it reads.
fn sole_float_cast<'a>(node: &'a NodeProto, readers: &HashMap<&str, usize>) -> Option<&'a str> {
    let to_float = node.op_type == "Cast" && node.domain.is_empty() && attr(node, "to").is_some_and(|a| a.i == DataType::Float as i64);
    let input = node.input.first().filter(|i| !i.is_empty())?;
    (to_float && node.output.first().is_some_and(|o| !o.is_empty()) && readers.get(input.as_str()) == Some(&1)).then_some(input.as_str())
}

/// The constant `node` computes, if it is one we evaluate.
fn fold(node: &NodeProto, inits: &HashMap<String, TensorProto>) -> Result<Option<TensorProto>, ExpandError> {
    let Some(output) = node.output.first().filter(|o| !o.is_empty()) else { return Ok(None) };
    let constant_inputs = !node.input.is_empty() && node.input.iter().all(|i| i.is_empty() || inits.contains_key(i));
    Ok(match node.op_type.as_str() {
        "Constant" if node.domain.is_empty() => {
            let Some(t) = attr(node, "value").and_then(|a| a.t.clone()) else { return Ok(None) };
            Some(TensorProto { name: output.clone(), ..t })
        }
        "Cast" if constant_inputs && attr(node, "to").is_some_and(|a| a.i == DataType::Float as i64) => {
            let Some(x) = node.input.first().and_then(|i| inits.get(i)) else { return Ok(None) };
            if x.data_type == DataType::Float as i32 {
                // Float to float (the float16-rounded output of a DequantizeLinear): the same values.
                return Ok(Some(TensorProto { name: output.clone(), ..x.clone() }));
            }
            let v = values_f32(x).ok_or_else(|| refuse(node, "cannot read the constant being cast"))?;
            Some(f32_tensor(output, &dims_usize(&x.dims), &v))
        }
        "DequantizeLinear" if constant_inputs => Some(dequantize(node, inits)?),
        _ => None,
    })
}

/// `v` rounded to the nearest float16 (ties to even) and back: what
/// `half::f16::from_f32(v).to_f32()` gives, computed in place for float16's
/// normal range below 2^15 (where weights live) by rounding float32's
/// mantissa to float16's 10 bits, and for zeros; subnormals, large values,
/// infinities and NaN take `half`'s conversion.
pub fn round_to_f16(v: f32) -> f32 {
    let bits = v.to_bits();
    // Biased float32 exponents 113..=141: 2^-14 <= |v| < 2^15.
    if (113..=141).contains(&((bits >> 23) & 0xFF)) {
        f32::from_bits(bits.wrapping_add(0x0FFF + ((bits >> 13) & 1)) & !0x1FFF)
    } else if bits << 1 == 0 {
        v // ±0, common among quantized weights
    } else {
        half::f16::from_f32(v).to_f32()
    }
}

/// y = (x − zero_point) · scale, per tensor, per axis, or blocked along the
/// axis (opset 21); a FLOAT16 scale rounds the result to float16.
pub fn dequantize(node: &NodeProto, inits: &HashMap<String, TensorProto>) -> Result<TensorProto, ExpandError> {
    let input = |i: usize, what: &str| {
        node.input.get(i).filter(|s| !s.is_empty()).and_then(|n| inits.get(n)).ok_or_else(|| refuse(node, format!("the {what} is not a constant")))
    };
    let output = node.output.first().ok_or_else(|| refuse(node, "it has no output"))?;
    let x_t = input(0, "quantized tensor")?;
    let x = values_f32(x_t).ok_or_else(|| refuse(node, "cannot read the quantized weights"))?;
    let scale_t = input(1, "scale")?;
    let scale = values_f32(scale_t).ok_or_else(|| refuse(node, "cannot read the scale"))?;
    let zero = match node.input.get(2).filter(|s| !s.is_empty()) {
        Some(_) => values_f32(input(2, "zero point")?).ok_or_else(|| refuse(node, "cannot read the zero point"))?,
        None => vec![0.0; scale.len()],
    };
    if zero.len() != scale.len() || scale.is_empty() {
        return Err(refuse(node, format!("{} scales but {} zero points", scale.len(), zero.len())));
    }
    let dims = dims_usize(&x_t.dims);
    let rank = dims.len() as i64;
    let axis = attr(node, "axis").map_or(1, |a| a.i);
    let block = attr(node, "block_size").map_or(0, |a| a.i);
    if block < 0 {
        return Err(refuse(node, format!("block_size {block} is negative")));
    }
    let block = block as usize;
    let f16 = scale_t.data_type == DataType::Float16 as i32;
    let mut y = Vec::with_capacity(x.len());
    let mut put = |v: f32| y.push(if f16 { round_to_f16(v) } else { v });
    if scale.len() == 1 && block == 0 {
        x.iter().for_each(|&q| put((q - zero[0]) * scale[0]));
    } else {
        let axis = if axis < 0 { axis + rank } else { axis };
        if !(0..rank).contains(&axis) {
            return Err(refuse(node, format!("axis {axis} is out of range for rank {rank}")));
        }
        let axis = axis as usize;
        let inner: usize = dims[axis + 1..].iter().product();
        let len = dims[axis];
        if inner == 0 || len == 0 {
            return Err(refuse(node, "the quantized tensor is empty"));
        }
        let outers = x.len() / (inner * len);
        if block == 0 {
            // x in rows of `inner` elements: for each outer index, `len` rows, one per index along the axis.
            let mut rows = x.chunks_exact(inner);
            if scale.len() != len {
                return Err(refuse(node, format!("{} scales for an axis of length {len}", scale.len())));
            }
            for _ in 0..outers {
                for (&z, &s) in zero.iter().zip(&scale) {
                    rows.next().into_iter().flatten().for_each(|&q| put((q - z) * s));
                }
            }
        } else {
            // Blocked: the scale has x's shape with the axis divided into blocks.
            let blocks = len.div_ceil(block);
            let want: Vec<usize> = dims.iter().enumerate().map(|(d, &n)| if d == axis { blocks } else { n }).collect();
            if dims_usize(&scale_t.dims) != want {
                return Err(refuse(node, format!("blocked scale has shape {:?}; {want:?} expected for blocks of {block}", scale_t.dims)));
            }
            // For each outer index: `blocks` runs of `block` rows (the last may be shorter), each run
            // with one row of `inner` scales and zero points.
            let params = scale.chunks_exact(blocks * inner).zip(zero.chunks_exact(blocks * inner));
            for (x, (scale, zero)) in x.chunks_exact(len * inner).zip(params) {
                let params = scale.chunks_exact(inner).zip(zero.chunks_exact(inner));
                for (run, (s, z)) in x.chunks(block * inner).zip(params) {
                    if inner == 1 {
                        let (s, z) = (s[0], z[0]);
                        run.iter().for_each(|&q| put((q - z) * s));
                    } else {
                        for row in run.chunks_exact(inner) {
                            row.iter().zip(s).zip(z).for_each(|((&q, &s), &z)| put((q - z) * s));
                        }
                    }
                }
            }
        }
    }
    Ok(f32_tensor(output, &dims, &y))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::builder::{attr_int, raw_tensor};
    use crate::model::tensor_data::pack_4bit;

    /// y[i] = (x[i] − zero[s]) · scale[s], with s found from i's own
    /// coordinates: the definition, one element at a time.
    fn by_definition(x: &[f32], dims: &[usize], axis: usize, block: usize, scale: &[f32], zero: &[f32]) -> Vec<f32> {
        let inner: usize = dims[axis + 1..].iter().product();
        let len = dims[axis];
        let blocks = if block == 0 { len } else { len.div_ceil(block) };
        (0..x.len())
            .map(|i| {
                let (outer, c, rest) = (i / (inner * len), (i / inner) % len, i % inner);
                let s = if block == 0 { c } else { (outer * blocks + c / block) * inner + rest };
                (x[i] - zero[s]) * scale[s]
            })
            .collect()
    }

    #[test]
    fn float16_rounding_is_halfs() {
        let mut values: Vec<f32> = (0..=u32::MAX / 7919).map(|i| f32::from_bits(i * 7919)).collect();
        for e in [-25i32, -24, -15, -14, -13, 14, 15, 16] {
            let p = 2f32.powi(e);
            values.extend([p, -p, p * (1.0 + 1.0 / 2048.0), p * (1.0 - 1.0 / 4096.0), p * (1.0 + 3.0 / 2048.0)]);
        }
        values.extend([0.0, -0.0, 65504.0, 65519.0, 65520.0, f32::INFINITY, f32::NEG_INFINITY, f32::MIN_POSITIVE]);
        for v in values {
            let (ours, half) = (round_to_f16(v), half::f16::from_f32(v).to_f32());
            assert!(ours.to_bits() == half.to_bits() || (ours.is_nan() && half.is_nan()), "{v:e} ({:#x}): {ours:e} vs {half:e}", v.to_bits());
        }
    }

    #[test]
    fn per_axis_and_blocked_dequantization_follow_the_definition() {
        // int4 [3, 5, 2]: quantized along axis 1 (an outer and an inner dimension both > 1).
        let dims = [3usize, 5, 2];
        let q: Vec<i8> = (0..30).map(|i| ((i * 7) % 16 - 8) as i8).collect();
        let x: Vec<f32> = q.iter().map(|&v| f32::from(v)).collect();
        let mut inits = HashMap::new();
        inits.insert("q".to_string(), raw_tensor("q", DataType::Int4, &dims, pack_4bit(&q)));
        for (block, scale_dims) in [(0usize, vec![5usize]), (2, vec![3, 3, 2])] {
            let n: usize = scale_dims.iter().product();
            let scale: Vec<f32> = (0..n).map(|i| 0.25 + i as f32 * 0.5).collect();
            let zero: Vec<f32> = (0..n).map(|i| (i % 3) as f32 - 1.0).collect();
            let zero_t = raw_tensor("z", DataType::Int4, &scale_dims, pack_4bit(&zero.iter().map(|&v| v as i8).collect::<Vec<_>>()));
            inits.insert("s".to_string(), f32_tensor("s", &scale_dims, &scale));
            inits.insert("z".to_string(), zero_t);
            let mut attribute = vec![attr_int("axis", 1)];
            if block > 0 {
                attribute.push(attr_int("block_size", block as i64));
            }
            let node = NodeProto { op_type: "DequantizeLinear".into(), input: vec!["q".into(), "s".into(), "z".into()], output: vec!["y".into()], attribute, ..Default::default() };
            let y = values_f32(&dequantize(&node, &inits).unwrap()).unwrap();
            assert_eq!(y, by_definition(&x, &dims, 1, block, &scale, &zero), "block {block}");
        }
    }
}
