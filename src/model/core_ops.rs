//! The core operator set: the ONNX operators of the convolutional
//! classifiers we train and ship (MobileNetV2, EfficientNet-Lite, DenseNet),
//! and of most image classifiers exported from PyTorch or Keras, built as
//! tract inference ops.
//!
//! The page's CPU-only engine (the wasm every first visit downloads) parses
//! with this set alone, so the linker drops the hundreds of operators tract's
//! full registry would bring (docs/architecture.md, "The wasm modules"). A
//! model with any other operator is refused by that engine with
//! [`InferenceError::OutsideCore`](crate::backend::InferenceError::OutsideCore),
//! and the worker loads it with the full engine instead.
//!
//! The builders read ONNX attributes as the operator specification defines
//! them (opset 7 onwards); tests/core_ops.rs checks each against tract's own
//! registry on the same files.

use tract_onnx::model::{optional_inputs, OnnxOpRegister, ParsingContext};
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;
use tract_onnx::tract_hir::ops::{self, cnn, nn};

type Built = TractResult<(Box<dyn InferenceOp>, Vec<String>)>;

/// The core set's builders, keyed by ONNX operator type.
pub fn register(reg: &mut OnnxOpRegister) {
    reg.insert("Add", |_, _| Ok((ops::math::Add.into_hir(), vec![])));
    reg.insert("Sub", |_, _| Ok((ops::math::Sub.into_hir(), vec![])));
    reg.insert("Mul", |_, _| Ok((ops::math::Mul.into_hir(), vec![])));
    reg.insert("Div", |_, _| Ok((ops::math::Div.into_hir(), vec![])));
    reg.insert("Relu", |_, _| Ok((expand(ops::activations::Clip::new(Some(0.0), None)), vec![])));
    reg.insert("Sigmoid", |_, _| Ok((nn::sigmoid().into_hir(), vec![])));
    reg.insert("Identity", |_, _| Ok((Box::<ops::identity::Identity>::default(), vec![])));
    reg.insert("GlobalAveragePool", |_, _| Ok((expand(nn::GlobalAvgPool), vec![])));
    reg.insert("MatMul", |_, _| Ok((expand(ops::matmul::MatMulInference::default()), vec![])));
    reg.insert("Reshape", |_, node| {
        let allow_zero = node.get_attr_opt::<i64>("allowzero")?.unwrap_or(0) != 0;
        Ok((expand(ops::array::Reshape::new(allow_zero)), vec![]))
    });
    reg.insert("Concat", |_, node| Ok((expand(ops::array::Concat::new(node.get_attr("axis")?)), vec![])));
    reg.insert("Conv", conv);
    reg.insert("MaxPool", max_pool);
    reg.insert("AveragePool", average_pool);
    reg.insert("BatchNormalization", batch_normalization);
    reg.insert("Clip", clip);
    reg.insert("Gemm", gemm);
    // Flatten: the parser adds its checked one (parser.rs, `core_onnx`).
}

/// Padding from `pads` or `auto_pad`; pools round their output size up when `ceil_mode` is 1.
fn padding(node: &NodeProto, pool: bool) -> TractResult<cnn::PaddingSpec> {
    let ceil_mode = node.get_attr_opt::<i64>("ceil_mode")?.unwrap_or(0) == 1;
    let explicit = |before: TVec<usize>, after: TVec<usize>| {
        if pool {
            cnn::PaddingSpec::ExplicitOnnxPool(before, after, ceil_mode)
        } else {
            cnn::PaddingSpec::Explicit(before, after)
        }
    };
    if let Some(pads) = node.get_attr_opt_tvec::<usize>("pads")? {
        if pads.len() % 2 != 0 {
            bail!("`pads` has {} values; ONNX wants a begin and an end for each spatial axis", pads.len());
        }
        let (before, after) = pads.split_at(pads.len() / 2);
        return Ok(explicit(before.into(), after.into()));
    }
    match node.get_attr_opt::<&str>("auto_pad")?.unwrap_or("NOTSET") {
        "NOTSET" => match node.get_attr_opt_tvec::<usize>("kernel_shape")? {
            Some(k) => Ok(explicit(tvec!(0; k.len()), tvec!(0; k.len()))),
            None => Ok(cnn::PaddingSpec::Valid),
        },
        "VALID" => Ok(cnn::PaddingSpec::Valid),
        "SAME_UPPER" => Ok(cnn::PaddingSpec::SameUpper),
        "SAME_LOWER" => Ok(cnn::PaddingSpec::SameLower),
        other => bail!("`auto_pad` is {other:?}; ONNX allows NOTSET, VALID, SAME_UPPER or SAME_LOWER"),
    }
}

fn pool_spec(node: &NodeProto) -> TractResult<cnn::PoolSpec> {
    Ok(cnn::PoolSpec::new(
        nn::DataFormat::NCHW,
        node.get_attr_tvec("kernel_shape")?,
        padding(node, true)?,
        node.get_attr_opt_tvec("dilations")?,
        node.get_attr_opt_tvec("strides")?,
        0,
        0,
    ))
}

fn conv(_: &ParsingContext, node: &NodeProto) -> Built {
    let mut op = cnn::Conv::default().padding(padding(node, false)?);
    if let Some(k) = node.get_attr_opt_tvec("kernel_shape")? {
        op = op.kernel_shape(k);
    }
    if let Some(group) = node.get_attr_opt("group")? {
        op = op.group(group);
    }
    if let Some(d) = node.get_attr_opt_tvec("dilations")? {
        op = op.dilations(d);
    }
    if let Some(s) = node.get_attr_opt_tvec("strides")? {
        op = op.strides(s);
    }
    if node.input.len() == 3 && !node.input[2].is_empty() {
        op = op.bias_input(2);
    }
    Ok((expand(op), vec![]))
}

fn max_pool(_: &ParsingContext, node: &NodeProto) -> Built {
    if node.output.iter().filter(|o| !o.is_empty()).count() > 1 {
        bail!("MaxPool with an `Indices` output is outside the core operator set");
    }
    Ok((expand(cnn::HirMaxPool::new(pool_spec(node)?, None)), vec![]))
}

fn average_pool(_: &ParsingContext, node: &NodeProto) -> Built {
    let count_include_pad = node.get_attr_opt::<i64>("count_include_pad")?.unwrap_or(0) == 1;
    Ok((expand(cnn::HirSumPool::new(pool_spec(node)?, count_include_pad, true)), vec![]))
}

fn batch_normalization(_: &ParsingContext, node: &NodeProto) -> Built {
    if node.output.iter().filter(|o| !o.is_empty()).count() > 1 {
        bail!("BatchNormalization in training mode (running-statistics outputs) cannot run for inference");
    }
    if node.get_attr_opt::<i64>("spatial")?.unwrap_or(1) != 1 {
        bail!("BatchNormalization with spatial = 0 (removed in ONNX opset 9) is not supported");
    }
    Ok((expand(BatchNorm { epsilon: node.get_attr_opt("epsilon")?.unwrap_or(1e-5) }), vec![]))
}

fn clip(ctx: &ParsingContext, node: &NodeProto) -> Built {
    if ctx.onnx_operator_set_version < 11 {
        let low = node.get_attr_opt("min")?;
        let high = node.get_attr_opt("max")?;
        return Ok((expand(ops::activations::Clip::new(low, high)), vec![]));
    }
    // From opset 11 the bounds are optional inputs 1 and 2.
    let mut bounds = optional_inputs(node).skip(1);
    Ok((expand(ClipInputs { low: bounds.next().flatten(), high: bounds.next().flatten() }), vec![]))
}

fn gemm(_: &ParsingContext, node: &NodeProto) -> Built {
    Ok((
        expand(Gemm {
            alpha: node.get_attr_opt("alpha")?.unwrap_or(1.0),
            beta: node.get_attr_opt("beta")?.unwrap_or(1.0),
            trans_a: node.get_attr_opt::<i64>("transA")?.unwrap_or(0) != 0,
            trans_b: node.get_attr_opt::<i64>("transB")?.unwrap_or(0) != 0,
        }),
        vec![],
    ))
}

/// The value of a constant input, or an error naming it.
fn constant(model: &TypedModel, input: OutletId, what: &str) -> TractResult<Arc<Tensor>> {
    model
        .outlet_fact(input)?
        .konst
        .clone()
        .with_context(|| format!("{what} is computed in the graph; the core engine needs it stored as an initializer"))
}

/// `y = (x - mean) / sqrt(var + epsilon) * scale + bias` per channel (axis 1),
/// with the statistics stored in the file: one multiply and one add.
#[derive(Debug, Clone)]
struct BatchNorm {
    epsilon: f32,
}

impl Expansion for BatchNorm {
    fn name(&self) -> StaticName {
        "BatchNormalization".into()
    }

    fn rules<'r, 'p: 'r, 's: 'r>(&'s self, s: &mut Solver<'r>, inputs: &'p [TensorProxy], outputs: &'p [TensorProxy]) -> InferenceResult {
        check_input_arity(inputs, 5)?;
        check_output_arity(outputs, 1)?;
        s.equals(&outputs[0].datum_type, &inputs[0].datum_type)?;
        s.equals(&outputs[0].shape, &inputs[0].shape)?;
        for p in &inputs[1..] {
            s.equals(&p.rank, 1)?;
            s.equals(&p.shape[0], &inputs[0].shape[1])?;
        }
        Ok(())
    }

    fn wire(&self, name: &str, model: &mut TypedModel, inputs: &[OutletId]) -> TractResult<TVec<OutletId>> {
        let x = model.outlet_fact(inputs[0])?.clone();
        if x.datum_type != f32::datum_type() || x.rank() < 2 {
            bail!("BatchNormalization `{name}`: the core engine takes a float32 input of rank 2 or more, not {x:?}");
        }
        let [scale, bias, mean, var] = ["scale", "B", "input_mean", "input_var"]
            .iter()
            .zip(&inputs[1..])
            .map(|(what, i)| {
                let t = constant(model, *i, &format!("BatchNormalization `{name}`'s {what}"))?;
                Ok(t.cast_to::<f32>()?.to_plain_array_view::<f32>()?.iter().copied().collect::<Vec<f32>>())
            })
            .collect::<TractResult<Vec<_>>>()?
            .try_into()
            .map_err(|_| format_err!("BatchNormalization `{name}` needs five inputs"))?;
        let channels = scale.len();
        let mut slope = Vec::with_capacity(channels);
        let mut shift = Vec::with_capacity(channels);
        for c in 0..channels {
            let k = scale[c] / (var[c] + self.epsilon).sqrt();
            slope.push(k);
            shift.push(bias[c] - mean[c] * k);
        }
        // [C] as [1, C, 1, ...] against the input's rank.
        let mut shape = vec![1; x.rank()];
        shape[1] = channels;
        let slope = model.add_const(format!("{name}.slope"), tensor1(&slope).into_shape(&shape)?)?;
        let shift = model.add_const(format!("{name}.shift"), tensor1(&shift).into_shape(&shape)?)?;
        let y = model.wire_node(format!("{name}.mul"), ops::math::mul(), &[inputs[0], slope])?;
        model.wire_node(format!("{name}.add"), ops::math::add(), &[y[0], shift])
    }
}

/// Clip from opset 11: bounds as optional inputs, which must be constants.
#[derive(Debug, Clone)]
struct ClipInputs {
    low: Option<usize>,
    high: Option<usize>,
}

impl Expansion for ClipInputs {
    fn name(&self) -> StaticName {
        "Clip".into()
    }

    fn rules<'r, 'p: 'r, 's: 'r>(&'s self, s: &mut Solver<'r>, inputs: &'p [TensorProxy], outputs: &'p [TensorProxy]) -> InferenceResult {
        check_input_arity(inputs, 1 + self.low.is_some() as usize + self.high.is_some() as usize)?;
        check_output_arity(outputs, 1)?;
        s.equals(&outputs[0].datum_type, &inputs[0].datum_type)?;
        s.equals(&outputs[0].shape, &inputs[0].shape)?;
        Ok(())
    }

    fn wire(&self, name: &str, model: &mut TypedModel, inputs: &[OutletId]) -> TractResult<TVec<OutletId>> {
        let bound = |at: Option<usize>, what: &str| -> TractResult<Option<f32>> {
            let Some(at) = at else { return Ok(None) };
            let t = constant(model, inputs[at], &format!("Clip `{name}`'s {what} bound"))?;
            if t.len() != 1 {
                bail!("Clip `{name}`'s {what} bound has {} values; ONNX wants one", t.len());
            }
            Ok(Some(t.cast_to_scalar::<f32>()?))
        };
        let op = ops::activations::Clip::new(bound(self.low, "lower")?, bound(self.high, "upper")?);
        op.wire(name, model, &inputs[..1])
    }
}

/// `Y = alpha * A' B' + beta * C`, where `'` transposes when asked.
#[derive(Debug, Clone)]
struct Gemm {
    alpha: f32,
    beta: f32,
    trans_a: bool,
    trans_b: bool,
}

impl Expansion for Gemm {
    fn name(&self) -> StaticName {
        "Gemm".into()
    }

    fn rules<'r, 'p: 'r, 's: 'r>(&'s self, s: &mut Solver<'r>, inputs: &'p [TensorProxy], outputs: &'p [TensorProxy]) -> InferenceResult {
        if !(2..=3).contains(&inputs.len()) {
            bail!("Gemm has {} inputs; ONNX wants A, B and an optional C", inputs.len());
        }
        check_output_arity(outputs, 1)?;
        s.equals(&inputs[0].rank, 2)?;
        s.equals(&inputs[1].rank, 2)?;
        s.equals(&outputs[0].rank, 2)?;
        s.equals(&outputs[0].datum_type, &inputs[0].datum_type)?;
        s.equals(&outputs[0].datum_type, &inputs[1].datum_type)?;
        let (rows_a, inner_a) = if self.trans_a { (1, 0) } else { (0, 1) };
        let (inner_b, cols_b) = if self.trans_b { (1, 0) } else { (0, 1) };
        s.equals(&inputs[0].shape[inner_a], &inputs[1].shape[inner_b])?;
        s.equals(&outputs[0].shape[0], &inputs[0].shape[rows_a])?;
        s.equals(&outputs[0].shape[1], &inputs[1].shape[cols_b])?;
        Ok(())
    }

    fn wire(&self, name: &str, model: &mut TypedModel, inputs: &[OutletId]) -> TractResult<TVec<OutletId>> {
        let dt = model.outlet_fact(inputs[0])?.datum_type;
        let axes = AxesMapping::for_numpy_matmul(2, self.trans_a, self.trans_b, false)?;
        let mut y = model.wire_node(format!("{name}.ab"), tract_onnx::tract_core::ops::einsum::EinSum::new(axes, dt), &inputs[..2])?[0];
        let scaled = |model: &mut TypedModel, wire: OutletId, k: f32, what: &str| -> TractResult<OutletId> {
            if k == 1.0 {
                return Ok(wire);
            }
            let rank = model.outlet_fact(wire)?.rank();
            let k = model.add_const(format!("{name}.{what}"), tensor0(k).cast_to_dt(dt)?.into_owned().broadcast_into_rank(rank)?)?;
            Ok(model.wire_node(format!("{name}.{what}_times"), ops::math::mul(), &[k, wire])?[0])
        };
        y = scaled(model, y, self.alpha, "alpha")?;
        if let (Some(&c), true) = (inputs.get(2), self.beta != 0.0) {
            let c = scaled(model, c, self.beta, "beta")?;
            let both = tract_onnx::tract_core::ops::change_axes::wire_rank_broadcast(format!("{name}.c"), model, &[y, c])?;
            y = model.wire_node(format!("{name}.c_plus"), ops::math::add(), &both)?[0];
        }
        Ok(tvec!(y))
    }
}
