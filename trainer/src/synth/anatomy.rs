//! Real anatomy for the synthetic benchmark: T1 volumes in (approximately)
//! MNI space with a brain mask, normalised so white matter = 1. Colin27
//! (Holmes et al. 1998, Debian `mricron-data`: `ch2.nii.gz` head +
//! `ch2bet.nii.gz` brain) is the default; MNI152 2009a (Fonov et al. 2011,
//! from the `nilearn` wheel) and user volumes are added when present. From
//! each volume we derive what the lesion and slice models need: a signed
//! distance to the brain surface, the head (non-air) region, tissue levels
//! (3-class k-means inside the brain), the midline, the sella turcica and
//! the brain area per slice level. A brain-extracted volume without a head
//! gets a synthetic CSF / skull / marrow / scalp shell at render time.

use super::detmath;
use super::nifti;
use super::volume::{self, Grid};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// Where Debian's `mricron-data` installs Colin27.
pub const MRICRON_DIR: &str = "/usr/share/mricron/templates";
/// The MNI152 2009a T1 inside `$MRISCREEN_CACHE` (scripts/setup puts it there).
pub const MNI152_CACHE_PATH: &str = "mni152/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz";

/// Sella turcica (pituitary fossa) as a fraction of the brain mask's bounding
/// box along y and z, measured on Colin27 (`ch2bet`: brain y −106…73 mm,
/// z −67…84 mm; gland at y ≈ 2, z ≈ −28 mm) and checked on MNI152 2009a.
const SELLA_FRAC_Y: f32 = 0.603;
const SELLA_FRAC_Z: f32 = 0.258;

/// One input file and its SHA-256, for the README.
#[derive(Debug, Clone)]
pub struct Source {
    pub path: PathBuf,
    pub sha256: String,
}

/// What to load: a head volume and, optionally, its brain mask.
#[derive(Debug, Clone)]
pub struct Spec {
    pub name: String,
    pub head: PathBuf,
    pub mask: Option<PathBuf>,
}

pub struct Anatomy {
    pub name: String,
    pub sources: Vec<Source>,
    /// T1 intensity, white matter = 1.
    pub t1: Grid<f32>,
    /// Brain mask (0/1), full resolution.
    pub brain: Grid<u8>,
    /// Signed distance to the brain surface (mm, + inside), 2 mm grid.
    pub sd: Grid<f32>,
    /// Head (not air) 0/1, 2 mm grid.
    pub head: Grid<u8>,
    /// True when the volume is brain only: render a synthetic skull and scalp.
    pub synthetic_shell: bool,
    /// A real whole head with its own brain mask (can lend its head to others).
    pub whole_head: bool,
    /// Mean CSF, grey and white matter intensity (white = 1).
    pub csf: f32,
    pub gm: f32,
    /// World x of the midline (brain centroid), and the centroid itself.
    pub mid_x: f32,
    pub centroid: [f32; 3],
    pub sella: [f32; 3],
    /// Grid, voxel size and where its orientation came from, for the README.
    pub geometry: String,
    /// Brain area (mm²) per 1 mm level along world x, y, z: (first level, areas).
    pub area: [(i32, Vec<f32>); 3],
}

/// The default anatomy list: Colin27 (required unless `extra` is given) and
/// MNI152 when it is in the cache, then the `extra` specs.
pub fn default_specs(mricron_dir: &Path, cache: Option<&Path>, extra: &[Spec]) -> Result<Vec<Spec>> {
    let mut specs = Vec::new();
    let ch2 = mricron_dir.join("ch2.nii.gz");
    let bet = mricron_dir.join("ch2bet.nii.gz");
    if ch2.is_file() && bet.is_file() {
        specs.push(Spec { name: "colin27".into(), head: ch2, mask: Some(bet) });
    } else if extra.is_empty() {
        bail!(
            "the Colin27 template is missing ({} and ch2bet.nii.gz): install it with \
             `apt-get install mricron-data` (or run scripts/setup), or pass a T1 volume with --anatomy",
            ch2.display()
        );
    } else {
        eprintln!("note: Colin27 not found in {}; using only --anatomy volumes", mricron_dir.display());
    }
    if let Some(cache) = cache {
        let mni = cache.join(MNI152_CACHE_PATH);
        if mni.is_file() {
            specs.push(Spec { name: "mni152_2009a".into(), head: mni, mask: None });
        }
    }
    specs.extend(extra.iter().cloned());
    Ok(specs)
}

/// Parses `--anatomy HEAD[,MASK]`.
pub fn parse_spec(s: &str) -> Spec {
    let (head, mask) = match s.split_once(',') {
        Some((h, m)) => (PathBuf::from(h), Some(PathBuf::from(m))),
        None => (PathBuf::from(s), None),
    };
    let name = head
        .file_name()
        .map(|f| f.to_string_lossy().trim_end_matches(".gz").trim_end_matches(".nii").to_string())
        .unwrap_or_else(|| "anatomy".into());
    Spec { name, head, mask }
}

fn source(path: &Path) -> Result<Source> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read anatomy file {}", path.display()))?;
    Ok(Source { path: path.to_path_buf(), sha256: mriscreen::model::sha256_hex(&bytes) })
}

impl Anatomy {
    /// Loads `spec`. A brain-only volume gets the skull, face and neck of
    /// `donor` (a whole-head anatomy in the same template space) around its
    /// own brain, with CSF where the donor's brain does not meet it; without
    /// a donor it gets a synthetic shell at render time.
    pub fn load(spec: &Spec, donor: Option<&Anatomy>) -> Result<Anatomy> {
        if !spec.head.is_file() {
            bail!("anatomy file {} does not exist (--anatomy takes a NIfTI-1 T1 volume, HEAD[,MASK])", spec.head.display());
        }
        let mut sources = vec![source(&spec.head)?];
        let head_vol = nifti::read(&spec.head)?;
        let geometry = format!(
            "{}×{}×{} voxels of {:.2}×{:.2}×{:.2} mm, orientation from the {}",
            head_vol.dims[0], head_vol.dims[1], head_vol.dims[2],
            head_vol.pixdim[0], head_vol.pixdim[1], head_vol.pixdim[2],
            head_vol.affine_source
        );
        if head_vol.affine_source == "pixdim" {
            eprintln!("warning: {} has no sform or qform; assuming RAS voxel order", spec.head.display());
        }
        let t1 = Grid::from_nifti(head_vol);
        let robust_max = percentile(&t1.data, 0.995).max(1e-6);
        let brain_data: Vec<u8> = match &spec.mask {
            Some(mp) => {
                sources.push(source(mp)?);
                let m = nifti::read(mp)?;
                if m.dims != t1.dims {
                    bail!("mask {} is {:?} but the head {} is {:?}", mp.display(), m.dims, spec.head.display(), t1.dims);
                }
                m.data.iter().map(|&v| (v > 0.0) as u8).collect()
            }
            // Brain-extracted: the brain is what is not (near) zero.
            None => t1.data.iter().map(|&v| (v > 0.02 * robust_max) as u8).collect(),
        };
        // Fill holes (ventricles darker than the threshold, cysts).
        let outside = volume::flood_from_border(t1.dims, |i| brain_data[i] == 0);
        let brain_data: Vec<u8> = outside.iter().map(|&o| (!o) as u8).collect();
        let n_brain = brain_data.iter().filter(|&&b| b > 0).count();
        if n_brain < 1000 {
            bail!("{}: the brain mask has only {n_brain} voxels; is this a T1 brain volume?", spec.head.display());
        }
        let brain = Grid::new(t1.dims, brain_data, t1.affine);

        // Tissue levels inside the brain; normalise white matter to 1.
        let inside: Vec<f32> = t1.data.iter().zip(&brain.data).filter(|(_, &b)| b > 0).map(|(&v, _)| v).collect();
        let [csf, gm, wm] = kmeans3(&inside);
        if !(wm > csf && wm > 0.0) {
            bail!("{}: cannot tell white matter from CSF (is it a T1 volume?)", spec.head.display());
        }
        let t1 = Grid::new(t1.dims, t1.data.iter().map(|v| v / wm).collect(), t1.affine);

        let donor = if spec.mask.is_none() { donor } else { None };
        let t1 = match donor {
            Some(d) => {
                sources.extend(d.sources.iter().cloned());
                transplant_head(&t1, &brain, d)
            }
            None => t1,
        };
        let coarse = volume::downsample(&brain, false);
        let sd = volume::signed_distance(&coarse);
        let synthetic_shell = spec.mask.is_none() && donor.is_none();
        let head = if synthetic_shell {
            let data = sd.data.iter().map(|&d| (d > -15.0) as u8).collect();
            Grid::new(sd.dims, data, sd.affine)
        } else {
            head_region(&t1)
        };

        // Geometry in world space.
        let mut sum = [0f64; 3];
        let mut lo = [f32::MAX; 3];
        let mut hi = [f32::MIN; 3];
        let mut area_raw: [Vec<(i32, f64)>; 3] = Default::default();
        let sp = brain.spacing();
        let voxel_mm3 = sp[0] * sp[1] * sp[2];
        let [nx, ny, nz] = brain.dims;
        let mut counts: [std::collections::BTreeMap<i32, f64>; 3] = Default::default();
        for z in 0..nz {
            for y in 0..ny {
                for x in 0..nx {
                    if brain.data[brain.idx(x, y, z)] == 0 {
                        continue;
                    }
                    let w = brain.world(x as f64, y as f64, z as f64);
                    for a in 0..3 {
                        sum[a] += w[a];
                        lo[a] = lo[a].min(w[a] as f32);
                        hi[a] = hi[a].max(w[a] as f32);
                        *counts[a].entry(w[a].round() as i32).or_default() += voxel_mm3;
                    }
                }
            }
        }
        for a in 0..3 {
            area_raw[a] = counts[a].iter().map(|(&k, &v)| (k, v)).collect();
        }
        let centroid = sum.map(|s| (s / n_brain as f64) as f32);
        let area = area_raw.map(|v| {
            let first = v.first().map(|p| p.0).unwrap_or(0);
            let last = v.last().map(|p| p.0).unwrap_or(0);
            let mut dense = vec![0f32; (last - first + 1) as usize];
            for (k, a) in v {
                dense[(k - first) as usize] = a as f32;
            }
            (first, dense)
        });
        let sella = [
            centroid[0],
            lo[1] + SELLA_FRAC_Y * (hi[1] - lo[1]),
            lo[2] + SELLA_FRAC_Z * (hi[2] - lo[2]),
        ];
        Ok(Anatomy {
            name: spec.name.clone(),
            sources,
            t1,
            brain,
            sd,
            head,
            synthetic_shell,
            whole_head: spec.mask.is_some(),
            csf: csf / wm,
            gm: gm / wm,
            mid_x: centroid[0],
            centroid,
            sella,
            geometry,
            area,
        })
    }

    /// Signed distance to the brain surface at `p` (mm, + inside; far outside
    /// beyond the grid).
    pub fn sd_at(&self, p: [f32; 3]) -> f32 {
        self.sd.sample_or(p, -100.0)
    }

    /// Brain area (mm²) of the axis-aligned slice at world `level` along `axis`.
    pub fn area_at(&self, axis: usize, level: f32) -> f32 {
        let (first, v) = &self.area[axis];
        let k = level.round() as i32 - first;
        if k < 0 || k as usize >= v.len() { 0.0 } else { v[k as usize] }
    }

    pub fn max_area(&self, axis: usize) -> f32 {
        self.area[axis].1.iter().cloned().fold(0.0, f32::max)
    }

    /// Intensity at world point `p` (white matter = 1), with the synthetic
    /// skull and scalp around a brain-only volume; `sd` is the signed
    /// distance there (mm).
    pub fn intensity(&self, p: [f32; 3], sd: f32, seed: u64) -> f32 {
        let v = self.t1.sample(p);
        if !self.synthetic_shell || sd > 1.0 {
            return v;
        }
        let inside = self.brain.sample(p);
        v + (1.0 - inside) * shell(-sd, p, seed)
    }
}

/// The donor's non-brain tissue around `brain`; CSF (0.3 × white matter)
/// fills the donor's brain where `brain` does not reach.
fn transplant_head(t1: &Grid<f32>, brain: &Grid<u8>, donor: &Anatomy) -> Grid<f32> {
    const CSF: f32 = 0.3;
    let [nx, ny, nz] = t1.dims;
    let mut data = t1.data.clone();
    for z in 0..nz {
        for y in 0..ny {
            for x in 0..nx {
                let i = t1.idx(x, y, z);
                if brain.data[i] > 0 {
                    continue;
                }
                let w = t1.world(x as f64, y as f64, z as f64);
                let p = [w[0] as f32, w[1] as f32, w[2] as f32];
                let db = donor.brain.sample(p);
                data[i] = donor.t1.sample(p) * (1.0 - db) + CSF * db;
            }
        }
    }
    Grid::new(t1.dims, data, t1.affine)
}

/// Layers outside the brain on T1 (Osborn's "Brain", ch. 1): CSF, dura,
/// inner table, fatty diploë, outer table, scalp fat, skin; thickness varies
/// smoothly around the head.
fn shell(depth: f32, p: [f32; 3], seed: u64) -> f32 {
    let k = 0.8 + 0.45 * detmath::fbm3(seed ^ 0xC0FFEE, p, 28.0);
    let t = depth / k;
    let tex = 0.85 + 0.3 * detmath::fbm3(seed ^ 0xBEEF, p, 2.5);
    let layers: [(f32, f32); 8] = [(1.5, 0.22), (2.3, 0.35), (3.6, 0.07), (6.4, 0.75), (7.6, 0.07), (11.0, 1.35), (13.5, 0.6), (1e9, 0.0)];
    let mut prev = 0.0;
    let mut val = 0.0;
    for (i, &(end, v)) in layers.iter().enumerate() {
        if t < end || i + 1 == layers.len() {
            // Soft transition (~0.4 mm) from the previous layer.
            let w = detmath::smoothstep(prev - 0.4, prev + 0.4, t);
            let before = if i == 0 { 0.22 } else { layers[i - 1].1 };
            val = before + (v - before) * w;
            break;
        }
        prev = end;
    }
    val * tex
}

/// Head = not air: air is what the border reaches through dark voxels (2 mm grid).
fn head_region(t1: &Grid<f32>) -> Grid<u8> {
    let solid: Vec<u8> = t1.data.iter().map(|&v| (v > 0.12) as u8).collect();
    let coarse = volume::downsample(&Grid::new(t1.dims, solid, t1.affine), true);
    let air = volume::flood_from_border(coarse.dims, |i| coarse.data[i] == 0);
    let data = air.iter().map(|&a| (!a) as u8).collect();
    Grid::new(coarse.dims, data, coarse.affine)
}

fn percentile(v: &[f32], q: f64) -> f32 {
    let mut hist = vec![0usize; 4096];
    let max = v.iter().cloned().fold(0.0f32, f32::max);
    if max <= 0.0 {
        return 0.0;
    }
    for &x in v {
        hist[((x.max(0.0) / max) * 4095.0) as usize] += 1;
    }
    let target = (q * v.len() as f64) as usize;
    let mut acc = 0;
    for (i, h) in hist.iter().enumerate() {
        acc += h;
        if acc >= target {
            return i as f32 / 4095.0 * max;
        }
    }
    max
}

/// 1-D k-means with 3 clusters (CSF, GM, WM) on a 1024-bin histogram.
fn kmeans3(v: &[f32]) -> [f32; 3] {
    let lo = v.iter().cloned().fold(f32::MAX, f32::min);
    let hi = v.iter().cloned().fold(f32::MIN, f32::max);
    if v.is_empty() || hi <= lo {
        return [0.0, 0.0, 0.0];
    }
    let bins = 1024;
    let mut hist = vec![0f64; bins];
    for &x in v {
        hist[(((x - lo) / (hi - lo)) * (bins - 1) as f32) as usize] += 1.0;
    }
    let val = |i: usize| lo as f64 + (hi - lo) as f64 * i as f64 / (bins - 1) as f64;
    let mut c = [0.1, 0.5, 0.9].map(|q| percentile(v, q) as f64);
    for _ in 0..50 {
        let mut s = [0f64; 3];
        let mut n = [0f64; 3];
        for (i, &h) in hist.iter().enumerate() {
            let x = val(i);
            let k = (0..3).min_by(|&a, &b| (x - c[a]).abs().total_cmp(&(x - c[b]).abs())).unwrap_or(0);
            s[k] += h * x;
            n[k] += h;
        }
        for k in 0..3 {
            if n[k] > 0.0 {
                c[k] = s[k] / n[k];
            }
        }
    }
    c.map(|x| x as f32)
}
