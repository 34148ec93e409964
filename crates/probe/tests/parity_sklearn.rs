//! Parity with scikit-learn: on the same real activations (SmolLM2, `fixtures/sklearn/`), our
//! logistic probe's test accuracy is within 1 point of `LogisticRegression` with the same `C`,
//! and its AUROC within 0.01. Regenerate the fixture with `fixtures/sklearn/generate.py`.

use std::path::PathBuf;

use hawthorne_probe::metrics::{accuracy, auroc};
use hawthorne_probe::probes::fit_logistic;
use ndarray::{Array2, Axis};
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sklearn").join(name)
}

#[test]
fn logistic_probe_matches_sklearn() -> anyhow::Result<()> {
    let x = candle_core::Tensor::read_npy(fixture("x.npy"))?;
    let (n, d) = x.dims2()?;
    let flat: Vec<f32> = x.flatten_all()?.to_vec1()?;
    let x = Array2::from_shape_vec((n, d), flat.into_iter().map(f64::from).collect())?;
    let meta: Value = serde_json::from_str(&std::fs::read_to_string(fixture("meta.json"))?)?;
    let sk: Value = serde_json::from_str(&std::fs::read_to_string(fixture("sklearn.json"))?)?;
    let idx = |k: &str| -> Vec<usize> { meta[k].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect() };
    let labels: Vec<bool> = meta["labels"].as_array().unwrap().iter().map(|v| v.as_u64() == Some(1)).collect();
    let (train, test) = (idx("train"), idx("test"));
    let (xtr, xte) = (x.select(Axis(0), &train), x.select(Axis(0), &test));
    let ytr: Vec<bool> = train.iter().map(|&i| labels[i]).collect();
    let yte: Vec<bool> = test.iter().map(|&i| labels[i]).collect();
    for (c, want) in sk["by_c"].as_object().unwrap() {
        let c: f64 = c.parse()?;
        let probe = fit_logistic(&xtr.view(), &ytr, c, 1000, "fixture")?;
        let s = probe.scores(&xte.view());
        let (acc, auc) = (accuracy(&s, &yte), auroc(&s, &yte));
        let (sk_acc, sk_auc) = (want["test_accuracy"].as_f64().unwrap(), want["auroc"].as_f64().unwrap());
        eprintln!("C={c}: accuracy ours {acc:.4} sklearn {sk_acc:.4}; AUROC ours {auc:.4} sklearn {sk_auc:.4}");
        assert!((acc - sk_acc).abs() <= 0.01 + 1e-9, "C={c}: accuracy {acc} vs sklearn {sk_acc}");
        assert!((auc - sk_auc).abs() <= 0.01, "C={c}: AUROC {auc} vs sklearn {sk_auc}");
    }
    Ok(())
}
