//! The patching heatmap: for each hook (row) and token position (column, offset 0 = the last
//! prompt token, at the right), the fraction of the behaviour gap closed by copying the
//! observed run's activation into the unobserved run, beside the same patch made along a
//! random direction of equal norm.

use yew::prelude::*;

use hawthorne_probe::report::Patching;
use hawthorne_probe::Report;

use super::common::{file_stem, fmt3, full, hook_label, token_label, ReportProps, SameReport};
use super::figure::{Cell, Chart, Figure, Glyph, Layer, Panel, Scale};

fn lerp(a: (u8, u8, u8), b: (u8, u8, u8), t: f64) -> (u8, u8, u8) {
    let m = |x: u8, y: u8| (f64::from(x) + (f64::from(y) - f64::from(x)) * t).round() as u8;
    (m(a.0, b.0), m(a.1, b.1), m(a.2, b.2))
}

/// Blue (negative) – white (0) – orange (positive), clamped to [−1, 1]; colour-blind safe.
fn diverging(v: f64) -> String {
    const WHITE: (u8, u8, u8) = (255, 255, 255);
    let t = v.clamp(-1.0, 1.0);
    let (mid, end) = if t >= 0.0 { ((230, 159, 0), (213, 94, 0)) } else { ((86, 180, 233), (0, 114, 178)) };
    let a = t.abs();
    let (r, g, b) = if a <= 0.5 { lerp(WHITE, mid, a * 2.0) } else { lerp(mid, end, (a - 0.5) * 2.0) };
    format!("#{r:02x}{g:02x}{b:02x}")
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

/// One heatmap panel: hooks (rows) × token positions (columns).
fn heatmap(p: &Patching, grid: &[Vec<Option<f64>>], row_h: f64, what: &str) -> Panel {
    let cols = columns(p);
    let x = Scale::Bands(
        cols.iter()
            .map(|&k| {
                let tok = p.tokens.get(k).map_or("?".to_string(), |t| token_label(t, 10));
                (tok, format!("{:?} ({} before the answer)", p.tokens.get(k).map_or("?", String::as_str), p.offsets[k]))
            })
            .collect(),
    );
    let y = Scale::Bands(p.hooks.iter().map(|h| (hook_label(h), h.clone())).collect());
    let mut panel = Panel::new(row_h * p.hooks.len().max(1) as f64, x, y, "token (offset back from the answer; the last prompt token is at the right)", "hook");
    panel.grid = false;
    let mut cells = vec![];
    for (h, hook) in p.hooks.iter().enumerate() {
        for (c, &k) in cols.iter().enumerate() {
            let v = cell(grid, h, k);
            cells.push(Cell {
                x0: c as f64 - 0.5,
                x1: c as f64 + 0.5,
                y0: h as f64 - 0.5,
                y1: h as f64 + 0.5,
                fill: v.map(diverging),
                readout: format!(
                    "{what}: {hook}, token {:?} ({} before the answer): {}",
                    p.tokens.get(k).map_or("?", String::as_str),
                    p.offsets[k],
                    v.map_or("n/a".into(), fmt3)
                ),
            });
        }
    }
    panel.layers.push(Layer::Cells { cells });
    panel
}

/// The patching sweep and its random-direction control, stacked.
fn figure(report: &Report) -> Figure {
    let title = format!("Activation patching: fraction of the behaviour gap closed — {}", report.provenance.model_id);
    let Some(p) = &report.patching else {
        return Figure::empty(title, "This run did no patching.");
    };
    if p.hooks.is_empty() || p.offsets.is_empty() {
        return Figure::empty(title, "The patching sweep is empty.");
    }
    let mut fig = Figure::new(title);
    // The colours `diverging` gives at −1, −0.5, 0, 0.5 and 1.
    fig.legend = [("#0072b2", "−1"), ("#56b4e9", "−0.5"), ("#ffffff", "0"), ("#e69f00", "+0.5"), ("#d55e00", "+1: gap closed")]
        .into_iter()
        .map(|(c, l)| (l.to_string(), Glyph::Swatch(c)))
        .chain([("n/a".to_string(), Glyph::Swatch("#e4e4e4"))])
        .collect();
    let row_h = (320.0 / p.hooks.len().max(1) as f64).clamp(9.0, 26.0);
    let main = heatmap(p, &p.fraction_closed, row_h, "fraction of the gap closed");
    let mut control = heatmap(p, &p.random_control, (row_h / 2.0).max(6.0), "random-direction control");
    control.caption = Some("random direction of the same norm (control: should stay near white)".into());
    fig.panels = vec![main, control];
    fig
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
    let fig = use_memo(SameReport(report.clone()), |r| figure(&r.0));
    let heading = html! { <h2 id="patching-chart-heading">{"Where it forks: activation patching"}</h2> };
    let Some(p) = report.patching.as_ref().filter(|p| !p.hooks.is_empty() && !p.offsets.is_empty()) else {
        return html! {
            <section class="panel" aria-labelledby="patching-chart-heading" data-testid="patching-section">
                {heading}
                <p class="muted" data-testid="patching-none">{
                    if report.patching.is_some() { "The patching sweep is empty." } else { "This run did no patching (it is off in the spec, or the gap was too small to patch)." }
                }</p>
            </section>
        };
    };
    let best_text = describe_best(p, &p.fraction_closed);
    let control_text = best(&p.random_control).map(|(v, _, _)| fmt3(v));
    let all_none = best_text.is_none();
    html! {
        <section class="panel" aria-labelledby="patching-chart-heading" data-testid="patching-section">
            {heading}
            <p class="muted">{format!(
                "Orange cells are where copying the observed run's activation into the unobserved run restores the aligned answer (1 = the whole gap of {} closed, mean over {} pair(s)); the random control below should stay near white.",
                fmt3(p.mean_gap), p.pairs,
            )}</p>
            if all_none {
                <p class="muted">{"Every cell is n/a: the behaviour gap between the paired runs was too small to normalise by."}</p>
            }
            <Chart figure={fig} testid="patching-chart" filename={format!("{}-patching", file_stem(report))} what="the patching heatmap"
                summary={format!(
                    "Heatmap of the fraction of the behaviour gap closed by patching {} hooks at {} token positions. Largest: {}. Largest for the random-direction control: {}.",
                    p.hooks.len(), p.offsets.len(), best_text.clone().unwrap_or_else(|| "none".into()), control_text.clone().unwrap_or_else(|| "none".into()),
                )}
                caption={format!(
                    "Largest fraction closed: {}; the random-direction control reaches {} at most. Cells well above the control are where the observed run's activation restores the aligned answer.",
                    best_text.clone().unwrap_or_else(|| "none".into()), control_text.clone().unwrap_or_else(|| "n/a".into()),
                )} />
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
