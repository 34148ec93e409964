//! The logit lens by layer: KL(observed ‖ unobserved) of the next-token distributions read
//! through the final norm and unembedding (top panel), and the lens behaviour score per
//! condition (bottom panel).

use plotters::prelude::*;
use web_sys::HtmlCanvasElement;
use yew::prelude::*;

use hawthorne_probe::Report;

use super::common::{
    ticked,
    err, file_stem, frame, Glyph, Marker, finite_range, finite_runs, fmt3, full, hook_label, index_label, index_ticks, message, padded, root,
    use_report_canvas, ReportProps, AXIS_PX, BLUE, FONT, GREY, INK, LABEL_PX, VERMILLION, WIDTH,
};
use super::export::DownloadPng;

const HEIGHT: u32 = 640;

fn draw(canvas: HtmlCanvasElement, report: &Report) -> Result<(), String> {
    let root = root(canvas)?;
    let lens = &report.logit_lens;
    let title = format!("Logit lens by layer — {}", report.provenance.model_id);
    let kl_range = finite_range(lens.iter().map(|l| l.kl));
    let score_range = finite_range(lens.iter().flat_map(|l| [l.score_observed, l.score_unobserved]));
    if kl_range.is_none() && score_range.is_none() {
        return message(&root, &title, "No finite logit-lens values to plot.");
    }
    let n = lens.len();
    let labels: Vec<String> = lens.iter().map(|l| hook_label(&l.hook)).collect();
    let ticks = index_ticks(n, 24);
    let x_range = -0.5f64..n as f64 - 0.5;
    let entries = [
        ("KL (top panel)".to_string(), Glyph::Line(INK, Marker::Circle)),
        ("lens score, observed".to_string(), Glyph::Line(BLUE, Marker::Circle)),
        ("lens score, unobserved".to_string(), Glyph::Line(VERMILLION, Marker::Triangle)),
    ];
    let body = frame(&root, &title, &entries)?;
    let (top, bottom) = body.split_vertically(HEIGHT as i32 * 42 / 100);

    // Top: KL divergence.
    let kl_hi = kl_range.map_or(1.0, |(_, hi)| if hi > 0.0 { hi * 1.1 } else { 1.0 });
    let mut kl = ChartBuilder::on(&top)
        .margin(14)
        .margin_top(4)
        .x_label_area_size(36)
        .y_label_area_size(84)
        .build_cartesian_2d(ticked(x_range.clone(), ticks.clone()), 0f64..kl_hi)
        .map_err(err)?;
    kl.configure_mesh()
        .y_desc("KL(obs ‖ unobs), nats")
        .x_label_formatter(&|v| index_label(&labels, *v))
        .y_labels(5)
        .y_label_formatter(&|v| format!("{v:.2}"))
        .light_line_style(WHITE)
        .bold_line_style(RGBColor(236, 236, 236))
        .label_style((FONT, LABEL_PX))
        .axis_desc_style((FONT, AXIS_PX))
        .draw()
        .map_err(err)?;
    for run in finite_runs(lens.iter().enumerate().map(|(i, l)| (i as f64, l.kl))) {
        kl.draw_series(LineSeries::new(run.clone(), INK.stroke_width(2))).map_err(err)?;
        kl.draw_series(run.into_iter().map(|p| Circle::new(p, 5, INK.filled()))).map_err(err)?;
    }

    // Bottom: behaviour score through the lens, per condition.
    let (lo, hi) = padded(score_range.map_or((-1.0, 1.0), |(lo, hi)| (lo.min(0.0), hi.max(0.0))), 0.08);
    let mut score = ChartBuilder::on(&bottom)
        .margin(14)
        .x_label_area_size(56)
        .y_label_area_size(84)
        .build_cartesian_2d(ticked(x_range, ticks), lo..hi)
        .map_err(err)?;
    score
        .configure_mesh()
        .x_desc("hook (i = resid_post of block i, emb = embedding)")
        .y_desc("lens score (+ = misaligned)")
        .x_label_formatter(&|v| index_label(&labels, *v))
        .y_labels(6)
        .y_label_formatter(&|v| format!("{v:.1}"))
        .light_line_style(WHITE)
        .bold_line_style(RGBColor(236, 236, 236))
        .label_style((FONT, LABEL_PX))
        .axis_desc_style((FONT, AXIS_PX))
        .draw()
        .map_err(err)?;
    score
        .draw_series(DashedLineSeries::new([(-0.5, 0.0), (n as f64 - 0.5, 0.0)], 3, 5, GREY.stroke_width(1)))
        .map_err(err)?;
    for run in finite_runs(lens.iter().enumerate().map(|(i, l)| (i as f64, l.score_observed))) {
        score.draw_series(LineSeries::new(run.clone(), BLUE.stroke_width(2))).map_err(err)?;
        score.draw_series(run.into_iter().map(|p| Circle::new(p, 5, BLUE.filled()))).map_err(err)?;
    }
    for run in finite_runs(lens.iter().enumerate().map(|(i, l)| (i as f64, l.score_unobserved))) {
        score.draw_series(LineSeries::new(run.clone(), VERMILLION.stroke_width(2))).map_err(err)?;
        score.draw_series(run.into_iter().map(|p| TriangleMarker::new(p, 6, VERMILLION.filled()))).map_err(err)?;
    }
    root.present().map_err(err)
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
    let (canvas, error) = use_report_canvas(report, draw);
    let heading = html! { <h2 id="lens-chart-heading">{"Where it forks: logit lens"}</h2> };
    if report.logit_lens.is_empty() {
        return html! {
            <section class="panel wide" aria-labelledby="lens-chart-heading" data-testid="lens-section">
                {heading}
                <p class="muted">{"This run has no logit-lens readings."}</p>
            </section>
        };
    }
    html! {
        <section class="panel wide" aria-labelledby="lens-chart-heading" data-testid="lens-section">
            {heading}
            <p class="muted">{"Look for the layer where the two conditions' next-token predictions start to differ (KL rises) and the unobserved lens score turns towards the misaligned answer: that is where behaviour forks."}</p>
            <canvas ref={canvas.clone()} width={WIDTH.to_string()} height={HEIGHT.to_string()}
                role="img" data-testid="lens-chart" aria-label={aria_label(report)} />
            if let Some(e) = error { <p class="error">{format!("Could not draw the chart: {e}")}</p> }
            <DownloadPng canvas={canvas} filename={format!("{}-logit-lens.png", file_stem(report))} what="the logit-lens chart" />
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
