//! One file per subcommand: its flags (`Args`, with the `--help` text) and
//! its `run`. What they share lives beside this folder: the model flags
//! (`model_args`), file handling (`files`), metrics (`evaluate`), calibration,
//! export, data, models and training.

pub mod bench;
pub mod bench_train;
pub mod calibrate;
pub mod compare;
pub mod distill;
pub mod evaluate;
pub mod leakage;
pub mod predict;
pub mod quantize;
pub mod random_model;
