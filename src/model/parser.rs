//! tract's ONNX parser as both backends use it: with tract's whole operator
//! registry (feature `all-operators`, in every build but the page's CPU-only
//! engine) or with the core set alone ([`super::core_ops`]); either way with
//! the operators whose tract implementation panics on a malformed attribute
//! replaced by ones that return an error. A panic in the browser traps the worker, so no
//! file may reach one (fuzzing found these; fuzz/regressions/normaliser/).
//!
//! - `Flatten` with an `axis` outside the input's rank `-r..=r`: tract
//!   slices the shape at `axis` and panics. The rank is known only during
//!   type inference, so the check is an inference rule.

use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;
use tract_onnx::tract_hir::ops::array::Flatten;

/// The ONNX parser for every model this build loads.
pub fn onnx() -> tract_onnx::Onnx {
    if cfg!(feature = "all-operators") {
        let mut onnx = tract_onnx::onnx();
        onnx.op_register.insert("Flatten", flatten);
        onnx
    } else {
        core_onnx()
    }
}

/// The parser with the core operator set alone (what the page's CPU-only engine has).
pub fn core_onnx() -> tract_onnx::Onnx {
    let mut ops = tract_onnx::model::OnnxOpRegister::default();
    super::core_ops::register(&mut ops);
    ops.insert("Flatten", flatten);
    tract_onnx::Onnx { op_register: ops, ..Default::default() }
}

/// The operator types of `graph` outside the core set, sorted, each once:
/// what the page's CPU-only engine cannot parse.
pub fn outside_core(graph: &tract_onnx::pb::GraphProto) -> Vec<String> {
    let core = core_onnx().op_register.0;
    let mut outside: Vec<String> = graph
        .node
        .iter()
        .filter(|n| {
            let default_domain = n.domain.is_empty() || n.domain == "ai.onnx";
            !default_domain || !core.contains_key(&n.op_type)
        })
        .map(|n| n.op_type.clone())
        .collect();
    outside.sort();
    outside.dedup();
    outside
}

/// The operator types of `graph` this build's parser lacks (none with `all-operators`).
pub fn missing_operators(graph: &tract_onnx::pb::GraphProto) -> Vec<String> {
    if cfg!(feature = "all-operators") {
        Vec::new()
    } else {
        outside_core(graph)
    }
}

fn flatten(_: &tract_onnx::model::ParsingContext, node: &NodeProto) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let axis = node.get_attr_opt("axis")?.unwrap_or(1);
    Ok((expand(CheckedFlatten(Flatten::new(axis))), vec![]))
}

/// tract's Flatten, after checking its axis against the input's rank.
#[derive(Debug, Clone)]
struct CheckedFlatten(Flatten);

impl CheckedFlatten {
    fn check(&self, rank: usize) -> TractResult<()> {
        let axis = self.0.axis;
        if axis < -(rank as i64) || axis > rank as i64 {
            bail!("Flatten's axis is {axis}, outside -{rank}..={rank} for its input of rank {rank}");
        }
        Ok(())
    }
}

impl Expansion for CheckedFlatten {
    fn name(&self) -> StaticName {
        "Flatten".into()
    }

    fn rules<'r, 'p: 'r, 's: 'r>(&'s self, s: &mut Solver<'r>, inputs: &'p [TensorProxy], outputs: &'p [TensorProxy]) -> InferenceResult {
        // Registered first, so it runs before Flatten's own rule slices the shape.
        s.given(&inputs[0].shape, move |_, shape| self.check(shape.len()))?;
        self.0.rules(s, inputs, outputs)
    }

    fn wire(&self, prefix: &str, model: &mut TypedModel, inputs: &[OutletId]) -> TractResult<TVec<OutletId>> {
        // Also here: when inference never learnt the input's shape, the rule above never ran.
        self.check(model.outlet_fact(inputs[0])?.rank())?;
        self.0.wire(prefix, model, inputs)
    }
}
