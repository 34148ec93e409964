//! Property tests: any spec within the documented bounds either is refused with an error or
//! runs every stage to a report on the organisms, and never panics; its cost estimate is
//! computed without panicking too, and the run never has more steps than estimated.
//!
//! `PROPTEST_CASES` sets the number of specs (32 by default; fuzz/README.md records longer
//! runs). Each case runs a small experiment on the real organism files in `models/`.

use std::path::Path;
use std::sync::OnceLock;

use hawthorne_model::{HookPoint, Model};
use hawthorne_probe::spec::{DirectionKind, Readout, Split};
use hawthorne_probe::{Experiment, ExperimentSpec, Stage};
use proptest::prelude::*;

fn organisms() -> &'static [(String, Model); 2] {
    static MODELS: OnceLock<[(String, Model); 2]> = OnceLock::new();
    MODELS.get_or_init(|| {
        let load = |id: &str| {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../models/{id}.gguf"));
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (id.to_string(), Model::from_gguf_bytes(&bytes).expect("the organism loads"))
        };
        [load("organism-deceptive"), load("organism-control")]
    })
}

fn base_spec() -> ExperimentSpec {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/organism-deceptive.json");
    ExperimentSpec::from_json(&std::fs::read_to_string(path).expect("example spec")).expect("example spec is valid")
}

/// Hooks patterns a user might type, valid and not.
const HOOKS: &[&str] = &[
    "hook_embed,blocks.*.hook_resid_post",
    "blocks.*.hook_resid_mid",
    "blocks.0.hook_mlp_out,blocks.3.attn.hook_z",
    "blocks.9.hook_resid_post",
    "blocks.*.attn.hook_pattern",
    "nonsense",
    "",
];

prop_compose! {
    fn arb_spec()(
        organism in 0usize..2,
        seed in any::<u64>(),
        split in 0usize..5,
        test_fraction in 0.0f64..1.0,
        k in 1usize..8,
        hooks in prop_oneof![4 => 0..3usize, 1 => 0..HOOKS.len()],
        readout in any::<bool>(),
        c in 1e-3f64..1e3,
        max_iter in 1u64..60,
        bootstrap in 0usize..30,
        (random_directions, shuffled) in (0usize..12, any::<bool>()),
        (permutations, select_logistic, lexical) in (0usize..6, any::<bool>(), any::<bool>()),
        (continuations, max_tokens) in (0usize..3, 1usize..6),
        (patching, pairs, positions, stride) in (any::<bool>(), 1usize..4, 1usize..6, 1usize..5),
        (steering, layer, alphas, direction, max_prompts) in (any::<bool>(), proptest::option::of(0usize..8), proptest::collection::vec(-4.0f64..4.0, 0..4), any::<bool>(), 1usize..10),
        (batch_size, framings, tasks) in (1usize..40, proptest::collection::vec(proptest::bool::weighted(0.9), 15), proptest::collection::vec(proptest::bool::weighted(0.9), 10)),
        pca_layer in proptest::option::of(0usize..6),
    ) -> (usize, ExperimentSpec) {
        let mut s = base_spec();
        s.seed = seed;
        s.split = match split {
            0 => Split::ByFraming,
            1 => Split::ByFamily,
            2 => Split::Random { test_fraction },
            3 => Split::KFold { k },
            _ => Split::LeaveFramingsOut { k },
        };
        s.hooks = HOOKS[hooks].to_string();
        s.readout = if readout { Readout::Last } else { Readout::MeanTask };
        s.probes.c = c;
        s.probes.max_iter = max_iter;
        s.probes.bootstrap = bootstrap;
        s.baselines.random_directions = random_directions;
        s.baselines.shuffled_labels = shuffled;
        s.baselines.permutations = permutations;
        s.baselines.lexical = lexical;
        s.probes.select = if select_logistic { DirectionKind::Logistic } else { DirectionKind::MassMean };
        s.behaviour.continuations = continuations;
        s.behaviour.max_tokens = max_tokens;
        s.patching.enabled = patching;
        s.patching.pairs = pairs;
        s.patching.max_positions = positions;
        s.patching.layer_stride = stride;
        s.steering.enabled = steering;
        s.steering.layer = layer;
        s.steering.alphas = alphas;
        s.steering.direction = if direction { DirectionKind::MassMean } else { DirectionKind::Logistic };
        s.steering.max_prompts = max_prompts;
        s.limits.batch_size = batch_size;
        s.pca.hook = pca_layer.map(HookPoint::ResidPost);
        // Drop some framings and tasks (possibly all: an empty scenario must be refused).
        let mut keep = framings.iter();
        s.scenario.framings.retain(|_| *keep.next().unwrap_or(&true));
        let mut keep = tasks.iter();
        s.scenario.tasks.retain(|_| *keep.next().unwrap_or(&true));
        (organism, s)
    }
}

/// Runs one spec; `Ok(true)` when every stage ran to a report.
fn check(organism: usize, mut spec: ExperimentSpec) -> Result<bool, TestCaseError> {
    let (id, model) = &organisms()[organism];
    spec.model.id = id.clone();
    // Through the link encoding, as a stranger's spec arrives.
    let Ok(spec) = ExperimentSpec::decode(&spec.encode()) else { return Ok(false) };
    let Ok(mut exp) = Experiment::new(&spec, model) else { return Ok(false) };
    let cost = exp.cost();
    prop_assert!(cost.seconds.is_finite() && cost.seconds >= 0.0, "{cost:?}");
    let mut steps = 0u64;
    while exp.stage() != Stage::Done {
        if exp.step().is_err() {
            return Ok(false);
        }
        steps += 1;
    }
    prop_assert!(steps <= cost.steps + 8, "{steps} steps run, {} estimated", cost.steps);
    let report = exp.finish();
    prop_assert!(report.is_ok(), "finish failed after every stage ran: {:?}", report.err());
    Ok(true)
}

#[test]
fn specs_within_bounds_never_panic() {
    use proptest::test_runner::{Config, TestRunner};
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(32);
    let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    let completed = std::cell::Cell::new(0u32);
    let result = runner.run(&arb_spec(), |(organism, spec)| {
        if check(organism, spec)? {
            completed.set(completed.get() + 1);
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    eprintln!("{cases} specs: {} ran every stage, the rest were refused with an error", completed.get());
    // The generator must reach the stages, not only the validation errors.
    assert!(completed.get() * 4 >= cases, "only {} of {cases} specs ran to a report", completed.get());
}
