//! Pieces every report chart shares: the palette, sizes, hook labels, number formatting, the
//! hook that redraws a canvas when the report changes, and the "nothing to draw" fallback.

use std::rc::Rc;

use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
pub use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters_canvas::CanvasBackend;
use web_sys::HtmlCanvasElement;
use yew::prelude::*;

use hawthorne_probe::Report;

// Okabe–Ito colours: distinguishable under every common colour-vision deficiency.
/// Observed condition, the first probe kind, the measured series.
pub const BLUE: RGBColor = RGBColor(0, 114, 178);
/// Unobserved condition, the second probe kind.
pub const VERMILLION: RGBColor = RGBColor(213, 94, 0);
pub const ORANGE: RGBColor = RGBColor(230, 159, 0);
pub const SKY: RGBColor = RGBColor(86, 180, 233);
/// Neutral framings.
pub const GREEN: RGBColor = RGBColor(0, 158, 115);
/// Baselines and controls.
pub const GREY: RGBColor = RGBColor(110, 110, 110);
pub const LIGHT_GREY: RGBColor = RGBColor(205, 205, 205);
pub const INK: RGBColor = RGBColor(29, 35, 42);

/// Canvas width in pixels; the page scales it down to the panel.
pub const WIDTH: u32 = 960;
pub const FONT: &str = "sans-serif";
/// Tick labels and legend text.
pub const LABEL_PX: u32 = 15;
/// Axis descriptions.
pub const AXIS_PX: u32 = 16;
/// The title drawn into the canvas, so an exported PNG says what it is.
pub const TITLE_PX: u32 = 18;

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

/// A report compared by identity, as an effect dependency.
#[derive(Debug, Clone)]
struct SameReport(Rc<Report>);

impl PartialEq for SameReport {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}

/// Draws a report onto a canvas.
pub type DrawFn = fn(HtmlCanvasElement, &Report) -> Result<(), String>;

/// A canvas ref that `draw` repaints whenever the report changes, and the last drawing error.
#[hook]
pub fn use_report_canvas(report: &Rc<Report>, draw: DrawFn) -> (NodeRef, Option<String>) {
    let canvas = use_node_ref();
    let error = use_state_eq(|| None::<String>);
    {
        let (canvas, error) = (canvas.clone(), error.clone());
        use_effect_with(SameReport(report.clone()), move |report| {
            // Each chart draws in its own task, after the page has rendered, so a new report
            // never blocks the UI thread for the sum of all the charts.
            let report = report.0.clone();
            let timeout = gloo::timers::callback::Timeout::new(0, move || {
                if let Some(c) = canvas.cast::<HtmlCanvasElement>() {
                    error.set(draw(c, &report).err());
                }
            });
            move || drop(timeout)
        });
    }
    (canvas, (*error).clone())
}

pub fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

pub type Area = DrawingArea<CanvasBackend, Shift>;

/// The whole canvas as a white drawing area.
pub fn root(canvas: HtmlCanvasElement) -> Result<Area, String> {
    let backend = CanvasBackend::with_canvas_object(canvas).ok_or("the canvas has no 2-D context")?;
    let root = backend.into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    Ok(root)
}

/// Writes a title and a message in the middle of an area, for charts with nothing finite to
/// draw.
pub fn message(area: &Area, title: &str, message: &str) -> Result<(), String> {
    let (w, h) = area.dim_in_pixel();
    let (x, y) = (w as i32 / 2, h as i32 / 2);
    area.draw(&Text::new(title.to_string(), (x, y - 16), anchored(TITLE_PX, INK, HPos::Center, VPos::Center)))
        .map_err(err)?;
    area.draw(&Text::new(message.to_string(), (x, y + 14), anchored(LABEL_PX, GREY, HPos::Center, VPos::Center)))
        .map_err(err)?;
    area.present().map_err(err)
}

/// A text style of `size` pixels anchored at `h`/`v`.
pub fn anchored(size: u32, color: RGBColor, h: HPos, v: VPos) -> TextStyle<'static> {
    (FONT, size).into_font().color(&color).pos(Pos::new(h, v))
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

/// A point marker; shapes repeat what colour says, for readers who cannot tell the colours apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    None,
    Circle,
    Triangle,
    Square,
    Cross,
}

/// Draws `marker` centred on a pixel of `area`.
pub fn draw_marker(area: &Area, marker: Marker, (x, y): (i32, i32), style: ShapeStyle) -> Result<(), String> {
    match marker {
        Marker::None => Ok(()),
        Marker::Circle => area.draw(&Circle::new((x, y), 5, style)).map_err(err),
        Marker::Triangle => area.draw(&TriangleMarker::new((x, y), 6, style)).map_err(err),
        Marker::Square => area.draw(&Rectangle::new([(x - 5, y - 5), (x + 5, y + 5)], style)).map_err(err),
        Marker::Cross => area.draw(&Cross::new((x, y), 5, style)).map_err(err),
    }
}

/// What a legend entry looks like.
#[derive(Debug, Clone, Copy)]
pub enum Glyph {
    /// A solid line with an optional marker.
    Line(RGBColor, Marker),
    /// A dashed line with an optional marker.
    Dashed(RGBColor, Marker),
    /// A filled box (bars, bands).
    Swatch(RGBAColor),
    /// A lone marker, filled or outlined.
    Point(RGBColor, Marker, bool),
}

const GLYPH_W: i32 = 26;
const LEGEND_ROW_H: i32 = 24;

/// Draws a legend as rows of entries centred at the top of `area`, outside the plot so that it
/// never hides data, and returns the area below it.
pub fn legend(area: &Area, entries: &[(String, Glyph)]) -> Result<Area, String> {
    let font = TextStyle::from((FONT, LABEL_PX).into_font());
    let (w, _) = area.dim_in_pixel();
    let max_w = w as i32 - 40;
    // Lay the entries out in rows.
    let mut rows: Vec<Vec<(i32, &str, Glyph)>> = vec![vec![]];
    let mut row_w = vec![0i32];
    for (label, glyph) in entries {
        let text_w = area.estimate_text_size(label, &font).map_or(label.chars().count() as i32 * 8, |(tw, _)| tw as i32);
        let entry_w = GLYPH_W + 6 + text_w;
        let last = row_w.len() - 1;
        if row_w[last] > 0 && row_w[last] + 22 + entry_w > max_w {
            rows.push(vec![]);
            row_w.push(0);
        }
        let last = row_w.len() - 1;
        if row_w[last] > 0 {
            row_w[last] += 22;
        }
        rows[last].push((row_w[last], label.as_str(), *glyph));
        row_w[last] += entry_w;
    }
    let height = LEGEND_ROW_H * rows.len() as i32 + 6;
    let (top, rest) = area.split_vertically(height);
    let text = anchored(LABEL_PX, INK, HPos::Left, VPos::Center);
    for (r, row) in rows.iter().enumerate() {
        let left = (w as i32 - row_w[r]) / 2;
        let cy = LEGEND_ROW_H * r as i32 + LEGEND_ROW_H / 2 + 2;
        for &(x, label, glyph) in row {
            let x = left + x;
            let mid = (x + GLYPH_W / 2, cy);
            match glyph {
                Glyph::Line(c, m) => {
                    top.draw(&PathElement::new(vec![(x, cy), (x + GLYPH_W, cy)], c.stroke_width(2))).map_err(err)?;
                    draw_marker(&top, m, mid, c.filled())?;
                }
                Glyph::Dashed(c, m) => {
                    top.draw(&plotters::element::DashedPathElement::new(vec![(x, cy), (x + GLYPH_W, cy)], 6, 3, c.stroke_width(2)))
                        .map_err(err)?;
                    draw_marker(&top, m, mid, c.stroke_width(2))?;
                }
                Glyph::Swatch(c) => {
                    top.draw(&Rectangle::new([(x, cy - 7), (x + GLYPH_W, cy + 7)], c.filled())).map_err(err)?;
                }
                Glyph::Point(c, m, filled) => {
                    draw_marker(&top, m, mid, if filled { c.filled() } else { c.stroke_width(2) })?;
                }
            }
            top.draw(&Text::new(label.to_string(), (x + GLYPH_W + 6, cy), text.clone())).map_err(err)?;
        }
    }
    Ok(rest)
}

/// The canvas cleared, with `title` at the top and `entries` as a legend beneath it; returns
/// the area left for the plot.
pub fn frame(root: &Area, title: &str, entries: &[(String, Glyph)]) -> Result<Area, String> {
    let body = root.titled(title, (FONT, TITLE_PX)).map_err(err)?;
    if entries.is_empty() { Ok(body) } else { legend(&body, entries) }
}

/// A direction or probe name as shown to readers: `mass_mean` → `mass-mean`.
pub fn kind_label(kind: &str) -> String {
    kind.replace('_', "-")
}

/// An f64 axis whose ticks are exactly the given points (plotters' `with_key_points` loses the
/// f64 label formatter).
#[derive(Debug, Clone)]
pub struct Ticked {
    range: std::ops::Range<f64>,
    ticks: Vec<f64>,
}

pub fn ticked(range: std::ops::Range<f64>, ticks: Vec<f64>) -> Ticked {
    Ticked { range, ticks }
}

impl Ranged for Ticked {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        RangedCoordf64::from(self.range.clone()).map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() { vec![] } else { self.ticks.clone() }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.range.clone()
    }
}

impl ValueFormatter<f64> for Ticked {
    fn format(value: &f64) -> String {
        value.to_string()
    }
}

/// Tick positions `0, k, 2k, …` over `n` indices so that at most `max` are labelled.
pub fn index_ticks(n: usize, max: usize) -> Vec<f64> {
    let step = n.div_ceil(max.max(1)).max(1);
    (0..n).step_by(step).map(|i| i as f64).collect()
}

/// The label of the index nearest `x`, or nothing between indices.
pub fn index_label(labels: &[String], x: f64) -> String {
    let i = x.round();
    if (x - i).abs() > 1e-6 || i < 0.0 {
        return String::new();
    }
    labels.get(i as usize).cloned().unwrap_or_default()
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

/// Consecutive runs of finite points, so lines break at gaps instead of drawing through NaN.
pub fn finite_runs(points: impl IntoIterator<Item = (f64, f64)>) -> Vec<Vec<(f64, f64)>> {
    let mut runs = vec![];
    let mut run = vec![];
    for p in points {
        if p.0.is_finite() && p.1.is_finite() {
            run.push(p);
        } else if !run.is_empty() {
            runs.push(std::mem::take(&mut run));
        }
    }
    if !run.is_empty() {
        runs.push(run);
    }
    runs
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
