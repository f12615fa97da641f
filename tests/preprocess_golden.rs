//! Preprocessing against an independent numpy + Pillow implementation
//! (tests/golden/preprocess_ref.py; regenerate with the command in its docstring).

mod common;

use mriscreen::preprocess::{preprocess, InputSpec, Intensity, Layout, Resize};
use serde::Deserialize;

#[derive(Deserialize)]
struct Case {
    input: String,
    width: usize,
    height: usize,
    resize: Resize,
    intensity: Intensity,
    mean: [f32; 3],
    std: [f32; 3],
    tensor: Vec<f32>,
}

#[derive(Deserialize)]
struct Golden {
    cases: Vec<Case>,
}

#[test]
fn matches_numpy_and_pillow_reference() {
    let text = std::fs::read_to_string(common::golden("preprocess_expected.json")).unwrap();
    let golden: Golden = serde_json::from_str(&text).unwrap();
    assert_eq!(golden.cases.len(), 4);
    for case in golden.cases {
        let bytes = std::fs::read(common::golden(&case.input)).unwrap();
        let image = mriscreen::decode::decode(&bytes, &Default::default()).unwrap().image;
        let spec = InputSpec {
            width: case.width,
            height: case.height,
            mean: case.mean,
            std: case.std,
            resize: case.resize,
            intensity: case.intensity,
            layout: Layout::Nchw,
        };
        let ours = preprocess(&image, &spec);
        assert_eq!(ours.len(), case.tensor.len(), "{}", case.input);
        let worst = ours.iter().zip(&case.tensor).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst <= 1e-4, "{} {}x{} {:?}: max |diff| {worst}", case.input, case.width, case.height, case.resize);
    }
}
