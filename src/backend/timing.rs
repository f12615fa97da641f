//! Where the time goes: the phases of loading a model, and a profile of
//! inference by operation on either backend (`mriscreen bench --profile` and
//! `scripts/bench-browser.mjs --profile` write them; README, "Benchmark").

use serde::Serialize;
use web_time::Instant;

/// One part of loading a model and how long it took.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Phase {
    pub name: &'static str,
    pub ms: f64,
}

/// Consecutive phases: each [`lap`](Self::lap) ends the phase that began at
/// the previous lap (or at the start).
pub struct Stopwatch {
    last: Instant,
    phases: Vec<Phase>,
}

impl Stopwatch {
    pub fn start() -> Self {
        Stopwatch { last: Instant::now(), phases: Vec::new() }
    }

    pub fn lap(&mut self, name: &'static str) {
        let now = Instant::now();
        self.phases.push(Phase { name, ms: (now - self.last).as_secs_f64() * 1e3 });
        self.last = now;
    }

    pub fn phases(self) -> Vec<Phase> {
        self.phases
    }
}

/// Mean time per inference spent in each kind of operation, and in the
/// slowest nodes. On the CPU the operations are those of the optimised
/// graph tract runs (its names: e.g. `OptMatMul` for convolutions lowered to
/// matrix products, `DepthWise`, `Im2col`); on WebGPU they are wonnx's
/// compute passes, timed on the device and named by the ONNX node they
/// compute (e.g. `Conv 1x1`, `Conv depthwise 3x3+Relu`).
#[derive(Debug, Clone, Serialize)]
pub struct Profile {
    pub runs: usize,
    /// Mean wall time of one inference while profiled (the timing adds a little).
    pub total_ms: f64,
    /// Mean of the operations' own times per inference; the rest of
    /// `total_ms` is tract's scheduling, or on WebGPU the submission, the
    /// read-back and the device's time between passes.
    pub in_ops_ms: f64,
    /// Operation kinds, slowest first.
    pub ops: Vec<OpTime>,
    /// The slowest nodes, slowest first (at most [`TOP_NODES`]).
    pub nodes: Vec<NodeTime>,
}

/// How many of the slowest nodes a [`Profile`] lists.
pub const TOP_NODES: usize = 15;

#[derive(Debug, Clone, Serialize)]
pub struct OpTime {
    pub op: String,
    pub nodes: usize,
    pub ms: f64,
    /// Fraction of `in_ops_ms`.
    pub share: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct NodeTime {
    pub node: String,
    pub op: String,
    /// The node's output shape.
    pub output: String,
    pub ms: f64,
}

impl Profile {
    /// Builds the profile from each node's (name, op kind, output shape, summed ms) over `runs` inferences.
    pub fn from_nodes(nodes: Vec<(String, String, String, f64)>, runs: usize, total_ms: f64) -> Profile {
        let runs_f = runs.max(1) as f64;
        let in_ops: f64 = nodes.iter().map(|n| n.3).sum::<f64>() / runs_f;
        let mut ops: Vec<OpTime> = Vec::new();
        for (_, op, _, ms) in &nodes {
            match ops.iter_mut().find(|o| &o.op == op) {
                Some(o) => {
                    o.nodes += 1;
                    o.ms += ms / runs_f;
                }
                None => ops.push(OpTime { op: op.clone(), nodes: 1, ms: ms / runs_f, share: 0.0 }),
            }
        }
        for o in &mut ops {
            o.share = if in_ops > 0.0 { o.ms / in_ops } else { 0.0 };
        }
        ops.sort_by(|a, b| b.ms.total_cmp(&a.ms));
        let mut top: Vec<NodeTime> =
            nodes.into_iter().map(|(node, op, output, ms)| NodeTime { node, op, output, ms: ms / runs_f }).collect();
        top.sort_by(|a, b| b.ms.total_cmp(&a.ms));
        top.truncate(TOP_NODES);
        Profile { runs, total_ms, in_ops_ms: in_ops, ops, nodes: top }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_groups_by_op_and_averages_over_runs() {
        let n = |name: &str, op: &str, ms| (name.to_string(), op.to_string(), "1,8".to_string(), ms);
        let p = Profile::from_nodes(vec![n("a", "Conv", 6.0), n("b", "Add", 2.0), n("c", "Conv", 4.0)], 2, 7.0);
        assert_eq!(p.in_ops_ms, 6.0);
        assert_eq!((p.ops[0].op.as_str(), p.ops[0].nodes, p.ops[0].ms), ("Conv", 2, 5.0));
        assert_eq!((p.ops[1].op.as_str(), p.ops[1].nodes, p.ops[1].ms), ("Add", 1, 1.0));
        assert!((p.ops[0].share - 5.0 / 6.0).abs() < 1e-12);
        assert_eq!(p.nodes.iter().map(|n| n.node.as_str()).collect::<Vec<_>>(), ["a", "c", "b"]);
    }

    #[test]
    fn a_loaded_model_reports_its_load_phases_and_profiles_on_the_cpu() {
        use crate::model::random::{self, RandomNet};
        let model = random::mobilenet_v2(0.35, &RandomNet::new(&crate::CLASSES, 64, 1));
        let c = crate::Classifier::new(&model, &Default::default()).expect("a random model loads");
        let names: Vec<_> = c.load_phases().iter().map(|p| p.name).collect();
        assert_eq!(
            names,
            [
                "SHA-256",
                "ONNX parse and checks",
                "weights to float32",
                "BatchNorm folded into convolutions", // the random network has Conv → BatchNorm pairs
                "tract: import and type the graph",
                "tract: optimise",
                "tract: plan",
                "heat-map weights"
            ]
        );
        let p = crate::block_on(c.profile(2)).expect("profiles");
        assert_eq!(p.runs, 2);
        assert!(p.in_ops_ms > 0.0 && p.in_ops_ms <= p.total_ms, "{} of {}", p.in_ops_ms, p.total_ms);
        // Every convolution of the network ran somewhere in the optimised graph.
        let nodes: usize = p.ops.iter().map(|o| o.nodes).sum();
        assert!(nodes >= 52, "{nodes} timed nodes");
        assert!((p.ops.iter().map(|o| o.share).sum::<f64>() - 1.0).abs() < 1e-9);
        assert!(p.nodes.len() <= TOP_NODES && p.nodes.windows(2).all(|w| w[0].ms >= w[1].ms));
    }

    #[test]
    fn stopwatch_laps_are_consecutive() {
        let mut w = Stopwatch::start();
        w.lap("one");
        w.lap("two");
        let p = w.phases();
        assert_eq!(p.iter().map(|p| p.name).collect::<Vec<_>>(), ["one", "two"]);
        assert!(p.iter().all(|p| p.ms >= 0.0));
    }
}
