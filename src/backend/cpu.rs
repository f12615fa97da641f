//! CPU inference with tract-onnx: parse once, pin the input to batch 1,
//! optimise once, then run many times. The native reference backend, and the
//! browser's fallback when WebGPU is missing or wrong.

use super::timing::{Phase, Profile, Stopwatch};
use super::{BackendKind, FeatureMap, InferenceError, Outputs};
use crate::model::ModelPackage;
use std::sync::Arc;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::DimLike;

pub struct CpuBackend {
    plan: Arc<TypedRunnableModel>,
    shape: [usize; 4],
    has_features: bool,
    load_phases: Vec<Phase>,
}

fn load_error(e: impl std::fmt::Display) -> InferenceError {
    InferenceError::Load(e.to_string())
}

/// tract's own optimisation (`into_optimized`: its declutter passes to a
/// fixed point, then its code generation), reached faster: the declutter runs
/// first without its `ChangeAxes` pass, which moves axis operations through
/// the graph and costs most when the graph is still large, then whole. The
/// planned graph is the same as `into_optimized`'s (a test compares them);
/// skipping `ChangeAxes` altogether was tried and is not the same: the wasm
/// depthwise convolutions then ran 3× slower (8.75 against 2.79 ms per
/// inference). Measured natively 2026-12-05: MobileNetV2 int4 56–67 → 39 ms,
/// EfficientNet-Lite0 64–69 → 43 ms, DenseNet-32 26–27 → 21 ms.
fn optimise(mut model: TypedModel) -> TractResult<TypedModel> {
    declutter_without_change_axes().session().optimize(&mut model)?;
    model.declutter()?;
    model.optimize()?;
    Ok(model)
}

/// tract's declutter passes less `ChangeAxes` (by its debug name: should a
/// tract release rename it, all passes stay and only the load is slower;
/// a test notices).
fn declutter_without_change_axes() -> tract_onnx::tract_core::optim::Optimizer {
    let mut declutter = tract_onnx::tract_core::optim::Optimizer::declutter();
    declutter.passes.retain(|p| !format!("{p:?}").starts_with("ChangeAxes"));
    declutter
}

impl CpuBackend {
    pub fn load(package: &ModelPackage) -> Result<Self, InferenceError> {
        let info = &package.info;
        let shape = info.input.shape();
        let mut outputs = vec![info.logits_name.as_str()];
        outputs.extend(info.features_name.as_deref());
        let missing = crate::model::parser::missing_operators(package.proto.graph.as_ref().unwrap_or(&Default::default()));
        if !missing.is_empty() {
            return Err(InferenceError::OutsideCore(missing));
        }
        let mut watch = Stopwatch::start();
        // A graph with Conv → BatchNormalization pairs runs folded (fewer passes over the activations).
        let folded = crate::model::fold_bn::has_conv_batch_norm(&package.proto).then(|| {
            let mut proto = package.proto.clone();
            crate::model::fold_bn::fold_batch_norms(&mut proto);
            proto
        });
        let proto = folded.as_ref().unwrap_or(&package.proto);
        if folded.is_some() {
            watch.lap("BatchNorm folded into convolutions");
        }
        let model = crate::model::parser::onnx()
            .model_for_proto_model(proto)
            .map_err(|e| load_error(format!("{e:#}")))?
            .with_input_fact(0, f32::fact(shape).into())
            .and_then(|m| m.with_outputs_by_name(&outputs))
            .and_then(|m| m.into_typed())
            .map_err(|e| load_error(format!("{e:#}")))?;
        // The logits width is known only after type inference for files that
        // do not declare their output shapes.
        let logits = model.output_fact(0).map_err(load_error)?;
        let dims: Vec<Option<usize>> = logits.shape.iter().map(|d| d.to_usize().ok()).collect();
        match dims.as_slice() {
            [Some(1), Some(width)] => info.check_output_width(&info.logits_name, *width)?,
            _ => {
                return Err(crate::model::ModelError::OutputShape {
                    name: info.logits_name.clone(),
                    shape: format!("{:?}", logits.shape),
                }
                .into())
            }
        }
        watch.lap("tract: import and type the graph");
        let model = optimise(model).map_err(|e| load_error(format!("{e:#}")))?;
        watch.lap("tract: optimise");
        let plan = model.into_runnable().map_err(|e| load_error(format!("{e:#}")))?;
        watch.lap("tract: plan");
        Ok(CpuBackend { plan, shape, has_features: info.features_name.is_some(), load_phases: watch.phases() })
    }

    /// How long each part of [`load`](Self::load) took.
    pub fn load_phases(&self) -> &[Phase] {
        &self.load_phases
    }

    /// Runs `input` `runs` times, timing every node of the optimised graph.
    pub fn profile(&self, input: &[f32], runs: usize) -> Result<Profile, InferenceError> {
        let fail = |e: TractError| InferenceError::Run { backend: BackendKind::Cpu, message: format!("{e:#}") };
        let runs = runs.max(1);
        let mut ms = vec![0.0f64; self.plan.model().nodes().len()];
        let mut state = self.plan.spawn().map_err(fail)?;
        let t0 = web_time::Instant::now();
        for _ in 0..runs {
            let tensor = Tensor::from_shape(&self.shape, input).map_err(fail)?;
            state
                .run_plan_with_eval(tvec!(tensor.into_tvalue()), |ctx, op_state, node, inputs| {
                    let t = web_time::Instant::now();
                    let out = tract_onnx::tract_core::plan::eval(ctx, op_state, node, inputs);
                    ms[node.id] += t.elapsed().as_secs_f64() * 1e3;
                    out
                })
                .map_err(fail)?;
        }
        let total_ms = t0.elapsed().as_secs_f64() * 1e3 / runs as f64;
        let model = self.plan.model();
        let nodes = model
            .nodes()
            .iter()
            .filter(|n| ms[n.id] > 0.0)
            .map(|n| {
                let output = n.outputs.first().map(|o| format!("{:?}", o.fact.shape)).unwrap_or_default();
                (n.name.clone(), n.op().name().to_string(), output, ms[n.id])
            })
            .collect();
        Ok(Profile::from_nodes(nodes, runs, total_ms))
    }

    pub fn run(&self, input: &[f32]) -> Result<Outputs, InferenceError> {
        let fail = |e: TractError| InferenceError::Run { backend: BackendKind::Cpu, message: format!("{e:#}") };
        let tensor = Tensor::from_shape(&self.shape, input).map_err(fail)?;
        let out = self.plan.run(tvec!(tensor.into_tvalue())).map_err(fail)?;
        let logits = out[0].to_plain_array_view::<f32>().map_err(fail)?.iter().copied().collect();
        let features = match (self.has_features, out.get(1)) {
            (true, Some(f)) => {
                let view = f.to_plain_array_view::<f32>().map_err(fail)?;
                let s = view.shape();
                if s.len() != 4 || s[0] != 1 {
                    return Err(InferenceError::Run {
                        backend: BackendKind::Cpu,
                        message: format!("output `features` has shape {s:?}; expected [1,K,h,w]"),
                    });
                }
                Some(FeatureMap { channels: s[1], height: s[2], width: s[3], data: view.iter().copied().collect() })
            }
            _ => None,
        };
        Ok(Outputs { logits, features })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::random::{self, RandomNet};
    use crate::model::{LoadOptions, ModelPackage};

    #[test]
    fn the_light_declutter_drops_exactly_change_axes() {
        let all = tract_onnx::tract_core::optim::Optimizer::declutter().passes.len();
        let light = declutter_without_change_axes();
        assert_eq!(light.passes.len(), all - 1, "tract's declutter has no pass named ChangeAxes any more");
        assert!(light.passes.iter().all(|p| !format!("{p:?}").contains("ChangeAxes")));
    }

    /// Every node's operation and output shapes, sorted.
    fn plan_of(m: &TypedModel) -> Vec<String> {
        let mut v: Vec<String> = m.nodes().iter().map(|n| format!("{} {:?}", n.op().name(), n.outputs.iter().map(|o| &o.fact.shape).collect::<Vec<_>>())).collect();
        v.sort();
        v
    }

    #[test]
    fn optimise_plans_what_tracts_into_optimized_plans() {
        let opts = RandomNet::new(&crate::CLASSES, 64, 2);
        for (arch, bytes) in [
            ("MobileNetV2", random::mobilenet_v2(0.35, &opts)),
            ("EfficientNet-Lite0", random::efficientnet_lite0(&opts)),
            ("DenseNet", random::densenet(&crate::arch::densenet::Config::custom(&[2, 2], 8), &opts)),
        ] {
            let p = ModelPackage::read(&bytes, &LoadOptions::default()).unwrap();
            let typed = crate::model::parser::onnx()
                .model_for_proto_model(&p.proto)
                .and_then(|m| m.with_input_fact(0, f32::fact(p.info.input.shape()).into()))
                .and_then(|m| m.into_typed())
                .unwrap();
            let ours = optimise(typed.clone()).unwrap();
            let tracts = typed.into_optimized().unwrap();
            assert_eq!(plan_of(&ours), plan_of(&tracts), "{arch}");
        }
    }
}
