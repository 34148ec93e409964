//! The one chart builder every chart uses: a chart is described as a [`Figure`] (title, legend,
//! stacked panels of layers), and [`Chart`] lays it out at the width it is given on the page and
//! renders it as SVG.
//!
//! Why SVG built here rather than plotters on a canvas: every label is a DOM node, so tests can
//! check that no two overlap, screen readers and the keyboard reach every mark, values show on
//! hover and focus, and text stays sharp on a projector. The layout is computed for the real
//! pixel width (a phone gets fewer or rotated labels, never 5-pixel text). No maintained Rust
//! chart crate renders interactive SVG through Yew; charming (ECharts) would add a megabyte of
//! JavaScript that the page's CSP and offline cache would have to carry, and its data points are
//! not reachable by keyboard. Exports serialise the same SVG (and rasterise it for PNG).

use std::rc::Rc;

use wasm_bindgen::JsCast;
use yew::prelude::*;

pub use super::layout::{linear, text_width, Scale, TickFormat};
use super::layout::{runs, thin_y, wrap, wrap_hard, x_labels, XLabels};

/// An sRGB colour as SVG writes it.
pub type Colour = &'static str;

// Okabe–Ito colours: distinguishable under every common colour-vision deficiency.
pub const BLUE: Colour = "#0072b2";
pub const VERMILLION: Colour = "#d55e00";
pub const ORANGE: Colour = "#e69f00";
pub const GREEN: Colour = "#009e73";
pub const GREY: Colour = "#6e6e6e";
pub const LIGHT_GREY: Colour = "#cdcdcd";
pub const INK: Colour = "#1d232a";
const GRID: Colour = "#ececec";
const FONT: &str = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";

/// Type sizes in pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Type {
    /// Tick labels, legend and in-plot text.
    pub label: f64,
    /// Axis descriptions.
    pub axis: f64,
    /// The title inside the SVG, so that an exported file says what it is.
    pub title: f64,
}

impl Type {
    pub const NORMAL: Type = Type { label: 13.0, axis: 13.0, title: 15.0 };
    /// Presenter mode: readable from the back of a room.
    pub const LARGE: Type = Type { label: 18.0, axis: 18.0, title: 21.0 };
}

/// A point marker; shapes repeat what colour says, for readers who cannot tell colours apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    None,
    Circle,
    Triangle,
    Square,
    Cross,
}

/// What a legend entry looks like.
#[derive(Debug, Clone, PartialEq)]
pub enum Glyph {
    Line(Colour, Marker),
    Dashed(Colour, Marker),
    Swatch(Colour),
    Point(Colour, Marker, bool),
}

/// One thing drawn in a panel. Marks (points, bars, cells) carry a readout: the exact value,
/// shown on hover and keyboard focus.
#[derive(Debug, Clone)]
pub enum Layer {
    /// A polyline broken at non-finite points, with a marker and a readout per point.
    Line { colour: Colour, dashed: bool, width: f64, marker: Marker, points: Vec<(f64, f64)>, readouts: Vec<String> },
    /// A filled band between `lo` and `hi` at each x, broken at gaps.
    Band { colour: Colour, points: Vec<(f64, f64, f64)> },
    /// A horizontal reference line (named in the legend, never by text over the data).
    HRule { y: f64, colour: Colour, dashed: bool },
    /// A vertical reference line.
    VRule { x: f64, colour: Colour },
    /// Bars from `base` to `y`, with an optional value label above (drawn only where it fits).
    Bars { bars: Vec<Bar> },
    /// Scatter points.
    Points { points: Vec<Point> },
    /// Heatmap cells in data coordinates.
    Cells { cells: Vec<Cell> },
}

#[derive(Debug, Clone)]
pub struct Bar {
    pub x0: f64,
    pub x1: f64,
    pub base: f64,
    pub y: f64,
    pub colour: Colour,
    pub label: String,
    pub readout: String,
}

#[derive(Debug, Clone)]
pub struct Point {
    pub x: f64,
    pub y: f64,
    pub colour: Colour,
    pub marker: Marker,
    pub filled: bool,
    pub size: f64,
    pub readout: String,
}

#[derive(Debug, Clone)]
pub struct Cell {
    pub x0: f64,
    pub x1: f64,
    pub y0: f64,
    pub y1: f64,
    /// `None`: no value (drawn hatched grey).
    pub fill: Option<String>,
    pub readout: String,
}

/// One plot area with its axes.
#[derive(Debug, Clone)]
pub struct Panel {
    /// Height of the plotting area in pixels, before the axes' labels.
    pub height: f64,
    pub x: Scale,
    pub y: Scale,
    pub x_desc: String,
    pub y_desc: String,
    /// A small caption above the panel (for stacked panels).
    pub caption: Option<String>,
    pub layers: Vec<Layer>,
    /// Horizontal grid lines at the y ticks.
    pub grid: bool,
}

impl Panel {
    pub fn new(height: f64, x: Scale, y: Scale, x_desc: impl Into<String>, y_desc: impl Into<String>) -> Panel {
        Panel { height, x, y, x_desc: x_desc.into(), y_desc: y_desc.into(), caption: None, layers: vec![], grid: true }
    }
}

/// A whole chart.
#[derive(Debug, Clone)]
pub struct Figure {
    pub title: String,
    pub legend: Vec<(String, Glyph)>,
    pub panels: Vec<Panel>,
    /// Shown instead of the panels when there is nothing finite to draw.
    pub empty: Option<String>,
}

impl Figure {
    pub fn new(title: impl Into<String>) -> Figure {
        Figure { title: title.into(), legend: vec![], panels: vec![], empty: None }
    }

    pub fn empty(title: impl Into<String>, message: impl Into<String>) -> Figure {
        Figure { empty: Some(message.into()), ..Figure::new(title) }
    }
}

/// A laid-out text label: its anchor, rotation, and the full text for hover.
struct Label {
    x: f64,
    y: f64,
    anchor: &'static str,
    rotate: bool,
    lines: Vec<String>,
    full: String,
    size: f64,
    colour: Colour,
    weight: &'static str,
}

fn label_html(l: &Label) -> Html {
    let transform = l.rotate.then(|| format!("rotate(-45 {:.1} {:.1})", l.x, l.y));
    let line_h = l.size * 1.25;
    html! {
        <text class="chart-label" x={format!("{:.1}", l.x)} y={format!("{:.1}", l.y)} text-anchor={l.anchor}
            font-size={format!("{}", l.size)} fill={l.colour} font-weight={l.weight} transform={transform}>
            if l.full.replace('\n', " ") != l.lines.join(" ") { <title>{&l.full}</title> }
            { for l.lines.iter().enumerate().map(|(i, line)| html! {
                <tspan x={format!("{:.1}", l.x)} dy={if i == 0 { "0".to_string() } else { format!("{line_h:.1}") }}>{line}</tspan>
            }) }
        </text>
    }
}

fn marker_html(marker: Marker, x: f64, y: f64, r: f64, colour: Colour, filled: bool) -> Html {
    let (fill, stroke) = if filled { (colour, "none") } else { ("#ffffff", colour) };
    match marker {
        Marker::None => html! {},
        Marker::Circle => html! { <circle cx={f(x)} cy={f(y)} r={f(r)} fill={fill} stroke={stroke} stroke-width="2" /> },
        Marker::Square => html! { <rect x={f(x - r)} y={f(y - r)} width={f(2.0 * r)} height={f(2.0 * r)} fill={fill} stroke={stroke} stroke-width="2" /> },
        Marker::Triangle => {
            let r = r * 1.2;
            let pts = format!("{},{} {},{} {},{}", f(x), f(y - r), f(x - r * 0.87), f(y + r * 0.5), f(x + r * 0.87), f(y + r * 0.5));
            html! { <polygon points={pts} fill={fill} stroke={stroke} stroke-width="2" /> }
        }
        Marker::Cross => html! {
            <path d={format!("M{} {}L{} {}M{} {}L{} {}", f(x - r), f(y - r), f(x + r), f(y + r), f(x - r), f(y + r), f(x + r), f(y - r))}
                stroke={colour} stroke-width="2" fill="none" />
        },
    }
}

fn f(v: f64) -> String {
    format!("{v:.1}")
}

/// A focusable value: its position (for the highlight ring) and its readout.
#[derive(Debug, Clone, PartialEq)]
struct Mark {
    x: f64,
    y: f64,
    readout: String,
}

/// Renders the figure at `width` pixels; returns the SVG, its height and the marks in order.
fn render(fig: &Figure, id: &str, width: f64, t: Type, active: Option<usize>, onhover: &Callback<Option<usize>>) -> (Html, f64, Vec<Mark>) {
    let mut y = 6.0;
    let mut body: Vec<Html> = vec![];
    let mut marks: Vec<Mark> = vec![];
    // Title, wrapped to the width.
    // `wrap` measures at the label size; the title's larger bold glyphs need proportionally more.
    let title_lines = wrap_hard(&fig.title, (width - 16.0) * t.label / t.title * 0.92, t.label);
    y += t.title;
    body.push(label_html(&Label {
        x: width / 2.0,
        y,
        anchor: "middle",
        rotate: false,
        full: fig.title.clone(),
        lines: title_lines.clone(),
        size: t.title,
        colour: INK,
        weight: "600",
    }));
    y += t.title * 1.25 * (title_lines.len() as f64 - 1.0) + 10.0;
    // Legend: entries in rows, centred; an entry wider than the chart wraps.
    if !fig.legend.is_empty() {
        let glyph_w = 24.0;
        let line_h = t.label * 1.25;
        let entries: Vec<(Vec<String>, &Glyph, f64)> = fig
            .legend
            .iter()
            .map(|(text, glyph)| {
                let lines = wrap_hard(text, width - 16.0 - glyph_w - 6.0, t.label);
                let w = glyph_w + 6.0 + lines.iter().map(|l| text_width(l, t.label)).fold(0.0, f64::max);
                (lines, glyph, w)
            })
            .collect();
        let mut rows: Vec<Vec<usize>> = vec![vec![]];
        let mut row_w = vec![0.0];
        for (i, (_, _, w)) in entries.iter().enumerate() {
            let last = rows.len() - 1;
            if !rows[last].is_empty() && row_w[last] + 18.0 + w > width - 16.0 {
                rows.push(vec![]);
                row_w.push(0.0);
            }
            let last = rows.len() - 1;
            if !rows[last].is_empty() {
                row_w[last] += 18.0;
            }
            row_w[last] += w;
            rows[last].push(i);
        }
        for (r, row) in rows.iter().enumerate() {
            let cy = y + t.label * 0.8;
            let mut x = ((width - row_w[r]) / 2.0).max(8.0);
            let mut n_lines = 1;
            for &i in row {
                let (lines, glyph, w) = &entries[i];
                let mid = x + glyph_w / 2.0;
                body.push(match glyph {
                    Glyph::Line(c, m) => html! { <g>
                        <line x1={f(x)} x2={f(x + glyph_w)} y1={f(cy)} y2={f(cy)} stroke={*c} stroke-width="2" />
                        {marker_html(*m, mid, cy, 4.0, c, true)}
                    </g> },
                    Glyph::Dashed(c, m) => html! { <g>
                        <line x1={f(x)} x2={f(x + glyph_w)} y1={f(cy)} y2={f(cy)} stroke={*c} stroke-width="2" stroke-dasharray="6 3" />
                        {marker_html(*m, mid, cy, 4.0, c, false)}
                    </g> },
                    Glyph::Swatch(c) => html! { <rect x={f(x)} y={f(cy - 6.0)} width={f(glyph_w)} height="12" fill={*c} stroke="#9a9a9a" stroke-width="0.5" /> },
                    Glyph::Point(c, m, filled) => marker_html(*m, mid, cy, 5.0, c, *filled),
                });
                body.push(label_html(&Label {
                    x: x + glyph_w + 6.0,
                    y: cy + t.label * 0.35,
                    anchor: "start",
                    rotate: false,
                    lines: lines.clone(),
                    full: fig.legend[i].0.clone(),
                    size: t.label,
                    colour: INK,
                    weight: "400",
                }));
                n_lines = n_lines.max(lines.len());
                x += w + 18.0;
            }
            y += t.label * 1.7 + line_h * (n_lines as f64 - 1.0);
        }
        y += 4.0;
    }
    if let Some(message) = &fig.empty {
        y += 30.0;
        let lines = wrap_hard(message, width - 16.0, t.label);
        let extra = t.label * 1.25 * (lines.len() as f64 - 1.0);
        body.push(label_html(&Label {
            x: width / 2.0,
            y,
            anchor: "middle",
            rotate: false,
            lines,
            full: message.clone(),
            size: t.label,
            colour: GREY,
            weight: "400",
        }));
        y += 30.0 + extra;
    }
    for (k, panel) in fig.panels.iter().enumerate() {
        let (html, h) = render_panel(panel, &format!("{id}-clip-{k}"), width, y, t, &mut marks);
        body.push(html);
        y += h;
    }
    // Hover targets: invisible circles over every mark, and the active mark's ring.
    let targets = marks.iter().enumerate().map(|(i, m)| {
        let (enter, leave) = (onhover.reform(move |_: MouseEvent| Some(i)), onhover.reform(|_: MouseEvent| None));
        html! { <circle class="chart-hit" cx={f(m.x)} cy={f(m.y)} r="9" fill="transparent" onmouseenter={enter} onmouseleave={leave}>
            <title>{&m.readout}</title></circle> }
    });
    let ring = active.and_then(|i| marks.get(i)).map(|m| {
        html! { <circle class="chart-active" cx={f(m.x)} cy={f(m.y)} r="9" fill="none" stroke={INK} stroke-width="2.5" pointer-events="none" /> }
    });
    let height = y + 6.0;
    // The drawing is hidden from screen readers: they get the summary, the live readout and
    // the table of numbers instead of hundreds of shapes.
    let svg = html! {
        <g aria-hidden="true">
            <rect x="0" y="0" width={f(width)} height={f(height)} fill="#ffffff" />
            { for body }
            <g class="chart-targets">{ for targets }</g>
            { for ring }
        </g>
    };
    (svg, height, marks)
}

/// Draws one panel whose top edge is at `top`; returns its markup and total height.
fn render_panel(p: &Panel, clip: &str, width: f64, top: f64, t: Type, marks: &mut Vec<Mark>) -> (Html, f64) {
    let mut out: Vec<Html> = vec![];
    let mut top = top;
    let start = top;
    if let Some(c) = &p.caption {
        // Wrapped as the bold caption's wider glyphs need (0.66 em rather than 0.6).
        let lines = wrap_hard(c, (width - 16.0) * 0.9, t.label);
        top += t.label + 2.0;
        out.push(label_html(&Label { x: width / 2.0, y: top, anchor: "middle", rotate: false, lines: lines.clone(), full: c.clone(), size: t.label, colour: INK, weight: "600" }));
        top += t.label * 1.25 * (lines.len() as f64 - 1.0) + 8.0;
    }
    let y_ticks = thin_y(p.y.ticks(), &p.y, p.height, t.label);
    let y_label_w = y_ticks.iter().map(|(_, s, _)| text_width(s, t.label)).fold(0.0, f64::max);
    let x_ticks = p.x.ticks();
    let shown: Vec<String> = x_ticks.iter().map(|(_, s, _)| s.clone()).collect();
    // A linear axis's last label is centred on the right edge: leave it room.
    let last_half = match &p.x {
        Scale::Bands(_) => 0.0,
        _ => shown.last().map_or(0.0, |l| text_width(l, t.label) / 2.0 + 4.0),
    };
    let right = width - last_half.max(14.0);
    // X labels: chosen so that none overlaps (see `x_labels`). Rotated labels hang down to the
    // left of their tick, so the plot moves right until the first one clears the edge.
    let mut left = 8.0 + if p.y_desc.is_empty() { 0.0 } else { t.axis * 1.4 } + y_label_w + 8.0;
    let measure = |left: f64| {
        let plot_w = (right - left).max(10.0);
        let spacing = match &p.x {
            Scale::Bands(b) => plot_w / b.len().max(1) as f64,
            _ => x_ticks.windows(2).map(|w| (p.x.map(w[1].0, left, right) - p.x.map(w[0].0, left, right)).abs()).fold(plot_w, f64::min),
        };
        let xl = if shown.is_empty() { XLabels { step: 1, lines: 1, rotated: false, height: 4.0 } } else { x_labels(&shown, spacing, t.label) };
        (plot_w, spacing, xl)
    };
    // Moving the plot narrows it, which moves the first band's centre less than `left`: repeat
    // until the labels clear (a few rounds), never leaving less than 40 px to plot.
    for _ in 0..6 {
        let (_, _, xl) = measure(left);
        if !xl.rotated {
            break;
        }
        let hang = shown
            .iter()
            .step_by(xl.step)
            .zip(x_ticks.iter().step_by(xl.step))
            .map(|(l, (v, _, _))| text_width(&l.replace('\n', " · "), t.label) * std::f64::consts::FRAC_1_SQRT_2 + 6.0 - p.x.map(*v, left, right))
            .fold(0.0, f64::max);
        if hang <= 0.5 || left >= right - 40.0 {
            break;
        }
        left = (left + hang).min(right - 40.0);
    }
    let (plot_w, spacing, xl) = measure(left);
    let (y0, y1) = (top + 4.0, top + 4.0 + p.height);
    let px = |v: f64| p.x.map(v, left, right);
    let py = |v: f64| p.y.map(v, y1, y0);
    // Grid and axes.
    if p.grid {
        for (v, _, _) in &y_ticks {
            out.push(html! { <line x1={f(left)} x2={f(right)} y1={f(py(*v))} y2={f(py(*v))} stroke={GRID} stroke-width="1" /> });
        }
    }
    out.push(html! { <line x1={f(left)} x2={f(left)} y1={f(y0)} y2={f(y1)} stroke={INK} stroke-width="1" /> });
    out.push(html! { <line x1={f(left)} x2={f(right)} y1={f(y1)} y2={f(y1)} stroke={INK} stroke-width="1" /> });
    for (v, s, full) in &y_ticks {
        out.push(label_html(&Label { x: left - 6.0, y: py(*v) + t.label * 0.35, anchor: "end", rotate: false, lines: vec![s.clone()], full: full.clone(), size: t.label, colour: INK, weight: "400" }));
    }
    for (i, (v, s, full)) in x_ticks.iter().enumerate() {
        if i % xl.step != 0 {
            continue;
        }
        let x = px(*v);
        out.push(html! { <line x1={f(x)} x2={f(x)} y1={f(y1)} y2={f(y1 + 4.0)} stroke={INK} stroke-width="1" /> });
        let flat = s.replace('\n', " · ");
        let lines = if xl.rotated || xl.lines == 1 { vec![flat] } else { wrap(s, spacing * xl.step as f64 - 8.0, 3, t.label).unwrap_or(vec![flat]) };
        out.push(label_html(&Label {
            x,
            y: y1 + 9.0 + t.label,
            anchor: if xl.rotated { "end" } else { "middle" },
            rotate: xl.rotated,
            lines,
            full: full.clone(),
            size: t.label,
            colour: INK,
            weight: "400",
        }));
    }
    let mut bottom = y1 + 3.0 + xl.height;
    if !p.x_desc.is_empty() {
        let lines = wrap_hard(&p.x_desc, plot_w, t.axis);
        bottom += t.axis + 4.0;
        out.push(label_html(&Label { x: (left + right) / 2.0, y: bottom, anchor: "middle", rotate: false, full: p.x_desc.clone(), lines: lines.clone(), size: t.axis, colour: INK, weight: "400" }));
        bottom += t.axis * 1.25 * (lines.len() as f64 - 1.0);
    }
    if !p.y_desc.is_empty() {
        let (x, y) = (8.0 + t.axis, (y0 + y1) / 2.0);
        let max_chars = (p.height / (t.axis * 0.6)).floor() as usize;
        let shown = super::common::token_label(&p.y_desc, max_chars.max(4));
        out.push(html! {
            <text class="chart-label" x={f(x)} y={f(y)} text-anchor="middle" font-size={format!("{}", t.axis)} fill={INK}
                transform={format!("rotate(-90 {} {})", f(x), f(y))}>
                if shown != p.y_desc { <title>{&p.y_desc}</title> }
                {shown.replace('·', " ")}
            </text>
        });
    }
    // Layers, clipped to the plot area.
    let mut plot: Vec<Html> = vec![];
    let mut texts: Vec<Html> = vec![];
    for layer in &p.layers {
        match layer {
            Layer::Band { colour, points } => {
                for run in runs(points.iter().map(|&(x, lo, hi)| ((x, lo, hi), x.is_finite() && lo.is_finite() && hi.is_finite()))) {
                    let mut d: Vec<String> = run.iter().map(|&(x, _, hi)| format!("{},{}", f(px(x)), f(py(hi)))).collect();
                    if run.len() == 1 {
                        let (x, lo, hi) = run[0];
                        plot.push(html! { <rect x={f(px(x) - 5.0)} y={f(py(hi))} width="10" height={f((py(lo) - py(hi)).max(1.0))} fill={*colour} fill-opacity="0.25" /> });
                        continue;
                    }
                    d.extend(run.iter().rev().map(|&(x, lo, _)| format!("{},{}", f(px(x)), f(py(lo)))));
                    plot.push(html! { <polygon points={d.join(" ")} fill={*colour} fill-opacity="0.22" /> });
                }
            }
            Layer::HRule { y, colour, dashed } => {
                let yy = py(*y);
                plot.push(html! { <line x1={f(left)} x2={f(right)} y1={f(yy)} y2={f(yy)} stroke={*colour} stroke-width="1.5" stroke-dasharray={dashed.then_some("4 4")} /> });
            }
            Layer::VRule { x, colour } => {
                let xx = px(*x);
                plot.push(html! { <line x1={f(xx)} x2={f(xx)} y1={f(y0)} y2={f(y1)} stroke={*colour} stroke-width="1" stroke-dasharray="4 4" /> });
            }
            Layer::Line { colour, dashed, width: w, marker, points, readouts } => {
                for run in runs(points.iter().enumerate().map(|(i, &(x, y))| ((i, x, y), x.is_finite() && y.is_finite()))) {
                    let d: Vec<String> = run.iter().map(|&(_, x, y)| format!("{},{}", f(px(x)), f(py(y)))).collect();
                    plot.push(html! { <polyline points={d.join(" ")} fill="none" stroke={*colour} stroke-width={f(*w)} stroke-dasharray={dashed.then_some("7 4")} stroke-linejoin="round" /> });
                    for &(i, x, y) in &run {
                        plot.push(marker_html(*marker, px(x), py(y), 4.0, colour, !dashed));
                        if let Some(r) = readouts.get(i).filter(|r| !r.is_empty()) {
                            marks.push(Mark { x: px(x), y: py(y), readout: r.clone() });
                        }
                    }
                }
            }
            Layer::Bars { bars } => {
                // Value labels only where every one fits between its neighbours' centres.
                let centres: Vec<f64> = bars.iter().map(|b| px((b.x0 + b.x1) / 2.0)).collect();
                let mut sorted = centres.clone();
                sorted.sort_by(f64::total_cmp);
                let min_gap = sorted.windows(2).map(|w| w[1] - w[0]).fold(f64::INFINITY, f64::min);
                let widest = bars.iter().map(|b| text_width(&b.label, t.label - 1.0)).fold(0.0, f64::max);
                let labels_fit = widest + 4.0 <= min_gap;
                for b in bars {
                    let (xa, xb) = (px(b.x0), px(b.x1));
                    let (ya, yb) = if b.y.is_finite() { (py(b.base), py(b.y)) } else { (py(b.base), py(b.base)) };
                    let (top_y, h) = (ya.min(yb), (ya - yb).abs());
                    plot.push(html! { <rect x={f(xa)} y={f(top_y)} width={f((xb - xa).max(1.0))} height={f(h.max(if b.y.is_finite() { 0.0 } else { 1.0 }))} fill={b.colour} /> });
                    if labels_fit && !b.label.is_empty() {
                        texts.push(label_html(&Label { x: (xa + xb) / 2.0, y: top_y - 4.0, anchor: "middle", rotate: false, lines: vec![b.label.clone()], full: b.label.clone(), size: t.label - 1.0, colour: INK, weight: "400" }));
                    }
                    marks.push(Mark { x: (xa + xb) / 2.0, y: top_y, readout: b.readout.clone() });
                }
            }
            Layer::Points { points } => {
                for pt in points.iter().filter(|p| p.x.is_finite() && p.y.is_finite()) {
                    plot.push(marker_html(pt.marker, px(pt.x), py(pt.y), pt.size, pt.colour, pt.filled));
                    if !pt.readout.is_empty() {
                        marks.push(Mark { x: px(pt.x), y: py(pt.y), readout: pt.readout.clone() });
                    }
                }
            }
            Layer::Cells { cells } => {
                for c in cells {
                    let (xa, xb, ya, yb) = (px(c.x0), px(c.x1), py(c.y1), py(c.y0));
                    let (x, y, w, h) = (xa.min(xb), ya.min(yb), (xb - xa).abs(), (yb - ya).abs());
                    match &c.fill {
                        Some(fill) => plot.push(html! { <rect x={f(x)} y={f(y)} width={f(w)} height={f(h)} fill={fill.clone()} /> }),
                        None => plot.push(html! { <g>
                            <rect x={f(x)} y={f(y)} width={f(w)} height={f(h)} fill="#e4e4e4" />
                            <line x1={f(x)} y1={f(y + h)} x2={f(x + w)} y2={f(y)} stroke={GREY} stroke-width="1" />
                        </g> }),
                    }
                    marks.push(Mark { x: x + w / 2.0, y: y + h / 2.0, readout: c.readout.clone() });
                }
            }
        }
    }
    out.push(html! {
        <>
            <clipPath id={clip.to_string()}><rect x={f(left - 8.0)} y={f(y0 - 8.0)} width={f(plot_w + 16.0)} height={f(p.height + 16.0)} /></clipPath>
            <g clip-path={format!("url(#{clip})")}>{ for plot }</g>
            { for texts }
        </>
    });
    (html! { <g class="chart-panel">{ for out }</g> }, bottom - start + 10.0)
}

/// Watches an element's width (a `ResizeObserver`), so charts are laid out for the space they
/// really have.
#[hook]
fn use_width(node: &NodeRef) -> f64 {
    let width = use_state_eq(|| 0.0f64);
    {
        let (node, width) = (node.clone(), width.clone());
        use_effect_with((), move |_| {
            let element = node.cast::<web_sys::Element>();
            let observer = element.as_ref().and_then(|el| {
                width.set(f64::from(el.client_width()));
                let w = width.clone();
                let cb = wasm_bindgen::closure::Closure::<dyn FnMut(js_sys::Array)>::new(move |entries: js_sys::Array| {
                    if let Some(entry) = entries.get(0).dyn_ref::<web_sys::ResizeObserverEntry>() {
                        w.set(entry.content_rect().width().floor());
                    }
                });
                let observer = web_sys::ResizeObserver::new(cb.as_ref().unchecked_ref()).ok()?;
                observer.observe(el);
                Some((observer, cb))
            });
            move || {
                if let Some((o, _cb)) = observer {
                    o.disconnect();
                }
            }
        });
    }
    *width
}

#[derive(Properties)]
pub struct ChartProps {
    pub figure: Rc<Figure>,
    /// `data-testid` of the `<svg>`.
    pub testid: AttrValue,
    /// The downloaded files' name, without extension.
    pub filename: AttrValue,
    /// What the chart is, for accessible names ("the probe chart").
    pub what: AttrValue,
    /// What to look for, written from the numbers.
    #[prop_or_default]
    pub caption: Option<AttrValue>,
    /// A short description of the whole chart for screen readers.
    pub summary: AttrValue,
}

/// Figures are compared by allocation: each chart memoises its figure on its data.
impl PartialEq for ChartProps {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.figure, &other.figure)
            && (&self.testid, &self.filename, &self.what, &self.caption, &self.summary)
                == (&other.testid, &other.filename, &other.what, &other.caption, &other.summary)
    }
}

/// A figure on the page: laid out at its container's width, every mark's value on hover and
/// by keyboard (one tab stop; arrow keys move between marks), a caption, PNG and SVG exports.
#[component]
pub fn Chart(props: &ChartProps) -> Html {
    let container = use_node_ref();
    let svg_ref = use_node_ref();
    let width = use_width(&container);
    // Presenter mode provides larger type (a context of its own, so that charts do not
    // re-render on every change of the page's state).
    let t = use_context::<Type>().unwrap_or(Type::NORMAL);
    let active = use_state_eq(|| None::<usize>);
    let export_error = use_state_eq(|| None::<String>);
    let onhover = {
        let active = active.clone();
        Callback::from(move |i: Option<usize>| active.set(i))
    };
    let (svg_body, height, marks) =
        if width > 0.0 { render(&props.figure, &props.testid, width, t, *active, &onhover) } else { (html! {}, 0.0, vec![]) };
    let n = marks.len();
    let onkeydown = {
        let active = active.clone();
        Callback::from(move |e: KeyboardEvent| {
            let cur = *active;
            let next = match e.key().as_str() {
                "ArrowRight" | "ArrowDown" => Some(cur.map_or(0, |i| (i + 1).min(n.saturating_sub(1)))),
                "ArrowLeft" | "ArrowUp" => Some(cur.map_or(0, |i| i.saturating_sub(1))),
                "Home" => Some(0),
                "End" => Some(n.saturating_sub(1)),
                "Escape" => None,
                _ => return,
            };
            e.prevent_default();
            active.set(next.filter(|_| n > 0));
        })
    };
    // Focus from the keyboard shows the first value at once; a mouse click that focuses the
    // chart leaves the choice to the pointer.
    let onfocus = {
        let active = active.clone();
        Callback::from(move |e: FocusEvent| {
            let keyboard = e.target_dyn_into::<web_sys::Element>().is_some_and(|el| el.matches(":focus-visible").unwrap_or(false));
            if keyboard && active.is_none() && n > 0 {
                active.set(Some(0));
            }
        })
    };
    let onblur = {
        let active = active.clone();
        Callback::from(move |_: FocusEvent| active.set(None))
    };
    let readout = active.and_then(|i| marks.get(i)).map(|m| m.readout.clone());
    let export = |kind: &'static str| {
        let (svg_ref, filename, error) = (svg_ref.clone(), props.filename.clone(), export_error.clone());
        Callback::from(move |_: MouseEvent| {
            let result = svg_ref
                .cast::<web_sys::Element>()
                .ok_or_else(|| "the chart is not on the page".to_string())
                .and_then(|svg| super::export::download_svg(&svg, &filename, kind == "png"));
            error.set(result.err());
        })
    };
    html! {
        <figure class="chart">
            <div class="chart-box" ref={container}>
                if width > 0.0 {
                    <svg ref={svg_ref.clone()} xmlns="http://www.w3.org/2000/svg" width={f(width)} height={f(height)}
                        viewBox={format!("0 0 {} {}", f(width), f(height))} font-family={FONT}
                        role="group" tabindex={(n > 0).then_some("0")} data-testid={props.testid.clone()} data-marks={n.to_string()}
                        aria-label={if n > 0 {
                            format!("{} Use the arrow keys to read each of its {n} values; the table under the chart has them all.", props.summary)
                        } else {
                            props.summary.to_string()
                        }}
                        {onkeydown} {onfocus} {onblur}>
                        {svg_body}
                    </svg>
                }
            </div>
            <p class="chart-readout" aria-live="polite" data-testid={format!("{}-readout", props.testid)}>
                {readout.unwrap_or_else(|| "Hover over a point or bar, or focus the chart and use the arrow keys, to read its exact value.".into())}
            </p>
            if let Some(c) = &props.caption {
                <figcaption data-testid={format!("{}-caption", props.testid)}>{c.clone()}</figcaption>
            }
            <div class="row chart-actions">
                <button type="button" onclick={export("png")} aria-label={format!("Download PNG of {}", props.what)}>{"Download PNG"}</button>
                <button type="button" onclick={export("svg")} aria-label={format!("Download SVG of {}", props.what)}>{"Download SVG"}</button>
                if let Some(e) = &*export_error {
                    <span class="error" role="alert">{format!("Could not save the image: {e}")}</span>
                }
            </div>
        </figure>
    }
}

