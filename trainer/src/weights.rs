//! Pretrained weights: read a PyTorch state dict — the legacy (pre-1.6,
//! non-zip) serialization with our own container reader, the zip format and
//! safetensors through candle — and copy it by name into a model's VarMap.
//!
//! The legacy format (torch/serialization.py, `_legacy_save`) is five
//! pickles back to back — magic number, protocol version, system info, the
//! object (tensors appear as persistent ids `('storage', StorageType, key,
//! location, numel)` inside `torch._utils._rebuild_tensor_v2` calls), and the
//! list of storage keys — followed, for each key in that order, by an 8-byte
//! little-endian element count and the raw little-endian data. candle's
//! pickle machine parses each pickle; the magic number (a 10-byte LONG1,
//! which candle cannot hold) is checked by hand.

use anyhow::{bail, Context, Result};
use candle_core::pickle::{Object, Stack, TensorInfo};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use std::collections::{BTreeMap, HashMap};
use std::io::Cursor;
use std::path::Path;

/// The legacy format's magic number pickle: PROTO 2, LONG1 of 10 bytes
/// 0x1950a86a20f9469cfc6c, STOP.
const LEGACY_MAGIC: [u8; 15] = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e];

/// Reads every tensor of a state dict file (.pth legacy or zip, or
/// .safetensors), with torchvision's legacy DenseNet keys renamed as
/// torchvision renames them when it loads them ([`modern_key`]).
pub fn read_state_dict(path: &Path) -> Result<BTreeMap<String, Tensor>> {
    Ok(read_file(path)?.into_iter().map(|(k, v)| (modern_key(&k), v)).collect())
}

/// torchvision's published DenseNet files (`densenet121-a639ec97.pth`)
/// predate its module names: `…denselayer1.norm.1.weight` is today's
/// `…denselayer1.norm1.weight` (and `conv.2` is `conv2`). Other keys are
/// returned unchanged.
pub fn modern_key(key: &str) -> String {
    let parts: Vec<&str> = key.split('.').collect();
    let mut out: Vec<String> = Vec::with_capacity(parts.len());
    let mut i = 0;
    while i < parts.len() {
        let legacy = i >= 1
            && parts[i - 1].starts_with("denselayer")
            && matches!(parts[i], "norm" | "conv" | "relu")
            && parts.get(i + 1).is_some_and(|n| matches!(*n, "1" | "2"));
        if legacy {
            out.push(format!("{}{}", parts[i], parts[i + 1]));
            i += 2;
        } else {
            out.push(parts[i].to_string());
            i += 1;
        }
    }
    out.join(".")
}

fn read_file(path: &Path) -> Result<BTreeMap<String, Tensor>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read weights {}", path.display()))?;
    if bytes.starts_with(&LEGACY_MAGIC) {
        return read_legacy(&bytes).with_context(|| format!("{} (legacy PyTorch format)", path.display()));
    }
    if bytes.starts_with(b"PK\x03\x04") {
        let all = candle_core::pickle::read_all(path).with_context(|| format!("{} (PyTorch zip format)", path.display()))?;
        return Ok(all.into_iter().collect());
    }
    let is_safetensors = bytes.len() > 8 && {
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap_or([0; 8]));
        n < bytes.len() as u64 && bytes.get(8) == Some(&b'{')
    };
    if is_safetensors {
        let all = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu).with_context(|| format!("{} (safetensors)", path.display()))?;
        return Ok(all.into_iter().collect());
    }
    bail!("{} is not a PyTorch .pth (zip or legacy) or .safetensors file", path.display())
}

fn next_pickle(cur: &mut Cursor<&[u8]>) -> Result<Object> {
    let mut stack = Stack::empty();
    stack.read_loop(cur)?;
    Ok(stack.finalize()?)
}

fn read_legacy(bytes: &[u8]) -> Result<BTreeMap<String, Tensor>> {
    let mut cur = Cursor::new(&bytes[LEGACY_MAGIC.len()..]);
    let _protocol = next_pickle(&mut cur).context("protocol version")?;
    let _sys_info = next_pickle(&mut cur).context("system info")?;
    let object = next_pickle(&mut cur).context("state dict")?;
    let keys = match next_pickle(&mut cur).context("storage keys")? {
        Object::List(v) => v.into_iter().map(|k| k.unicode().map_err(|o| anyhow::anyhow!("storage key {o:?}"))).collect::<Result<Vec<_>>>()?,
        other => bail!("expected the list of storage keys, found {other:?}"),
    };
    let Object::Dict(entries) = object else { bail!("the file does not hold a state dict") };
    let infos: Vec<TensorInfo> = entries
        .into_iter()
        .filter_map(|(name, value)| value.into_tensor_info(name, Path::new("")).transpose())
        .collect::<candle_core::Result<_>>()?;
    let dtype_of: HashMap<String, DType> = infos.iter().map(|i| (i.path.trim_start_matches('/').to_string(), i.dtype)).collect();

    // The raw storages follow, in the order of `keys`.
    let mut pos = LEGACY_MAGIC.len() + cur.position() as usize;
    let mut storages: HashMap<String, Tensor> = HashMap::new();
    for key in keys {
        let numel_bytes = bytes.get(pos..pos + 8).context("file ends inside a storage header")?;
        let numel = u64::from_le_bytes(numel_bytes.try_into()?) as usize;
        pos += 8;
        let dtype = *dtype_of.get(&key).with_context(|| format!("storage {key} is used by no tensor"))?;
        let len = numel.checked_mul(dtype.size_in_bytes()).context("storage size overflows")?;
        let data = bytes.get(pos..pos + len).with_context(|| format!("file ends inside storage {key}"))?;
        pos += len;
        storages.insert(key, Tensor::from_raw_buffer(data, dtype, &[numel], &Device::Cpu)?);
    }
    let mut out = BTreeMap::new();
    for info in infos {
        let storage = storages.get(info.path.trim_start_matches('/')).with_context(|| format!("tensor {} has no storage", info.name))?;
        let l = &info.layout;
        let offset = l.start_offset() / info.dtype.size_in_bytes();
        let t = if l.is_contiguous() {
            storage.narrow(0, offset, l.shape().elem_count())?.reshape(l.shape())?
        } else {
            // A strided view (e.g. a transposed matrix): gather its elements.
            let dims = l.dims();
            let stride = l.stride();
            let mut positions = Vec::with_capacity(l.shape().elem_count());
            let mut index = vec![0usize; dims.len()];
            for _ in 0..l.shape().elem_count() {
                positions.push((offset + index.iter().zip(stride).map(|(i, s)| i * s).sum::<usize>()) as u32);
                for d in (0..dims.len()).rev() {
                    index[d] += 1;
                    if index[d] < dims[d] {
                        break;
                    }
                    index[d] = 0;
                }
            }
            let len = storage.dim(0)?;
            if positions.iter().any(|&p| p as usize >= len) {
                bail!("tensor {} reaches past its storage", info.name);
            }
            let positions = Tensor::from_vec(positions, l.shape().elem_count(), &Device::Cpu)?;
            storage.index_select(&positions, 0)?.reshape(l.shape())?
        };
        out.insert(info.name, t);
    }
    Ok(out)
}

/// What loading pretrained weights did.
#[derive(Debug, Default, serde::Serialize)]
pub struct LoadReport {
    pub loaded: usize,
    /// Model parameters the file did not have (left at their initial values).
    pub missing: Vec<String>,
    /// Parameters skipped on purpose (e.g. a 1000-class ImageNet head for a 4-class model).
    pub skipped: Vec<String>,
    /// File tensors the model has no parameter for.
    pub unused: Vec<String>,
}

/// Copies `tensors` into `varmap` by name. Shapes must match, except for
/// names starting with `skip_prefix` (the classifier), which are skipped
/// when they do not fit. Any other missing backbone parameter is an error.
pub fn load_into(varmap: &VarMap, tensors: &BTreeMap<String, Tensor>, skip_prefix: &str) -> Result<LoadReport> {
    let mut report = LoadReport::default();
    let data = varmap.data().lock().map_err(|_| anyhow::anyhow!("the model's parameters are locked"))?;
    for (name, var) in data.iter() {
        match tensors.get(name) {
            Some(t) if t.dims() == var.dims() => {
                var.set(&t.to_dtype(var.dtype())?)?;
                report.loaded += 1;
            }
            Some(t) if name.starts_with(skip_prefix) => report.skipped.push(format!("{name}: file {:?}, model {:?}", t.dims(), var.dims())),
            Some(t) => bail!("parameter {name}: the file has shape {:?}, the model {:?}; wrong architecture or width?", t.dims(), var.dims()),
            None if name.starts_with(skip_prefix) => report.skipped.push(format!("{name}: not in the file")),
            None => report.missing.push(name.clone()),
        }
    }
    report.unused = tensors.keys().filter(|k| !data.contains_key(*k) && !k.ends_with("num_batches_tracked")).cloned().collect();
    if !report.missing.is_empty() {
        bail!(
            "the weights file lacks {} of the model's parameters (first: {}); it is not for this architecture",
            report.missing.len(),
            report.missing[0]
        );
    }
    Ok(report)
}

/// Sets `model` (whose parameters live in a VarMap) from an ONNX file that
/// the trainer exported: each conv's folded weight and bias (`{path}.weight`,
/// `{path}.bias`, expanded to f32 whatever their storage) become the conv
/// weight and a BatchNorm that adds the bias and scales by one (γ = 1,
/// β = bias, μ = 0, σ² = 1 − ε), and the classifier is copied. Files
/// exported before initializers carried the parameter paths name the layers
/// by position instead (`stem`, `blocks.{b}.{l}`, `head_conv`, `classifier`);
/// both are read. A DenseNet's pre-activation BatchNorms and its convs
/// without a BatchNorm after them are stored under their own parameter
/// paths. Returns the number of layers set; other files are refused.
pub fn load_onnx_into(model: &crate::models::Model, bytes: &[u8]) -> Result<usize> {
    use candle_core::Var;
    let package = mriscreen::ModelPackage::read(bytes, &Default::default())?;
    let graph = package.proto.graph.as_ref().context("the ONNX file has no graph")?;
    // The first of `names` the file has, checked against the model's shape.
    let find = |names: [String; 2], dims: &[usize]| -> Result<Tensor> {
        let t = names.iter().find_map(|n| graph.initializer.iter().find(|t| &t.name == n)).with_context(|| {
            format!("the ONNX file has no initializer `{}`: it was not exported by mriscreen for this architecture", names[0])
        })?;
        let have: Vec<usize> = t.dims.iter().map(|&d| d.max(0) as usize).collect();
        if have != dims {
            bail!("initializer `{}` has shape {have:?}, the model {dims:?}; wrong architecture or width?", t.name);
        }
        let v = mriscreen::model::tensor_data::values_f32(t).with_context(|| format!("cannot read initializer `{}`", t.name))?;
        Ok(Tensor::from_vec(v, dims, &Device::Cpu)?)
    };
    let set = |t: &Tensor, v: &Tensor| -> Result<()> { Ok(Var::from_tensor(t)?.set(v)?) };
    let mut convs = Vec::new();
    match (model, model.parts()) {
        (crate::models::Model::DenseNet(m), _) => convs.extend(m.conv_bns().into_iter().map(|c| (c, c.path().to_string()))),
        (_, Some((stem, blocks, last, _))) => {
            convs.push((stem, "stem".to_string()));
            for (b, block) in blocks.iter().enumerate() {
                convs.extend(block.layers.iter().enumerate().map(|(l, c)| (c, format!("blocks.{b}.{l}"))));
            }
            convs.push((last, "head_conv".into()));
        }
        (_, None) => unreachable!("every family but DenseNet has the common parts"),
    }
    let mut layers = 0;
    for (c, position) in convs {
        let out = c.weight().dim(0)?;
        let names = |kind: &str| [format!("{}.{kind}", c.path()), format!("{position}.{kind}")];
        set(c.weight(), &find(names("weight"), c.weight().dims())?)?;
        let bias = find(names("bias"), &[out])?;
        let bn = c.batch_norm();
        let (gamma, beta) = bn.weight_and_bias().context("BatchNorm without affine parameters")?;
        set(gamma, &Tensor::ones(out, DType::F32, &Device::Cpu)?)?;
        set(beta, &bias)?;
        set(bn.running_mean(), &Tensor::zeros(out, DType::F32, &Device::Cpu)?)?;
        set(bn.running_var(), &Tensor::full(1.0 - bn.eps() as f32, out, &Device::Cpu)?)?;
        layers += 1;
    }
    if let crate::models::Model::DenseNet(m) = model {
        // Pre-activation BatchNorms are in the file as they are; so are the
        // convs with nothing folded into them.
        let exact = |name: String| [name.clone(), name];
        for n in m.norms() {
            let (gamma, beta) = n.bn.weight_and_bias().context("BatchNorm without affine parameters")?;
            for (kind, t) in [("weight", gamma), ("bias", beta), ("running_mean", n.bn.running_mean()), ("running_var", n.bn.running_var())] {
                set(t, &find(exact(format!("{}.{kind}", n.path)), t.dims())?)?;
            }
            layers += 1;
        }
        for c in m.plain_convs() {
            set(&c.weight, &find(exact(format!("{}.weight", c.path)), c.weight.dims())?)?;
            layers += 1;
        }
    }
    let head = model.head();
    let w = head.linear.weight();
    set(w, &find([format!("{}.weight", head.path), "classifier.weight".into()], w.dims())?)?;
    let b = head.linear.bias().context("the classifier has no bias")?;
    set(b, &find([format!("{}.bias", head.path), "classifier.bias".into()], b.dims())?)?;
    Ok(layers + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{Arch, Model};
    use candle_nn::VarBuilder;

    fn model(seed: u64) -> (VarMap, Model) {
        let varmap = VarMap::new();
        let m = Model::new(VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu), Arch::MobileNetV2 { alpha: 0.35 }, 4, 0).unwrap();
        // Distinct values per seed, so a failed copy cannot pass unnoticed.
        for (name, var) in varmap.data().lock().unwrap().iter() {
            let n = var.elem_count();
            let salt = name.len() as u64;
            let v = mriscreen::rng::Rng::new(seed ^ salt).vec(n, 0.5, 1.5);
            var.set(&Tensor::from_vec(v, var.dims(), &Device::Cpu).unwrap()).unwrap();
        }
        (varmap, m)
    }

    #[test]
    fn safetensors_with_torchvision_names_load_by_name() {
        let (a, model_a) = model(1);
        let path = std::env::temp_dir().join(format!("mriscreen-weights-{}.safetensors", std::process::id()));
        a.save(&path).unwrap();
        let tensors = read_state_dict(&path).unwrap();
        assert!(tensors.contains_key("features.0.0.weight") && tensors.contains_key("classifier.1.weight"));
        let (b, model_b) = model(2);
        let report = load_into(&b, &tensors, "classifier.").unwrap();
        assert!(report.missing.is_empty() && report.skipped.is_empty() && report.unused.is_empty(), "{report:?}");
        let x = Tensor::ones((1, 3, 64, 64), DType::F32, &Device::Cpu).unwrap();
        let (ya, yb) = (model_a.forward_t(&x, false).unwrap(), model_b.forward_t(&x, false).unwrap());
        let d: f32 = (ya - yb).unwrap().abs().unwrap().max_all().unwrap().to_scalar().unwrap();
        assert_eq!(d, 0.0);
    }

    #[test]
    fn an_exported_onnx_file_initialises_the_same_model() {
        let (_, a) = model(1);
        let info = crate::export::ExportInfo {
            arch: Arch::MobileNetV2 { alpha: 0.35 },
            classes: mriscreen::CLASSES.iter().map(|c| c.to_string()).collect(),
            input: mriscreen::preprocess::InputSpec { width: 64, height: 64, ..Default::default() },
            precision: mriscreen::model::Precision::Fp32,
            temperature: 1.0,
            trained_on: "test".into(),
        };
        let bytes = crate::export::to_onnx(&a, &info).unwrap();
        let (_, b) = model(2);
        // 52 convs (stem, 2 + 16 × 3 in the blocks, last) and the classifier.
        assert_eq!(load_onnx_into(&b, &bytes).unwrap(), 53);
        let x = mriscreen::rng::Rng::new(3).vec(3 * 64 * 64, -1.0, 1.0);
        let x = Tensor::from_vec(x, (1, 3, 64, 64), &Device::Cpu).unwrap();
        let (ya, yb) = (a.forward_t(&x, false).unwrap(), b.forward_t(&x, false).unwrap());
        let scale: f32 = ya.abs().unwrap().max_all().unwrap().to_scalar().unwrap();
        let d: f32 = (ya - yb).unwrap().abs().unwrap().max_all().unwrap().to_scalar().unwrap();
        assert!(d <= 1e-4 * scale, "{d} of {scale}");
        let (_, lite) = {
            let varmap = VarMap::new();
            let m = Model::new(VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu), Arch::EfficientNetLite0, 4, 0).unwrap();
            (varmap, m)
        };
        assert!(load_onnx_into(&lite, &bytes).unwrap_err().to_string().contains("not exported by mriscreen for this architecture"));
    }

    #[test]
    fn wrong_architecture_and_garbage_are_refused() {
        let (a, _) = model(1);
        let path = std::env::temp_dir().join(format!("mriscreen-weights-lite-{}.safetensors", std::process::id()));
        a.save(&path).unwrap();
        let lite = VarMap::new();
        Model::new(VarBuilder::from_varmap(&lite, DType::F32, &Device::Cpu), Arch::EfficientNetLite0, 4, 0).unwrap();
        let e = load_into(&lite, &read_state_dict(&path).unwrap(), "_fc.").unwrap_err().to_string();
        assert!(e.contains("not for this architecture"), "{e}");
        let junk = std::env::temp_dir().join(format!("mriscreen-weights-junk-{}.pth", std::process::id()));
        std::fs::write(&junk, b"definitely not weights").unwrap();
        assert!(read_state_dict(&junk).unwrap_err().to_string().contains("not a PyTorch"));
    }

    #[test]
    fn torchvision_legacy_densenet_keys_load_by_name() {
        assert_eq!(modern_key("features.denseblock1.denselayer1.norm.1.weight"), "features.denseblock1.denselayer1.norm1.weight");
        assert_eq!(modern_key("features.denseblock4.denselayer16.conv.2.weight"), "features.denseblock4.denselayer16.conv2.weight");
        for k in ["features.0.0.weight", "features.norm0.running_var", "features.transition1.conv.weight", "classifier.1.weight", "features.3.conv.1.0.weight"] {
            assert_eq!(modern_key(k), k);
        }
        // A DenseNet state dict written with the legacy names loads completely.
        let arch = Arch::DenseNet(mriscreen::arch::DenseNet::D32);
        let a = VarMap::new();
        Model::new(VarBuilder::from_varmap(&a, DType::F32, &Device::Cpu), arch, 4, 0).unwrap();
        let legacy: HashMap<String, Tensor> = a
            .data()
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.replace(".norm1.", ".norm.1.").replace(".norm2.", ".norm.2.").replace(".conv1.", ".conv.1.").replace(".conv2.", ".conv.2."), v.as_tensor().clone()))
            .collect();
        assert!(legacy.contains_key("features.denseblock1.denselayer1.norm.1.weight"));
        let path = std::env::temp_dir().join(format!("mriscreen-weights-densenet-{}.safetensors", std::process::id()));
        candle_core::safetensors::save(&legacy, &path).unwrap();
        let b = VarMap::new();
        Model::new(VarBuilder::from_varmap(&b, DType::F32, &Device::Cpu), arch, 4, 1).unwrap();
        let report = load_into(&b, &read_state_dict(&path).unwrap(), "classifier.").unwrap();
        std::fs::remove_file(&path).ok();
        assert!(report.missing.is_empty() && report.unused.is_empty(), "{report:?}");
        assert_eq!(report.loaded, a.data().lock().unwrap().len());
    }
}
