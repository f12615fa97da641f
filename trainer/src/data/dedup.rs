//! Duplicate and near-duplicate images, and the leakage between splits.
//!
//! Two fingerprints per image, from its 8-bit grey version at the original
//! size (the shared luminance, BT.601, rounded to 8 bits):
//! - **exact**: SHA-256 of width, height and grey pixels, so a PNG and a
//!   lossless re-encode of the same pixels are the same image;
//! - **perceptual**: the 64-bit DCT hash (Zauner 2010, "Implementation and
//!   benchmarking of perceptual image hash functions"), in the form of the
//!   Python `imagehash.phash`: grey → 32 × 32 (antialiased bilinear, the
//!   shared `resize`) → 2-D DCT-II → the top-left 8 × 8 lowest frequencies →
//!   bit set where a coefficient is above the median. The DC coefficient is
//!   left out (of the median, and its bit is always 0: 63 informative bits),
//!   so a brightness offset changes nothing until it clips; re-encoding and
//!   small edits move a few bits. (pHash.org drops the whole first row and
//!   column instead, which blinds it to purely horizontal or vertical
//!   structure.)
//!
//! Two images are near duplicates when their hashes differ in at most
//! `threshold` bits (default 6). All pairs are compared: n²/2 XOR + popcount,
//! about 25 million for 7,000 images, a few tens of milliseconds.

use super::Split;
use mriscreen::preprocess::{luminance, resize, Plane};
use serde::Serialize;
use std::collections::BTreeSet;

/// Examples kept per split pair and kind (exact / near).
const EXAMPLES: usize = 3;

/// The two fingerprints of one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// SHA-256 (hex) of width, height (little-endian u32) and 8-bit grey pixels.
    pub sha256: String,
    pub phash: u64,
}

/// A pair of images `a < b` (indices) whose hashes are within the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pair {
    pub a: usize,
    pub b: usize,
    pub distance: u32,
    /// Same grey pixels (same SHA-256), not only similar.
    pub exact: bool,
}

/// Both fingerprints of `image`.
pub fn fingerprint(image: &image::DynamicImage) -> Fingerprint {
    let grey = grey8(&luminance(image));
    let mut bytes = Vec::with_capacity(8 + grey.data.len());
    bytes.extend_from_slice(&(grey.width as u32).to_le_bytes());
    bytes.extend_from_slice(&(grey.height as u32).to_le_bytes());
    bytes.extend(grey.data.iter().map(|&v| v as u8));
    Fingerprint { sha256: mriscreen::model::sha256_hex(&bytes), phash: phash_plane(&grey) }
}

/// The 64-bit DCT perceptual hash of `image` (see the module docs).
#[cfg(test)]
pub fn phash(image: &image::DynamicImage) -> u64 {
    phash_plane(&grey8(&luminance(image)))
}

/// Rounds a [0, 1] plane to 8-bit steps, kept as f32 values 0..=255.
fn grey8(plane: &Plane) -> Plane {
    let data = plane.data.iter().map(|v| (v.clamp(0.0, 1.0) * 255.0).round()).collect();
    Plane { width: plane.width, height: plane.height, data }
}

/// pHash of a grey plane: 32 × 32, DCT-II, top-left 8 × 8 without DC, median.
pub fn phash_plane(plane: &Plane) -> u64 {
    const N: usize = 32;
    let small = resize(plane, N, N);
    // cos[k][n] = cos(π (2n + 1) k / 2N): the unnormalised DCT-II (scipy's
    // default, which imagehash uses); a common scale cannot change a median test.
    let cos: Vec<[f64; N]> = (0..8)
        .map(|k| std::array::from_fn(|n| (std::f64::consts::PI * (2 * n + 1) as f64 * k as f64 / (2 * N) as f64).cos()))
        .collect();
    // Columns first: rows[u][x] = Σ_y cos[u][y] · p[y][x].
    let mut rows = [[0.0f64; N]; 8];
    for (u, row) in rows.iter_mut().enumerate() {
        for y in 0..N {
            let c = cos[u][y];
            for (x, r) in row.iter_mut().enumerate() {
                *r += c * f64::from(small.data[y * N + x]);
            }
        }
    }
    let mut coef = [0.0f64; 64];
    for u in 0..8 {
        for v in 0..8 {
            coef[u * 8 + v] = (0..N).map(|x| cos[v][x] * rows[u][x]).sum();
        }
    }
    let mut ac = coef[1..].to_vec();
    ac.sort_by(f64::total_cmp);
    let median = ac[31]; // the middle of 63
    coef.iter().enumerate().fold(0u64, |h, (i, &c)| (h << 1) | u64::from(i > 0 && c > median))
}

pub fn hamming(a: u64, b: u64) -> u32 {
    (a ^ b).count_ones()
}

/// Every pair of images whose pHashes differ in at most `threshold` bits,
/// marked exact where the SHA-256 matches too.
pub fn duplicate_pairs(fps: &[Fingerprint], threshold: u32) -> Vec<Pair> {
    let hashes: Vec<u64> = fps.iter().map(|f| f.phash).collect();
    let mut pairs = Vec::new();
    for (a, &ha) in hashes.iter().enumerate() {
        for (off, &hb) in hashes[a + 1..].iter().enumerate() {
            let distance = hamming(ha, hb);
            if distance <= threshold {
                let b = a + 1 + off;
                pairs.push(Pair { a, b, distance, exact: fps[a].sha256 == fps[b].sha256 });
            }
        }
    }
    pairs
}

/// Near-duplicate clusters: the connected components of the graph whose
/// edges are `pairs` (union–find with path halving). Returns, for each of the
/// `n` images, its cluster's id: the smallest image index in the cluster, so
/// the result does not depend on the order of `pairs`. Transitive on purpose:
/// a chain of near copies (A≈B, B≈C) is one cluster even when A and C are
/// further apart than the threshold, because a grouped split must keep the
/// whole chain on one side.
pub fn clusters(n: usize, pairs: &[Pair]) -> Vec<usize> {
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let mut parent: Vec<usize> = (0..n).collect();
    for p in pairs {
        let (a, b) = (root(&mut parent, p.a), root(&mut parent, p.b));
        // The smaller index becomes the root, so a cluster's root is its minimum.
        if a != b {
            let (lo, hi) = if a < b { (a, b) } else { (b, a) };
            parent[hi] = lo;
        }
    }
    (0..n).map(|i| root(&mut parent, i)).collect()
}

/// Images that appear, pixel for pixel, under two different labels.
#[derive(Debug, Clone, Default)]
pub struct Conflicts {
    /// Exact pairs `(a, b)` with different labels.
    pub pairs: Vec<(usize, usize)>,
    /// Every image in such a pair, sorted: dropped from every split.
    pub images: Vec<usize>,
}

/// The exact duplicates among `pairs` whose labels differ. Only exact copies
/// count: near pairs with different labels were inspected on the Nickparvar
/// contact sheets and are different images that hash alike (dark, low-contrast
/// slices), not one image filed twice.
pub fn label_conflicts(pairs: &[Pair], labels: &[u32]) -> Conflicts {
    let pairs: Vec<(usize, usize)> = pairs.iter().filter(|p| p.exact && labels[p.a] != labels[p.b]).map(|p| (p.a, p.b)).collect();
    let images: BTreeSet<usize> = pairs.iter().flat_map(|&(a, b)| [a, b]).collect();
    Conflicts { pairs, images: images.into_iter().collect() }
}

/// How the near-duplicate clusters sit in the splits.
#[derive(Debug, Clone, Serialize)]
pub struct GroupReport {
    /// Whether the split kept clusters whole.
    pub grouped: bool,
    /// Clusters of two or more images, and the images in them.
    pub clusters: usize,
    pub images_in_clusters: usize,
    pub largest: usize,
    /// Clusters with members in both splits: train–val, train–test, val–test.
    pub straddling: [usize; 3],
}

impl GroupReport {
    pub fn new(cluster: &[usize], split_of: &[Option<Split>], grouped: bool) -> Self {
        use std::collections::HashMap;
        let mut members: HashMap<usize, (usize, [bool; 3])> = HashMap::new();
        for (i, &c) in cluster.iter().enumerate() {
            let e = members.entry(c).or_insert((0, [false; 3]));
            e.0 += 1;
            if let Some(s) = split_of[i] {
                e.1[s as usize] = true;
            }
        }
        let multi: Vec<&(usize, [bool; 3])> = members.values().filter(|(n, _)| *n > 1).collect();
        let both = |a: usize, b: usize| multi.iter().filter(|(_, s)| s[a] && s[b]).count();
        GroupReport {
            grouped,
            clusters: multi.len(),
            images_in_clusters: multi.iter().map(|(n, _)| n).sum(),
            largest: multi.iter().map(|(n, _)| *n).max().unwrap_or(1),
            straddling: [both(0, 1), both(0, 2), both(1, 2)],
        }
    }
}

/// Duplicate counts for one pair of splits (or within one split).
#[derive(Debug, Clone, Serialize)]
pub struct PairCounts {
    /// "train–val", or one split name for duplicates within it.
    pub splits: String,
    pub exact_pairs: usize,
    /// Near but not exact.
    pub near_pairs: usize,
    /// Images of the second split (of the split itself, for "within") that
    /// have an exact or near duplicate in the first.
    pub images_with_duplicate: usize,
    pub examples: Vec<DuplicateExample>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DuplicateExample {
    pub a: String,
    pub b: String,
    /// "exact" or "near".
    pub kind: &'static str,
    pub distance: u32,
}

/// What the leakage check found, before any image was dropped.
#[derive(Debug, Clone, Serialize)]
pub struct Leakage {
    pub method: String,
    pub near_threshold: u32,
    /// train–val, train–test, val–test.
    pub between: Vec<PairCounts>,
    /// Duplicates inside train, val and test.
    pub within: Vec<PairCounts>,
    /// Pairs of images (any splits) at pHash distance 0, 1, …, threshold:
    /// many pairs right at the threshold and few below suggest it is too
    /// loose for this dataset.
    pub pairs_by_distance: Vec<usize>,
}

impl Leakage {
    /// Counts for the pair of splits `a`, `b` (in [`Leakage::between`] order).
    pub fn pair(&self, a: Split, b: Split) -> Option<&PairCounts> {
        let name = format!("{}–{}", a.name(), b.name());
        self.between.iter().find(|p| p.splits == name)
    }
}

/// Sorts `pairs` into counts per split pair. `split_of[i]` is image i's split
/// (None for images in no split), `names[i]` its path for the examples.
pub fn leakage(pairs: &[Pair], split_of: &[Option<Split>], names: &[String], threshold: u32) -> Leakage {
    use Split::*;
    let count = |x: Split, y: Split| {
        let mut c = PairCounts {
            splits: if x == y { x.name().to_string() } else { format!("{}–{}", x.name(), y.name()) },
            exact_pairs: 0,
            near_pairs: 0,
            images_with_duplicate: 0,
            examples: Vec::new(),
        };
        let mut matched = BTreeSet::new();
        let (mut exact_examples, mut near_examples) = (0, 0);
        for p in pairs {
            let (sa, sb) = (split_of[p.a], split_of[p.b]);
            // Orient the pair as (x side, y side).
            let (i, j) = if sa == Some(x) && sb == Some(y) {
                (p.a, p.b)
            } else if sa == Some(y) && sb == Some(x) {
                (p.b, p.a)
            } else {
                continue;
            };
            if x == y {
                matched.insert(i);
            }
            matched.insert(j);
            let (n, shown, kind) = if p.exact {
                (&mut c.exact_pairs, &mut exact_examples, "exact")
            } else {
                (&mut c.near_pairs, &mut near_examples, "near")
            };
            *n += 1;
            if *shown < EXAMPLES {
                *shown += 1;
                c.examples.push(DuplicateExample { a: names[i].clone(), b: names[j].clone(), kind, distance: p.distance });
            }
        }
        c.images_with_duplicate = matched.len();
        c
    };
    Leakage {
        method: "exact: SHA-256 of 8-bit grey pixels; near: 64-bit DCT pHash (Zauner 2010) Hamming distance".into(),
        near_threshold: threshold,
        between: vec![count(Train, Val), count(Train, Test), count(Val, Test)],
        within: vec![count(Train, Train), count(Val, Val), count(Test, Test)],
        pairs_by_distance: (0..=threshold).map(|d| pairs.iter().filter(|p| p.distance == d).count()).collect(),
    }
}

/// Validation and test images with an exact or near duplicate in training,
/// sorted.
pub fn duplicates_of_train(pairs: &[Pair], split_of: &[Option<Split>]) -> Vec<usize> {
    let mut out = BTreeSet::new();
    for p in pairs {
        match (split_of[p.a], split_of[p.b]) {
            (Some(Split::Train), Some(Split::Val | Split::Test)) => out.insert(p.b),
            (Some(Split::Val | Split::Test), Some(Split::Train)) => out.insert(p.a),
            _ => false,
        };
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{DynamicImage, GrayImage, Luma};

    fn pattern(w: u32, h: u32, f: impl Fn(f32, f32) -> f32) -> DynamicImage {
        GrayImage::from_fn(w, h, |x, y| Luma([(f(x as f32 / w as f32, y as f32 / h as f32).clamp(0.0, 1.0) * 255.0) as u8])).into()
    }

    #[test]
    fn phash_ignores_brightness_offsets_and_scale() {
        let img = pattern(96, 96, |x, y| 0.4 + 0.3 * (6.0 * x).sin() * (4.0 * y).cos());
        let brighter = pattern(96, 96, |x, y| 0.45 + 0.3 * (6.0 * x).sin() * (4.0 * y).cos());
        let smaller = pattern(48, 48, |x, y| 0.4 + 0.3 * (6.0 * x).sin() * (4.0 * y).cos());
        assert!(hamming(phash(&img), phash(&brighter)) <= 2);
        assert!(hamming(phash(&img), phash(&smaller)) <= 4);
    }

    #[test]
    fn phash_separates_very_different_images() {
        let images = [
            pattern(64, 64, |x, _| x),
            pattern(64, 64, |_, y| y),
            pattern(64, 64, |x, y| ((10.0 * x).sin() * (10.0 * y).sin() + 1.0) / 2.0),
            pattern(64, 64, |x, y| if (x - 0.3).powi(2) + (y - 0.6).powi(2) < 0.04 { 1.0 } else { 0.1 }),
        ];
        let hashes: Vec<u64> = images.iter().map(phash).collect();
        for i in 0..hashes.len() {
            for j in i + 1..hashes.len() {
                let d = hamming(hashes[i], hashes[j]);
                assert!(d > 6, "images {i} and {j}: distance {d}");
            }
        }
    }

    #[test]
    fn exact_fingerprint_sees_pixels_not_encoding() {
        let grey = pattern(40, 30, |x, y| x * y);
        let rgb = DynamicImage::ImageRgb8(grey.to_rgb8());
        assert_eq!(fingerprint(&grey), fingerprint(&rgb));
        // Same bytes, other shape: not the same image.
        let reshaped = GrayImage::from_raw(30, 40, grey.to_luma8().into_raw()).map(DynamicImage::from);
        assert_ne!(fingerprint(&grey).sha256, fingerprint(&reshaped.unwrap()).sha256);
    }

    #[test]
    fn clusters_are_transitive_and_order_independent() {
        let pair = |a, b| Pair { a, b, distance: 3, exact: false };
        // 0–4 and 4–2 chain into one cluster; 1–3 another; 5 alone.
        let pairs = [pair(0, 4), pair(2, 4), pair(1, 3)];
        assert_eq!(clusters(6, &pairs), [0, 1, 0, 1, 0, 5]);
        let mut reversed = pairs;
        reversed.reverse();
        assert_eq!(clusters(6, &reversed), [0, 1, 0, 1, 0, 5]);
        assert_eq!(clusters(3, &[]), [0, 1, 2]);
    }

    #[test]
    fn pairs_and_counts_per_split() {
        use Split::*;
        let fp = |s: &str, h: u64| Fingerprint { sha256: s.into(), phash: h };
        // 0 train, 1 val (exact copy of 0), 2 test (near copy of 0), 3 test (unrelated), 4 train (near 3? no: 20 bits).
        let fps = [fp("a", 0), fp("a", 0), fp("b", 0b111), fp("c", u64::MAX), fp("d", 0xFFFF_F000_0000_0000)];
        let split_of = [Some(Train), Some(Val), Some(Test), Some(Test), Some(Train)];
        let names: Vec<String> = (0..5).map(|i| format!("img{i}")).collect();
        let pairs = duplicate_pairs(&fps, 6);
        assert_eq!(pairs.len(), 3, "{pairs:?}"); // 0-1 exact, 0-2 near, 1-2 near
        let l = leakage(&pairs, &split_of, &names, 6);
        let tv = l.pair(Train, Val).unwrap();
        assert_eq!((tv.exact_pairs, tv.near_pairs, tv.images_with_duplicate), (1, 0, 1));
        let tt = l.pair(Train, Test).unwrap();
        assert_eq!((tt.exact_pairs, tt.near_pairs, tt.images_with_duplicate), (0, 1, 1));
        assert_eq!(tt.examples[0].a, "img0");
        assert_eq!(tt.examples[0].b, "img2");
        let vt = l.pair(Val, Test).unwrap();
        assert_eq!((vt.exact_pairs, vt.near_pairs), (0, 1));
        assert_eq!(duplicates_of_train(&pairs, &split_of), vec![1, 2]);
        assert_eq!(l.pairs_by_distance, [1, 0, 0, 2, 0, 0, 0]);
    }
}
