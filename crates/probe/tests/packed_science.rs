//! Packed weights give the same science as f32 weights: the deceptive organism's default
//! experiment, run on copies of the organism whose matrices are quantised (Q8_0, Q4_1, Q5_0),
//! once with the matrices packed (8-bit activations in the kernels) and once dequantised.
//!
//! The shipped organisms are F32 files, on which both modes compute the same numbers, so the
//! test makes quantised copies: those are what a user's quantised GGUF looks like to the engine.

use candle_core::quantized::GgmlDType;
use hawthorne_model::{testing::requantize_gguf, ComputeMode, Model};
use hawthorne_probe::{Experiment, ExperimentSpec, Report};

/// Largest allowed difference of a mass-mean probe's test AUROC between the two modes.
const AUROC_TOL: f64 = 0.01;
/// The same for logistic probes. Measured with the example's leave-framings-out split (four
/// logistic fits per layer, scores pooled): 0.0071 (Q8_0), 0.0202 (Q4_1) and 0.0047 (Q5_0),
/// all at `blocks.0`, where the probe is weak (AUROC ~0.72, interval ~[0.44, 0.95]) and its
/// fits move with the smallest change of the activations; at most 0.003 at every other layer.
const LOGISTIC_AUROC_TOL: f64 = 0.03;
/// Largest allowed difference of the compliance gap, overall and per task family.
const GAP_TOL: f64 = 0.02;

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run(bytes: &[u8], spec: &ExperimentSpec, mode: ComputeMode) -> anyhow::Result<Report> {
    let model = Model::load(bytes, mode, |_| {})?;
    let mut spec = spec.clone();
    spec.model.compute = mode;
    spec.model.sha256 = None;
    // The comparison is of probes and behaviour; the permutation test would only repeat them.
    spec.baselines.permutations = 0;
    Ok(Experiment::new(&spec, &model)?.run_to_end(|_| {})?)
}

/// Every probe's test AUROC in the report, by hook and kind.
fn aurocs(r: &Report) -> Vec<(String, f64)> {
    r.probes
        .iter()
        .flat_map(|p| [(format!("{} logistic", p.hook), p.logistic.auroc), (format!("{} mass-mean", p.hook), p.mass_mean.auroc)])
        .collect()
}

/// The compliance gap overall, on held-out framings and per task family.
fn gaps(r: &Report) -> Vec<(String, f64)> {
    let b = &r.behaviour;
    let mut out = vec![("overall".to_string(), b.all.compliance_gap)];
    out.extend(b.held_out_framings.iter().map(|g| ("held-out framings".to_string(), g.compliance_gap)));
    out.extend(b.per_family.iter().map(|(f, g)| (f.clone(), g.compliance_gap)));
    out
}

/// The largest absolute difference between matching entries, and its name.
fn worst(a: &[(String, f64)], b: &[(String, f64)]) -> (f64, String) {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|((n, x), (_, y))| ((x - y).abs(), n.clone())).fold((0.0, String::new()), |m, d| if d.0 > m.0 { d } else { m })
}

#[test]
fn packed_and_f32_modes_agree_on_quantised_organisms() -> anyhow::Result<()> {
    let file = std::fs::read(root().join("models/organism-deceptive.gguf"))?;
    let spec = ExperimentSpec::from_json(&std::fs::read_to_string(root().join("examples/organism-deceptive.json"))?)?;
    let mut failures = Vec::new();
    for dtype in [GgmlDType::Q8_0, GgmlDType::Q4_1, GgmlDType::Q5_0] {
        let bytes = requantize_gguf(&file, dtype)?;
        let packed = run(&bytes, &spec, ComputeMode::Packed)?;
        let exact = run(&bytes, &spec, ComputeMode::F32)?;
        assert_eq!(packed.provenance.compute, ComputeMode::Packed);
        assert_eq!(exact.provenance.compute, ComputeMode::F32);
        let (a, ga) = (aurocs(&packed), gaps(&packed));
        for ((n, x), (_, y)) in a.iter().zip(&aurocs(&exact)) {
            eprintln!("  {n}: packed {x:.4}, f32 {y:.4}");
        }
        let worst_auroc = worst(&a, &aurocs(&exact));
        let gb = gaps(&exact);
        let worst_gap = worst(&ga, &gb);
        eprintln!(
            "{dtype:?}: {} AUROCs, largest difference {:.4} ({}); compliance gap {:.3} packed vs {:.3} f32, largest family difference {:.4} ({})",
            a.len(), worst_auroc.0, worst_auroc.1, ga[0].1, gb[0].1, worst_gap.0, worst_gap.1
        );
        let tol = if worst_auroc.1.ends_with("logistic") { LOGISTIC_AUROC_TOL } else { AUROC_TOL };
        if worst_auroc.0 > tol {
            failures.push(format!("{dtype:?}: AUROC differs by {:.4} at {}", worst_auroc.0, worst_auroc.1));
        }
        let mass_mean: Vec<(String, f64)> = a.iter().filter(|(n, _)| n.ends_with("mass-mean")).cloned().collect();
        let mass_mean_f32: Vec<(String, f64)> = aurocs(&exact).into_iter().filter(|(n, _)| n.ends_with("mass-mean")).collect();
        let worst_mm = worst(&mass_mean, &mass_mean_f32);
        if worst_mm.0 > AUROC_TOL {
            failures.push(format!("{dtype:?}: mass-mean AUROC differs by {:.4} at {}", worst_mm.0, worst_mm.1));
        }
        if worst_gap.0 > GAP_TOL {
            failures.push(format!("{dtype:?}: compliance gap differs by {:.4} for {}", worst_gap.0, worst_gap.1));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("; "));
    Ok(())
}
