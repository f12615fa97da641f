//! BatchNormalization folded into the convolution before it, so that the
//! weights quantized are the ones the graph multiplies by (Krishnamoorthi
//! 2018, §2.2: quantizing unfolded weights and folding afterwards would
//! spread each kernel's range by γ/σ). For `Conv(x, W, B) → BN(γ, β, μ, σ², ε)`:
//! W' = W · s and B' = (B − μ) · s + β per output channel, s = γ / √(σ² + ε).
//! Folded only where that is exact: constant float weights and statistics, an
//! inference-mode BN with one output, and a conv output that nothing else reads.
//! The trainer's own exports arrive folded already. Used by `quantize`
//! (trainer) and by both backends, which run a folded copy of a graph that
//! has such pairs: tract fuses a BatchNorm after a depthwise convolution into
//! an element-wise chain of its own, and wonnx runs each BatchNorm as a
//! compute pass of its own: a pass over the activation per layer.

use crate::model::builder::f32_tensor;
use crate::model::pb::{ModelProto, NodeProto, TensorProto};
use crate::model::tensor_data::values_f32;
use std::collections::HashMap;

/// The float values of initializer `name`, if it is one and is float.
fn float(t: Option<&TensorProto>) -> Option<Vec<f32>> {
    t.filter(|t| t.data_type == crate::model::pb::tensor_proto::DataType::Float as i32).and_then(values_f32)
}

/// Whether any BatchNormalization reads a Conv's output (a pair [`fold_batch_norms`] may fold).
pub fn has_conv_batch_norm(model: &ModelProto) -> bool {
    let Some(graph) = model.graph.as_ref() else { return false };
    let convs: std::collections::HashSet<&str> =
        graph.node.iter().filter(|n| n.op_type == "Conv").flat_map(|n| n.output.iter().map(String::as_str)).collect();
    graph.node.iter().any(|n| n.op_type == "BatchNormalization" && n.input.first().is_some_and(|x| convs.contains(x.as_str())))
}

/// Folds every foldable Conv → BatchNormalization pair; returns how many.
pub fn fold_batch_norms(model: &mut ModelProto) -> usize {
    let Some(graph) = model.graph.as_mut() else { return 0 };
    let mut readers: HashMap<String, usize> = HashMap::new();
    for n in &graph.node {
        for i in &n.input {
            *readers.entry(i.clone()).or_default() += 1;
        }
    }
    for o in &graph.output {
        *readers.entry(o.name.clone()).or_default() += 1;
    }
    // Looked up in place (this runs at every load of such a graph on the CPU backend, so nothing is copied).
    let index: HashMap<&str, usize> = graph.initializer.iter().enumerate().map(|(i, t)| (t.name.as_str(), i)).collect();
    let init = |name: Option<&String>| name.and_then(|n| index.get(n.as_str())).map(|&i| &graph.initializer[i]);
    let producer: HashMap<String, usize> =
        graph.node.iter().enumerate().flat_map(|(k, n)| n.output.iter().map(move |o| (o.clone(), k))).collect();
    let mut removed = vec![false; graph.node.len()];
    let mut added: Vec<TensorProto> = Vec::new();
    let mut folded = 0;
    for k in 0..graph.node.len() {
        let bn = &graph.node[k];
        if bn.op_type != "BatchNormalization" || bn.output.len() != 1 || bn.input.len() != 5 {
            continue;
        }
        if bn.attribute.iter().any(|a| a.name == "training_mode" && a.i != 0) {
            continue;
        }
        let Some(&c) = bn.input.first().and_then(|x| producer.get(x)) else { continue };
        let conv = &graph.node[c];
        if conv.op_type != "Conv" || removed[c] || readers.get(&conv.output[0]).copied() != Some(1) {
            continue;
        }
        let eps = bn.attribute.iter().find(|a| a.name == "epsilon").map_or(1e-5, |a| a.f);
        let (Some(gamma), Some(beta), Some(mean), Some(var)) =
            (float(init(bn.input.get(1))), float(init(bn.input.get(2))), float(init(bn.input.get(3))), float(init(bn.input.get(4))))
        else {
            continue;
        };
        let Some(w_t) = init(conv.input.get(1)) else { continue };
        let Some(mut w) = float(Some(w_t)) else { continue };
        let out = w_t.dims.first().copied().unwrap_or(0).max(0) as usize;
        if out == 0 || [&gamma, &beta, &mean, &var].iter().any(|v| v.len() != out) || w.len() % out != 0 {
            continue;
        }
        let bias = match conv.input.get(2).filter(|b| !b.is_empty()) {
            Some(b) => match float(init(Some(b))).filter(|v| v.len() == out) {
                Some(v) => v,
                None => continue,
            },
            None => vec![0.0; out],
        };
        let per = w.len() / out;
        let mut new_bias = vec![0f32; out];
        for o in 0..out {
            let s = gamma[o] / (var[o] + eps).sqrt();
            w[o * per..(o + 1) * per].iter_mut().for_each(|v| *v *= s);
            new_bias[o] = (bias[o] - mean[o]) * s + beta[o];
        }
        let dims: Vec<usize> = w_t.dims.iter().map(|&d| d.max(0) as usize).collect();
        // New names: the originals may be shared with other nodes.
        let (w_name, b_name) = (format!("{}.folded_weight", conv.output[0]), format!("{}.folded_bias", conv.output[0]));
        added.extend([f32_tensor(&w_name, &dims, &w), f32_tensor(&b_name, &[out], &new_bias)]);
        let bn_out = bn.output[0].clone();
        let conv: &mut NodeProto = &mut graph.node[c];
        conv.input.truncate(1);
        conv.input.push(w_name);
        conv.input.push(b_name);
        conv.output[0] = bn_out;
        removed[k] = true;
        folded += 1;
    }
    if folded == 0 {
        return 0;
    }
    let mut kept = Vec::with_capacity(graph.node.len());
    for (n, gone) in std::mem::take(&mut graph.node).into_iter().zip(removed) {
        if !gone {
            kept.push(n);
        }
    }
    graph.node = kept;
    graph.initializer.extend(added);
    let used: std::collections::HashSet<&str> = graph.node.iter().flat_map(|n| n.input.iter().map(String::as_str)).collect();
    graph.initializer.retain(|t| used.contains(t.name.as_str()));
    folded
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::builder::{ConvAttrs, GraphBuilder};
    use crate::model::{LoadOptions, ModelPackage};
    use crate::rng::Rng;
    use prost::Message;

    /// Conv (no bias) → BN → Relu → Conv (bias) → BN → GAP → Gemm.
    fn conv_bn_net() -> Vec<u8> {
        let mut rng = Rng::new(5);
        let mut b = GraphBuilder::new("conv_bn");
        let x = b.input("input", &[1.into(), 3.into(), 16.into(), 16.into()]);
        let w1 = b.constant("c1.weight", &[8, 3, 3, 3], &rng.vec(216, -0.5, 0.5));
        let y = b.conv(&x, &w1, None, 3, ConvAttrs::new(1, 1));
        let bn = |b: &mut GraphBuilder, y: &str, p: &str, rng: &mut Rng| {
            let g = b.constant(&format!("{p}.g"), &[8], &rng.vec(8, 0.5, 2.0));
            let be = b.constant(&format!("{p}.b"), &[8], &rng.vec(8, -1.0, 1.0));
            let m = b.constant(&format!("{p}.m"), &[8], &rng.vec(8, -0.5, 0.5));
            let v = b.constant(&format!("{p}.v"), &[8], &rng.vec(8, 0.2, 3.0));
            b.batch_norm(y, &g, &be, &m, &v, 1e-3)
        };
        let y = bn(&mut b, &y, "bn1", &mut rng);
        let y = b.relu(&y);
        let w2 = b.constant("c2.weight", &[8, 8, 1, 1], &rng.vec(64, -0.5, 0.5));
        let b2 = b.constant("c2.bias", &[8], &rng.vec(8, -0.5, 0.5));
        let y = b.conv(&y, &w2, Some(&b2), 1, ConvAttrs::new(1, 0));
        let y = bn(&mut b, &y, "bn2", &mut rng);
        let y = b.global_average_pool(&y);
        let y = b.flatten(&y);
        let fc = b.constant("fc.weight", &[2, 8], &rng.vec(16, -1.0, 1.0));
        let fcb = b.constant("fc.bias", &[2], &[0.0, 0.1]);
        b.gemm(&y, &fc, &fcb, true);
        b.rename_last_output("logits");
        b.output("logits", &[1.into(), 2.into()]);
        b.metadata("mriscreen.classes", r#"["a","b"]"#);
        b.to_bytes()
    }

    #[test]
    fn folded_graph_computes_the_same_logits() {
        let bytes = conv_bn_net();
        let package = ModelPackage::read(&bytes, &LoadOptions::default()).unwrap();
        let mut folded = package.proto.clone();
        assert!(has_conv_batch_norm(&folded));
        assert_eq!(fold_batch_norms(&mut folded), 2);
        assert!(!has_conv_batch_norm(&folded));
        let ops: Vec<&str> = folded.graph.as_ref().unwrap().node.iter().map(|n| n.op_type.as_str()).collect();
        assert!(!ops.contains(&"BatchNormalization"), "{ops:?}");
        let run = |bytes: &[u8]| {
            let p = ModelPackage::read(bytes, &LoadOptions::default()).unwrap();
            let cpu = crate::backend::CpuBackend::load(&p).unwrap();
            cpu.run(&Rng::new(9).vec(3 * 16 * 16, -1.0, 1.0)).unwrap().logits
        };
        let (a, b) = (run(&bytes), run(&folded.encode_to_vec()));
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() <= 1e-5 * x.abs().max(1.0), "{a:?} vs {b:?}");
        }
    }
}
