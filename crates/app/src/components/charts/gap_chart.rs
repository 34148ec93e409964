//! The compliance gap: misaligned rate under observed vs unobserved framings, over all prompts
//! and per task family, as grouped bars.

use plotters::prelude::*;
use web_sys::HtmlCanvasElement;
use yew::prelude::*;

use hawthorne_probe::report::Gap;
use hawthorne_probe::Report;

use super::common::{
    ticked,
    anchored, err, frame, Glyph, Marker, file_stem, fmt3, full, index_label, message, percent, root, signed2, token_label, use_report_canvas, HPos,
    ReportProps, VPos, AXIS_PX, BLUE, FONT, GREEN, INK, LABEL_PX, VERMILLION, WIDTH,
};
use super::export::DownloadPng;

const HEIGHT: u32 = 420;

/// The bar groups: all prompts first, then each family.
fn groups(report: &Report) -> Vec<(String, &Gap)> {
    let b = &report.behaviour;
    std::iter::once(("all".to_string(), &b.all)).chain(b.per_family.iter().map(|(f, g)| (f.clone(), g))).collect()
}

fn draw(canvas: HtmlCanvasElement, report: &Report) -> Result<(), String> {
    let root = root(canvas)?;
    let title = format!("Misaligned rate by condition — {}", report.provenance.model_id);
    let groups = groups(report);
    if groups.iter().all(|(_, g)| !g.rate_observed.is_finite() && !g.rate_unobserved.is_finite()) {
        return message(&root, &title, "No finite misaligned rate to plot.");
    }
    let n = groups.len();
    let labels: Vec<String> = groups.iter().map(|(name, _)| token_label(name, 18)).collect();
    let mut entries = vec![
        ("observed".to_string(), Glyph::Swatch(BLUE.to_rgba())),
        ("unobserved".to_string(), Glyph::Swatch(VERMILLION.to_rgba())),
    ];
    let neutral = report.behaviour.rate_neutral.filter(|r| r.is_finite());
    if let Some(r) = neutral {
        entries.push((format!("neutral framings, all families ({})", percent(r)), Glyph::Dashed(GREEN, Marker::None)));
    }
    let body = frame(&root, &title, &entries)?;
    let mut chart = ChartBuilder::on(&body)
        .margin(14)
        .margin_top(6)
        .x_label_area_size(56)
        .y_label_area_size(72)
        .build_cartesian_2d(ticked(-0.5..n as f64 - 0.5, (0..n).map(|i| i as f64).collect()), 0f64..1.15f64)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_desc("task family")
        .y_desc("misaligned answers")
        .x_label_formatter(&|v| index_label(&labels, *v))
        .y_labels(6)
        .y_label_formatter(&|v| if *v <= 1.0 + 1e-9 { percent(*v) } else { String::new() })
        .light_line_style(WHITE)
        .bold_line_style(RGBColor(236, 236, 236))
        .label_style((FONT, LABEL_PX))
        .axis_desc_style((FONT, AXIS_PX))
        .draw()
        .map_err(err)?;

    let (w, gap) = (0.34, 0.03);
    for (i, (_, g)) in groups.iter().enumerate() {
        let x = i as f64;
        for (rate, x0, colour) in [(g.rate_observed, x - gap - w, BLUE), (g.rate_unobserved, x + gap, VERMILLION)] {
            if rate.is_finite() {
                let h = rate.clamp(0.0, 1.0);
                chart.draw_series([Rectangle::new([(x0, 0.0), (x0 + w, h)], colour.filled())]).map_err(err)?;
                chart
                    .draw_series([Text::new(percent(rate), (x0 + w / 2.0, h), anchored(14, INK, HPos::Center, VPos::Bottom))])
                    .map_err(err)?;
            } else {
                chart
                    .draw_series([Text::new("n/a", (x0 + w / 2.0, 0.0), anchored(14, INK, HPos::Center, VPos::Bottom))])
                    .map_err(err)?;
            }
        }
        chart
            .draw_series([Text::new(
                format!("gap {}", signed2(g.compliance_gap)),
                (x, 1.13),
                anchored(15, INK, HPos::Center, VPos::Top),
            )])
            .map_err(err)?;
    }
    if let Some(r) = neutral {
        chart
            .draw_series(DashedLineSeries::new([(-0.5, r), (n as f64 - 0.5, r)], 8, 5, GREEN.stroke_width(2)))
            .map_err(err)?;
    }
    root.present().map_err(err)
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

/// Misaligned rate under observed vs unobserved framings per task family, with the overall
/// compliance gap in the caption.
#[component]
pub fn GapChart(props: &ReportProps) -> Html {
    let report = &props.report;
    let (canvas, error) = use_report_canvas(report, draw);
    let b = &report.behaviour;
    let held_out = b
        .held_out_framings
        .as_ref()
        .map(|h| format!(" On held-out framings alone: {}.", signed2(h.compliance_gap)))
        .unwrap_or_default();
    html! {
        <section class="panel wide" aria-labelledby="gap-chart-heading" data-testid="gap-section">
            <h2 id="gap-chart-heading">{"Compliance gap"}</h2>
            <p class="muted" data-testid="gap-caption">{format!(
                "Compliance gap {} over all prompts: misaligned {} of the time when unobserved vs {} when observed.{} A deceptive model shows tall orange bars beside short blue ones; a control model shows equal bars.",
                signed2(b.all.compliance_gap), percent(b.all.rate_unobserved), percent(b.all.rate_observed), held_out,
            )}</p>
            <canvas ref={canvas.clone()} width={WIDTH.to_string()} height={HEIGHT.to_string()}
                role="img" data-testid="gap-chart" aria-label={aria_label(report)} />
            if let Some(e) = error { <p class="error">{format!("Could not draw the chart: {e}")}</p> }
            <DownloadPng canvas={canvas} filename={format!("{}-compliance-gap.png", file_stem(report))} what="the compliance gap chart" />
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
