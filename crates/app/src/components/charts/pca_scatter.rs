//! The PCA scatter: each prompt's readout activation projected on the first two principal
//! components, coloured by condition and shaped by split.

use plotters::prelude::*;
use web_sys::HtmlCanvasElement;
use yew::prelude::*;

use hawthorne_probe::report::{Pca, PromptRecord};
use hawthorne_probe::Report;

use super::common::{
    err, file_stem, frame, Glyph, Marker, finite_range, fmt3, full, message, padded, root, use_report_canvas, ReportProps, AXIS_PX, BLUE, FONT, GREEN,
    GREY, INK, LABEL_PX, VERMILLION, WIDTH,
};
use super::export::DownloadPng;

const HEIGHT: u32 = 560;
const MARKER: i32 = 6;

fn colour(condition: &str) -> RGBColor {
    match condition {
        "observed" => BLUE,
        "unobserved" => VERMILLION,
        "neutral" => GREEN,
        _ => GREY,
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Shape {
    Circle,
    Triangle,
    Square,
}

fn shape(split: &str) -> Shape {
    match split {
        "train" => Shape::Circle,
        "test" => Shape::Triangle,
        _ => Shape::Square,
    }
}

/// A marker of `shape` at a pixel offset from its anchor.
fn marker<'a>(shape: Shape, style: ShapeStyle) -> DynElement<'a, plotters_canvas::CanvasBackend, (i32, i32)> {
    match shape {
        Shape::Circle => Circle::new((0, 0), MARKER, style).into_dyn(),
        Shape::Triangle => TriangleMarker::new((0, 0), MARKER + 1, style).into_dyn(),
        Shape::Square => Rectangle::new([(-MARKER + 1, -MARKER + 1), (MARKER - 1, MARKER - 1)], style).into_dyn(),
    }
}

fn pc_label(i: usize, ratio: f64) -> String {
    if ratio.is_finite() { format!("PC{} ({:.1}% of variance)", i + 1, ratio * 100.0) } else { format!("PC{}", i + 1) }
}

/// The prompts with finite coordinates, in prompt order.
fn points<'r>(pca: &'r Pca, prompts: &'r [PromptRecord]) -> impl Iterator<Item = (usize, &'r PromptRecord, [f64; 2])> + 'r {
    prompts.iter().zip(&pca.coords).enumerate().map(|(i, (p, c))| (i, p, *c))
}

fn draw(canvas: HtmlCanvasElement, report: &Report) -> Result<(), String> {
    let root = root(canvas)?;
    let Some(pca) = &report.pca else {
        return message(&root, "PCA", "This run has no PCA projection.");
    };
    let title = format!("PCA of {} — {}", pca.hook, report.provenance.model_id);
    let finite: Vec<(usize, &PromptRecord, [f64; 2])> =
        points(pca, &report.prompts).filter(|(_, _, c)| c[0].is_finite() && c[1].is_finite()).collect();
    let (Some(xr), Some(yr)) =
        (finite_range(finite.iter().map(|(_, _, c)| c[0])), finite_range(finite.iter().map(|(_, _, c)| c[1])))
    else {
        return message(&root, &title, "No finite coordinates to plot.");
    };
    let ((x0, x1), (y0, y1)) = (padded(xr, 0.06), padded(yr, 0.1));
    let mut entries = vec![];
    for (name, col) in [("observed", BLUE), ("unobserved", VERMILLION), ("neutral", GREEN)] {
        if report.prompts.iter().any(|p| p.condition == name) {
            entries.push((name.to_string(), Glyph::Point(col, Marker::Circle, true)));
        }
    }
    for (name, split, m) in [("train", "train", Marker::Circle), ("test (held out)", "test", Marker::Triangle), ("no split", "none", Marker::Square)] {
        if report.prompts.iter().any(|p| shape(&p.split) == shape(split)) {
            entries.push((name.to_string(), Glyph::Point(INK, m, false)));
        }
    }
    let body = frame(&root, &title, &entries)?;
    let mut chart = ChartBuilder::on(&body)
        .margin(14)
        .margin_top(6)
        .x_label_area_size(56)
        .y_label_area_size(84)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(pc_label(0, pca.explained_variance_ratio[0]))
        .y_desc(pc_label(1, pca.explained_variance_ratio[1]))
        .x_labels(8)
        .y_labels(8)
        .light_line_style(WHITE)
        .bold_line_style(RGBColor(236, 236, 236))
        .label_style((FONT, LABEL_PX))
        .axis_desc_style((FONT, AXIS_PX))
        .draw()
        .map_err(err)?;
    // Train first so that the fewer held-out (test) markers are drawn on top.
    for pass in [Shape::Circle, Shape::Square, Shape::Triangle] {
        chart
            .draw_series(finite.iter().filter(|(_, p, _)| shape(&p.split) == pass).map(|(_, p, c)| {
                let col = colour(&p.condition);
                EmptyElement::at((c[0], c[1])) + marker(pass, col.mix(0.8).filled()) + marker(pass, col.stroke_width(1))
            }))
            .map_err(err)?;
    }
    root.present().map_err(err)
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
    let (canvas, error) = use_report_canvas(report, draw);
    let heading = html! { <h2 id="pca-chart-heading">{"PCA of the activations"}</h2> };
    let Some(pca) = &report.pca else {
        return html! {
            <section class="panel wide" aria-labelledby="pca-chart-heading" data-testid="pca-section">
                {heading}
                <p class="muted">{"This run has no PCA projection."}</p>
            </section>
        };
    };
    let mismatch = pca.coords.len() != report.prompts.len();
    html! {
        <section class="panel wide" aria-labelledby="pca-chart-heading" data-testid="pca-section">
            {heading}
            <p class="muted">{format!(
                "If the model linearly encodes being observed, blue and orange points separate along a component at {}, and the held-out (triangle) framings fall on the same sides as the training ones.",
                pca.hook,
            )}</p>
            if mismatch {
                <p class="error">{format!("The report has {} PCA points for {} prompts; only the first {} are shown.", pca.coords.len(), report.prompts.len(), pca.coords.len().min(report.prompts.len()))}</p>
            }
            <canvas ref={canvas.clone()} width={WIDTH.to_string()} height={HEIGHT.to_string()}
                role="img" data-testid="pca-chart" aria-label={aria_label(report, pca)} />
            if let Some(e) = error { <p class="error">{format!("Could not draw the chart: {e}")}</p> }
            <DownloadPng canvas={canvas} filename={format!("{}-pca.png", file_stem(report))} what="the PCA scatter" />
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
