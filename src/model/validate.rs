//! The graph's structure, checked once when a model is read and before
//! anything indexes into it (the weight expansion, the WebGPU normaliser,
//! tract): every node reads only names defined before it (which also rules
//! out cycles and dangling names), defines each name once, has outputs and
//! the inputs its operator needs, and window attributes (kernel, strides,
//! dilations, pads) that fit together; every initializer has sane dims, holds
//! exactly the data they say and keeps it in the file (no external data);
//! the graph's outputs exist. Both backends get only graphs that pass.

use super::pb::{tensor_proto::DataType, GraphProto, NodeProto, TensorProto};
use super::ModelError;
use std::collections::HashSet;

/// Largest element count of one initializer or input (2^31): far above any
/// classifier's weights, below anything that would overflow an allocation.
pub const MAX_ELEMENTS: u64 = 1 << 31;

/// Inputs (fewest, most) of the operators our own code reads by position.
const ARITY: &[(&str, usize, usize)] = &[
    ("Conv", 2, 3),
    ("Gemm", 2, 3),
    ("MatMul", 2, 2),
    ("BatchNormalization", 5, 5),
    ("Clip", 1, 3),
    ("Cast", 1, 1),
    ("DequantizeLinear", 2, 3),
    ("Reshape", 2, 2),
    ("Concat", 1, usize::MAX),
    ("Add", 2, 2),
    ("Sub", 2, 2),
    ("Mul", 2, 2),
    ("Div", 2, 2),
    ("Relu", 1, 1),
    ("Sigmoid", 1, 1),
    ("GlobalAveragePool", 1, 1),
    ("MaxPool", 1, 1),
    ("AveragePool", 1, 1),
    ("Flatten", 1, 1),
    ("Transpose", 1, 1),
    ("Softmax", 1, 1),
    ("Shape", 1, 1),
    ("Gather", 2, 2),
];

fn label(node: &NodeProto, index: usize) -> String {
    if !node.name.is_empty() {
        node.name.clone()
    } else if let Some(o) = node.output.iter().find(|o| !o.is_empty()) {
        o.clone()
    } else {
        format!("#{index}")
    }
}

fn bad(node: impl Into<String>, problem: impl Into<String>) -> ModelError {
    ModelError::Structure { node: node.into(), problem: problem.into() }
}

/// Bytes per element stored raw, for the fixed-size types.
fn element_bytes(t: &TensorProto) -> Option<usize> {
    Some(match DataType::try_from(t.data_type).ok()? {
        DataType::Float | DataType::Int32 | DataType::Uint32 => 4,
        DataType::Double | DataType::Int64 | DataType::Uint64 => 8,
        DataType::Float16 | DataType::Bfloat16 | DataType::Int16 | DataType::Uint16 => 2,
        DataType::Int8 | DataType::Uint8 | DataType::Bool => 1,
        _ => return None,
    })
}

fn check_initializer(t: &TensorProto) -> Result<(), ModelError> {
    if t.name.is_empty() {
        return Err(bad("an initializer", "it has no name"));
    }
    check_tensor(t, format!("initializer {}", t.name))
}

/// A tensor's dims, size and stored data (an initializer, or a node's tensor attribute).
fn check_tensor(t: &TensorProto, who: String) -> Result<(), ModelError> {
    if t.data_location == Some(1) || !t.external_data.is_empty() {
        return Err(bad(
            who,
            "its data is in an external file, which cannot be read here; save the model with the weights inside it (onnx.save(model, path, save_as_external_data=False))",
        ));
    }
    let mut n: u64 = 1;
    for &d in &t.dims {
        if d < 0 {
            return Err(bad(who, format!("dims {:?} include a negative size", t.dims)));
        }
        n = n.saturating_mul(d as u64);
    }
    if n > MAX_ELEMENTS {
        return Err(bad(who, format!("dims {:?} make {n} elements, over the limit of {MAX_ELEMENTS}", t.dims)));
    }
    let n = n as usize;
    if !t.raw_data.is_empty() {
        // ONNX keeps strings in string_data, never in raw bytes; tract
        // panics on such a tensor instead of refusing it.
        if t.data_type == DataType::String as i32 {
            return Err(bad(who, "its data type (STRING) cannot be stored as raw bytes"));
        }
        if let Some(size) = element_bytes(t) {
            if t.raw_data.len() != n * size {
                return Err(bad(who, format!("holds {} bytes but its dims {:?} say {}", t.raw_data.len(), t.dims, n * size)));
            }
        }
    } else {
        let typed = [t.float_data.len(), t.int32_data.len(), t.int64_data.len(), t.double_data.len(), t.uint64_data.len()];
        let held = typed.iter().copied().max().unwrap_or(0);
        let fixed = matches!(DataType::try_from(t.data_type), Ok(DataType::Float | DataType::Int64 | DataType::Double));
        if fixed && held != n {
            return Err(bad(who, format!("holds {held} values but its dims {:?} say {n}", t.dims)));
        }
    }
    Ok(())
}

/// Largest size of one input dimension (65,536 pixels or channels).
pub const MAX_INPUT_DIM: i64 = 1 << 16;

fn check_input_dims(i: &super::pb::ValueInfoProto) -> Result<(), ModelError> {
    use super::pb::{tensor_shape_proto::dimension::Value, type_proto};
    let Some(type_proto::Value::TensorType(t)) = i.r#type.as_ref().and_then(|t| t.value.as_ref()) else { return Ok(()) };
    for d in t.shape.iter().flat_map(|s| &s.dim) {
        if let Some(Value::DimValue(v)) = d.value {
            if v <= 0 || v > MAX_INPUT_DIM {
                return Err(bad(format!("input {}", i.name), format!("a dimension of {v}; sizes run from 1 to {MAX_INPUT_DIM}")));
            }
        }
    }
    Ok(())
}

/// The window attributes of a convolution or pooling node agree with each
/// other and with the kernel (tract indexes one by the other's length, and
/// divides by strides): `kernel_shape`, `strides` and `dilations` have one
/// entry per spatial axis, all at least 1, `pads` two per axis, none
/// negative, `group` at least 1.
fn check_window(node: &NodeProto, who: &str, g: &GraphProto) -> Result<(), ModelError> {
    if !matches!(node.op_type.as_str(), "Conv" | "ConvTranspose" | "MaxPool" | "AveragePool") {
        return Ok(());
    }
    let ints = |name: &str| node.attribute.iter().find(|a| a.name == name).map(|a| a.ints.as_slice());
    let weight_rank = node
        .input
        .get(1)
        .and_then(|w| g.initializer.iter().find(|t| &t.name == w))
        .map(|t| t.dims.len().saturating_sub(2));
    let axes = ints("kernel_shape").map(<[i64]>::len).or(weight_rank).or(ints("strides").map(<[i64]>::len));
    let Some(axes) = axes else { return Ok(()) };
    if axes == 0 {
        return Err(bad(who, format!("this `{}` has no spatial axes (an empty kernel)", node.op_type)));
    }
    if let (Some(k), Some(w)) = (ints("kernel_shape").map(<[i64]>::len), weight_rank) {
        if k != w {
            return Err(bad(who, format!("its kernel_shape has {k} axes but its weight {w}")));
        }
    }
    for (name, per_axis, least) in [("kernel_shape", 1, 1), ("strides", 1, 1), ("dilations", 1, 1), ("pads", 2, 0)] {
        let Some(v) = ints(name) else { continue };
        if v.len() != per_axis * axes {
            return Err(bad(who, format!("its {name} has {} values; {axes} spatial axes need {}", v.len(), per_axis * axes)));
        }
        if let Some(x) = v.iter().find(|&&x| x < least || x > 1 << 16) {
            return Err(bad(who, format!("its {name} holds {x} (each must be from {least} to 65536)")));
        }
    }
    if let Some(a) = node.attribute.iter().find(|a| a.name == "group") {
        if a.i < 1 {
            return Err(bad(who, format!("its group is {} (at least 1)", a.i)));
        }
    }
    Ok(())
}

/// Checks the graph's structure; the error names the node or initializer.
pub fn graph(g: &GraphProto) -> Result<(), ModelError> {
    let mut defined: HashSet<&str> = HashSet::new();
    for t in &g.initializer {
        check_initializer(t)?;
        if !defined.insert(t.name.as_str()) {
            return Err(bad(format!("initializer {}", t.name), "the name is used by two initializers"));
        }
    }
    for i in &g.input {
        if i.name.is_empty() {
            return Err(bad("a graph input", "it has no name"));
        }
        check_input_dims(i)?;
        // An initializer may also be listed as an input (older exporters); a name listed twice is not.
        if !defined.insert(i.name.as_str()) && !g.initializer.iter().any(|t| t.name == i.name) {
            return Err(bad(format!("input {}", i.name), "the name is defined twice"));
        }
    }
    if g.node.is_empty() {
        return Err(bad("(graph)", "it has no nodes"));
    }
    for (index, node) in g.node.iter().enumerate() {
        let who = label(node, index);
        if node.op_type.is_empty() {
            return Err(bad(who, "it names no operator"));
        }
        if node.output.iter().all(String::is_empty) {
            return Err(bad(who, format!("this `{}` has no outputs", node.op_type)));
        }
        if let Some(&(_, min, max)) = ARITY.iter().find(|(op, _, _)| *op == node.op_type) {
            let n = node.input.len();
            if n < min || n > max || node.input.iter().take(min).any(String::is_empty) {
                let range = if min == max { format!("{min}") } else if max == usize::MAX { format!("at least {min}") } else { format!("{min} to {max}") };
                return Err(bad(who, format!("`{}` takes {range} inputs; this one has {n} ({:?})", node.op_type, node.input)));
            }
        }
        check_window(node, &who, g)?;
        for a in &node.attribute {
            for t in a.t.iter().chain(&a.tensors) {
                check_tensor(t, format!("{who}, attribute {}", a.name))?;
            }
        }
        for input in node.input.iter().filter(|i| !i.is_empty()) {
            if !defined.contains(input.as_str()) {
                return Err(bad(
                    who,
                    format!("it reads `{input}`, which no graph input, initializer or earlier node defines (a dangling name, or a cycle)"),
                ));
            }
        }
        for output in node.output.iter().filter(|o| !o.is_empty()) {
            if !defined.insert(output.as_str()) {
                return Err(bad(who, format!("it writes `{output}`, which is already defined")));
            }
        }
    }
    if g.output.is_empty() {
        return Err(ModelError::NoOutputs);
    }
    for o in &g.output {
        if !defined.contains(o.name.as_str()) {
            return Err(bad(format!("output {}", o.name), "nothing in the graph computes it"));
        }
    }
    Ok(())
}
