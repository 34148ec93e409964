//! The patching heatmap: for each hook (row) and token position (column, offset 0 = the last
//! prompt token, at the right), the fraction of the behaviour gap closed by copying the
//! observed run's activation into the unobserved run, beside the same patch made along a
//! random direction of equal norm.

use plotters::prelude::*;
use web_sys::HtmlCanvasElement;
use yew::prelude::*;

use hawthorne_probe::report::Patching;
use hawthorne_probe::Report;

use super::common::{
    ticked,
    anchored, err, frame, file_stem, fmt3, full, hook_label, message, root, token_label, use_report_canvas, Area, HPos, ReportProps,
    VPos, AXIS_PX, BLUE, FONT, GREY, INK, LABEL_PX, LIGHT_GREY, ORANGE, SKY, VERMILLION, WIDTH,
};
use super::export::DownloadPng;

const TITLE_H: u32 = 34;
/// Room under the main heatmap for the rotated token labels and the axis description.
const TOKENS_H: u32 = 128;
const CONTROL_CAPTION_H: u32 = 30;
const BOTTOM_H: u32 = 16;
const COLOUR_BAR_W: u32 = 120;
const Y_LABELS_W: u32 = 112;

/// Row heights and the canvas height for a patching result.
#[derive(Debug, Clone, Copy)]
struct Layout {
    row: u32,
    control_row: u32,
    main_h: u32,
    height: u32,
}

fn layout(p: &Patching) -> Layout {
    let rows = p.hooks.len().max(1) as u32;
    let row = (400 / rows).clamp(10, 34);
    let control_row = (row / 2).max(5);
    let main_h = 8 + rows * row + TOKENS_H;
    let height = TITLE_H + main_h + CONTROL_CAPTION_H + rows * control_row + BOTTOM_H;
    Layout { row, control_row, main_h, height }
}

fn lerp(a: RGBColor, b: RGBColor, t: f64) -> RGBColor {
    let m = |x: u8, y: u8| (f64::from(x) + (f64::from(y) - f64::from(x)) * t).round() as u8;
    RGBColor(m(a.0, b.0), m(a.1, b.1), m(a.2, b.2))
}

/// Blue (negative) – white (0) – orange (positive), clamped to [−1, 1]; colour-blind safe.
fn diverging(v: f64) -> RGBColor {
    let t = v.clamp(-1.0, 1.0);
    let (mid, end) = if t >= 0.0 { (ORANGE, VERMILLION) } else { (SKY, BLUE) };
    let a = t.abs();
    if a <= 0.5 { lerp(WHITE, mid, a * 2.0) } else { lerp(mid, end, (a - 0.5) * 2.0) }
}

/// Column order: the largest offset at the left, offset 0 (the last prompt token) at the right.
fn columns(p: &Patching) -> Vec<usize> {
    let mut cols: Vec<usize> = (0..p.offsets.len()).collect();
    cols.sort_by(|&a, &b| p.offsets[b].cmp(&p.offsets[a]));
    cols
}

fn cell(grid: &[Vec<Option<f64>>], hook: usize, offset: usize) -> Option<f64> {
    grid.get(hook).and_then(|row| row.get(offset)).copied().flatten().filter(|v| v.is_finite())
}

/// Draws one heatmap into `area`; returns the pixel position of each column's centre on the
/// bottom edge, for the token labels.
fn heatmap(
    area: &Area,
    p: &Patching,
    grid: &[Vec<Option<f64>>],
    row_h: u32,
    x_label_h: u32,
    caption: Option<&str>,
) -> Result<Vec<(i32, i32)>, String> {
    let (nh, cols) = (p.hooks.len(), columns(p));
    let nc = cols.len();
    let labels: Vec<String> = p.hooks.iter().map(|h| hook_label(h)).collect();
    let step = (17 / row_h.max(1) + 1) as usize;
    let y_ticks: Vec<f64> = (0..nh).filter(|h| h % step == 0 || *h == nh - 1).map(|h| h as f64 + 0.5).collect();
    let mut builder = ChartBuilder::on(area);
    builder.margin_left(14).margin_right(8).margin_top(8).x_label_area_size(x_label_h).y_label_area_size(Y_LABELS_W);
    if let Some(c) = caption {
        builder.caption(c, (FONT, LABEL_PX));
    }
    let mut chart = builder
        .build_cartesian_2d(ticked(0.0..nc as f64, vec![]), ticked(0.0..nh as f64, y_ticks))
        .map_err(err)?;
    let y_label = |y: &f64| labels.get(y.floor().max(0.0) as usize).cloned().unwrap_or_default();
    let mut mesh = chart.configure_mesh();
    mesh.disable_mesh()
        .y_label_formatter(&y_label)
        .label_style((FONT, LABEL_PX))
        .axis_desc_style((FONT, AXIS_PX));
    if x_label_h > 0 {
        mesh.x_desc("token (offset back from the answer; the last prompt token is at the right)").y_desc("hook");
    }
    mesh.draw().map_err(err)?;
    for h in 0..nh {
        let y = h as f64;
        for (c, &k) in cols.iter().enumerate() {
            let x = c as f64;
            match cell(grid, h, k) {
                Some(v) => {
                    chart.draw_series([Rectangle::new([(x, y), (x + 1.0, y + 1.0)], diverging(v).filled())]).map_err(err)?;
                }
                None => {
                    chart
                        .draw_series([Rectangle::new([(x, y), (x + 1.0, y + 1.0)], RGBColor(228, 228, 228).filled())])
                        .map_err(err)?;
                    chart
                        .draw_series(
                            [
                                [(x, y), (x + 1.0, y + 1.0)],
                                [(x, y + 0.5), (x + 0.5, y + 1.0)],
                                [(x + 0.5, y), (x + 1.0, y + 0.5)],
                            ]
                            .map(|seg| PathElement::new(seg.to_vec(), GREY.stroke_width(1))),
                        )
                        .map_err(err)?;
                }
            }
        }
    }
    chart
        .draw_series([Rectangle::new([(0.0, 0.0), (nc as f64, nh as f64)], LIGHT_GREY.stroke_width(1))])
        .map_err(err)?;
    Ok((0..nc).map(|c| chart.backend_coord(&(c as f64 + 0.5, 0.0))).collect())
}

fn colour_bar(area: &Area) -> Result<(), String> {
    let mut chart = ChartBuilder::on(area)
        .margin_top(8)
        .margin_left(24)
        .margin_right(4)
        .x_label_area_size(TOKENS_H)
        .right_y_label_area_size(56)
        .build_cartesian_2d(0f64..1f64, ticked(-1.0..1.0, vec![-1.0, -0.5, 0.0, 0.5, 1.0]))
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_label_formatter(&|v| if *v >= 1.0 { "≥ 1".into() } else if *v <= -1.0 { "≤ −1".into() } else { format!("{v}") })
        .label_style((FONT, 14))
        .draw()
        .map_err(err)?;
    let steps = 100;
    chart
        .draw_series((0..steps).map(|i| {
            let lo = -1.0 + 2.0 * i as f64 / steps as f64;
            let hi = lo + 2.0 / steps as f64;
            Rectangle::new([(0.0, lo), (1.0, hi)], diverging((lo + hi) / 2.0).filled())
        }))
        .map_err(err)?;
    chart.draw_series([Rectangle::new([(0.0, -1.0), (1.0, 1.0)], LIGHT_GREY.stroke_width(1))]).map_err(err)?;
    // Legend for missing cells and the quantity, under the bar.
    // Chart coordinates are the backend's; the area draws relative to its own corner.
    let (bx, by) = area.get_base_pixel();
    let (x0, y0) = chart.backend_coord(&(0.0, -1.0));
    let (x1, _) = chart.backend_coord(&(1.0, -1.0));
    let (x0, y0, x1) = (x0 - bx, y0 - by, x1 - bx);
    let swatch = [(x0, y0 + 14), (x1, y0 + 30)];
    area.draw(&Rectangle::new(swatch, RGBColor(228, 228, 228).filled())).map_err(err)?;
    area.draw(&PathElement::new(vec![(x0, y0 + 30), (x1, y0 + 14)], GREY.stroke_width(1))).map_err(err)?;
    area.draw(&Text::new("n/a", (x1 + 6, y0 + 22), anchored(14, INK, HPos::Left, VPos::Center))).map_err(err)?;
    for (i, line) in ["fraction", "of the gap", "closed"].iter().enumerate() {
        area.draw(&Text::new(*line, (x0, y0 + 44 + 18 * i as i32), anchored(14, INK, HPos::Left, VPos::Top))).map_err(err)?;
    }
    Ok(())
}

fn draw(canvas: HtmlCanvasElement, report: &Report) -> Result<(), String> {
    let root = root(canvas)?;
    let title = format!("Activation patching: fraction of the behaviour gap closed — {}", report.provenance.model_id);
    let Some(p) = &report.patching else {
        return message(&root, &title, "This run did no patching.");
    };
    if p.hooks.is_empty() || p.offsets.is_empty() {
        return message(&root, &title, "The patching sweep is empty.");
    }
    let lay = layout(p);
    let titled = frame(&root, &title, &[])?;
    let (left, right) = titled.split_horizontally(WIDTH - COLOUR_BAR_W);
    let (main, control) = left.split_vertically(lay.main_h);
    let centres = heatmap(&main, p, &p.fraction_closed, lay.row, TOKENS_H, None)?;
    heatmap(
        &control,
        p,
        &p.random_control,
        lay.control_row,
        0,
        Some("random direction of the same norm (control: should stay near white)"),
    )?;
    let (right_top, _) = right.split_vertically(lay.main_h);
    colour_bar(&right_top)?;

    // Token labels, rotated, under each column of the main heatmap.
    let cols = columns(p);
    let width = centres.get(1).zip(centres.first()).map_or(40, |(b, a)| (b.0 - a.0).max(1));
    let step = (16 / width + 1) as usize;
    let label_style = anchored(14, INK, HPos::Right, VPos::Center).transform(FontTransform::Rotate270);
    for (c, &(x, y)) in centres.iter().enumerate() {
        let from_right = centres.len() - 1 - c;
        if from_right % step != 0 {
            continue;
        }
        let k = cols[c];
        let tok = p.tokens.get(k).map_or("?".to_string(), |t| token_label(t, 10));
        root.draw(&Text::new(tok, (x, y + 6), label_style.clone())).map_err(err)?;
    }
    root.present().map_err(err)
}

fn best(grid: &[Vec<Option<f64>>]) -> Option<(f64, usize, usize)> {
    grid.iter()
        .enumerate()
        .flat_map(|(h, row)| row.iter().enumerate().filter_map(move |(o, v)| v.filter(|v| v.is_finite()).map(|v| (v, h, o))))
        .max_by(|a, b| a.0.total_cmp(&b.0))
}

fn describe_best(p: &Patching, grid: &[Vec<Option<f64>>]) -> Option<String> {
    best(grid).map(|(v, h, o)| {
        format!(
            "{} at {}, {} token(s) before the answer ({})",
            fmt3(v),
            p.hooks.get(h).map_or("?", String::as_str),
            p.offsets.get(o).copied().unwrap_or(0),
            p.tokens.get(o).map_or("?".into(), |t| format!("{t:?}")),
        )
    })
}

fn matrix_table(p: &Patching, grid: &[Vec<Option<f64>>], testid: &'static str, control: bool) -> Html {
    let cols = columns(p);
    html! {
        <table data-testid={testid}>
            <thead><tr>
                <th scope="col">{"hook \\ token (offset)"}</th>
                { for cols.iter().map(|&k| html! {
                    <th scope="col" data-offset={p.offsets[k].to_string()} data-token={p.tokens.get(k).cloned()}>
                        {format!("{} ({})", p.tokens.get(k).map_or("?".into(), |t| token_label(t, 16)), p.offsets[k])}
                    </th>
                }) }
            </tr></thead>
            <tbody>
                { for p.hooks.iter().enumerate().map(|(h, hook)| html! {
                    <tr data-hook={hook.clone()}>
                        <th scope="row">{hook}</th>
                        { for cols.iter().map(|&k| {
                            let v = grid.get(h).and_then(|row| row.get(k)).copied().flatten();
                            html! {
                                <td data-hook={hook.clone()} data-offset={p.offsets[k].to_string()}
                                    data-fraction-closed={v.filter(|_| !control).map(full)}
                                    data-random-control={v.filter(|_| control).map(full)}>
                                    {v.map_or("n/a".into(), fmt3)}
                                </td>
                            }
                        }) }
                    </tr>
                }) }
            </tbody>
        </table>
    }
}

/// Hooks × token positions, coloured by the fraction of the behaviour gap a patch closes, with
/// the random-direction control below.
#[component]
pub fn PatchingHeatmap(props: &ReportProps) -> Html {
    let report = &props.report;
    let (canvas, error) = use_report_canvas(report, draw);
    let heading = html! { <h2 id="patching-chart-heading">{"Where it forks: activation patching"}</h2> };
    let Some(p) = report.patching.as_ref().filter(|p| !p.hooks.is_empty() && !p.offsets.is_empty()) else {
        return html! {
            <section class="panel wide" aria-labelledby="patching-chart-heading" data-testid="patching-section">
                {heading}
                <p class="muted" data-testid="patching-none">{
                    if report.patching.is_some() { "The patching sweep is empty." } else { "This run did no patching (it is off in the spec, or the gap was too small to patch)." }
                }</p>
            </section>
        };
    };
    let lay = layout(p);
    let best_text = describe_best(p, &p.fraction_closed);
    let control_text = best(&p.random_control).map(|(v, _, _)| fmt3(v));
    let all_none = best_text.is_none();
    html! {
        <section class="panel wide" aria-labelledby="patching-chart-heading" data-testid="patching-section">
            {heading}
            <p class="muted">{format!(
                "Orange cells are where copying the observed run's activation into the unobserved run restores the aligned answer (1 = the whole gap of {} closed, mean over {} pair(s)); the random control below should stay near white.",
                fmt3(p.mean_gap), p.pairs,
            )}</p>
            if all_none {
                <p class="muted">{"Every cell is n/a: the behaviour gap between the paired runs was too small to normalise by."}</p>
            }
            <canvas ref={canvas.clone()} width={WIDTH.to_string()} height={lay.height.to_string()}
                role="img" data-testid="patching-chart"
                aria-label={format!(
                    "Heatmap of the fraction of the behaviour gap closed by patching {} hooks at {} token positions. Largest: {}. Largest for the random-direction control: {}.",
                    p.hooks.len(), p.offsets.len(), best_text.clone().unwrap_or_else(|| "none".into()), control_text.unwrap_or_else(|| "none".into()),
                )} />
            if let Some(e) = error { <p class="error">{format!("Could not draw the chart: {e}")}</p> }
            <DownloadPng canvas={canvas} filename={format!("{}-patching.png", file_stem(report))} what="the patching heatmap" />
            <details>
                <summary>{"Numbers"}</summary>
                <p data-testid="patching-summary" data-mean-gap={full(p.mean_gap)} data-pairs={p.pairs.to_string()}>
                    {format!("Mean gap {} over {} pair(s). Largest fraction closed: {}.", fmt3(p.mean_gap), p.pairs, best_text.unwrap_or_else(|| "none".into()))}
                </p>
                <h3>{"Fraction of the gap closed"}</h3>
                {matrix_table(p, &p.fraction_closed, "patching-table", false)}
                <h3>{"Random-direction control"}</h3>
                {matrix_table(p, &p.random_control, "patching-control-table", true)}
            </details>
        </section>
    }
}
