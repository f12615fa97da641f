//! Reading and writing ONNX initializer values: every storage form the
//! loader meets (raw little-endian bytes or the typed repeated fields) for
//! float32/64, float16, int8/uint8, packed int4/uint4, int32 and int64.

use super::pb::{tensor_proto::DataType, TensorProto};

/// Element count of a tensor with these dims (a scalar has none and one element).
pub fn element_count(dims: &[i64]) -> usize {
    dims.iter().map(|&d| d.max(0) as usize).product()
}

fn dtype(t: &TensorProto) -> Option<DataType> {
    DataType::try_from(t.data_type).ok()
}

/// The tensor's values as f32 (integers converted exactly where they fit),
/// or `None` for a type or storage we cannot read (strings, external data).
pub fn values_f32(t: &TensorProto) -> Option<Vec<f32>> {
    let n = element_count(&t.dims);
    let raw = &t.raw_data;
    let from_raw = !raw.is_empty();
    let v: Vec<f32> = match dtype(t)? {
        DataType::Float if from_raw => raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
        DataType::Float => t.float_data.clone(),
        DataType::Double if from_raw => raw
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as f32)
            .collect(),
        DataType::Double => t.double_data.iter().map(|&v| v as f32).collect(),
        DataType::Float16 if from_raw => raw.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
        DataType::Float16 => t.int32_data.iter().map(|&v| half::f16::from_bits(v as u16).to_f32()).collect(),
        DataType::Int8 if from_raw => raw.iter().map(|&b| f32::from(b as i8)).collect(),
        DataType::Uint8 if from_raw => raw.iter().map(|&b| f32::from(b)).collect(),
        DataType::Int8 | DataType::Uint8 | DataType::Int32 | DataType::Int16 | DataType::Uint16 if !from_raw => {
            t.int32_data.iter().map(|&v| v as f32).collect()
        }
        DataType::Int32 => raw.chunks_exact(4).map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32).collect(),
        DataType::Int64 if from_raw => raw
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as f32)
            .collect(),
        DataType::Int64 => t.int64_data.iter().map(|&v| v as f32).collect(),
        DataType::Int4 | DataType::Uint4 => {
            let signed = dtype(t) == Some(DataType::Int4);
            let bytes: Vec<u8> = if from_raw { raw.clone() } else { t.int32_data.iter().map(|&v| v as u8).collect() };
            unpack_4bit(&bytes, n, signed)
        }
        _ => return None,
    };
    (v.len() == n).then_some(v)
}

/// The tensor's values as i64 (shapes, axes), when it holds integers.
pub fn values_i64(t: &TensorProto) -> Option<Vec<i64>> {
    match dtype(t)? {
        DataType::Int64 if t.raw_data.is_empty() => Some(t.int64_data.clone()),
        DataType::Int64 => Some(t.raw_data.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap_or([0; 8]))).collect()),
        DataType::Int32 | DataType::Int8 | DataType::Uint8 => values_f32(t).map(|v| v.iter().map(|&x| x as i64).collect()),
        _ => None,
    }
}

/// ONNX 4-bit packing: two elements per byte, the first in the low nibble
/// (missing bytes read as zeros).
pub fn unpack_4bit(bytes: &[u8], n: usize, signed: bool) -> Vec<f32> {
    let decode = |nib: u8| if signed { f32::from(((nib << 4) as i8) >> 4) } else { f32::from(nib) };
    let mut out = Vec::with_capacity(n + 1);
    for &b in bytes.iter().take(n.div_ceil(2)) {
        out.push(decode(b & 0x0F));
        out.push(decode(b >> 4));
    }
    out.resize(n, 0.0);
    out
}

/// Little-endian bytes of `values` (an initializer's `raw_data`), written
/// into one allocation of the final size.
pub fn le_bytes<T: Copy, const N: usize>(values: &[T], to_le: fn(T) -> [u8; N]) -> Vec<u8> {
    let mut raw = vec![0; values.len() * N];
    for (bytes, &v) in raw.chunks_exact_mut(N).zip(values) {
        bytes.copy_from_slice(&to_le(v));
    }
    raw
}

/// Packs 4-bit values (already in range) two per byte, low nibble first.
pub fn pack_4bit(values: &[i8]) -> Vec<u8> {
    values.chunks(2).map(|p| (p[0] as u8 & 0x0F) | ((p.get(1).copied().unwrap_or(0) as u8 & 0x0F) << 4)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::builder::{f32_tensor, raw_tensor};

    #[test]
    fn reads_every_storage_form() {
        let f = f32_tensor("f", &[2], &[1.5, -2.0]);
        assert_eq!(values_f32(&f), Some(vec![1.5, -2.0]));
        let typed = TensorProto { data_type: DataType::Float as i32, dims: vec![2], float_data: vec![3.0, 4.0], ..Default::default() };
        assert_eq!(values_f32(&typed), Some(vec![3.0, 4.0]));
        let h = raw_tensor("h", DataType::Float16, &[1], half::f16::from_f32(0.5).to_le_bytes().to_vec());
        assert_eq!(values_f32(&h), Some(vec![0.5]));
        let i8t = raw_tensor("q", DataType::Int8, &[3], vec![0xFF, 0x7F, 0x80]);
        assert_eq!(values_f32(&i8t), Some(vec![-1.0, 127.0, -128.0]));
        let short = raw_tensor("s", DataType::Float, &[3], vec![0; 8]);
        assert_eq!(values_f32(&short), None, "a wrong element count is refused");
    }

    #[test]
    fn four_bit_round_trip() {
        let v: Vec<i8> = vec![-8, 7, 0, -1, 3];
        let packed = pack_4bit(&v);
        assert_eq!(packed.len(), 3);
        assert_eq!(packed[0], 0x78, "first element in the low nibble");
        let back = unpack_4bit(&packed, 5, true);
        assert_eq!(back, vec![-8.0, 7.0, 0.0, -1.0, 3.0]);
        assert_eq!(unpack_4bit(&[0xF0], 2, false), vec![0.0, 15.0]);
    }
}
