//! A small ONNX graph builder: writes valid opset-13, IR-7 models with the
//! operators our model families use (Conv with groups and bias,
//! BatchNormalization, Clip, Relu, Add, Concat, AveragePool,
//! GlobalAveragePool, Flatten, Gemm, MatMul, Cast, DequantizeLinear), metadata
//! and value_info. Tests build models with it; the trainer's exporter writes
//! trained weights through it.
//!
//! Weights go through [`GraphBuilder::weight`], which stores them in the
//! builder's [`Precision`]: fp32 as they are; fp16 as FLOAT16 initializers
//! followed by `Cast` to float; int8 as per-output-channel symmetric INT8 with a
//! `DequantizeLinear` node (weight-only QDQ), as docs/architecture.md ("The ONNX contract") says.

use crate::model::pb::{
    self, attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto::dimension,
    tensor_shape_proto::Dimension, type_proto, AttributeProto, GraphProto, ModelProto, NodeProto,
    OperatorSetIdProto, StringStringEntryProto, TensorProto, TensorShapeProto, TypeProto,
    ValueInfoProto,
};
use crate::model::Precision;
use prost::Message;

/// Opset and IR version of everything we write.
pub const OPSET: i64 = 13;
pub const IR_VERSION: i64 = 7;

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
    raw_tensor(name, DataType::Float, dims, data.iter().flat_map(|v| v.to_le_bytes()).collect())
}

/// An int64 vector initializer (shapes, axes).
pub fn i64_tensor(name: &str, data: &[i64]) -> TensorProto {
    raw_tensor(name, DataType::Int64, &[data.len()], data.iter().flat_map(|v| v.to_le_bytes()).collect())
}

impl GraphBuilder {
    pub fn new(name: &str) -> Self {
        GraphBuilder {
            graph: GraphProto { name: name.into(), ..Default::default() },
            metadata: Vec::new(),
            precision: Precision::Fp32,
            counter: 0,
        }
    }

    /// Stores subsequent [`weight`](Self::weight)s in `precision`.
    /// int4 is written by the quantizer, not here: asking for it stores fp32.
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

    /// A weight tensor stored in the builder's precision; returns the name of
    /// a float32 value carrying it. The first dimension is the output channel.
    pub fn weight(&mut self, name: &str, dims: &[usize], data: &[f32]) -> String {
        match self.precision {
            Precision::Fp32 | Precision::Int4 => self.constant(name, dims, data),
            Precision::Fp16 => {
                let raw = data.iter().flat_map(|&v| half::f16::from_f32(v).to_le_bytes()).collect();
                let stored = self.initializer(raw_tensor(&format!("{name}.fp16"), DataType::Float16, dims, raw));
                let out = name.to_string();
                self.node_named("Cast", &[&stored], &[&out], vec![attr_int("to", DataType::Float as i32 as i64)]);
                out
            }
            Precision::Int8 => {
                let channels = dims[0];
                let per = data.len() / channels.max(1);
                let mut q = Vec::with_capacity(data.len());
                let mut scales = Vec::with_capacity(channels);
                for ch in data.chunks(per.max(1)) {
                    let max = ch.iter().fold(0f32, |m, v| m.max(v.abs()));
                    let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
                    scales.push(scale);
                    q.extend(ch.iter().map(|v| (v / scale).round().clamp(-127.0, 127.0) as i8 as u8));
                }
                let stored = self.initializer(raw_tensor(&format!("{name}.int8"), DataType::Int8, dims, q));
                let scale = self.constant(&format!("{name}.scale"), &[channels], &scales);
                let zero = self.initializer(raw_tensor(&format!("{name}.zero_point"), DataType::Int8, &[channels], vec![0; channels]));
                let out = name.to_string();
                self.node_named("DequantizeLinear", &[&stored, &scale, &zero], &[&out], vec![attr_int("axis", 0)]);
                out
            }
        }
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
            ir_version: IR_VERSION,
            opset_import: vec![OperatorSetIdProto { domain: String::new(), version: OPSET }],
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
