//! One spec on several models: a row per model (best-layer AUROC chosen on validation, its
//! relative depth, the controls and the verdict), a curve of AUROC against relative depth, and
//! the published small-model numbers set beside them.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::report::Report;

/// A published result, for the table beside Hawthorne's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Published {
    pub model: String,
    pub auroc: f64,
    pub source: String,
}

/// What the three papers report for small open models. All three choose the best layer on
/// the test set and score |AUROC − 0.5|, so these are upper bounds by construction.
pub fn published() -> Vec<Published> {
    let p = |model: &str, auroc: f64, source: &str| Published { model: model.into(), auroc, source: source.into() };
    vec![
        p("Gemma-3-270M-it", 0.65, "Chaudhary et al. 2025 (arXiv 2509.13333), layer 6 of 17"),
        p("Qwen2.5-0.5B", 0.67, "Chaudhary et al. 2025"),
        p("Gemma-3-1B", 0.68, "Chaudhary et al. 2025"),
        p("Qwen2.5-0.5B", 0.71, "Manek 2026 (arXiv 2606.29196)"),
        p("Llama-3.2-1B", 0.87, "Manek 2026"),
        p("Llama-3.3-70B", 0.829, "Nguyen et al. 2025 (arXiv 2507.01786)"),
    ]
}

/// One model's line of the study.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudyRow {
    pub model: String,
    pub model_sha256: String,
    pub n_layers: usize,
    /// The probe kind whose layer was chosen (`mass_mean` or `logistic`).
    pub probe: String,
    /// The hook chosen in most folds, and its relative depth (0 = embedding, 1 = last block).
    pub chosen_hook: Option<String>,
    pub relative_depth: Option<f64>,
    /// Test AUROC at the layers chosen on validation, with its interval.
    pub auroc: Option<f64>,
    pub auroc_ci: Option<[f64; 2]>,
    /// What choosing the layer on the test set would have reported.
    pub best_on_test: Option<f64>,
    /// The best lexical control: (label, AUROC).
    pub best_lexical: Option<(String, f64)>,
    pub random: Option<f64>,
    pub p_value: Option<f64>,
    /// Each named test group's AUROC at the chosen layers.
    pub groups: Vec<(String, f64)>,
    /// The TF-IDF control's AUROC on each named test group.
    #[serde(default)]
    pub group_tfidf: Vec<(String, f64)>,
    pub evidence: bool,
    pub verdict: String,
    /// (relative depth, test AUROC) of the selected probe kind at every probed hook.
    pub curve: Vec<(f64, f64)>,
}

/// The whole study.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Study {
    pub spec_hash: String,
    pub rows: Vec<StudyRow>,
    pub published: Vec<Published>,
}

/// Relative depth of a hook name in a model with `n_layers` blocks: `hook_embed` is 0,
/// `blocks.{i}.*` is (i + 1) / n_layers.
pub fn relative_depth(hook: &str, n_layers: usize) -> Option<f64> {
    if hook == "hook_embed" {
        return Some(0.0);
    }
    let i: usize = hook.strip_prefix("blocks.")?.split('.').next()?.parse().ok()?;
    Some((i + 1) as f64 / n_layers.max(1) as f64)
}

impl StudyRow {
    pub fn from_report(model: &str, r: &Report) -> StudyRow {
        let n_layers = r.provenance.n_layers;
        let choice = r.layer_choice.as_ref();
        let probe = choice.map_or_else(|| "mass_mean".to_string(), |c| c.probe.clone());
        let chosen_hook = choice.map(|c| c.usual_hook().0);
        let controls = r.controls.as_ref();
        let best_lexical = controls.and_then(|c| {
            c.lexical.iter().filter(|l| l.metrics.auroc.is_finite()).max_by(|a, b| a.metrics.auroc.total_cmp(&b.metrics.auroc)).map(|l| (l.label.clone(), l.metrics.auroc))
        });
        let curve = r
            .probes
            .iter()
            .filter_map(|h| {
                let auroc = if probe == "logistic" { h.logistic.auroc } else { h.mass_mean.auroc };
                relative_depth(&h.hook, n_layers).map(|d| (d, auroc))
            })
            .collect();
        StudyRow {
            model: model.to_string(),
            model_sha256: r.provenance.model_sha256.clone(),
            n_layers,
            relative_depth: chosen_hook.as_deref().and_then(|h| relative_depth(h, n_layers)),
            chosen_hook,
            probe,
            auroc: choice.map(|c| c.test.auroc),
            auroc_ci: choice.map(|c| c.test.auroc_ci),
            best_on_test: choice.map(|c| c.best_on_test),
            best_lexical,
            random: controls.and_then(|c| c.random.as_ref()).map(|r| r.metrics.auroc),
            p_value: controls.and_then(|c| c.permutation.as_ref()).map(|p| p.p_value),
            groups: controls.map_or_else(Vec::new, |c| c.groups.iter().map(|g| (g.group.clone(), g.metrics.auroc)).collect()),
            group_tfidf: controls.map_or_else(Vec::new, |c| c.groups.iter().filter_map(|g| g.tfidf_auroc.map(|a| (g.group.clone(), a))).collect()),
            evidence: controls.is_some_and(|c| c.verdict.evidence),
            verdict: controls.map_or_else(|| "no controls ran".to_string(), |c| c.verdict.text.clone()),
            curve,
        }
    }
}

fn f3(x: Option<f64>) -> String {
    x.filter(|v| v.is_finite()).map_or("–".into(), |v| format!("{v:.3}"))
}

impl Study {
    pub fn new(spec_hash: String, rows: Vec<StudyRow>) -> Study {
        Study { spec_hash, rows, published: published() }
    }

    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# Hawthorne study\n\nspec sha256 `{}`; one row per model, every number on the same prompts.\n", self.spec_hash);
        let _ = writeln!(
            s,
            "| model | AUROC at the layer chosen on validation [95% CI] | hook (relative depth) | best layer chosen on the test set | best lexical control | random direction | permutation p | verdict |\n|---|---|---|---|---|---|---|---|"
        );
        for r in &self.rows {
            let ci = r.auroc_ci.map_or("".into(), |c| format!(" [{}, {}]", f3(Some(c[0])), f3(Some(c[1]))));
            let _ = writeln!(
                s,
                "| {} | {}{} | {} ({}) | {} | {} | {} | {} | {} |",
                r.model,
                f3(r.auroc),
                ci,
                r.chosen_hook.as_deref().map_or("–".into(), |h| format!("`{h}`")),
                f3(r.relative_depth),
                f3(r.best_on_test),
                r.best_lexical.as_ref().map_or("–".into(), |(l, a)| format!("{l}: {}", f3(Some(*a)))),
                f3(r.random),
                f3(r.p_value),
                if r.evidence { "**evidence**" } else { "no evidence" }
            );
        }
        let groups: std::collections::BTreeSet<&str> = self.rows.iter().flat_map(|r| r.groups.iter().map(|g| g.0.as_str())).collect();
        if !groups.is_empty() {
            let _ = writeln!(s, "\nThe same probe on each group of test framings alone (the TF-IDF control on the same prompts in brackets):\n");
            let _ = writeln!(s, "| model | {} |\n|---|{}", groups.iter().map(|g| format!("`{g}`")).collect::<Vec<_>>().join(" | "), "---|".repeat(groups.len()));
            for r in &self.rows {
                let cells: Vec<String> = groups
                    .iter()
                    .map(|g| {
                        let words = r.group_tfidf.iter().find(|x| x.0 == *g).map_or(String::new(), |x| format!(" ({})", f3(Some(x.1))));
                        format!("{}{words}", f3(r.groups.iter().find(|x| x.0 == *g).map(|x| x.1)))
                    })
                    .collect();
                let _ = writeln!(s, "| {} | {} |", r.model, cells.join(" | "));
            }
        }
        let _ = writeln!(s, "\n## Verdicts\n");
        for r in &self.rows {
            let _ = writeln!(s, "- **{}**: {}", r.model, r.verdict);
        }
        let _ = writeln!(
            s,
            "\n## Published numbers, for comparison\n\nThese choose the best layer on the test set itself and score |AUROC − 0.5|; \
             compare them with the column \"best layer chosen on the test set\", not with the validated one.\n\n| model | AUROC | source |\n|---|---|---|"
        );
        for p in &self.published {
            let _ = writeln!(s, "| {} | {:.3} | {} |", p.model, p.auroc, p.source);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_the_embedding_as_zero_and_the_last_block_as_one() {
        assert_eq!(relative_depth("hook_embed", 30), Some(0.0));
        assert_eq!(relative_depth("blocks.29.hook_resid_post", 30), Some(1.0));
        assert_eq!(relative_depth("blocks.4.hook_mlp_out", 10), Some(0.5));
        assert_eq!(relative_depth("ln_final.hook_normalized", 10), None);
    }
}
