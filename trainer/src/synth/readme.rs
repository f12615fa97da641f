//! The record of a SynthTumor folder: `README.md` (what it is, that it is
//! synthetic, generator version, every parameter, the anatomy files with
//! their SHA-256, counts per split and class, what was drawn) and
//! `synth_metadata.csv` (one row per image: plane, level, lesion type, size
//! and contrast), so results on it can be broken down and reproduced.

use super::anatomy::Anatomy;
use super::generate::{Meta, SELLAR_RATE};
use mriscreen::CLASSES;
use super::output::{image_name, README_TITLE, SPLITS};
use super::{Args, GENERATOR_VERSION};
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

pub struct Info<'a> {
    pub args: &'a Args,
    pub test_count: usize,
    pub anatomies: &'a [Anatomy],
    pub counts: [usize; 2],
}

pub fn write_metadata(path: &Path, jobs: &[(usize, usize, usize)], metas: &[Meta]) -> Result<()> {
    let mut s = String::from("file,split,class,anatomy,plane,level_mm,sellar,size_px,lesion,radius_mm,enhancement\n");
    for (&(split, c, i), m) in jobs.iter().zip(metas) {
        let _ = writeln!(
            s,
            "{}/{}/{},{},{},{},{},{:.1},{},{},{},{:.1},{:.3}",
            SPLITS[split],
            CLASSES[c],
            image_name(CLASSES[c], i),
            SPLITS[split],
            CLASSES[c],
            m.anatomy,
            m.plane,
            m.level_mm,
            m.sellar,
            m.size,
            m.lesion,
            m.radius_mm,
            m.enhancement
        );
    }
    std::fs::write(path, s).with_context(|| format!("cannot write {}", path.display()))
}

pub fn write(path: &Path, info: &Info, metas: &[Meta], jobs: &[(usize, usize, usize)]) -> Result<()> {
    let a = info.args;
    let mut s = String::new();
    let _ = writeln!(s, "{README_TITLE} — synthetic data, not real patients\n");
    let _ = writeln!(
        s,
        "**Every image here is synthetic.** Slices of T1 MRI templates of healthy heads with \
         computer-generated tumours and normal post-contrast enhancement. No image shows a real \
         patient's disease. For research and software testing only; not for diagnosis or for \
         claims about clinical performance. Each JPEG carries a comment segment saying so.\n"
    );
    let _ = writeln!(s, "## Parameters\n\n| parameter | value |\n|---|---|");
    let rows: Vec<(&str, String)> = vec![
        ("generator", format!("`mriscreen synth` {GENERATOR_VERSION} (mriscreen {})", env!("CARGO_PKG_VERSION"))),
        ("seed", a.seed.to_string()),
        ("difficulty", format!("{}", a.difficulty)),
        ("size range (px)", format!("{}..{}", a.size_range.min, a.size_range.max)),
        ("count per class", format!("Training {}, Testing {}", info.counts[0], info.test_count)),
        ("extra anatomy (--anatomy)", if a.anatomy.is_empty() { "none".into() } else { a.anatomy.join("; ") }),
        ("mricron dir", a.mricron_dir.display().to_string()),
        ("JPEG quality", "90, greyscale".into()),
        ("sellar-plane rate per class", CLASSES.iter().zip(SELLAR_RATE).map(|(c, r)| format!("{c} {r}")).collect::<Vec<_>>().join(", ")),
    ];
    for (k, v) in rows {
        let _ = writeln!(s, "| {k} | {v} |");
    }
    let _ = writeln!(
        s,
        "\nReproduce: `mriscreen synth --out DIR --count {} --test-count {} --seed {} --difficulty {} --size-range {}..{}{}` \
         with the same anatomy files (same SHA-256) gives byte-identical files (threads do not matter).\n",
        info.counts[0],
        info.test_count,
        a.seed,
        a.difficulty,
        a.size_range.min,
        a.size_range.max,
        a.anatomy.iter().map(|x| format!(" --anatomy {x}")).collect::<String>()
    );
    let _ = writeln!(s, "## Anatomy\n\n| name | file | SHA-256 |\n|---|---|---|");
    for an in info.anatomies {
        for src in &an.sources {
            let _ = writeln!(s, "| {} | `{}` | `{}` |", an.name, src.path.display(), src.sha256);
        }
    }
    let _ = writeln!(s);
    for an in info.anatomies {
        let head = if an.synthetic_shell {
            "brain only: synthetic skull and scalp"
        } else if an.whole_head {
            "whole head with brain mask"
        } else {
            "brain only: skull, face and neck of the first whole-head anatomy"
        };
        let _ = writeln!(s, "- {}: {}; {head}.", an.name, an.geometry);
    }
    let _ = writeln!(
        s,
        "\nColin27 (Holmes et al., J Comput Assist Tomogr 1998) from Debian's `mricron-data`; \
         MNI152 2009a symmetric (Fonov et al., NeuroImage 2011) from the `nilearn` wheel when present. \
         Brain-extracted volumes get the skull, face and neck of Colin27 (a synthetic skull and scalp \
         without it). Whether MNI152 is in the cache changes the output: compare the list above.\n"
    );
    let _ = writeln!(s, "## Counts\n\n| split | {} | total |\n|---|---|---|---|---|---|", CLASSES.join(" | "));
    for (split, name) in SPLITS.iter().enumerate() {
        let per: Vec<usize> = (0..CLASSES.len()).map(|c| jobs.iter().filter(|j| j.0 == split && j.1 == c).count()).collect();
        let cells: Vec<String> = per.iter().map(|n| n.to_string()).collect();
        let _ = writeln!(s, "| {name} | {} | {} |", cells.join(" | "), per.iter().sum::<usize>());
    }
    let _ = writeln!(s, "\n## What was drawn (both splits)\n\n| class | axial / coronal / sagittal | sellar planes | lesion types | mean radius (mm) |\n|---|---|---|---|---|");
    for (c, class) in CLASSES.iter().enumerate() {
        let ms: Vec<&Meta> = jobs.iter().zip(metas).filter(|(j, _)| j.1 == c).map(|(_, m)| m).collect();
        let n = |p: &str| ms.iter().filter(|m| m.plane == p).count();
        let sellar = ms.iter().filter(|m| m.sellar).count();
        let mut types: BTreeMap<&str, usize> = BTreeMap::new();
        for m in &ms {
            *types.entry(m.lesion).or_default() += 1;
        }
        let types: Vec<String> = types.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let lesioned: Vec<f32> = ms.iter().filter(|m| m.radius_mm > 0.0).map(|m| m.radius_mm).collect();
        let mean = if lesioned.is_empty() { "–".into() } else { format!("{:.1}", lesioned.iter().sum::<f32>() / lesioned.len() as f32) };
        let _ = writeln!(s, "| {class} | {} / {} / {} | {sellar} | {} | {mean} |", n("axial"), n("coronal"), n("sagittal"), types.join(", "));
    }
    s.push_str(MODEL_NOTES);
    std::fs::write(path, s).with_context(|| format!("cannot write {}", path.display()))
}

const MODEL_NOTES: &str = "
## How the classes are made

- **glioma**: intra-axial mass centred in supratentorial hemispheric white matter (corpus callosum
  on midline sagittal cuts); lobulated margin; ring enhancement around a necrotic core, patchy
  enhancement, or a non-enhancing hypointense mass; surrounding T1-hypointense oedema that spares
  cortex; mass effect.
- **meningioma**: extra-axial dome on the dura of the convexity or the falx, homogeneous bright
  enhancement, sharp margin, dural tail in ~60 %, pushing the cortex inward.
- **pituitary**: round homogeneous mass in the sella, with suprasellar extension when > 7 mm.
- **notumor**: no lesion.

Every class has the same normal enhancing structures (dura, falx and sagittal sinus, pituitary
gland and cavernous sinuses, choroid plexus, sulcal vessels), acquisition variation (size,
rotation ±15°, zoom 0.85–1.15, tissue contrast, bias field, Rician noise, window) and plane mix
(~60 % axial, 20 % coronal, 20 % sagittal).

Slice level and class: pituitary images are all *sellar* planes (skull-base axial levels, coronal
planes through the sella, midline sagittal planes); notumor uses them at rate 1/2, glioma and
meningioma at 1/4. With equal class counts, P(notumor | sellar) = 0.5 / 2 = 1/4 and
P(notumor | other level) = 0.5 / 2 = 1/4: the level alone does not reveal a normal scan, though a
non-sellar level does rule out the pituitary class, as in real data.

Known limits: one T1 post-contrast look (no T2/FLAIR), lesion textures are procedural, and two
template brains cannot show the anatomical variety of real patients. Accuracy on SynthTumor says
nothing about accuracy on real MRI.
";
