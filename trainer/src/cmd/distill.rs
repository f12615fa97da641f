//! `mriscreen distill`: `train` with a teacher (the work is in
//! `crate::train::distill`). Every `train` flag applies, three renamed so
//! that `--alpha` can be the distillation weight, as in the literature:
//! `--arch` is `--student`, and MobileNetV2's width `--alpha` is `--width`.

use crate::train::{self, distill::Distill};
use clap::{value_parser, Arg, ArgMatches, Command, FromArgMatches};
use std::path::PathBuf;

/// Why the defaults are what they are (printed under `distill --help`).
const DEFAULTS: &str = "Defaults, and why:
  --alpha 0.7 --tau 4   mostly the teacher's softened outputs (which carry how alike the classes look), with
                        enough of the labels to correct a teacher that is itself wrong on some scans
  --epochs 0,0,30       the student trains every layer from the first epoch (the DenseNet-32 student has no
                        ImageNet weights, so a frozen backbone would be random), and distillation keeps paying
                        over long schedules (Beyer et al. 2022); hence also --patience 8
  --mixup 0             mixup helps long schedules on large data; on a few thousand scans it is an option to
                        try, not a default we have measured
The teacher runs on the CPU backend on the same augmented image as the student, every step.
Ablation: the same command with --alpha 0 (no teacher needed) trains the student on the labels alone.";

pub const DEFAULT_EPOCHS: &str = "0,0,30";
const DEFAULT_PATIENCE: &str = "8";
const DEFAULT_ALPHA: &str = "0.7";
const DEFAULT_TAU: &str = "4";

pub struct Args {
    pub train: train::Args,
}

fn distill_args(cmd: Command) -> Command {
    cmd.after_help(DEFAULTS).mut_arg("arch", |a| {
        a.long("student").default_value("densenet32").help(
            "Student architecture: densenet32 (the paper's student), mobilenet-v2 (width from --width), \
             efficientnet-lite0, densenet101 or densenet121",
        )
    })
    .mut_arg("alpha", |a| a.long("width").value_name("WIDTH").help("MobileNetV2 width multiplier of the student (0.35, 0.5, 0.75, 1.0)"))
    .mut_arg("epochs", |a| {
        a.default_value(DEFAULT_EPOCHS)
            .help("Epochs of stages 1, 2 and 3 (0 skips a stage); students train every layer from the start (stage 3)")
    })
    .mut_arg("patience", |a| a.default_value(DEFAULT_PATIENCE))
    .arg(
        Arg::new("teacher")
            .long("teacher")
            .value_name("ONNX_OR_RUN")
            .value_parser(value_parser!(PathBuf))
            .help("The teacher: any ONNX classifier the loader accepts, or a run folder (its model.onnx); not needed with --alpha 0"),
    )
    .arg(
        Arg::new("kd_alpha")
            .long("alpha")
            .value_name("ALPHA")
            .value_parser(value_parser!(f32))
            .default_value(DEFAULT_ALPHA)
            .help("Weight of the distillation term: loss = α·τ²·KL(teacher‖student) + (1 − α)·CE(labels); 0 = the same run without a teacher (the ablation)"),
    )
    .arg(
        Arg::new("tau")
            .long("tau")
            .value_name("TAU")
            .value_parser(value_parser!(f32))
            .default_value(DEFAULT_TAU)
            .help("Temperature τ softening both teacher and student outputs in the KL term"),
    )
    .arg(
        Arg::new("mixup")
            .long("mixup")
            .value_name("M")
            .value_parser(value_parser!(f32))
            .default_value("0")
            .help("Mix image pairs with weights from Beta(m, m); teacher and student see the same mixture (0 = off; stage 1 never mixes)"),
    )
    .arg(
        Arg::new("teacher_map")
            .long("teacher-map")
            .value_name("MAP")
            .value_parser(crate::train::distill::parse_map)
            .help("Teacher class → dataset class, where they are named differently: no_tumor=notumor,glioma_tumor=glioma"),
    )
}

impl FromArgMatches for Args {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        let mut train = train::Args::from_arg_matches(m)?;
        let get = |id: &str| m.get_one::<f32>(id).copied().unwrap_or_default();
        train.distill = Some(Distill {
            teacher: m.get_one::<PathBuf>("teacher").cloned(),
            alpha: get("kd_alpha"),
            tau: get("tau"),
            mixup: get("mixup"),
            teacher_map: m.get_one::<Vec<(String, String)>>("teacher_map").cloned().unwrap_or_default(),
        });
        Ok(Args { train })
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

impl clap::Args for Args {
    fn augment_args(cmd: Command) -> Command {
        distill_args(<train::Args as clap::Args>::augment_args(cmd))
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        distill_args(<train::Args as clap::Args>::augment_args_for_update(cmd))
    }
}
