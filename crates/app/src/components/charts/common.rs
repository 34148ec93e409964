//! Pieces every report chart shares: the props, hook and token labels, number formatting.

use std::rc::Rc;

use yew::prelude::*;

use hawthorne_probe::Report;

/// The props of every report chart.
#[derive(Debug, Properties)]
pub struct ReportProps {
    pub report: Rc<Report>,
}

/// Two props are equal when they hold the same report allocation: a deep comparison would be
/// slow for big reports and never equal for reports holding NaN.
impl PartialEq for ReportProps {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.report, &other.report)
    }
}

/// A report compared by identity, as a memo dependency.
#[derive(Debug, Clone)]
pub struct SameReport(pub Rc<Report>);

impl PartialEq for SameReport {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}

/// A short axis label for a TransformerLens hook name: `emb`, `3` (resid_post of block 3),
/// `3 pre`, `3 mid`, `3 attn`, `3 mlp`, `final`.
pub fn hook_label(hook: &str) -> String {
    if hook == "hook_embed" {
        return "emb".into();
    }
    if hook.starts_with("ln_final") {
        return "final".into();
    }
    if let Some((block, site)) = hook.strip_prefix("blocks.").and_then(|rest| rest.split_once('.')) {
        return match site {
            "hook_resid_post" => block.to_string(),
            "hook_resid_pre" => format!("{block} pre"),
            "hook_resid_mid" => format!("{block} mid"),
            "hook_attn_out" => format!("{block} attn"),
            "hook_mlp_out" => format!("{block} mlp"),
            "attn.hook_pattern" => format!("{block} pat"),
            other => format!("{block} {}", other.trim_start_matches("hook_")),
        };
    }
    hook.to_string()
}

/// A direction or probe name as shown to readers: `mass_mean` → `mass-mean`.
pub fn kind_label(kind: &str) -> String {
    kind.replace('_', "-")
}

/// Three decimals, or a dash for NaN and infinities.
pub fn fmt3(x: f64) -> String {
    if x.is_finite() { format!("{x:.3}") } else { "–".into() }
}

/// Signed, two decimals, or a dash.
pub fn signed2(x: f64) -> String {
    if x.is_finite() { format!("{x:+.2}") } else { "–".into() }
}

/// A rate as a whole percentage, or a dash.
pub fn percent(x: f64) -> String {
    if x.is_finite() { format!("{:.0}%", x * 100.0) } else { "–".into() }
}

/// Full precision (Rust `Display`) for data attributes.
pub fn full(x: f64) -> String {
    x.to_string()
}

/// The finite minimum and maximum of some values, if any is finite.
pub fn finite_range(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    values.into_iter().filter(|v| v.is_finite()).fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

/// Pads a value range by `pad` of its width (or by 0.5 if it is a single value).
pub fn padded((lo, hi): (f64, f64), pad: f64) -> (f64, f64) {
    let w = hi - lo;
    if w > 1e-12 { (lo - w * pad, hi + w * pad) } else { (lo - 0.5, hi + 0.5) }
}

/// A token as shown on an axis: whitespace made visible, at most `max` characters.
pub fn token_label(token: &str, max: usize) -> String {
    let visible: String = token
        .chars()
        .map(|c| match c {
            ' ' => '·',
            '\n' => '⏎',
            '\t' => '→',
            c if c.is_control() => '\u{fffd}',
            c => c,
        })
        .collect();
    if visible.chars().count() > max {
        let mut s: String = visible.chars().take(max.saturating_sub(1)).collect();
        s.push('…');
        s
    } else if visible.is_empty() {
        "∅".into()
    } else {
        visible
    }
}

/// A short file-name stem for a report's PNGs: `hawthorne-<model>-<spec hash prefix>`.
pub fn file_stem(report: &Report) -> String {
    let model: String = report
        .provenance
        .model_id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' })
        .collect();
    let hash: String = report.provenance.spec_hash.chars().take(8).collect();
    if hash.is_empty() { format!("hawthorne-{model}") } else { format!("hawthorne-{model}-{hash}") }
}
