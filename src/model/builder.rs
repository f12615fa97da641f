//! A small ONNX graph builder: writes valid opset-13, IR-7 models with the
//! operators our model families use (Conv with groups and bias,
//! BatchNormalization, Clip, Relu, Add, Concat, AveragePool, MaxPool,
//! GlobalAveragePool, Flatten, Gemm, MatMul, Cast, DequantizeLinear), metadata
//! and value_info. Tests build models with it; the trainer's exporter writes
//! trained weights through it.
//!
//! Weights go through [`GraphBuilder::weight`] (and biases through
//! [`GraphBuilder::bias`]), which store them in the builder's [`Precision`]
//! the way `quant` writes every precision: fp32 as they are; fp16 as
//! FLOAT16 initializers followed by `Cast` to float; int8 per output channel
//! and int4 in blocks, symmetric, with `DequantizeLinear` (weight-only QDQ),
//! as docs/architecture.md ("The ONNX contract") says.

use crate::model::pb::{
    self, attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto::dimension,
    tensor_shape_proto::Dimension, type_proto, AttributeProto, GraphProto, ModelProto, NodeProto,
    OperatorSetIdProto, StringStringEntryProto, TensorProto, TensorShapeProto, TypeProto,
    ValueInfoProto,
};
use crate::model::quant::{self, Storage};
use crate::model::Precision;
use crate::model::tensor_data::le_bytes;
use prost::Message;

/// Opset and IR version of what we write, unless a weight's storage needs
/// more: float16 scales need opset 19, INT4 and blocked scales opset 21 (and
/// IR 10, the first with INT4).
pub const OPSET: i64 = 13;
pub const IR_VERSION: i64 = 7;

/// The IR version a file of default-domain `opset` needs.
pub fn ir_version_for(opset: i64) -> i64 {
    match opset {
        ..=13 => IR_VERSION,
        14..=18 => 8,
        19..=20 => 9,
        _ => 10,
    }
}

/// One dimension of a declared shape.
#[derive(Debug, Clone, PartialEq)]
pub enum Dim {
    Fixed(i64),
    /// A symbolic dimension such as a batch called "N".
    Named(String),
}

impl From<i64> for Dim {
    fn from(v: i64) -> Self {
        Dim::Fixed(v)
    }
}

impl From<&str> for Dim {
    fn from(v: &str) -> Self {
        Dim::Named(v.to_string())
    }
}

/// Convolution attributes: `pad` before and `pad_end` after each spatial
/// axis (equal unless TensorFlow-style "SAME" padding puts one more at the end).
#[derive(Debug, Clone, Copy)]
pub struct ConvAttrs {
    pub stride: i64,
    pub pad: i64,
    pub pad_end: i64,
    pub group: i64,
}

impl ConvAttrs {
    pub fn new(stride: i64, pad: i64) -> Self {
        ConvAttrs { stride, pad, pad_end: pad, group: 1 }
    }
    pub fn grouped(stride: i64, pad: i64, group: i64) -> Self {
        ConvAttrs { stride, pad, pad_end: pad, group }
    }
    pub fn asymmetric(stride: i64, pad: i64, pad_end: i64, group: i64) -> Self {
        ConvAttrs { stride, pad, pad_end, group }
    }
}

/// Builds one ONNX graph. Node outputs are named `{op}_{n}` unless given.
pub struct GraphBuilder {
    graph: GraphProto,
    metadata: Vec<(String, String)>,
    precision: Precision,
    opset: i64,
    counter: usize,
}

pub fn attr_int(name: &str, v: i64) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: AttributeType::Int as i32, i: v, ..Default::default() }
}

pub fn attr_ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: AttributeType::Ints as i32, ints: v.to_vec(), ..Default::default() }
}

pub fn attr_float(name: &str, v: f32) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: AttributeType::Float as i32, f: v, ..Default::default() }
}

pub fn attr_string(name: &str, v: &str) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: AttributeType::String as i32, s: v.as_bytes().to_vec(), ..Default::default() }
}

/// A tensor-typed value_info with the given element type and shape.
pub fn value_info(name: &str, elem: DataType, dims: &[Dim]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Dim::Fixed(v) => dimension::Value::DimValue(*v),
                Dim::Named(s) => dimension::Value::DimParam(s.clone()),
            }),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: elem as i32,
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// An initializer from raw little-endian bytes.
pub fn raw_tensor(name: &str, elem: DataType, dims: &[usize], raw: Vec<u8>) -> TensorProto {
    TensorProto {
        name: name.into(),
        data_type: elem as i32,
        dims: dims.iter().map(|&d| d as i64).collect(),
        raw_data: raw,
        ..Default::default()
    }
}

pub fn f32_tensor(name: &str, dims: &[usize], data: &[f32]) -> TensorProto {
    raw_tensor(name, DataType::Float, dims, le_bytes(data, f32::to_le_bytes))
}

/// An int64 vector initializer (shapes, axes).
pub fn i64_tensor(name: &str, data: &[i64]) -> TensorProto {
    raw_tensor(name, DataType::Int64, &[data.len()], le_bytes(data, i64::to_le_bytes))
}

impl GraphBuilder {
    pub fn new(name: &str) -> Self {
        GraphBuilder {
            graph: GraphProto { name: name.into(), ..Default::default() },
            metadata: Vec::new(),
            precision: Precision::Fp32,
            opset: OPSET,
            counter: 0,
        }
    }

    /// Stores subsequent [`weight`](Self::weight)s and [`bias`](Self::bias)es in `precision`.
    pub fn with_precision(mut self, precision: Precision) -> Self {
        self.precision = precision;
        self
    }

    fn fresh(&mut self, hint: &str) -> String {
        self.counter += 1;
        format!("{hint}_{}", self.counter)
    }

    pub fn input(&mut self, name: &str, dims: &[Dim]) -> String {
        self.graph.input.push(value_info(name, DataType::Float, dims));
        name.to_string()
    }

    pub fn output(&mut self, name: &str, dims: &[Dim]) {
        self.graph.output.push(value_info(name, DataType::Float, dims));
    }

    /// Declares a graph output without type or shape, as some exporters do.
    pub fn graph_output_untyped(&mut self, name: &str) {
        self.graph.output.push(ValueInfoProto { name: name.into(), ..Default::default() });
    }

    pub fn value_info(&mut self, name: &str, dims: &[Dim]) {
        self.graph.value_info.push(value_info(name, DataType::Float, dims));
    }

    pub fn metadata(&mut self, key: &str, value: &str) {
        self.metadata.push((key.into(), value.into()));
    }

    /// The model's `mriscreen.*` metadata, written by [`Description::entries`]
    /// (the one writer).
    pub fn describe(&mut self, description: &super::Description) {
        for (key, value) in description.entries() {
            self.metadata(key, &value);
        }
    }

    /// Adds an initializer and returns its name.
    pub fn initializer(&mut self, tensor: TensorProto) -> String {
        let name = tensor.name.clone();
        self.graph.initializer.push(tensor);
        name
    }

    /// A float32 constant, stored as is whatever the precision (biases, BN
    /// statistics, scales).
    pub fn constant(&mut self, name: &str, dims: &[usize], data: &[f32]) -> String {
        self.initializer(f32_tensor(name, dims, data))
    }

    /// A weight tensor stored in the builder's precision (`quant`): fp32 as
    /// it is, fp16 + `Cast`, or int8 per output channel / int4 in blocks of
    /// [`quant::DEFAULT_BLOCK`] input channels with `DequantizeLinear` +
    /// `Cast`. The first dimension is the output channel, the second the
    /// input channel. Returns the name of the float32 value carrying it.
    pub fn weight(&mut self, name: &str, dims: &[usize], data: &[f32]) -> String {
        let storage = match self.precision {
            Precision::Fp32 => Storage::Fp32,
            Precision::Fp16 => Storage::Fp16,
            Precision::Int8 => Storage::Int { scheme: quant::Scheme::int8(), axes: quant::Axes::OUT_FIRST },
            Precision::Int4 => Storage::Int { scheme: quant::Scheme::int4(quant::DEFAULT_BLOCK), axes: quant::Axes::OUT_FIRST },
        };
        self.stored(quant::store(name, dims, data, storage))
    }

    /// A bias stored as a model of the builder's precision stores it:
    /// float32 in fp32, float16 + `Cast` otherwise.
    pub fn bias(&mut self, name: &str, dims: &[usize], data: &[f32]) -> String {
        self.stored(quant::store_bias(name, dims, data, self.precision))
    }

    /// A tensor stored as `storage` says, whatever the builder's precision
    /// (tests build every storage form with it).
    pub fn store(&mut self, name: &str, dims: &[usize], data: &[f32], storage: Storage) -> String {
        self.stored(quant::store(name, dims, data, storage))
    }

    fn stored(&mut self, s: quant::Stored) -> String {
        self.opset = self.opset.max(s.opset);
        let name = s.nodes.last().map(|n| n.output[0].clone()).or_else(|| s.initializers.first().map(|t| t.name.clone())).unwrap_or_default();
        self.graph.initializer.extend(s.initializers);
        self.graph.node.extend(s.nodes);
        name
    }

    /// Adds a node with explicit output names.
    pub fn node_named(&mut self, op: &str, inputs: &[&str], outputs: &[&str], attribute: Vec<AttributeProto>) {
        let name = self.fresh(&op.to_lowercase());
        self.graph.node.push(NodeProto {
            name,
            op_type: op.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            attribute,
            ..Default::default()
        });
    }

    /// Adds a single-output node and returns its output name.
    pub fn node(&mut self, op: &str, inputs: &[&str], attribute: Vec<AttributeProto>) -> String {
        let out = self.fresh(&op.to_lowercase());
        self.node_named(op, inputs, &[&out], attribute);
        out
    }

    pub fn conv(&mut self, x: &str, w: &str, b: Option<&str>, kernel: i64, a: ConvAttrs) -> String {
        let mut inputs = vec![x, w];
        inputs.extend(b);
        let (p, e) = (a.pad, a.pad_end);
        self.node(
            "Conv",
            &inputs,
            vec![
                attr_ints("kernel_shape", &[kernel, kernel]),
                attr_ints("strides", &[a.stride, a.stride]),
                attr_ints("pads", &[p, p, e, e]),
                attr_ints("dilations", &[1, 1]),
                attr_int("group", a.group),
            ],
        )
    }

    pub fn batch_norm(&mut self, x: &str, scale: &str, bias: &str, mean: &str, var: &str, eps: f32) -> String {
        self.node("BatchNormalization", &[x, scale, bias, mean, var], vec![attr_float("epsilon", eps)])
    }

    pub fn relu(&mut self, x: &str) -> String {
        self.node("Relu", &[x], vec![])
    }

    /// Clip with constant bounds (opset 13 takes them as inputs).
    pub fn clip(&mut self, x: &str, lo: f32, hi: f32) -> String {
        let (lo_name, hi_name) = (self.fresh("clip_min"), self.fresh("clip_max"));
        let lo = self.constant(&lo_name, &[], &[lo]);
        let hi = self.constant(&hi_name, &[], &[hi]);
        self.node("Clip", &[x, &lo, &hi], vec![])
    }

    pub fn add(&mut self, a: &str, b: &str) -> String {
        self.node("Add", &[a, b], vec![])
    }

    pub fn concat(&mut self, xs: &[&str], axis: i64) -> String {
        self.node("Concat", xs, vec![attr_int("axis", axis)])
    }

    pub fn average_pool(&mut self, x: &str, kernel: i64, stride: i64) -> String {
        self.node(
            "AveragePool",
            &[x],
            vec![attr_ints("kernel_shape", &[kernel, kernel]), attr_ints("strides", &[stride, stride]), attr_ints("pads", &[0, 0, 0, 0])],
        )
    }

    /// MaxPool with a square kernel and symmetric explicit padding.
    pub fn max_pool(&mut self, x: &str, kernel: i64, stride: i64, pad: i64) -> String {
        self.node(
            "MaxPool",
            &[x],
            vec![attr_ints("kernel_shape", &[kernel, kernel]), attr_ints("strides", &[stride, stride]), attr_ints("pads", &[pad, pad, pad, pad])],
        )
    }

    pub fn global_average_pool(&mut self, x: &str) -> String {
        self.node("GlobalAveragePool", &[x], vec![])
    }

    pub fn flatten(&mut self, x: &str) -> String {
        self.node("Flatten", &[x], vec![attr_int("axis", 1)])
    }

    /// Gemm: `a · b (+ c)`, with `b` transposed when `trans_b` (PyTorch's
    /// Linear layout, `[out, in]`).
    pub fn gemm(&mut self, a: &str, b: &str, c: &str, trans_b: bool) -> String {
        self.node("Gemm", &[a, b, c], vec![attr_int("transB", i64::from(trans_b))])
    }

    pub fn mat_mul(&mut self, a: &str, b: &str) -> String {
        self.node("MatMul", &[a, b], vec![])
    }

    /// Renames the last node's output, so that a graph output gets a fixed name.
    pub fn rename_last_output(&mut self, name: &str) -> String {
        if let Some(node) = self.graph.node.last_mut() {
            node.output[0] = name.to_string();
        }
        name.to_string()
    }

    pub fn build(self) -> ModelProto {
        ModelProto {
            ir_version: ir_version_for(self.opset),
            opset_import: vec![OperatorSetIdProto { domain: String::new(), version: self.opset }],
            producer_name: "mriscreen".into(),
            producer_version: env!("CARGO_PKG_VERSION").into(),
            graph: Some(self.graph),
            metadata_props: self
                .metadata
                .into_iter()
                .map(|(key, value)| StringStringEntryProto { key, value })
                .collect(),
            ..Default::default()
        }
    }

    pub fn to_bytes(self) -> Vec<u8> {
        self.build().encode_to_vec()
    }
}

/// Encodes a model to bytes.
pub fn encode(model: &pb::ModelProto) -> Vec<u8> {
    model.encode_to_vec()
}
