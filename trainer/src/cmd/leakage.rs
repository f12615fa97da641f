//! `mriscreen leakage`: the duplicate study of a dataset folder, before any
//! split: exact and near-duplicate pairs within `Training/`, within
//! `Testing/` and across, at every pHash distance up to `--max-distance`, the
//! share of test images with a near copy in training at each distance, image
//! pairs with different labels, and one contact sheet per distance so the
//! near-duplicate threshold can be chosen by looking at pairs
//! (`trainer/src/data/dedup.rs` defines the fingerprints). Writes
//! `leakage.json`, `leakage.md` and `pairs-*.png` to `--out`.

use crate::data::dedup::{clusters, duplicate_pairs, Pair};
use crate::data::layout::{self, Source};
use crate::data::manifest;
use crate::data::read::read_all;
use crate::data::split::{derive_seed, shuffle};
use crate::data::{contact_sheet, DatasetOptions};
use anyhow::{bail, Context, Result};
use mriscreen::rng::Rng;
use mriscreen::CLASSES;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Dataset folder (Kaggle layout with Training/ and Testing/, or one folder per class).
    #[arg(long)]
    data: PathBuf,
    /// Folder for leakage.json, leakage.md and the contact sheets (created; existing files of these names are replaced).
    #[arg(long, default_value = "bench/leakage")]
    out: PathBuf,
    /// Count pairs up to this pHash distance (bits of 63).
    #[arg(long, default_value_t = 16)]
    max_distance: u32,
    /// The near-duplicate threshold to report clusters and cross-class pairs at.
    #[arg(long, default_value_t = crate::data::NEAR_THRESHOLD)]
    threshold: u32,
    /// Pairs per contact sheet.
    #[arg(long, default_value_t = 8)]
    per_sheet: usize,
    /// Pixels per image on the contact sheets.
    #[arg(long, default_value_t = 112)]
    tile: u32,
    /// Seed for choosing which pairs the sheets show.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// Pair counts at one pHash distance.
#[derive(Debug, Default, Clone, Serialize)]
struct AtDistance {
    distance: u32,
    within_training: usize,
    within_testing: usize,
    across: usize,
    /// Of all pairs at this distance, those whose two images have different labels.
    different_labels: usize,
    /// Testing/ images with a Training/ image at this distance or closer.
    testing_with_training_copy: usize,
    testing_with_training_copy_share: f64,
}

#[derive(Debug, Clone, Serialize)]
struct SheetRow {
    a: String,
    b: String,
    class_a: String,
    class_b: String,
    distance: u32,
    exact: bool,
}

#[derive(Debug, Clone, Serialize)]
struct Sheet {
    file: String,
    what: String,
    rows: Vec<SheetRow>,
}

#[derive(Debug, Clone, Serialize)]
struct Study {
    dataset: String,
    variant: String,
    manifest: Option<manifest::Match>,
    files_found: usize,
    images: usize,
    skipped: Vec<String>,
    /// Images per class in Training/ and Testing/ (or the class folders).
    training_per_class: Vec<usize>,
    testing_per_class: Vec<usize>,
    method: String,
    /// Pairs of identical grey pixels (same SHA-256).
    exact_within_training: usize,
    exact_within_testing: usize,
    exact_across: usize,
    exact_different_labels: Vec<SheetRow>,
    by_distance: Vec<AtDistance>,
    threshold: u32,
    clusters_at_threshold: usize,
    images_in_clusters: usize,
    largest_cluster: usize,
    different_label_pairs_at_threshold: usize,
    sheets: Vec<Sheet>,
}

pub fn run(a: Args) -> Result<ExitCode> {
    if a.threshold > a.max_distance {
        bail!("--threshold {} is above --max-distance {}; raise --max-distance", a.threshold, a.max_distance);
    }
    if a.max_distance > 32 {
        bail!("--max-distance {} is too loose to mean anything (pHash has 63 bits); use at most 32", a.max_distance);
    }
    let opts = DatasetOptions::default();
    let scan = layout::scan(&a.data, false, false)?;
    let found = manifest::check_folder(&a.data, &scan.files);
    let paths: Vec<PathBuf> = scan.files.iter().map(|f| f.path.clone()).collect();
    let results = read_all(&paths, &opts.limits, opts.threads, true);
    let (mut names, mut labels, mut sources, mut fps, mut images, mut skipped) = (vec![], vec![], vec![], vec![], vec![], vec![]);
    for (file, r) in scan.files.iter().zip(results) {
        let name = layout::relative(&a.data, &file.path);
        match r {
            Ok(l) => {
                names.push(name);
                labels.push(file.label);
                // Class folders without a split count as "Training".
                sources.push(if file.source == Source::Testing { Source::Testing } else { Source::Training });
                fps.push(l.fingerprint);
                images.push(l.image);
            }
            Err(e) => skipped.push(format!("{name}: {e}")),
        }
    }
    if images.is_empty() {
        bail!("none of the {} image files in {} could be read", scan.files.len(), a.data.display());
    }
    let n = images.len();
    let per_class = |src: Source| {
        let mut c = vec![0usize; CLASSES.len()];
        for (l, s) in labels.iter().zip(&sources) {
            if *s == src {
                c[*l as usize] += 1;
            }
        }
        c
    };
    let pairs = duplicate_pairs(&fps, a.max_distance);
    let kind = |p: &Pair| match (sources[p.a], sources[p.b]) {
        (Source::Testing, Source::Testing) => 1,
        (Source::Training, Source::Training) => 0,
        _ => 2,
    };

    let mut by_distance: Vec<AtDistance> = (0..=a.max_distance).map(|distance| AtDistance { distance, ..Default::default() }).collect();
    // Closest Training/ image of each Testing/ image.
    let mut nearest_training = vec![u32::MAX; n];
    for p in &pairs {
        let d = &mut by_distance[p.distance as usize];
        match kind(p) {
            0 => d.within_training += 1,
            1 => d.within_testing += 1,
            _ => {
                d.across += 1;
                let t = if sources[p.a] == Source::Testing { p.a } else { p.b };
                nearest_training[t] = nearest_training[t].min(p.distance);
            }
        }
        if labels[p.a] != labels[p.b] {
            d.different_labels += 1;
        }
    }
    let testing: Vec<usize> = (0..n).filter(|&i| sources[i] == Source::Testing).collect();
    for d in &mut by_distance {
        d.testing_with_training_copy = testing.iter().filter(|&&i| nearest_training[i] <= d.distance).count();
        d.testing_with_training_copy_share = d.testing_with_training_copy as f64 / testing.len().max(1) as f64;
    }

    let row = |p: &Pair| SheetRow {
        a: names[p.a].clone(),
        b: names[p.b].clone(),
        class_a: CLASSES[labels[p.a] as usize].to_string(),
        class_b: CLASSES[labels[p.b] as usize].to_string(),
        distance: p.distance,
        exact: p.exact,
    };
    let exact = |k: usize| pairs.iter().filter(|p| p.exact && kind(p) == k).count();
    let at_threshold: Vec<Pair> = pairs.iter().filter(|p| p.distance <= a.threshold).copied().collect();
    let cluster_of = clusters(n, &at_threshold);
    let mut sizes = std::collections::HashMap::new();
    for &c in &cluster_of {
        *sizes.entry(c).or_insert(0usize) += 1;
    }
    let multi: Vec<usize> = sizes.values().copied().filter(|&s| s > 1).collect();

    // Contact sheets: a seeded sample of the pairs at each distance (Training–Testing
    // pairs first, the leak that matters), then the pairs with different labels.
    let mut sheets = Vec::new();
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let mut sheet = |file: String, what: String, chosen: Vec<Pair>| -> Result<()> {
        if chosen.is_empty() {
            return Ok(());
        }
        let shown: Vec<_> = chosen.iter().map(|p| (&images[p.a], &images[p.b])).collect();
        contact_sheet::write(&a.out.join(&file), &shown, a.tile)?;
        sheets.push(Sheet { file, what, rows: chosen.iter().map(row).collect() });
        Ok(())
    };
    for d in 0..=a.max_distance {
        let mut across: Vec<Pair> = pairs.iter().filter(|p| p.distance == d && kind(p) == 2).copied().collect();
        let mut other: Vec<Pair> = pairs.iter().filter(|p| p.distance == d && kind(p) != 2).copied().collect();
        let mut rng = Rng::new(derive_seed(a.seed, u64::from(d)));
        shuffle(&mut across, &mut rng);
        shuffle(&mut other, &mut rng);
        let chosen: Vec<Pair> = across.into_iter().chain(other).take(a.per_sheet).collect();
        sheet(format!("pairs-d{d:02}.png"), format!("pairs at pHash distance {d} (Training–Testing first)"), chosen)?;
    }
    let mut mixed: Vec<Pair> = at_threshold.iter().filter(|p| labels[p.a] != labels[p.b]).copied().collect();
    shuffle(&mut mixed, &mut Rng::new(derive_seed(a.seed, 999)));
    let mixed_n = mixed.len();
    mixed.truncate(a.per_sheet);
    sheet("pairs-different-labels.png".into(), format!("pairs within distance {} whose labels differ", a.threshold), mixed)?;

    let study = Study {
        dataset: a.data.display().to_string(),
        variant: scan.variant.clone(),
        manifest: found,
        files_found: scan.files.len(),
        images: n,
        skipped,
        training_per_class: per_class(Source::Training),
        testing_per_class: per_class(Source::Testing),
        method: "exact: SHA-256 of 8-bit grey pixels; near: 64-bit DCT pHash (Zauner 2010), Hamming distance".into(),
        exact_within_training: exact(0),
        exact_within_testing: exact(1),
        exact_across: exact(2),
        exact_different_labels: pairs.iter().filter(|p| p.exact && labels[p.a] != labels[p.b]).map(row).collect(),
        by_distance,
        threshold: a.threshold,
        clusters_at_threshold: multi.len(),
        images_in_clusters: multi.iter().sum(),
        largest_cluster: multi.iter().copied().max().unwrap_or(1),
        different_label_pairs_at_threshold: mixed_n,
        sheets,
    };
    std::fs::write(a.out.join("leakage.json"), serde_json::to_string_pretty(&study)? + "\n")?;
    let md = markdown(&study);
    std::fs::write(a.out.join("leakage.md"), &md)?;
    println!("{md}");
    println!("written to {}: leakage.json, leakage.md, {} contact sheets", a.out.display(), study.sheets.len());
    Ok(ExitCode::SUCCESS)
}

fn markdown(s: &Study) -> String {
    let mut m = String::new();
    let total = |v: &[usize]| v.iter().sum::<usize>();
    let _ = writeln!(m, "# Duplicate study: {}\n", s.dataset);
    let _ = writeln!(m, "{} ({}). {} images read of {} files found; {} unreadable.", s.variant, s.method, s.images, s.files_found, s.skipped.len());
    if let Some(mm) = &s.manifest {
        let _ = writeln!(m, "Manifest: {}.", mm.summary());
    }
    let _ = writeln!(
        m,
        "\nTraining/: {} images ({} per class, in the order {}); Testing/: {} ({}).\n",
        total(&s.training_per_class),
        join(&s.training_per_class),
        CLASSES.join(", "),
        total(&s.testing_per_class),
        join(&s.testing_per_class)
    );
    let _ = writeln!(
        m,
        "Exact copies (identical grey pixels): {} pairs within Training/, {} within Testing/, {} across; {} of them with different labels.\n",
        s.exact_within_training,
        s.exact_within_testing,
        s.exact_across,
        s.exact_different_labels.len()
    );
    let _ = writeln!(m, "| pHash distance | pairs within Training/ | within Testing/ | across | labels differ | Testing/ images with a Training/ copy this close or closer |");
    let _ = writeln!(m, "|---|---|---|---|---|---|");
    for d in &s.by_distance {
        let _ = writeln!(
            m,
            "| {} | {} | {} | {} | {} | {} ({:.1} %) |",
            d.distance,
            d.within_training,
            d.within_testing,
            d.across,
            d.different_labels,
            d.testing_with_training_copy,
            100.0 * d.testing_with_training_copy_share
        );
    }
    let _ = writeln!(
        m,
        "\nAt threshold {}: {} clusters of near duplicates holding {} images (largest {}); {} pairs with different labels.\n",
        s.threshold, s.clusters_at_threshold, s.images_in_clusters, s.largest_cluster, s.different_label_pairs_at_threshold
    );
    let _ = writeln!(m, "## Contact sheets\n\nEach row: left | right.\n");
    for sh in &s.sheets {
        let _ = writeln!(m, "### `{}`: {}\n", sh.file, sh.what);
        for (i, r) in sh.rows.iter().enumerate() {
            let _ = writeln!(m, "{}. `{}` ({}) | `{}` ({}), distance {}{}", i + 1, r.a, r.class_a, r.b, r.class_b, r.distance, if r.exact { ", exact" } else { "" });
        }
        let _ = writeln!(m);
    }
    m
}

fn join(v: &[usize]) -> String {
    v.iter().map(usize::to_string).collect::<Vec<_>>().join(" / ")
}
