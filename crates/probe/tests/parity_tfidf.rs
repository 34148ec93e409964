//! The TF-IDF lexical control against scikit-learn: the same vocabulary, the same IDF, and the
//! same test scores from `TfidfVectorizer` + `LogisticRegression` (fixture written by
//! `tests/fixtures/tfidf/generate.py`).

use hawthorne_probe::lexical::{tfidf_scores, Tfidf};
use hawthorne_probe::metrics::auroc;
use serde::Deserialize;

#[derive(Deserialize)]
struct Fit {
    c: f64,
    test_scores: Vec<f64>,
    test_auroc: f64,
}

#[derive(Deserialize)]
struct Fixture {
    train: Vec<String>,
    train_labels: Vec<u8>,
    test: Vec<String>,
    test_labels: Vec<u8>,
    vocabulary: Vec<String>,
    idf: Vec<f64>,
    fits: Vec<Fit>,
}

/// Scores agree to this much (absolute): both solvers stop near the same optimum, not on it.
const SCORE_TOL: f64 = 5e-4;

#[test]
fn tfidf_logistic_matches_scikit_learn() -> anyhow::Result<()> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tfidf/tfidf.json");
    let fx: Fixture = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let tf = Tfidf::fit(&fx.train)?;
    assert_eq!(tf.vocabulary(), fx.vocabulary.iter().map(String::as_str).collect::<Vec<_>>());
    for (i, (a, b)) in tf.idf().iter().zip(&fx.idf).enumerate() {
        assert!((a - b).abs() < 1e-12, "idf of `{}`: {a} vs scikit-learn {b}", fx.vocabulary[i]);
    }
    let y: Vec<bool> = fx.train_labels.iter().map(|&l| l == 1).collect();
    let y_test: Vec<bool> = fx.test_labels.iter().map(|&l| l == 1).collect();
    for fit in &fx.fits {
        let (_, scores) = tfidf_scores(&fx.train, &y, &fx.test, fit.c, 10_000)?;
        let worst = scores.iter().zip(&fit.test_scores).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        eprintln!("C = {}: largest test-score difference from scikit-learn {worst:.1e}", fit.c);
        assert!(worst < SCORE_TOL, "C = {}: scores differ by up to {worst}", fit.c);
        assert!((auroc(&scores, &y_test) - fit.test_auroc).abs() < 1e-9, "C = {}: AUROC", fit.c);
    }
    Ok(())
}
