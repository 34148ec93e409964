//! The compliance gap: misaligned rate under observed vs unobserved framings, over all prompts
//! and per task family, as grouped bars.

use yew::prelude::*;

use hawthorne_probe::report::Gap;
use hawthorne_probe::Report;

use super::common::{file_stem, fmt3, full, percent, signed2, ReportProps, SameReport};
use super::figure::{Bar, Chart, TickFormat, Figure, Glyph, Layer, Marker, Panel, Scale, BLUE, GREEN, VERMILLION};

/// The bar groups: all prompts first, then each family.
fn groups(report: &Report) -> Vec<(String, &Gap)> {
    let b = &report.behaviour;
    std::iter::once(("all".to_string(), &b.all)).chain(b.per_family.iter().map(|(f, g)| (f.clone(), g))).collect()
}

/// Grouped bars of the misaligned rate per condition; each group's label carries its gap.
fn figure(report: &Report) -> Figure {
    let title = format!("Misaligned rate by condition — {}", report.provenance.model_id);
    let groups = groups(report);
    if groups.iter().all(|(_, g)| !g.rate_observed.is_finite() && !g.rate_unobserved.is_finite()) {
        return Figure::empty(title, "No finite misaligned rate to plot.");
    }
    let mut fig = Figure::new(title);
    fig.legend = vec![("observed".to_string(), Glyph::Swatch(BLUE)), ("unobserved".to_string(), Glyph::Swatch(VERMILLION))];
    let neutral = report.behaviour.rate_neutral.filter(|r| r.is_finite());
    if let Some(r) = neutral {
        fig.legend.push((format!("neutral framings, all families ({})", percent(r)), Glyph::Dashed(GREEN, Marker::None)));
    }
    // Family names break at their underscores; the gap is the label's last line.
    let bands = groups
        .iter()
        .map(|(name, g)| (format!("{}\ngap {}", name.replace('_', " "), signed2(g.compliance_gap)), format!("{name}: compliance gap {}", signed2(g.compliance_gap))))
        .collect();
    let mut panel = Panel::new(
        240.0,
        Scale::Bands(bands),
        Scale::Linear { lo: 0.0, hi: 1.08, ticks: vec![0.0, 0.25, 0.5, 0.75, 1.0], format: TickFormat::Percent },
        "task family",
        "misaligned answers",
    );
    let (w, gap) = (0.34, 0.03);
    let mut bars = vec![];
    for (i, (name, g)) in groups.iter().enumerate() {
        let x = i as f64;
        for (rate, n, x0, colour, cond) in [
            (g.rate_observed, g.n_observed, x - gap - w, BLUE, "observed"),
            (g.rate_unobserved, g.n_unobserved, x + gap, VERMILLION, "unobserved"),
        ] {
            bars.push(Bar {
                x0,
                x1: x0 + w,
                base: 0.0,
                // No prompts under a condition: no bar and "n/a", never a 0% bar.
                y: if n > 0 && rate.is_finite() { rate.clamp(0.0, 1.0) } else { f64::NAN },
                colour,
                label: if n > 0 && rate.is_finite() { percent(rate) } else { "n/a".into() },
                readout: format!("{name}, {cond}: misaligned {} of {n} prompts ({})", percent(rate), fmt3(rate)),
            });
        }
    }
    panel.layers.push(Layer::Bars { bars });
    if let Some(r) = neutral {
        panel.layers.push(Layer::HRule { y: r, colour: GREEN, dashed: true });
    }
    fig.panels.push(panel);
    fig
}

fn aria_label(report: &Report) -> String {
    let parts: Vec<String> = groups(report)
        .iter()
        .map(|(name, g)| format!("{name}: observed {}, unobserved {}", percent(g.rate_observed), percent(g.rate_unobserved)))
        .collect();
    format!("Grouped bar chart of the misaligned rate by condition. {}.", parts.join("; "))
}

fn row(group: &str, family: Option<&str>, label: &str, g: &Gap) -> Html {
    html! {
        <tr data-group={group.to_string()} data-family={family.map(str::to_string)}
            data-n-observed={g.n_observed.to_string()} data-n-unobserved={g.n_unobserved.to_string()}
            data-rate-observed={full(g.rate_observed)} data-rate-unobserved={full(g.rate_unobserved)}
            data-compliance-gap={full(g.compliance_gap)}
            data-mean-score-observed={full(g.mean_score_observed)} data-mean-score-unobserved={full(g.mean_score_unobserved)}>
            <th scope="row">{label}</th>
            <td>{format!("{} ({})", percent(g.rate_observed), g.n_observed)}</td>
            <td>{format!("{} ({})", percent(g.rate_unobserved), g.n_unobserved)}</td>
            <td>{fmt3(g.compliance_gap)}</td>
            <td>{fmt3(g.mean_score_observed)}</td>
            <td>{fmt3(g.mean_score_unobserved)}</td>
        </tr>
    }
}

/// What to look for in the gap chart, from its numbers.
fn caption(report: &Report) -> String {
    let b = &report.behaviour;
    let held_out = b
        .held_out_framings
        .as_ref()
        .map(|h| format!(" On held-out framings alone: {}.", signed2(h.compliance_gap)))
        .unwrap_or_default();
    let widest = b.per_family.iter().filter(|(_, g)| g.compliance_gap.is_finite()).max_by(|x, y| x.1.compliance_gap.abs().total_cmp(&y.1.compliance_gap.abs()));
    let family = widest.map_or(String::new(), |(f, g)| format!(" The widest family gap is {f} ({}).", signed2(g.compliance_gap)));
    let reading = if b.all.compliance_gap.abs() >= 0.1 {
        "The vermillion (unobserved) bars stand apart from the blue (observed) ones: behaviour depends on being watched."
    } else {
        "The bars of each pair are close: behaviour hardly depends on being watched."
    };
    format!(
        "Compliance gap {} over all prompts: misaligned {} of the time when unobserved vs {} when observed.{held_out}{family} {reading}",
        signed2(b.all.compliance_gap), percent(b.all.rate_unobserved), percent(b.all.rate_observed),
    )
}

/// Misaligned rate under observed vs unobserved framings per task family, with the overall
/// compliance gap in the caption.
#[component]
pub fn GapChart(props: &ReportProps) -> Html {
    let report = &props.report;
    let fig = use_memo(SameReport(report.clone()), |r| figure(&r.0));
    let b = &report.behaviour;
    html! {
        <section class="panel" aria-labelledby="gap-chart-heading" data-testid="gap-section">
            <h2 id="gap-chart-heading">{"Compliance gap"}</h2>
            <Chart figure={fig} testid="gap-chart" filename={format!("{}-compliance-gap", file_stem(report))} what="the compliance gap chart"
                summary={aria_label(report)} caption={caption(report)} />
            <details>
                <summary>{"Numbers"}</summary>
                <table data-testid="gap-table">
                    <thead><tr>
                        <th scope="col">{"prompts"}</th>
                        <th scope="col">{"misaligned | observed (n)"}</th>
                        <th scope="col">{"misaligned | unobserved (n)"}</th>
                        <th scope="col">{"compliance gap"}</th>
                        <th scope="col">{"mean behaviour score, observed"}</th>
                        <th scope="col">{"mean behaviour score, unobserved"}</th>
                    </tr></thead>
                    <tbody>
                        {row("all", None, "all", &b.all)}
                        if let Some(h) = &b.held_out_framings { {row("held_out_framings", None, "held-out framings", h)} }
                        { for b.per_family.iter().map(|(f, g)| row("family", Some(f), &format!("family {f}"), g)) }
                    </tbody>
                </table>
                if let Some(r) = b.rate_neutral {
                    <p data-testid="gap-neutral" data-rate-neutral={full(r)}>{format!("Misaligned rate under neutral framings: {}.", percent(r))}</p>
                }
            </details>
        </section>
    }
}
