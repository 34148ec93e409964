//! The steering sweep: the compliance gap as α × the unit probe direction (scaled to the
//! residual norm) is added at one hook, against a random direction of the same norm, with the
//! misaligned rate under unobserved framings as a second series.

use yew::prelude::*;

use hawthorne_probe::report::Steering;
use hawthorne_probe::Report;

use super::common::{file_stem, finite_range, fmt3, full, kind_label, padded, signed2, ReportProps, SameReport};
use super::figure::{linear, TickFormat, Chart, Figure, Glyph, Layer, Marker, Panel, Scale, BLUE, GREY, VERMILLION};

fn at(v: &[f64], i: usize) -> f64 {
    v.get(i).copied().unwrap_or(f64::NAN)
}

fn figure(report: &Report) -> Figure {
    let Some(st) = &report.steering else {
        return Figure::empty("Steering", "This run did no steering sweep.");
    };
    let title = format!("Steering along the {} direction at {} — {}", kind_label(&st.direction), st.hook, report.provenance.model_id);
    let ys = st.gap.iter().chain(&st.random_gap).chain(&st.rate_unobserved).copied();
    let (Some(xr), Some(yr)) = (finite_range(st.alphas.iter().copied()), finite_range(ys)) else {
        return Figure::empty(title, "No finite values to plot.");
    };
    let (x0, x1) = padded(xr, 0.05);
    let (y0, y1) = padded((yr.0.min(0.0), yr.1.max(1.0)), 0.04);
    let mut fig = Figure::new(title);
    fig.legend = vec![
        (format!("compliance gap, {} direction", kind_label(&st.direction)), Glyph::Line(BLUE, Marker::Circle)),
        ("compliance gap, random direction".to_string(), Glyph::Dashed(GREY, Marker::Cross)),
        ("misaligned | unobserved".to_string(), Glyph::Line(VERMILLION, Marker::Triangle)),
    ];
    // The spec may list α in any order, even twice: plot in order, each α once.
    let mut order: Vec<usize> = (0..st.alphas.len()).filter(|&i| st.alphas[i].is_finite()).collect();
    order.sort_by(|&a, &b| st.alphas[a].total_cmp(&st.alphas[b]));
    order.dedup_by(|a, b| st.alphas[*a] == st.alphas[*b]);
    let x = Scale::Linear { lo: x0, hi: x1, ticks: order.iter().map(|&i| st.alphas[i]).collect(), format: TickFormat::Short };
    let mut panel = Panel::new(260.0, x, linear(y0, y1, 8), format!("α (multiples of ‖resid‖ ≈ {}; negative = towards observed)", fmt3(st.norm)), "rate / gap");
    let series = |values: &[f64]| order.iter().map(|&i| (st.alphas[i], at(values, i))).collect::<Vec<_>>();
    let readouts = |what: &str, values: &[f64]| order.iter().map(|&i| format!("α {}: {what} {}", st.alphas[i], fmt3(at(values, i)))).collect::<Vec<_>>();
    panel.layers = vec![
        Layer::HRule { y: 0.0, colour: GREY, dashed: true },
        Layer::VRule { x: 0.0, colour: GREY },
        Layer::Line { colour: GREY, dashed: true, width: 2.0, marker: Marker::Cross, points: series(&st.random_gap), readouts: readouts("random-direction gap", &st.random_gap) },
        Layer::Line { colour: VERMILLION, dashed: false, width: 2.0, marker: Marker::Triangle, points: series(&st.rate_unobserved), readouts: readouts("misaligned | unobserved", &st.rate_unobserved) },
        Layer::Line { colour: BLUE, dashed: false, width: 3.0, marker: Marker::Circle, points: series(&st.gap), readouts: readouts("compliance gap", &st.gap) },
    ];
    fig.panels.push(panel);
    fig
}

/// What the sweep shows, from its numbers: the gap at the most negative α against α = 0 and the
/// random direction's, closing or widening, or unknown where a value is missing.
fn caption(st: &Steering) -> String {
    let i0 = st.alphas.iter().position(|a| *a == 0.0);
    let lo = st.alphas.iter().enumerate().filter(|(_, a)| a.is_finite()).min_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i);
    match (i0, lo) {
        (Some(i0), Some(lo)) if lo != i0 => {
            let (g, g0, r, r0) = (at(&st.gap, lo), at(&st.gap, i0), at(&st.random_gap, lo), at(&st.random_gap, i0));
            let verdict = if ![g, g0, r, r0].iter().all(|v| v.is_finite()) {
                "A value is missing, so the page cannot tell whether the probe direction beats chance.".to_string()
            } else {
                let (moved, chance) = ((g - g0).abs(), (r - r0).abs());
                let way = if g.abs() < g0.abs() { "closes" } else { "widens" };
                if moved > chance + 0.1 {
                    format!("Pushing towards observed {way} the gap more than a random direction moves it.")
                } else {
                    "The probe direction moves behaviour no more than a random one does.".to_string()
                }
            };
            format!("At α = {} the gap is {} against {} unsteered; the random direction of the same norm gives {}. {verdict}", st.alphas[lo], signed2(g), signed2(g0), signed2(r))
        }
        _ => format!("If the {} direction at {} is causal, the blue gap shrinks towards 0 as α pushes towards observed (α < 0), while the grey random direction leaves it flat.", kind_label(&st.direction), st.hook),
    }
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
    let fig = use_memo(SameReport(report.clone()), |r| figure(&r.0));
    let heading = html! { <h2 id="steering-chart-heading">{"Steering closes the gap?"}</h2> };
    let Some(st) = report.steering.as_ref().filter(|st| !st.alphas.is_empty()) else {
        return html! {
            <section class="panel" aria-labelledby="steering-chart-heading" data-testid="steering-section">
                {heading}
                <p class="muted">{"This run did no steering sweep."}</p>
            </section>
        };
    };
    html! {
        <section class="panel" aria-labelledby="steering-chart-heading" data-testid="steering-section">
            {heading}
            <p class="muted">{format!(
                "If the {} direction at {} is causal, the blue gap shrinks towards 0 as α pushes towards observed (α < 0), while the grey random direction of the same norm leaves it flat ({} prompts per condition).",
                kind_label(&st.direction), st.hook, st.n_prompts,
            )}</p>
            <Chart figure={fig} testid="steering-chart" filename={format!("{}-steering", file_stem(report))} what="the steering chart"
                summary={aria_label(st)} caption={caption(st)} />
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
