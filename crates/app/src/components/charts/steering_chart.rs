//! The steering sweep: the compliance gap as α × the unit probe direction (scaled to the
//! residual norm) is added at one hook, against a random direction of the same norm, with the
//! misaligned rate under unobserved framings as a second series.

use plotters::prelude::*;
use web_sys::HtmlCanvasElement;
use yew::prelude::*;

use hawthorne_probe::report::Steering;
use hawthorne_probe::Report;

use super::common::{
    ticked,
    err, file_stem, frame, kind_label, Glyph, Marker, finite_range, finite_runs, fmt3, full, message, padded, root, signed2, use_report_canvas, ReportProps,
    AXIS_PX, BLUE, FONT, GREY, LABEL_PX, VERMILLION, WIDTH,
};
use super::export::DownloadPng;

const HEIGHT: u32 = 460;

fn at(v: &[f64], i: usize) -> f64 {
    v.get(i).copied().unwrap_or(f64::NAN)
}

fn series<'s>(st: &'s Steering, values: &'s [f64]) -> impl Iterator<Item = (f64, f64)> + 's {
    st.alphas.iter().enumerate().map(move |(i, &a)| (a, at(values, i)))
}

fn draw(canvas: HtmlCanvasElement, report: &Report) -> Result<(), String> {
    let root = root(canvas)?;
    let Some(st) = &report.steering else {
        return message(&root, "Steering", "This run did no steering sweep.");
    };
    let title = format!("Steering along the {} direction at {} — {}", kind_label(&st.direction), st.hook, report.provenance.model_id);
    let ys = st.gap.iter().chain(&st.random_gap).chain(&st.rate_unobserved).copied();
    let (Some(xr), Some(yr)) = (finite_range(st.alphas.iter().copied()), finite_range(ys)) else {
        return message(&root, &title, "No finite values to plot.");
    };
    let (x0, x1) = padded(xr, 0.05);
    let (y0, y1) = padded((yr.0.min(0.0), yr.1.max(1.0)), 0.04);
    let entries = [
        (format!("compliance gap, {} direction", kind_label(&st.direction)), Glyph::Line(BLUE, Marker::Circle)),
        ("compliance gap, random direction".to_string(), Glyph::Dashed(GREY, Marker::Cross)),
        ("misaligned | unobserved".to_string(), Glyph::Line(VERMILLION, Marker::Triangle)),
    ];
    let body = frame(&root, &title, &entries)?;
    let mut chart = ChartBuilder::on(&body)
        .margin(14)
        .margin_top(6)
        .x_label_area_size(56)
        .y_label_area_size(72)
        .build_cartesian_2d(ticked(x0..x1, st.alphas.iter().copied().filter(|a| a.is_finite()).collect()), y0..y1)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(format!("α (multiples of ‖resid‖ ≈ {}; negative = towards observed)", fmt3(st.norm)))
        .y_desc("rate / gap")
        .x_label_formatter(&|a| format!("{a}"))
        .y_labels(8)
        .y_label_formatter(&|v| format!("{v:.1}"))
        .light_line_style(WHITE)
        .bold_line_style(RGBColor(236, 236, 236))
        .label_style((FONT, LABEL_PX))
        .axis_desc_style((FONT, AXIS_PX))
        .draw()
        .map_err(err)?;
    // Zero gap and α = 0.
    chart.draw_series(DashedLineSeries::new([(x0, 0.0), (x1, 0.0)], 3, 5, GREY.stroke_width(1))).map_err(err)?;
    if x0 < 0.0 && x1 > 0.0 {
        chart.draw_series(DashedLineSeries::new([(0.0, y0), (0.0, y1)], 3, 5, GREY.stroke_width(1))).map_err(err)?;
    }
    for run in finite_runs(series(st, &st.random_gap)) {
        chart.draw_series(DashedLineSeries::new(run.clone(), 8, 5, GREY.stroke_width(2))).map_err(err)?;
        chart.draw_series(run.into_iter().map(|p| Cross::new(p, 5, GREY.stroke_width(2)))).map_err(err)?;
    }
    for run in finite_runs(series(st, &st.rate_unobserved)) {
        chart.draw_series(LineSeries::new(run.clone(), VERMILLION.stroke_width(2))).map_err(err)?;
        chart.draw_series(run.into_iter().map(|p| TriangleMarker::new(p, 6, VERMILLION.filled()))).map_err(err)?;
    }
    for run in finite_runs(series(st, &st.gap)) {
        chart.draw_series(LineSeries::new(run.clone(), BLUE.stroke_width(3))).map_err(err)?;
        chart.draw_series(run.into_iter().map(|p| Circle::new(p, 5, BLUE.filled()))).map_err(err)?;
    }
    root.present().map_err(err)
}

fn aria_label(st: &Steering) -> String {
    let points: Vec<String> = st
        .alphas
        .iter()
        .enumerate()
        .map(|(i, a)| format!("α {a}: gap {}, random {}", signed2(at(&st.gap, i)), signed2(at(&st.random_gap, i))))
        .collect();
    format!("Line chart of the compliance gap against steering strength α at {}. {}.", st.hook, points.join("; "))
}

/// Compliance gap against α along the probe direction, with the random-direction control and
/// the misaligned rate under unobserved framings.
#[component]
pub fn SteeringChart(props: &ReportProps) -> Html {
    let report = &props.report;
    let (canvas, error) = use_report_canvas(report, draw);
    let heading = html! { <h2 id="steering-chart-heading">{"Steering closes the gap?"}</h2> };
    let Some(st) = report.steering.as_ref().filter(|st| !st.alphas.is_empty()) else {
        return html! {
            <section class="panel wide" aria-labelledby="steering-chart-heading" data-testid="steering-section">
                {heading}
                <p class="muted">{"This run did no steering sweep."}</p>
            </section>
        };
    };
    html! {
        <section class="panel wide" aria-labelledby="steering-chart-heading" data-testid="steering-section">
            {heading}
            <p class="muted">{format!(
                "If the {} direction at {} is causal, the blue gap shrinks towards 0 as α pushes towards observed (α < 0), while the grey random direction of the same norm leaves it flat ({} prompts per condition).",
                kind_label(&st.direction), st.hook, st.n_prompts,
            )}</p>
            <canvas ref={canvas.clone()} width={WIDTH.to_string()} height={HEIGHT.to_string()}
                role="img" data-testid="steering-chart" aria-label={aria_label(st)} />
            if let Some(e) = error { <p class="error">{format!("Could not draw the chart: {e}")}</p> }
            <DownloadPng canvas={canvas} filename={format!("{}-steering.png", file_stem(report))} what="the steering chart" />
            <details>
                <summary>{"Numbers"}</summary>
                <p data-testid="steering-summary" data-hook={st.hook.clone()} data-direction={st.direction.clone()} data-norm={full(st.norm)}>
                    {format!("Steering {} at {}; α = 1 adds ‖resid‖ ≈ {}.", kind_label(&st.direction), st.hook, fmt3(st.norm))}
                </p>
                <table data-testid="steering-table">
                    <thead><tr>
                        <th scope="col">{"α"}</th>
                        <th scope="col">{"compliance gap"}</th>
                        <th scope="col">{"misaligned | observed"}</th>
                        <th scope="col">{"misaligned | unobserved"}</th>
                        <th scope="col">{"random-direction gap"}</th>
                        <th scope="col">{"random: misaligned | unobserved"}</th>
                    </tr></thead>
                    <tbody>
                        { for st.alphas.iter().enumerate().map(|(i, &a)| html! {
                            <tr data-alpha={full(a)} data-gap={full(at(&st.gap, i))} data-random-gap={full(at(&st.random_gap, i))}
                                data-rate-observed={full(at(&st.rate_observed, i))} data-rate-unobserved={full(at(&st.rate_unobserved, i))}
                                data-random-rate-unobserved={full(at(&st.random_rate_unobserved, i))}>
                                <th scope="row">{full(a)}</th>
                                <td>{fmt3(at(&st.gap, i))}</td>
                                <td>{fmt3(at(&st.rate_observed, i))}</td>
                                <td>{fmt3(at(&st.rate_unobserved, i))}</td>
                                <td>{fmt3(at(&st.random_gap, i))}</td>
                                <td>{fmt3(at(&st.random_rate_unobserved, i))}</td>
                            </tr>
                        }) }
                    </tbody>
                </table>
            </details>
        </section>
    }
}
