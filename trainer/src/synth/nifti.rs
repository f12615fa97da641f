//! A small NIfTI-1 reader for the anatomy volumes of the synthetic benchmark:
//! `.nii` and `.nii.gz`, either byte order (detected from `sizeof_hdr` = 348),
//! datatypes uint8/int8/int16/uint16/int32/float32/float64, `scl_slope` and
//! `scl_inter`, and the voxel-to-world affine from the sform, else the qform,
//! else `pixdim` (methods 3, 2 and 1 of the NIfTI-1 header spec, `nifti1.h`,
//! NIfTI Data Format Working Group 2004). Only the first 3-D volume is read.
//! A bad file gives an error naming it, never a panic; the header is checked
//! before any voxel is read, so a corrupt or hostile file cannot make us
//! decompress or allocate more than its dimensions honestly need.

use anyhow::{bail, Context, Result};
use std::io::Read;
use std::path::Path;

/// Largest accepted size along any axis (a brain at 0.2 mm is ~900 voxels).
pub const MAX_DIM: usize = 1024;
/// Largest accepted volume (2^28 voxels, 1 GiB as f32).
pub const MAX_VOXELS: usize = 1 << 28;

/// One 3-D volume, x fastest: `data[x + nx * (y + ny * z)]`.
#[derive(Debug, Clone)]
pub struct Volume {
    pub dims: [usize; 3],
    /// Voxel size in mm (`pixdim[1..4]`).
    pub pixdim: [f32; 3],
    /// Voxel index → world (scanner/template) coordinates in mm, rows x, y, z.
    pub affine: [[f64; 4]; 3],
    /// Where the affine came from: "sform", "qform" or "pixdim".
    pub affine_source: &'static str,
    /// Scaled voxel values (`raw * scl_slope + scl_inter`); non-finite values become 0.
    pub data: Vec<f32>,
}

/// Reads a `.nii` or `.nii.gz` file (gzip is recognised by its magic bytes).
pub fn read(path: &Path) -> Result<Volume> {
    let file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut head = [0u8; 2];
    let mut reader = std::io::BufReader::new(file);
    let gz = {
        use std::io::BufRead;
        let buf = reader.fill_buf().with_context(|| format!("cannot read {}", path.display()))?;
        if buf.len() >= 2 {
            head.copy_from_slice(&buf[..2]);
        }
        head == [0x1f, 0x8b]
    };
    let result = if gz { parse(flate2::read::MultiGzDecoder::new(reader)) } else { parse(reader) };
    result.with_context(|| format!("{} is not a readable NIfTI-1 volume", path.display()))
}

/// Parses a NIfTI-1 stream (already decompressed).
pub fn parse<R: Read>(mut r: R) -> Result<Volume> {
    let mut h = [0u8; 348];
    read_full(&mut r, &mut h).context("truncated: the 348-byte header is incomplete")?;
    let le = i32::from_le_bytes([h[0], h[1], h[2], h[3]]);
    let be = i32::from_be_bytes([h[0], h[1], h[2], h[3]]);
    let big = match (le, be) {
        (348, _) => false,
        (_, 348) => true,
        (540, _) | (_, 540) => bail!("this is a NIfTI-2 file; only NIfTI-1 is supported"),
        _ => bail!("not a NIfTI-1 file (sizeof_hdr is {le}, expected 348)"),
    };
    let hd = Header { h: &h, big };
    match &h[344..348] {
        b"n+1\0" => {}
        b"ni1\0" => bail!("a two-file NIfTI (.hdr/.img) pair; convert it to a single .nii"),
        m => bail!("bad magic {m:?} (expected \"n+1\")"),
    }
    let ndim = hd.i16(40);
    if !(1..=7).contains(&ndim) {
        bail!("dim[0] = {ndim} is not in 1..=7");
    }
    let mut dims = [1usize; 3];
    for (k, d) in dims.iter_mut().enumerate() {
        if (k as i16) < ndim {
            let v = hd.i16(42 + 2 * k);
            if v < 1 || v as usize > MAX_DIM {
                bail!("dim[{}] = {v} is absurd (accepted: 1..={MAX_DIM})", k + 1);
            }
            *d = v as usize;
        }
    }
    let datatype = hd.i16(70);
    let (bytes, name) = match datatype {
        2 => (1, "uint8"),
        4 => (2, "int16"),
        8 => (4, "int32"),
        16 => (4, "float32"),
        64 => (8, "float64"),
        256 => (1, "int8"),
        512 => (2, "uint16"),
        other => bail!("unsupported datatype {other} (supported: uint8, int8, int16, uint16, int32, float32, float64)"),
    };
    let mut pixdim = [1f32; 3];
    for (k, p) in pixdim.iter_mut().enumerate() {
        let v = hd.f32(80 + 4 * k);
        if v.is_finite() && v > 0.0 {
            *p = v;
        }
    }
    let vox_offset = hd.f32(108);
    if !(vox_offset.is_finite() && (0.0..=1.0e7).contains(&vox_offset)) {
        bail!("vox_offset = {vox_offset} is invalid");
    }
    let vox_offset = (vox_offset as usize).max(348);
    let (mut slope, inter) = (hd.f32(112), hd.f32(116));
    if !slope.is_finite() || slope == 0.0 {
        slope = 1.0;
    }
    let inter = if inter.is_finite() { inter } else { 0.0 };
    let (affine, affine_source) = affine(&hd, pixdim);

    // Skip any extensions, then read exactly the first volume.
    let mut skip = vec![0u8; vox_offset - 348];
    read_full(&mut r, &mut skip).context("truncated: the file ends before vox_offset")?;
    let n = dims[0] * dims[1] * dims[2];
    if n > MAX_VOXELS {
        bail!("{}x{}x{} = {n} voxels is more than the {MAX_VOXELS} accepted", dims[0], dims[1], dims[2]);
    }
    // Grow with the data actually present, so a lying header cannot make us
    // allocate gigabytes up front.
    let mut raw = Vec::new();
    (&mut r).take((n * bytes) as u64).read_to_end(&mut raw).context("read error (corrupt gzip stream?)")?;
    if raw.len() < n * bytes {
        bail!(
            "truncated: expected {} bytes of {name} voxel data for {}x{}x{}, found {}",
            n * bytes,
            dims[0],
            dims[1],
            dims[2],
            raw.len()
        );
    }
    let data = raw
        .chunks_exact(bytes)
        .map(|c| {
            let v = decode(c, datatype, big);
            let v = v as f32 * slope + inter;
            if v.is_finite() { v } else { 0.0 }
        })
        .collect();
    Ok(Volume { dims, pixdim, affine, affine_source, data })
}

struct Header<'a> {
    h: &'a [u8; 348],
    big: bool,
}

impl Header<'_> {
    fn i16(&self, at: usize) -> i16 {
        let b = [self.h[at], self.h[at + 1]];
        if self.big { i16::from_be_bytes(b) } else { i16::from_le_bytes(b) }
    }
    fn f32(&self, at: usize) -> f32 {
        let b = [self.h[at], self.h[at + 1], self.h[at + 2], self.h[at + 3]];
        if self.big { f32::from_be_bytes(b) } else { f32::from_le_bytes(b) }
    }
}

fn decode(c: &[u8], datatype: i16, big: bool) -> f64 {
    macro_rules! num {
        ($t:ty) => {{
            let b = c.try_into().unwrap_or_default();
            (if big { <$t>::from_be_bytes(b) } else { <$t>::from_le_bytes(b) }) as f64
        }};
    }
    match datatype {
        2 => c[0] as f64,
        256 => c[0] as i8 as f64,
        4 => num!(i16),
        512 => num!(u16),
        8 => num!(i32),
        16 => num!(f32),
        _ => num!(f64),
    }
}

/// The voxel → world affine: sform (method 3), else qform (method 2), else
/// pixdim scaling (method 1, orientation unknown; RAS index order assumed).
fn affine(hd: &Header, pixdim: [f32; 3]) -> ([[f64; 4]; 3], &'static str) {
    let finite = |m: &[[f64; 4]; 3]| m.iter().flatten().all(|v| v.is_finite());
    if hd.i16(254) > 0 {
        let mut m = [[0f64; 4]; 3];
        for (r, row) in m.iter_mut().enumerate() {
            for (c, v) in row.iter_mut().enumerate() {
                *v = hd.f32(280 + 16 * r + 4 * c) as f64;
            }
        }
        if finite(&m) && det3(&m).abs() > 1e-9 {
            return (m, "sform");
        }
    }
    if hd.i16(252) > 0 {
        let (b, c, d) = (hd.f32(256) as f64, hd.f32(260) as f64, hd.f32(264) as f64);
        let a = (1.0 - (b * b + c * c + d * d)).max(0.0).sqrt();
        let qfac = if hd.f32(76) < 0.0 { -1.0 } else { 1.0 };
        let r = [
            [a * a + b * b - c * c - d * d, 2.0 * (b * c - a * d), 2.0 * (b * d + a * c)],
            [2.0 * (b * c + a * d), a * a + c * c - b * b - d * d, 2.0 * (c * d - a * b)],
            [2.0 * (b * d - a * c), 2.0 * (c * d + a * b), a * a + d * d - c * c - b * b],
        ];
        let s = [pixdim[0] as f64, pixdim[1] as f64, qfac * pixdim[2] as f64];
        let off = [hd.f32(268) as f64, hd.f32(272) as f64, hd.f32(276) as f64];
        let mut m = [[0f64; 4]; 3];
        for i in 0..3 {
            for j in 0..3 {
                m[i][j] = r[i][j] * s[j];
            }
            m[i][3] = off[i];
        }
        if finite(&m) && det3(&m).abs() > 1e-9 {
            return (m, "qform");
        }
    }
    let mut m = [[0f64; 4]; 3];
    for (i, row) in m.iter_mut().enumerate() {
        row[i] = pixdim[i] as f64;
    }
    (m, "pixdim")
}

pub fn det3(m: &[[f64; 4]; 3]) -> f64 {
    m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
}

/// `read_exact` with an error that says how far it got.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<()> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => bail!("end of data after {got} of {} bytes", buf.len()),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).context("read error (corrupt gzip stream?)"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A header for a `dims` volume with the given datatype, byte order and an sform.
    fn header(dims: [i16; 3], datatype: i16, bitpix: i16, big: bool) -> Vec<u8> {
        let mut h = vec![0u8; 352];
        let order = |le: &[u8], be: &[u8]| if big { be.to_vec() } else { le.to_vec() };
        let put = |h: &mut Vec<u8>, at: usize, b: Vec<u8>| h[at..at + b.len()].copy_from_slice(&b);
        let put_i32 = |h: &mut Vec<u8>, at: usize, v: i32| put(h, at, order(&v.to_le_bytes(), &v.to_be_bytes()));
        let put_i16 = |h: &mut Vec<u8>, at: usize, v: i16| put(h, at, order(&v.to_le_bytes(), &v.to_be_bytes()));
        let put_f32 = |h: &mut Vec<u8>, at: usize, v: f32| put(h, at, order(&v.to_le_bytes(), &v.to_be_bytes()));
        put_i32(&mut h, 0, 348);
        put_i16(&mut h, 40, 3);
        for k in 0..3 {
            put_i16(&mut h, 42 + 2 * k, dims[k]);
        }
        put_i16(&mut h, 70, datatype);
        put_i16(&mut h, 72, bitpix);
        for k in 0..4 {
            put_f32(&mut h, 76 + 4 * k, if k == 0 { 1.0 } else { 2.0 });
        }
        put_f32(&mut h, 108, 352.0);
        put_i16(&mut h, 254, 1);
        // sform: 2 mm voxels, x flipped (LAS), origin (10, -20, 30).
        let srow = [[-2.0, 0.0, 0.0, 10.0], [0.0, 2.0, 0.0, -20.0], [0.0, 0.0, 2.0, 30.0]];
        for (r, row) in srow.iter().enumerate() {
            for (c, v) in row.iter().enumerate() {
                put_f32(&mut h, 280 + 16 * r + 4 * c, *v);
            }
        }
        h[344..348].copy_from_slice(b"n+1\0");
        h
    }

    /// Writes `bytes` (gzipped or not) to a temp file, reads it back, removes it.
    fn read_temp(name: &str, bytes: &[u8], gz: bool) -> Result<Volume> {
        let path = temp(name, bytes, gz);
        let result = read(&path);
        let _ = std::fs::remove_file(&path);
        result
    }

    fn temp(name: &str, bytes: &[u8], gz: bool) -> std::path::PathBuf {
        // The name stays last: error messages must name the file.
        let path = std::env::temp_dir().join(format!("mriscreen-nifti-unit-{}-{name}", std::process::id()));
        let mut f = std::fs::File::create(&path).unwrap();
        if gz {
            let mut e = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
            e.write_all(bytes).unwrap();
            e.finish().unwrap();
        } else {
            f.write_all(bytes).unwrap();
        }
        path
    }

    #[test]
    fn reads_every_datatype_in_both_byte_orders_plain_and_gzipped() {
        let values = [0.0f64, 1.0, 7.0, 42.0, 100.0, 3.0];
        for big in [false, true] {
            for (dt, bytes) in [(2i16, 1usize), (256, 1), (4, 2), (512, 2), (8, 4), (16, 4), (64, 8)] {
                let mut b = header([3, 2, 1], dt, 8 * bytes as i16, big);
                for v in values {
                    let enc: Vec<u8> = match (dt, big) {
                        (2, _) => vec![v as u8],
                        (256, _) => vec![v as i8 as u8],
                        (4, false) => (v as i16).to_le_bytes().to_vec(),
                        (4, true) => (v as i16).to_be_bytes().to_vec(),
                        (512, false) => (v as u16).to_le_bytes().to_vec(),
                        (512, true) => (v as u16).to_be_bytes().to_vec(),
                        (8, false) => (v as i32).to_le_bytes().to_vec(),
                        (8, true) => (v as i32).to_be_bytes().to_vec(),
                        (16, false) => (v as f32).to_le_bytes().to_vec(),
                        (16, true) => (v as f32).to_be_bytes().to_vec(),
                        (_, false) => v.to_le_bytes().to_vec(),
                        (_, true) => v.to_be_bytes().to_vec(),
                    };
                    b.extend(enc);
                }
                for gz in [false, true] {
                    let name = format!("v_{dt}_{big}_{gz}.nii{}", if gz { ".gz" } else { "" });
                    let vol = read_temp(&name, &b, gz).unwrap();
                    assert_eq!(vol.dims, [3, 2, 1], "{name}");
                    assert_eq!(vol.pixdim, [2.0, 2.0, 2.0], "{name}");
                    assert_eq!(vol.affine_source, "sform");
                    assert_eq!(vol.affine[0], [-2.0, 0.0, 0.0, 10.0]);
                    let got: Vec<f64> = vol.data.iter().map(|v| *v as f64).collect();
                    assert_eq!(got, values, "{name}");
                }
            }
        }
    }

    #[test]
    fn applies_slope_and_intercept() {
        let mut b = header([2, 1, 1], 2, 8, false);
        b[112..116].copy_from_slice(&0.5f32.to_le_bytes());
        b[116..120].copy_from_slice(&(-1.0f32).to_le_bytes());
        b.extend([4u8, 10]);
        let vol = read_temp("slope.nii", &b, false).unwrap();
        assert_eq!(vol.data, vec![1.0, 4.0]);
    }

    #[test]
    fn qform_is_used_without_an_sform() {
        let mut b = header([1, 1, 1], 2, 8, false);
        b[254..256].copy_from_slice(&0i16.to_le_bytes());
        b[252..254].copy_from_slice(&1i16.to_le_bytes());
        // Quaternion (b, c, d) = (0, 0, 1): 180° about z, so x and y flip.
        b[264..268].copy_from_slice(&1.0f32.to_le_bytes());
        b[268..272].copy_from_slice(&5.0f32.to_le_bytes());
        b.push(9);
        let vol = read_temp("qform.nii", &b, false).unwrap();
        assert_eq!(vol.affine_source, "qform");
        let m = vol.affine;
        assert!((m[0][0] + 2.0).abs() < 1e-6 && (m[1][1] + 2.0).abs() < 1e-6 && (m[2][2] - 2.0).abs() < 1e-6, "{m:?}");
        assert_eq!(m[0][3], 5.0);
    }

    #[test]
    fn bad_files_give_errors_not_panics() {
        let good = {
            let mut b = header([2, 2, 2], 2, 8, false);
            b.extend([1u8; 8]);
            b
        };
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("empty.nii", vec![], "truncated"),
            ("text.nii", b"hello, this is not a volume at all".to_vec(), "truncated"),
            ("garbage.nii", vec![7u8; 400], "not a NIfTI-1 file"),
            ("short_data.nii", good[..good.len() - 3].to_vec(), "truncated"),
            ("absurd.nii", {
                let mut b = good.clone();
                b[42..44].copy_from_slice(&5000i16.to_le_bytes());
                b
            }, "absurd"),
            ("huge.nii", {
                // Claims 1.6 GB of float64 but holds 8 bytes: must not allocate it.
                let mut b = good.clone();
                for (at, v) in [(42, 1000i16), (44, 1000), (46, 200), (70, 64)] {
                    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
                }
                b
            }, "truncated"),
            ("rgb.nii", {
                let mut b = good.clone();
                b[70..72].copy_from_slice(&128i16.to_le_bytes());
                b
            }, "unsupported datatype 128"),
            ("magic.nii", {
                let mut b = good.clone();
                b[344..348].copy_from_slice(b"xyz\0");
                b
            }, "magic"),
        ];
        for (name, bytes, want) in cases {
            for gz in [false, true] {
                let file = format!("{name}{}", if gz { ".gz" } else { "" });
                let err = read_temp(&file, &bytes, gz).unwrap_err();
                let msg = format!("{err:#}");
                assert!(msg.contains(want) && msg.contains(&file), "{file}: {msg}");
            }
        }
        // A file that claims to be gzip but is not.
        let err = read_temp("broken.nii.gz", &[0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6, 7], false).unwrap_err();
        assert!(format!("{err:#}").contains("broken.nii.gz"));
        assert!(read(Path::new("/nonexistent/nope.nii")).is_err());
    }
}
