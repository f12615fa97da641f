//! Checkpoints: the model's parameters, the optimizer's moments and the
//! training state in ONE safetensors file (the state as JSON in its
//! metadata), written to a temporary file and renamed into place, so a kill
//! at any moment leaves either the previous checkpoint or the new one —
//! never a mix. `--resume` loses at most the epoch that was running.

use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use safetensors::tensor::TensorView;
use serde::{de::DeserializeOwned, Serialize};
use std::collections::HashMap;
use std::path::Path;

const STATE_KEY: &str = "mriscreen.train_state";

/// Writes `tensors` (f32) and `state` to `path` atomically.
pub fn save<S: Serialize>(path: &Path, tensors: &HashMap<String, Tensor>, state: &S) -> Result<()> {
    let mut owned: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let data: Vec<f32> = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
        owned.push((name.clone(), t.dims().to_vec(), data.iter().flat_map(|v| v.to_le_bytes()).collect()));
    }
    let views = owned
        .iter()
        .map(|(n, shape, bytes)| Ok((n.as_str(), TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes)?)))
        .collect::<Result<Vec<_>>>()?;
    let meta = HashMap::from([(STATE_KEY.to_string(), serde_json::to_string(state)?)]);
    let tmp = path.with_extension("safetensors.tmp");
    safetensors::serialize_to_file(views, Some(meta), &tmp).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming {} into place", tmp.display()))?;
    Ok(())
}

/// Reads a checkpoint written by [`save`].
pub fn load<S: DeserializeOwned>(path: &Path) -> Result<(HashMap<String, Tensor>, S)> {
    let bytes = std::fs::read(path).with_context(|| format!("reading checkpoint {}", path.display()))?;
    let st = safetensors::SafeTensors::deserialize(&bytes).with_context(|| format!("{} is not a safetensors checkpoint", path.display()))?;
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes)?;
    let state = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get(STATE_KEY))
        .with_context(|| format!("{} has no training state; it is not a mriscreen checkpoint", path.display()))?;
    let state = serde_json::from_str(state).with_context(|| format!("{}: unreadable training state", path.display()))?;
    let mut tensors = HashMap::new();
    for (name, view) in st.tensors() {
        let t = Tensor::from_raw_buffer(view.data(), DType::F32, view.shape(), &Device::Cpu)?;
        tensors.insert(name, t);
    }
    Ok((tensors, state))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_no_partial_file() {
        let dir = std::env::temp_dir().join(format!("mriscreen-ckpt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("checkpoint.safetensors");
        let t = Tensor::new(&[[1f32, 2.0], [3.0, 4.0]], &Device::Cpu).unwrap();
        let tensors = HashMap::from([("w".to_string(), t)]);
        save(&path, &tensors, &("stage", 2u32)).unwrap();
        let (back, state): (_, (String, u32)) = load(&path).unwrap();
        assert_eq!(state, ("stage".to_string(), 2));
        assert_eq!(back["w"].to_vec2::<f32>().unwrap(), vec![vec![1.0, 2.0], vec![3.0, 4.0]]);
        assert!(!dir.join("checkpoint.safetensors.tmp").exists());
        std::fs::write(dir.join("bad.safetensors"), b"not a checkpoint").unwrap();
        assert!(load::<u32>(&dir.join("bad.safetensors")).is_err());
    }
}
