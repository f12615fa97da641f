//! Where the model looked: class-activation maps and the preview they are
//! drawn on.
//!
//! A model that ends in global average pooling and one linear layer scores
//! class `c` as `Σ_k W[c,k]·mean(F_k) + b_c`, so the map `Σ_k W[c,k]·F_k`
//! over the last feature map `F` shows which regions raised that score
//! (Zhou et al., "Learning Deep Features for Discriminative Localization",
//! CVPR 2016). [`CamWeights::from_model`] finds `W` in the ONNX graph (the
//! Gemm or MatMul that produces the logits; compressed weights arrive
//! expanded to float32 by the loader); [`heatmap`] computes the map for one
//! class, keeps the positive evidence, and maps it back through the
//! letterbox onto the [`Preview`], a small 8-bit grey copy of the input the
//! page draws (the browser cannot display DICOM or 16-bit TIFF itself).

use crate::backend::FeatureMap;
use crate::model::pb::{ModelProto, NodeProto, TensorProto};
use crate::model::tensor_data::values_f32;
use crate::preprocess::{letterbox_rect, resize, Plane, Resize};
use serde::{Deserialize, Serialize};

/// The longest side of a preview, in pixels.
pub const PREVIEW_MAX_SIDE: usize = 256;

/// A small 8-bit grey copy of the (windowed) input image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preview {
    pub width: usize,
    pub height: usize,
    /// Row-major, `width × height` values.
    #[serde(with = "serde_bytes")]
    pub pixels: Vec<u8>,
}

/// A class-activation map aligned pixel for pixel with its [`Preview`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heatmap {
    pub width: usize,
    pub height: usize,
    /// 0 (no positive evidence) to 255 (the strongest), row-major.
    #[serde(with = "serde_bytes")]
    pub values: Vec<u8>,
    /// The class the map explains.
    pub class: String,
}

/// The final linear layer's weights, `classes × channels`, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct CamWeights {
    pub classes: usize,
    pub channels: usize,
    pub w: Vec<f32>,
}

impl CamWeights {
    /// Finds the layer that produces `logits_name`: `Gemm(x, B, C)` (any
    /// `transB`) or `MatMul(x, B)`, optionally followed by `Add`, with `B`
    /// constant. `None` when the graph ends differently (then no heat-map).
    pub fn from_model(model: &ModelProto, logits_name: &str) -> Option<Self> {
        let graph = model.graph.as_ref()?;
        let producer = |name: &str| graph.node.iter().find(|n| n.output.iter().any(|o| o == name));
        let mut node = producer(logits_name)?;
        if node.op_type == "Add" {
            let inits: Vec<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
            let x = node.input.iter().find(|i| !inits.contains(&i.as_str()))?;
            node = producer(x)?;
        }
        let (dims, b) = constant(&graph.initializer, node.input.get(1)?)?;
        let [rows, cols] = dims[..] else { return None };
        let trans_b = node.op_type == "Gemm" && int_attr(node, "transB") == Some(1);
        match node.op_type.as_str() {
            "Gemm" if trans_b => Some(CamWeights { classes: rows, channels: cols, w: b }),
            "Gemm" | "MatMul" => {
                // B is channels × classes: transpose.
                let w = (0..cols).flat_map(|c| (0..rows).map(move |k| (c, k))).map(|(c, k)| b[k * cols + c]).collect();
                Some(CamWeights { classes: cols, channels: rows, w })
            }
            _ => None,
        }
    }
}

fn int_attr(node: &NodeProto, name: &str) -> Option<i64> {
    node.attribute.iter().find(|a| a.name == name).map(|a| a.i)
}

/// A constant's dims and f32 values (the loader has already expanded
/// compressed weights into plain initializers).
fn constant(inits: &[TensorProto], name: &str) -> Option<(Vec<usize>, Vec<f32>)> {
    let t = inits.iter().find(|t| t.name == name)?;
    Some((t.dims.iter().map(|&d| d.max(0) as usize).collect(), values_f32(t)?))
}

/// `Σ_k W[class,k]·F_k` over the feature map's `height × width` cells.
pub fn cam(features: &FeatureMap, weights: &CamWeights, class: usize) -> Option<Plane> {
    let (k, h, w) = (features.channels, features.height, features.width);
    if k != weights.channels || class >= weights.classes || features.data.len() != k * h * w {
        return None;
    }
    let row = &weights.w[class * k..(class + 1) * k];
    let mut out = Plane::new(w, h);
    for (wk, fk) in row.iter().zip(features.data.chunks_exact(h * w)) {
        for (o, f) in out.data.iter_mut().zip(fk) {
            *o += wk * f;
        }
    }
    Some(out)
}

/// Where the image sits in the model input: `(x0, y0, width, height)`.
fn placement(g: &Geometry) -> (f64, f64, f64, f64) {
    let (x0, y0, w, h) = match g.resize {
        Resize::Stretch => (0, 0, g.input_w, g.input_h),
        Resize::Letterbox => letterbox_rect(g.image_w, g.image_h, g.input_w, g.input_h),
    };
    (x0 as f64, y0 as f64, w as f64, h as f64)
}

/// Geometry shared by the preview and the map.
#[derive(Debug, Clone, Copy)]
pub struct Geometry {
    pub image_w: usize,
    pub image_h: usize,
    pub input_w: usize,
    pub input_h: usize,
    pub resize: Resize,
}

/// The preview of an intensity-scaled luminance plane (values in [0, 1]).
pub fn preview(plane: &Plane) -> Preview {
    let (w, h) = preview_size(plane.width, plane.height);
    let small = if (w, h) == (plane.width, plane.height) { plane.clone() } else { resize(plane, w, h) };
    let pixels = small.data.iter().map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8).collect();
    Preview { width: w, height: h, pixels }
}

fn preview_size(w: usize, h: usize) -> (usize, usize) {
    let longest = w.max(h).max(1);
    if longest <= PREVIEW_MAX_SIDE {
        return (w.max(1), h.max(1));
    }
    let s = PREVIEW_MAX_SIDE as f64 / longest as f64;
    (((w as f64 * s).round() as usize).max(1), ((h as f64 * s).round() as usize).max(1))
}

/// The class-activation map of `class`, positive part scaled to 0–255 by
/// its maximum, sampled (bilinearly) at every preview pixel.
pub fn heatmap(map: &Plane, geometry: &Geometry, preview: (usize, usize), class: &str) -> Heatmap {
    let g = geometry;
    let (pw, ph) = preview;
    let max = map.data.iter().copied().fold(0.0f32, f32::max);
    let (x0, y0, nw, nh) = placement(g);
    // Feature cells per input pixel.
    let (fx, fy) = (map.width as f64 / g.input_w as f64, map.height as f64 / g.input_h as f64);
    let mut values = Vec::with_capacity(pw * ph);
    for py in 0..ph {
        for px in 0..pw {
            // Preview pixel centre → input pixel → feature-map coordinate.
            let ix = x0 + (px as f64 + 0.5) / pw as f64 * nw;
            let iy = y0 + (py as f64 + 0.5) / ph as f64 * nh;
            let v = bilinear(map, ix * fx - 0.5, iy * fy - 0.5).max(0.0);
            values.push(if max > 0.0 { (v / max * 255.0).round().clamp(0.0, 255.0) as u8 } else { 0 });
        }
    }
    Heatmap { width: pw, height: ph, values, class: class.to_string() }
}

/// Bilinear interpolation with clamping at the borders.
fn bilinear(p: &Plane, x: f64, y: f64) -> f32 {
    let cx = x.clamp(0.0, (p.width - 1) as f64);
    let cy = y.clamp(0.0, (p.height - 1) as f64);
    let (x0, y0) = (cx.floor() as usize, cy.floor() as usize);
    let (x1, y1) = ((x0 + 1).min(p.width - 1), (y0 + 1).min(p.height - 1));
    let (tx, ty) = ((cx - x0 as f64) as f32, (cy - y0 as f64) as f32);
    let at = |x: usize, y: usize| p.data[y * p.width + x];
    let top = at(x0, y0) * (1.0 - tx) + at(x1, y0) * tx;
    let bottom = at(x0, y1) * (1.0 - tx) + at(x1, y1) * tx;
    top * (1.0 - ty) + bottom * ty
}

#[cfg(test)]
mod tests {
    use super::*;

    fn features(k: usize, h: usize, w: usize, hot: &[(usize, usize, usize, f32)]) -> FeatureMap {
        let mut data = vec![0.0; k * h * w];
        for &(c, y, x, v) in hot {
            data[c * h * w + y * w + x] = v;
        }
        FeatureMap { channels: k, height: h, width: w, data }
    }

    #[test]
    fn cam_weights_channels_per_class() {
        let f = features(2, 2, 2, &[(0, 0, 0, 1.0), (1, 1, 1, 2.0)]);
        let w = CamWeights { classes: 2, channels: 2, w: vec![1.0, 0.0, 0.0, -3.0] };
        assert_eq!(cam(&f, &w, 0).map(|p| p.data), Some(vec![1.0, 0.0, 0.0, 0.0]));
        assert_eq!(cam(&f, &w, 1).map(|p| p.data), Some(vec![0.0, 0.0, 0.0, -6.0]));
        assert!(cam(&f, &w, 2).is_none(), "class out of range");
        let wrong = CamWeights { classes: 2, channels: 3, w: vec![0.0; 6] };
        assert!(cam(&f, &wrong, 0).is_none(), "channel count mismatch");
    }

    #[test]
    fn hot_cell_lands_where_the_letterbox_put_it() {
        // A 200×100 image letterboxed into 64×64 occupies rows 16..48; a 4×4
        // feature map (stride 16) hot in its bottom-right cell of the image
        // band (row 2, column 3) must light the preview's right half, lower half.
        let mut map = Plane::new(4, 4);
        map.data[2 * 4 + 3] = 1.0;
        let g = Geometry { image_w: 200, image_h: 100, input_w: 64, input_h: 64, resize: Resize::Letterbox };
        let h = heatmap(&map, &g, (200, 100), "glioma");
        assert_eq!((h.width, h.height, h.values.len()), (200, 100, 20_000));
        let at = |x: usize, y: usize| h.values[y * 200 + x];
        // The hot cell's centre, input (56, 40), is preview (174.5, 74.5).
        assert!(at(175, 75) >= 250 && at(190, 75) >= 250, "{} {}", at(175, 75), at(190, 75));
        assert_eq!(at(10, 10), 0);
        assert_eq!(at(10, 90), 0);
        assert!(at(190, 10) < at(190, 75));
        // Negative evidence is dropped; an all-negative map is all zeros.
        map.data.iter_mut().for_each(|v| *v = -1.0);
        assert!(heatmap(&map, &g, (20, 10), "x").values.iter().all(|&v| v == 0));
    }

    #[test]
    fn preview_keeps_aspect_and_caps_the_side() {
        let mut p = Plane::new(1000, 500);
        p.data.iter_mut().enumerate().for_each(|(i, v)| *v = (i % 1000) as f32 / 999.0);
        let pv = preview(&p);
        assert_eq!((pv.width, pv.height), (256, 128));
        assert!(pv.pixels[0] < 5 && pv.pixels[255] > 250, "left dark, right bright");
        let small = preview(&Plane::new(40, 30));
        assert_eq!((small.width, small.height), (40, 30));
    }
}
