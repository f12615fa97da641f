//! `mriscreen synth`: SynthTumor, a synthetic brain-tumour MRI benchmark on
//! real anatomy. Slices of real T1 heads (Colin27, MNI152 2009a) get
//! simulated gliomas, meningiomas and pituitary adenomas modelled on their
//! post-contrast T1 appearance, plus normal enhancing "distractors", and are
//! written in the Kaggle "Brain Tumor Classification (MRI)" folder layout.
//! It is a stand-in for real data that cannot be shipped (docs/architecture.md,
//! "Data sources"); it is not real patients and says so in every
//! file it writes.
//!
//! | file | what it does |
//! |---|---|
//! | `nifti.rs` | NIfTI-1 reader |
//! | `volume.rs` | world-space grids, trilinear sampling, distance transform |
//! | `anatomy.rs` | loads and prepares the T1 heads and brain masks |
//! | `slices.rs` | plane choice (levels, orientation) and framing |
//! | `shape.rs`, `lesions.rs` | lesion shapes, mass effect, the three tumours |
//! | `distractors.rs` | normal enhancing structures |
//! | `render.rs` | one image: contrast, bias field, Rician noise, window |
//! | `generate.rs` | one image from (seed, split, class, index) |
//! | `output.rs`, `readme.rs` | folder layout, JPEG, contact sheets, README |
//! | `detmath.rs` | platform-independent exp/ln/sin/cos and noise |

mod anatomy;
mod detmath;
mod distractors;
mod generate;
mod lesions;
mod nifti;
mod output;
mod readme;
mod render;
mod shape;
mod slices;
mod volume;

use anyhow::{bail, Context, Result};
use generate::Params;
use mriscreen::CLASSES;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Bumped whenever the same arguments would give different images.
pub const GENERATOR_VERSION: &str = "synthtumor-1.0";

/// Thumbnails per contact sheet.
const SHEET: usize = 16;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output folder; gets Training/<class>/ and Testing/<class>/ (Kaggle layout), README.md, contact sheets.
    #[arg(long)]
    pub out: PathBuf,
    /// Images per class in Training.
    #[arg(long, default_value_t = 500)]
    pub count: usize,
    /// Images per class in Testing [default: count / 5].
    #[arg(long)]
    pub test_count: Option<usize>,
    /// Random seed: the same arguments and anatomy files give byte-identical output.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Task difficulty: smaller, fainter lesions and more distractors as it grows
    /// (lesion size × d^−½, contrast × d^−0.7). The default 0.5 is where a
    /// MobileNetV2-1.0 trained from scratch by scripts/train-default at 128 px
    /// lands in the 85–95 % band (92.7 % measured); at 1.0 an earlier recipe
    /// reached about 51 %.
    #[arg(long, default_value_t = 0.5)]
    pub difficulty: f32,
    /// Image side in pixels, drawn uniformly per image from MIN..MAX.
    #[arg(long, value_name = "MIN..MAX", default_value = "256..512", value_parser = parse_size_range)]
    pub size_range: SizeRange,
    /// Extra T1 anatomy (NIfTI-1): a brain-extracted volume, or a head and its brain mask as HEAD,MASK. Repeatable.
    #[arg(long, value_name = "HEAD[,MASK]")]
    pub anatomy: Vec<String>,
    /// Where Debian's mricron-data keeps Colin27 (ch2.nii.gz, ch2bet.nii.gz).
    #[arg(long, value_name = "DIR", default_value = anatomy::MRICRON_DIR)]
    pub mricron_dir: PathBuf,
    /// Worker threads (the output does not depend on it).
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Replace a previous SynthTumor output in --out (nothing else is ever deleted).
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeRange {
    pub min: usize,
    pub max: usize,
}

fn parse_size_range(s: &str) -> Result<SizeRange, String> {
    let (a, b) = s.split_once("..").ok_or_else(|| format!("expected MIN..MAX, got {s:?}"))?;
    let parse = |t: &str| t.trim().parse::<usize>().map_err(|e| format!("{t:?}: {e}"));
    let (min, max) = (parse(a)?, parse(b)?);
    if !(16..=2048).contains(&min) || !(16..=2048).contains(&max) || min > max {
        return Err(format!("need 16 <= MIN <= MAX <= 2048, got {min}..{max}"));
    }
    Ok(SizeRange { min, max })
}

/// `$MRISCREEN_CACHE`, else the first `.cache` folder in the current
/// directory or one of its parents (the repository's).
fn cache_dir() -> Option<PathBuf> {
    if let Some(c) = std::env::var_os("MRISCREEN_CACHE") {
        return Some(PathBuf::from(c));
    }
    let cwd = std::env::current_dir().ok()?;
    cwd.ancestors().map(|d| d.join(".cache")).find(|d| d.is_dir())
}

pub fn run(args: Args) -> Result<ExitCode> {
    if !(args.difficulty.is_finite() && args.difficulty > 0.0 && args.difficulty <= 10.0) {
        bail!("--difficulty must be in (0, 10], got {}", args.difficulty);
    }
    if args.count == 0 {
        bail!("--count must be at least 1");
    }
    let test_count = args.test_count.unwrap_or(args.count / 5);
    let extra: Vec<anatomy::Spec> = args.anatomy.iter().map(|s| anatomy::parse_spec(s)).collect();
    let cache = cache_dir();
    let specs = anatomy::default_specs(&args.mricron_dir, cache.as_deref(), &extra)?;
    // Check the anatomy before touching the output folder.
    for f in specs.iter().flat_map(|s| std::iter::once(&s.head).chain(s.mask.as_ref())) {
        if !f.is_file() {
            bail!("anatomy file {} does not exist (--anatomy takes a NIfTI-1 T1 volume: HEAD[,MASK])", f.display());
        }
    }
    let started = std::time::Instant::now();
    let mut anatomies: Vec<anatomy::Anatomy> = Vec::new();
    for s in &specs {
        // Brain-only volumes borrow the head of the first whole-head one (Colin27).
        let donor = anatomies.iter().find(|a| a.whole_head);
        let a = anatomy::Anatomy::load(s, donor).with_context(|| format!("cannot use anatomy {}", s.head.display()))?;
        anatomies.push(a);
    }
    eprintln!(
        "anatomy: {} ({:.1} s)",
        anatomies.iter().map(|a| a.name.as_str()).collect::<Vec<_>>().join(", "),
        started.elapsed().as_secs_f32()
    );
    output::prepare(&args.out, args.force)?;
    for split in output::SPLITS {
        for class in CLASSES {
            let d = args.out.join(split).join(class);
            std::fs::create_dir_all(&d).with_context(|| format!("cannot create {}", d.display()))?;
        }
    }

    let params = Params { seed: args.seed, difficulty: args.difficulty, size_min: args.size_range.min, size_max: args.size_range.max };
    let counts = [args.count, test_count];
    let jobs: Vec<(usize, usize, usize)> = (0..2)
        .flat_map(|split| (0..CLASSES.len()).flat_map(move |c| (0..counts[split]).map(move |i| (split, c, i))))
        .collect();
    let bar = indicatif::ProgressBar::new(jobs.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} synth [{bar:30}] {pos}/{len} images, {per_sec}, eta {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let next = AtomicUsize::new(0);
    let metas: Mutex<Vec<Option<generate::Meta>>> = Mutex::new(vec![None; jobs.len()]);
    let thumbs: Mutex<Vec<Vec<(usize, image::GrayImage)>>> = Mutex::new(vec![Vec::new(); CLASSES.len()]);
    let failure: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    let gen_started = std::time::Instant::now();
    std::thread::scope(|s| {
        for _ in 0..args.threads.clamp(1, 64) {
            s.spawn(|| loop {
                let j = next.fetch_add(1, Ordering::Relaxed);
                if j >= jobs.len() || failure.lock().map(|f| f.is_some()).unwrap_or(true) {
                    break;
                }
                let (split, class, index) = jobs[j];
                let img = generate::make(&anatomies, &params, split, class, index);
                let path = args.out.join(output::SPLITS[split]).join(CLASSES[class]).join(output::image_name(CLASSES[class], index));
                if let Err(e) = output::write_jpeg(&path, img.size, &img.pixels) {
                    if let Ok(mut f) = failure.lock() {
                        f.get_or_insert(e);
                    }
                    break;
                }
                if split == 0 && index < SHEET {
                    if let Some(g) = image::GrayImage::from_raw(img.size as u32, img.size as u32, img.pixels) {
                        if let Ok(mut t) = thumbs.lock() {
                            t[class].push((index, g));
                        }
                    }
                }
                if let Ok(mut m) = metas.lock() {
                    m[j] = Some(img.meta);
                }
                bar.inc(1);
            });
        }
    });
    bar.finish_and_clear();
    if let Some(e) = failure.into_inner().ok().flatten() {
        return Err(e);
    }
    let gen_secs = gen_started.elapsed().as_secs_f32();

    let mut thumbs = thumbs.into_inner().map_err(|_| anyhow::anyhow!("a worker thread panicked"))?;
    for (c, t) in thumbs.iter_mut().enumerate() {
        t.sort_by_key(|(i, _)| *i);
        let imgs: Vec<_> = t.drain(..).map(|(_, g)| g).collect();
        output::contact_sheet(&args.out.join(output::contact_sheet_name(CLASSES[c])), CLASSES[c], &imgs)?;
    }
    let metas: Vec<generate::Meta> =
        metas.into_inner().map_err(|_| anyhow::anyhow!("a worker thread panicked"))?.into_iter().flatten().collect();
    if metas.len() != jobs.len() {
        bail!("only {} of {} images were made", metas.len(), jobs.len());
    }
    readme::write_metadata(&args.out.join("synth_metadata.csv"), &jobs, &metas)?;
    let info = readme::Info { args: &args, test_count, anatomies: &anatomies, counts };
    readme::write(&args.out.join("README.md"), &info, &metas, &jobs)?;

    println!("SynthTumor ({GENERATOR_VERSION}) — synthetic data, not real patients");
    println!(
        "  {} images in {:.1} s ({:.1} img/s, {} thread(s)): Training {} and Testing {} per class",
        jobs.len(),
        gen_secs,
        jobs.len() as f32 / gen_secs.max(1e-3),
        args.threads.clamp(1, 64),
        counts[0],
        counts[1]
    );
    println!("  anatomy: {}", anatomies.iter().map(|a| a.name.as_str()).collect::<Vec<_>>().join(", "));
    println!("  written to {} (README.md, {})", display(&args.out), output::contact_sheet_name("<class>"));
    Ok(ExitCode::SUCCESS)
}

fn display(p: &Path) -> String {
    p.display().to_string()
}
