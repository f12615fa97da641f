//! The fuzz targets (src/fuzzing.rs) in every test run, on the stable
//! toolchain: each committed seed (`fuzz/seeds/<target>/`) and each
//! minimised input of a past finding (`fuzz/regressions/<target>/`) goes
//! through its target, then a fixed number of seeded mutations of the seeds
//! (bit flips, boundary bytes, inserted, deleted and repeated runs,
//! truncation, splices of two seeds). This is not coverage-guided fuzzing
//! (`scripts/fuzz` runs libFuzzer for that); it keeps every target building
//! and every known finding fixed. A panic, or an input that makes a target
//! hold more than [`MEMORY_BUDGET`] at once, names the target and writes the
//! input to a file to commit under fuzz/regressions/ once fixed.

use mriscreen::fuzzing::TARGETS;
use mriscreen::rng::Rng;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// The most memory one input (at most a few kB here, 64 kB under libFuzzer)
/// may make a target hold at once. The targets decode under limits of 1 MB
/// and 1 megapixel (src/fuzzing.rs), and most inputs stay under a few MB.
/// The largest bounded case: the tiff crate reserves room for an IFD
/// entry's values before reading them, up to 64 MiB for a count its own
/// limit allows (a mutated 16×16 TIFF did that, then failed cleanly).
/// Unbounded is what this catches: fuzzing found a 429-byte DICOM file that
/// made the parser reserve 926 MB (fuzz/regressions/dicom/).
const MEMORY_BUDGET: isize = 128 << 20;

/// Counts, per thread, the bytes allocated and not yet freed, and the most
/// at any moment since [`reset_peak`]. The targets run on the test's thread.
struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn count(delta: isize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

fn reset_peak() -> isize {
    let now = LIVE.with(Cell::get);
    PEAK.with(|peak| peak.set(now));
    now
}

// SAFETY: every call is passed on to the system allocator unchanged; the
// counters are thread-local cells that never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        unsafe { System.dealloc(p, layout) };
        count(-(layout.size() as isize));
    }
    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, layout, new_size) };
        if !q.is_null() {
            count(new_size as isize - layout.size() as isize);
        }
        q
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The files of `dir`, sorted by name (none if it does not exist).
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = match std::fs::read_dir(dir) {
        Ok(d) => d
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_file())
            .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
            .collect(),
        Err(_) => Vec::new(),
    };
    out.sort();
    out
}

/// One mutation of `input` (`other`: a second seed to splice with).
fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        let n = v.len();
        match rng.below(8) {
            0 if n > 0 => {
                let i = rng.below(n);
                v[i] ^= 1 << rng.below(8);
            }
            1 if n > 0 => {
                let i = rng.below(n);
                v[i] = [0x00, 0xFF, 0x7F, 0x80, 0x01, 0xFE][rng.below(6)];
            }
            2 if n >= 4 => {
                // A 32-bit length or dimension field set to a boundary value.
                let i = rng.below(n - 3);
                let value: u32 = [0, 1, 0x7FFF_FFFF, 0xFFFF_FFFF, 0x1_0000, 0xFFFF][rng.below(6)];
                v[i..i + 4].copy_from_slice(&value.to_le_bytes());
            }
            3 => {
                let i = rng.below(n + 1);
                let extra: Vec<u8> = (0..1 + rng.below(16)).map(|_| rng.below(256) as u8).collect();
                v.splice(i..i, extra);
            }
            4 if n > 0 => {
                let i = rng.below(n);
                let len = 1 + rng.below((n - i).min(64));
                v.drain(i..i + len);
            }
            5 if n > 0 => {
                v.truncate(rng.below(n));
            }
            6 if n > 0 => {
                let i = rng.below(n);
                let len = 1 + rng.below((n - i).min(32));
                let chunk = v[i..i + len].to_vec();
                v.splice(i..i, chunk);
            }
            7 if !other.is_empty() && n > 0 => {
                let (i, j) = (rng.below(n), rng.below(other.len()));
                v.truncate(i);
                v.extend_from_slice(&other[j..]);
            }
            _ => {}
        }
    }
    v
}

/// Runs `input` through `target` and returns the most memory it held at
/// once; a panic or a peak over [`MEMORY_BUDGET`] is reported with the
/// input saved to a file.
fn run(name: &str, target: fn(&[u8]), input: &[u8], what: &str) -> isize {
    let before = reset_peak();
    let outcome = catch_unwind(AssertUnwindSafe(|| target(input)));
    let peak = PEAK.with(Cell::get) - before;
    let failure = match outcome {
        Err(_) => "panicked".to_string(),
        Ok(()) if peak > MEMORY_BUDGET => format!("held {} MiB at once (the budget is {} MiB)", peak >> 20, MEMORY_BUDGET >> 20),
        Ok(()) => return peak,
    };
    let file = std::env::temp_dir().join(format!("mriscreen-fuzz-{name}-{}.bin", mriscreen::model::sha256_hex(input).get(..16).unwrap_or("")));
    std::fs::write(&file, input).unwrap();
    panic!("fuzz target {name} {failure} on {what}; the input is in {} (commit it to fuzz/regressions/{name}/ with the fix)", file.display());
}

/// Mutations per seed, per target: the slow targets (a model parsed or run per input) get fewer.
fn budget(name: &str) -> usize {
    match name {
        "image" | "dicom" => 3000,
        "model_package" => 1000,
        _ => 400,
    }
}

#[test]
fn every_target_survives_its_seeds_its_past_findings_and_seeded_mutations() {
    // Panics are expected to be caught and reported here, not printed by the default hook.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = catch_unwind(|| {
        for (name, target) in TARGETS {
            let seeds = files(&root().join("seeds").join(name));
            assert!(!seeds.is_empty(), "fuzz/seeds/{name}/ is empty");
            let mut most = 0;
            for (file, bytes) in seeds.iter().chain(files(&root().join("regressions").join(name)).iter()) {
                most = most.max(run(name, target, bytes, file));
            }
            let mut rng = Rng::new(0xF0F0 ^ name.len() as u64);
            for (i, (file, bytes)) in seeds.iter().enumerate() {
                let other = &seeds[(i + 1) % seeds.len()].1;
                for k in 0..budget(name) {
                    let input = mutate(&mut rng, bytes, other);
                    most = most.max(run(name, target, &input, &format!("mutation {k} of {file}")));
                }
            }
            eprintln!("{name}: the most memory one input held at once: {:.1} MiB", most as f64 / 1048576.0);
        }
    });
    std::panic::set_hook(hook);
    if let Err(e) = result {
        // resume_unwind would not print the message (the hook is not called again).
        let message = e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()));
        panic!("{}", message.unwrap_or_else(|| "a fuzz target panicked".into()));
    }
}

#[test]
fn the_fixed_model_of_the_classify_target_is_a_working_classifier() {
    // A target that rejected everything would test nothing: the seed scans must classify.
    let model = mriscreen::fuzzing::tiny_model(16, 1);
    let mut c = mriscreen::Classifier::new(&model, &mriscreen::LoadOptions::default()).unwrap();
    for (file, bytes) in files(&root().join("seeds").join("classify")) {
        let p = mriscreen::block_on(c.classify(&bytes)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(p.probabilities.len(), 2, "{file}");
    }
}

/// Writes the generated seeds (images in every format, the tiny model);
/// run by hand when the formats or the model change:
/// `cargo test --test fuzz_regressions write_seeds -- --ignored`.
/// The DICOM seeds come from tests/browser/dicom-writer.mjs (see fuzz/README.md).
#[test]
#[ignore]
fn write_seeds() {
    use image::{ImageBuffer, Luma};
    let dir = |t: &str| {
        let d = root().join("seeds").join(t);
        std::fs::create_dir_all(&d).unwrap();
        d
    };
    let grey = ImageBuffer::from_fn(16, 16, |x, y| Luma([(x * 16 + y * 3) as u8]));
    let grey16: ImageBuffer<Luma<u16>, Vec<u16>> = ImageBuffer::from_fn(16, 16, |x, y| Luma([(x * 4000 + y * 100) as u16]));
    let formats = [("grey.png", image::ImageFormat::Png), ("grey.bmp", image::ImageFormat::Bmp), ("grey.tiff", image::ImageFormat::Tiff), ("grey.jpg", image::ImageFormat::Jpeg)];
    for (name, format) in formats {
        let mut bytes = std::io::Cursor::new(Vec::new());
        image::DynamicImage::ImageLuma8(grey.clone()).write_to(&mut bytes, format).unwrap();
        for t in ["image", "classify"] {
            std::fs::write(dir(t).join(name), bytes.get_ref()).unwrap();
        }
    }
    let mut bytes = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgba8(image::DynamicImage::ImageLuma8(grey.clone()).to_rgba8()).write_to(&mut bytes, image::ImageFormat::WebP).unwrap();
    std::fs::write(dir("image").join("grey.webp"), bytes.get_ref()).unwrap();
    let mut bytes = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageLuma16(grey16).write_to(&mut bytes, image::ImageFormat::Png).unwrap();
    std::fs::write(dir("image").join("grey16.png"), bytes.get_ref()).unwrap();
    for t in ["model_package", "normaliser"] {
        std::fs::write(dir(t).join("tiny.onnx"), mriscreen::fuzzing::tiny_model(16, 1)).unwrap();
    }
}
