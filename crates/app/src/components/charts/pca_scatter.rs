//! The PCA scatter: each prompt's readout activation projected on the first two principal
//! components, coloured by condition and shaped by split.

use yew::prelude::*;

use hawthorne_probe::report::{Pca, PromptRecord};
use hawthorne_probe::Report;

use super::common::{file_stem, finite_range, fmt3, full, padded, ReportProps, SameReport};
use super::figure::{linear, Chart, Colour, Figure, Glyph, Layer, Marker, Panel, Point, BLUE, GREEN, GREY, INK, VERMILLION};

fn colour(condition: &str) -> Colour {
    match condition {
        "observed" => BLUE,
        "unobserved" => VERMILLION,
        "neutral" => GREEN,
        _ => GREY,
    }
}

fn shape(split: &str) -> Marker {
    match split {
        "train" => Marker::Circle,
        "test" => Marker::Triangle,
        _ => Marker::Square,
    }
}

fn pc_label(i: usize, ratio: f64) -> String {
    if ratio.is_finite() { format!("PC{} ({:.1}% of variance)", i + 1, ratio * 100.0) } else { format!("PC{}", i + 1) }
}

/// The prompts with their coordinates, in prompt order.
fn points<'r>(pca: &'r Pca, prompts: &'r [PromptRecord]) -> impl Iterator<Item = (usize, &'r PromptRecord, [f64; 2])> + 'r {
    prompts.iter().zip(&pca.coords).enumerate().map(|(i, (p, c))| (i, p, *c))
}

fn figure(report: &Report) -> Figure {
    let Some(pca) = &report.pca else {
        return Figure::empty("PCA", "This run has no PCA projection.");
    };
    let title = format!("PCA of {} — {}", pca.hook, report.provenance.model_id);
    let finite: Vec<(usize, &PromptRecord, [f64; 2])> =
        points(pca, &report.prompts).filter(|(_, _, c)| c[0].is_finite() && c[1].is_finite()).collect();
    let (Some(xr), Some(yr)) =
        (finite_range(finite.iter().map(|(_, _, c)| c[0])), finite_range(finite.iter().map(|(_, _, c)| c[1])))
    else {
        return Figure::empty(title, "No finite coordinates to plot.");
    };
    let ((x0, x1), (y0, y1)) = (padded(xr, 0.06), padded(yr, 0.1));
    let mut fig = Figure::new(title);
    for (name, col) in [("observed", BLUE), ("unobserved", VERMILLION), ("neutral", GREEN)] {
        if report.prompts.iter().any(|p| p.condition == name) {
            fig.legend.push((name.to_string(), Glyph::Point(col, Marker::Circle, true)));
        }
    }
    for (name, split) in [("train", "train"), ("test (held out)", "test"), ("no split", "none")] {
        if report.prompts.iter().any(|p| shape(&p.split) == shape(split)) {
            fig.legend.push((name.to_string(), Glyph::Point(INK, shape(split), false)));
        }
    }
    let mut panel = Panel::new(
        320.0,
        linear(x0, x1, 8),
        linear(y0, y1, 8),
        pc_label(0, pca.explained_variance_ratio[0]),
        pc_label(1, pca.explained_variance_ratio[1]),
    );
    // Train first so that the fewer held-out (test) markers are drawn on top.
    let mut pts: Vec<Point> = vec![];
    for pass in [Marker::Circle, Marker::Square, Marker::Triangle] {
        pts.extend(finite.iter().filter(|(_, p, _)| shape(&p.split) == pass).map(|(i, p, c)| Point {
            x: c[0],
            y: c[1],
            colour: colour(&p.condition),
            marker: pass,
            filled: true,
            size: 5.0,
            readout: format!("prompt {i}: {} ({}, {}), framing {:?}, task {:?}: PC1 {}, PC2 {}", p.condition, p.split, p.family, p.framing, p.task, fmt3(c[0]), fmt3(c[1])),
        }));
    }
    panel.layers.push(Layer::Points { points: pts });
    fig.panels.push(panel);
    fig
}

/// How far apart the conditions' centroids are along PC1, in units of PC1's spread.
fn caption(report: &Report, pca: &Pca) -> String {
    let along = |cond: &str| {
        let v: Vec<f64> = points(pca, &report.prompts).filter(|(_, p, c)| p.condition == cond && c[0].is_finite()).map(|(_, _, c)| c[0]).collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    };
    let all: Vec<f64> = pca.coords.iter().map(|c| c[0]).filter(|v| v.is_finite()).collect();
    let mean = all.iter().sum::<f64>() / all.len().max(1) as f64;
    let sd = (all.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / all.len().max(1) as f64).sqrt();
    match (along("observed"), along("unobserved")) {
        (Some(o), Some(u)) if sd > 0.0 => {
            let d = (u - o).abs() / sd;
            format!(
                "Along PC1 the observed and unobserved prompts' means lie {:.1} standard deviations apart{}. Check that held-out (triangle) framings fall on the same sides as the training ones.",
                d,
                if d >= 1.0 { ": the first component largely encodes being watched" } else { ": being watched is not the main direction of variation here" },
            )
        }
        _ => format!("If the model linearly encodes being observed, blue and vermillion points separate along a component at {}.", pca.hook),
    }
}

fn aria_label(report: &Report, pca: &Pca) -> String {
    let centroid = |cond: &str| {
        let pts: Vec<f64> = points(pca, &report.prompts).filter(|(_, p, c)| p.condition == cond && c[0].is_finite()).map(|(_, _, c)| c[0]).collect();
        if pts.is_empty() { f64::NAN } else { pts.iter().sum::<f64>() / pts.len() as f64 }
    };
    format!(
        "Scatter plot of {} prompts on the first two principal components of {}, explaining {} and {} of the variance. Mean PC1: observed {}, unobserved {}.",
        pca.coords.len().min(report.prompts.len()),
        pca.hook,
        super::common::percent(pca.explained_variance_ratio[0]),
        super::common::percent(pca.explained_variance_ratio[1]),
        fmt3(centroid("observed")),
        fmt3(centroid("unobserved")),
    )
}

/// PCA coordinates coloured by condition and shaped by split, with the explained variance in
/// the axis labels.
#[component]
pub fn PcaScatter(props: &ReportProps) -> Html {
    let report = &props.report;
    let fig = use_memo(SameReport(report.clone()), |r| figure(&r.0));
    let heading = html! { <h2 id="pca-chart-heading">{"PCA of the activations"}</h2> };
    let Some(pca) = &report.pca else {
        return html! {
            <section class="panel" aria-labelledby="pca-chart-heading" data-testid="pca-section">
                {heading}
                <p class="muted">{"This run has no PCA projection."}</p>
            </section>
        };
    };
    let mismatch = pca.coords.len() != report.prompts.len();
    html! {
        <section class="panel" aria-labelledby="pca-chart-heading" data-testid="pca-section">
            {heading}
            if mismatch {
                <p class="error">{format!("The report has {} PCA points for {} prompts; only the first {} are shown.", pca.coords.len(), report.prompts.len(), pca.coords.len().min(report.prompts.len()))}</p>
            }
            <Chart figure={fig} testid="pca-chart" filename={format!("{}-pca", file_stem(report))} what="the PCA scatter"
                summary={aria_label(report, pca)} caption={caption(report, pca)} />
            <details>
                <summary>{"Numbers"}</summary>
                <p data-testid="pca-summary" data-hook={pca.hook.clone()}
                    data-explained-pc1={full(pca.explained_variance_ratio[0])} data-explained-pc2={full(pca.explained_variance_ratio[1])}>
                    {format!("{}: {} and {}.", pca.hook, pc_label(0, pca.explained_variance_ratio[0]), pc_label(1, pca.explained_variance_ratio[1]))}
                </p>
                <table data-testid="pca-table">
                    <thead><tr>
                        <th scope="col">{"#"}</th>
                        <th scope="col">{"condition"}</th>
                        <th scope="col">{"split"}</th>
                        <th scope="col">{"family"}</th>
                        <th scope="col">{"framing"}</th>
                        <th scope="col">{"task"}</th>
                        <th scope="col">{"PC1"}</th>
                        <th scope="col">{"PC2"}</th>
                    </tr></thead>
                    <tbody>
                        { for points(pca, &report.prompts).map(|(i, p, c)| html! {
                            <tr data-index={i.to_string()} data-condition={p.condition.clone()} data-split={p.split.clone()}
                                data-family={p.family.clone()} data-pc1={full(c[0])} data-pc2={full(c[1])}>
                                <th scope="row">{i}</th>
                                <td>{&p.condition}</td>
                                <td>{&p.split}</td>
                                <td>{&p.family}</td>
                                <td>{&p.framing}</td>
                                <td>{&p.task}</td>
                                <td>{fmt3(c[0])}</td>
                                <td>{fmt3(c[1])}</td>
                            </tr>
                        }) }
                    </tbody>
                </table>
            </details>
        </section>
    }
}
