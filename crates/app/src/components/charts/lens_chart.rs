//! The logit lens by layer: KL(observed ‖ unobserved) of the next-token distributions read
//! through the final norm and unembedding (top panel), and the lens behaviour score per
//! condition (bottom panel).

use yew::prelude::*;

use hawthorne_probe::Report;

use super::common::{file_stem, finite_range, fmt3, full, hook_label, padded, ReportProps, SameReport};
use super::figure::{linear, Chart, Figure, Glyph, Layer, Marker, Panel, Scale, BLUE, GREY, INK, VERMILLION};

/// KL between the conditions by layer (top) and the lens behaviour score per condition (bottom).
fn figure(report: &Report) -> Figure {
    let lens = &report.logit_lens;
    let title = format!("Logit lens by layer — {}", report.provenance.model_id);
    let kl_range = finite_range(lens.iter().map(|l| l.kl));
    let score_range = finite_range(lens.iter().flat_map(|l| [l.score_observed, l.score_unobserved]));
    if kl_range.is_none() && score_range.is_none() {
        return Figure::empty(title, "No finite logit-lens values to plot.");
    }
    let bands: Vec<(String, String)> = lens.iter().map(|l| (hook_label(&l.hook), l.hook.clone())).collect();
    let mut fig = Figure::new(title);
    fig.legend = vec![
        ("KL (top panel)".to_string(), Glyph::Line(INK, Marker::Circle)),
        ("lens score, observed".to_string(), Glyph::Line(BLUE, Marker::Circle)),
        ("lens score, unobserved".to_string(), Glyph::Line(VERMILLION, Marker::Triangle)),
    ];
    let kl_hi = kl_range.map_or(1.0, |(_, hi)| if hi > 0.0 { hi * 1.1 } else { 1.0 });
    let mut top = Panel::new(170.0, Scale::Bands(bands.clone()), linear(0.0, kl_hi, 4), "", "KL(obs ‖ unobs), nats");
    top.layers.push(Layer::Line {
        colour: INK,
        dashed: false,
        width: 2.0,
        marker: Marker::Circle,
        points: lens.iter().enumerate().map(|(i, l)| (i as f64, l.kl)).collect(),
        readouts: lens.iter().map(|l| format!("{}: KL(observed ‖ unobserved) {} nats", l.hook, fmt3(l.kl))).collect(),
    });
    let (lo, hi) = padded(score_range.map_or((-1.0, 1.0), |(lo, hi)| (lo.min(0.0), hi.max(0.0))), 0.08);
    let mut bottom = Panel::new(200.0, Scale::Bands(bands), linear(lo, hi, 5), "hook (i = resid_post of block i, emb = embedding)", "lens score (+ = misaligned)");
    bottom.layers = vec![
        Layer::HRule { y: 0.0, colour: GREY, dashed: true },
        Layer::Line {
            colour: BLUE,
            dashed: false,
            width: 2.0,
            marker: Marker::Circle,
            points: lens.iter().enumerate().map(|(i, l)| (i as f64, l.score_observed)).collect(),
            readouts: lens.iter().map(|l| format!("{}: lens score observed {}", l.hook, fmt3(l.score_observed))).collect(),
        },
        Layer::Line {
            colour: VERMILLION,
            dashed: false,
            width: 2.0,
            marker: Marker::Triangle,
            points: lens.iter().enumerate().map(|(i, l)| (i as f64, l.score_unobserved)).collect(),
            readouts: lens.iter().map(|l| format!("{}: lens score unobserved {}", l.hook, fmt3(l.score_unobserved))).collect(),
        },
    ];
    fig.panels = vec![top, bottom];
    fig
}

/// What to look for, from the numbers: the layer where KL peaks and where the unobserved
/// score first leans misaligned while the observed one does not.
fn caption(report: &Report) -> String {
    let lens = &report.logit_lens;
    let peak = lens.iter().filter(|l| l.kl.is_finite()).max_by(|a, b| a.kl.total_cmp(&b.kl));
    let fork = lens.iter().find(|l| l.score_unobserved.is_finite() && l.score_observed.is_finite() && l.score_unobserved > 0.0 && l.score_observed <= 0.0);
    let peak = peak.map_or("The KL between conditions is never finite".into(), |l| {
        format!("The conditions' next-token predictions differ most at {} (KL {} nats)", super::probe_chart::hook_phrase(&l.hook), fmt3(l.kl))
    });
    let fork = fork.map_or(" and no layer's lens reads misaligned only when unobserved.".into(), |l| {
        format!("; {} is the first layer where the unobserved lens score leans misaligned ({}) while the observed one does not ({}): where behaviour starts to fork.", super::probe_chart::hook_phrase(&l.hook), fmt3(l.score_unobserved), fmt3(l.score_observed))
    });
    format!("{peak}{fork}")
}

fn aria_label(report: &Report) -> String {
    let lens = &report.logit_lens;
    let peak = lens
        .iter()
        .filter(|l| l.kl.is_finite())
        .max_by(|a, b| a.kl.total_cmp(&b.kl))
        .map_or("none".into(), |l| format!("{} at {}", fmt3(l.kl), l.hook));
    let last = lens.last().map_or(String::new(), |l| {
        format!(" At {} the lens score is {} observed and {} unobserved.", l.hook, fmt3(l.score_observed), fmt3(l.score_unobserved))
    });
    format!("Two line charts over {} layers: logit-lens KL between conditions, largest {peak}; and the lens behaviour score per condition.{last}", lens.len())
}

/// Logit-lens KL(observed ‖ unobserved) by layer, with the lens behaviour score per condition
/// on a second panel.
#[component]
pub fn LensChart(props: &ReportProps) -> Html {
    let report = &props.report;
    let fig = use_memo(SameReport(report.clone()), |r| figure(&r.0));
    let heading = html! { <h2 id="lens-chart-heading">{"Where it forks: logit lens"}</h2> };
    if report.logit_lens.is_empty() {
        return html! {
            <section class="panel" aria-labelledby="lens-chart-heading" data-testid="lens-section">
                {heading}
                <p class="muted">{"This run has no logit-lens readings."}</p>
            </section>
        };
    }
    html! {
        <section class="panel" aria-labelledby="lens-chart-heading" data-testid="lens-section">
            {heading}
            <Chart figure={fig} testid="lens-chart" filename={format!("{}-logit-lens", file_stem(report))} what="the logit-lens chart"
                summary={aria_label(report)} caption={caption(report)} />
            <details>
                <summary>{"Numbers"}</summary>
                <table data-testid="lens-table">
                    <thead><tr>
                        <th scope="col">{"hook"}</th>
                        <th scope="col">{"KL(observed ‖ unobserved)"}</th>
                        <th scope="col">{"lens score, observed"}</th>
                        <th scope="col">{"lens score, unobserved"}</th>
                    </tr></thead>
                    <tbody>
                        { for report.logit_lens.iter().map(|l| html! {
                            <tr data-hook={l.hook.clone()} data-kl={full(l.kl)}
                                data-score-observed={full(l.score_observed)} data-score-unobserved={full(l.score_unobserved)}>
                                <th scope="row">{&l.hook}</th>
                                <td>{fmt3(l.kl)}</td>
                                <td>{fmt3(l.score_observed)}</td>
                                <td>{fmt3(l.score_unobserved)}</td>
                            </tr>
                        }) }
                    </tbody>
                </table>
            </details>
        </section>
    }
}
