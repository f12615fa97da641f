//! The JavaScript API (wasm32 only): one `#[wasm_bindgen]` struct,
//! [`MriScreen`], with an async constructor and async methods; results cross
//! the boundary as plain objects through `serde_wasm_bindgen`, errors as
//! [`WebError`] with a `toString`. Everything here delegates to the same
//! [`Classifier`] the CLI uses.

use crate::model::{LoadOptions, ModelInfo, Overrides};
use crate::referral::{self, Threshold};
use crate::{BackendChoice, Classifier, Error};
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;

/// Panics show up in the browser console with their message; any hook set
/// before (a test harness's) still runs.
#[wasm_bindgen(start)]
pub fn start() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        console_error_panic_hook::hook(info);
        previous(info);
    }));
}

/// An error for JavaScript: `kind` is one of [`Error::kind`]'s or `options`
/// (a bad argument from the page); `message` says what to do.
#[wasm_bindgen]
pub struct WebError {
    kind: String,
    message: String,
}

#[wasm_bindgen]
impl WebError {
    #[wasm_bindgen(getter)]
    pub fn kind(&self) -> String {
        self.kind.clone()
    }
    #[wasm_bindgen(getter)]
    pub fn message(&self) -> String {
        self.message.clone()
    }
    #[wasm_bindgen(js_name = toString)]
    pub fn to_js_string(&self) -> String {
        self.message.clone()
    }
}

impl From<Error> for WebError {
    fn from(e: Error) -> Self {
        WebError { kind: e.kind().into(), message: e.to_string() }
    }
}

fn options_error(e: impl std::fmt::Display) -> WebError {
    WebError { kind: "options".into(), message: format!("invalid options: {e}") }
}

/// What `MriScreen.create` accepts as its second argument.
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct CreateOptions {
    /// Expected SHA-256 of the model bytes (from the manifest).
    sha256: Option<String>,
    /// The SHA-256 of the bytes passed, computed by the caller (SubtleCrypto), so they are not hashed twice.
    computed_sha256: Option<String>,
    /// Settings for a model without mriscreen metadata.
    overrides: Overrides,
    /// `auto` (default: the faster of WebGPU and the CPU), `gpu` or `cpu`.
    backend: BackendChoice,
    /// Why the page chose the CPU (e.g. its adapter is a software rasteriser), shown as the fallback reason.
    cpu_reason: Option<String>,
}

/// Plain objects, `null` for absent values, byte buffers as `Uint8Array`.
/// What `MriScreen.classify` accepts as its second argument.
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct ClassifyOptions {
    frame: Option<u32>,
}

fn classify_options(options: JsValue) -> Result<ClassifyOptions, WebError> {
    if options.is_undefined() || options.is_null() {
        return Ok(ClassifyOptions::default());
    }
    serde_wasm_bindgen::from_value(options).map_err(options_error)
}

fn to_js<T: Serialize>(v: &T) -> Result<JsValue, WebError> {
    v.serialize(&serde_wasm_bindgen::Serializer::json_compatible().serialize_bytes_as_arrays(false)).map_err(options_error)
}

/// The model's description as the page gets it: [`ModelInfo`] plus the
/// referral rule it is held to, in numbers and in words.
#[derive(Serialize)]
struct PageInfo<'a> {
    #[serde(flatten)]
    info: &'a ModelInfo,
    threshold: Threshold,
    refer_rule: String,
}

/// A loaded model.
#[wasm_bindgen]
pub struct MriScreen {
    inner: Classifier,
}

#[wasm_bindgen]
impl MriScreen {
    /// Validates and loads `model` (ONNX bytes). `options` may be undefined or
    /// `{ sha256, backend: "auto"|"gpu"|"cpu", cpu_reason, overrides: { classes, mean, std,
    /// resize, intensity, input_size } }`.
    pub async fn create(model: Vec<u8>, options: JsValue) -> Result<MriScreen, WebError> {
        let opts: CreateOptions = if options.is_undefined() || options.is_null() {
            CreateOptions::default()
        } else {
            serde_wasm_bindgen::from_value(options).map_err(options_error)?
        };
        let load = LoadOptions { expected_sha256: opts.sha256, overrides: opts.overrides, max_bytes: 0, computed_sha256: opts.computed_sha256 };
        let mut inner = Classifier::load(&model, &load, opts.backend).await?.with_previews(true);
        if let Some(reason) = opts.cpu_reason {
            inner.set_cpu_reason(reason);
        }
        Ok(MriScreen { inner })
    }

    /// The model's description (classes, input spec, precision, provenance)
    /// with `threshold` ({ value, calibrated }) and `refer_rule` (a sentence).
    pub fn info(&self) -> Result<JsValue, WebError> {
        let info = self.inner.info();
        let refer_rule = referral::describe(info.threshold(), self.inner.has_familiarity());
        to_js(&PageInfo { info, threshold: info.threshold(), refer_rule })
    }

    /// Which backend runs (`kind`: "gpu" or "cpu"), the GPU adapter, and
    /// after a fallback the reason (`fallback_reason`).
    pub fn status(&self) -> Result<JsValue, WebError> {
        to_js(self.inner.status())
    }

    /// How long each part of `create` took: `[{ name, ms }]`, in order.
    pub fn load_phases(&self) -> Result<JsValue, WebError> {
        to_js(&self.inner.load_phases())
    }

    /// Times every operation of `runs` inferences on the backend in use
    /// (scripts/bench-browser.mjs --profile): `{ runs, total_ms, in_ops_ms,
    /// ops: [{ op, nodes, ms, share }], nodes: [{ node, op, output, ms }] }`.
    pub async fn profile(&self, runs: usize) -> Result<JsValue, WebError> {
        to_js(&self.inner.profile(runs).await?)
    }

    /// Decodes one image file's bytes into `{ format, width, height, color,
    /// data: Uint8Array, decode_ms }` (the page's default limits; `options`
    /// as for `classify`), for another build's `classify_pixels`: the worker
    /// decodes TIFF and WebP with the full engine where its CPU-only engine,
    /// which has no decoder for them, runs the model.
    pub fn decode_pixels(image: Vec<u8>, options: JsValue) -> Result<JsValue, WebError> {
        let opts = classify_options(options)?;
        to_js(&Classifier::decode_pixels(&image, &crate::Limits::default(), opts.frame)?)
    }

    /// Classifies what another build's `decode_pixels` returned; the result
    /// is `classify`'s.
    pub async fn classify_pixels(&mut self, pixels: JsValue) -> Result<JsValue, WebError> {
        let pixels: crate::decode::Pixels = serde_wasm_bindgen::from_value(pixels).map_err(options_error)?;
        to_js(&self.inner.classify_pixels(pixels).await?)
    }

    /// Classifies one image file's bytes. `options` may be undefined or
    /// `{ frame }`: which frame of a multi-frame DICOM file (default: the
    /// middle one). The result carries a `preview` and, for a model with a
    /// `features` output, a `heatmap` (byte arrays as `Uint8Array`).
    pub async fn classify(&mut self, image: Vec<u8>, options: JsValue) -> Result<JsValue, WebError> {
        let opts = classify_options(options)?;
        to_js(&self.inner.classify_frame(&image, opts.frame).await?)
    }
}
