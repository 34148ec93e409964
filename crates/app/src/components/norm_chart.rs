//! Chart of the last prompt token's residual-stream norm per layer, on the shared chart
//! builder, with the numbers also in a table for screen readers and tests.

use yew::prelude::*;

use hawthorne_worker::protocol::LayerNorms;

use super::charts::common::hook_label;
use super::charts::figure::{Chart, Figure, Glyph, Layer, Marker, Panel, Scale, BLUE, ORANGE};
use crate::state::AppContext;

const NAMES: [&str; 2] = ["observed", "unobserved"];

/// ‖resid‖ by layer for each side that has one, on a log scale.
fn figure(sides: &[Option<LayerNorms>; 2]) -> Figure {
    let present: Vec<&LayerNorms> = sides.iter().flatten().collect();
    let mut fig = Figure::new("‖resid_post‖ at the last prompt token");
    let Some(first) = present.first() else { return fig };
    let all = present.iter().flat_map(|n| n.norms.iter().copied()).filter(|v| v.is_finite() && *v > 0.0);
    if all.clone().next().is_none() {
        return Figure::empty("‖resid_post‖ at the last prompt token", "No positive finite norm to plot.");
    }
    let lo = f64::from(all.clone().fold(f32::INFINITY, f32::min).max(1e-3)) * 0.8;
    let hi = f64::from(all.fold(0.0, f32::max)).max(lo * 2.0) * 1.25;
    fig.legend = vec![("observed".into(), Glyph::Line(BLUE, Marker::Circle)), ("unobserved".into(), Glyph::Line(ORANGE, Marker::Triangle))];
    let bands = first.hooks.iter().map(|h| (hook_label(h), h.clone())).collect();
    let mut panel = Panel::new(200.0, Scale::Bands(bands), Scale::Log { lo, hi }, "layer (emb = embedding, i = after block i)", "‖resid‖ (log scale)");
    for (k, side) in sides.iter().enumerate() {
        let Some(norms) = side else { continue };
        panel.layers.push(Layer::Line {
            colour: [BLUE, ORANGE][k],
            dashed: false,
            width: 2.0,
            marker: [Marker::Circle, Marker::Triangle][k],
            // A zero or non-finite norm has no place on a log axis: the line breaks there.
            points: norms.norms.iter().enumerate().map(|(i, &v)| (i as f64, if v > 0.0 { f64::from(v) } else { f64::NAN })).collect(),
            readouts: norms.hooks.iter().zip(&norms.norms).map(|(h, v)| format!("{h}, {}: ‖resid‖ {v:.3}", NAMES[k])).collect(),
        });
    }
    fig.panels.push(panel);
    fig
}

/// How much the norm grows from the first to the last layer.
fn caption(n: &LayerNorms) -> String {
    match (n.norms.first(), n.norms.last()) {
        (Some(&a), Some(&b)) if a > 0.0 && b > 0.0 && b.is_finite() => {
            let ratio = f64::from(b / a);
            let change = if ratio >= 10.0 {
                format!("grows {ratio:.0}×")
            } else if ratio >= 1.0 {
                format!("grows {ratio:.1}×")
            } else {
                format!("shrinks to {:.2} of its size", ratio)
            };
            format!(
                "The norm {change} from {} to {}; steering vectors are scaled to the norm at their layer for this reason.",
                n.hooks.first().map_or("", String::as_str),
                n.hooks.last().map_or("", String::as_str)
            )
        }
        _ => "Steering vectors are scaled to the residual norm at their layer.".into(),
    }
}

#[component]
pub fn NormChart() -> Html {
    let state = use_context::<AppContext>().expect("AppContext is provided by the root");
    let sides = [state.chat.sides[0].norms.clone(), state.chat.sides[1].norms.clone()];
    let fig = use_memo(sides.clone(), |s| figure(s));
    let Some(first) = sides.iter().flatten().next().cloned() else {
        return html! {
            <section class="panel" aria-labelledby="norm-heading">
                <h2 id="norm-heading">{"Residual norm by layer"}</h2>
                <p class="muted">{"Send a chat to see how the residual stream's norm at the last prompt token grows through the layers."}</p>
            </section>
        };
    };
    let value = |k: usize, i: usize| sides[k].as_ref().and_then(|n| n.norms.get(i).copied());
    html! {
        <section class="panel" aria-labelledby="norm-heading">
            <h2 id="norm-heading">{"Residual norm by layer"}</h2>
            <p class="muted">{"‖resid_post‖ at the last prompt token, where the answer starts, under each framing. It changes through the network (the caption under the chart says by how much), which is why steering vectors are scaled to the norm at their layer."}</p>
            <Chart figure={fig} testid="norm-chart" filename="hawthorne-residual-norms" what="the residual norm chart"
                summary={format!("Line chart of residual norm over {} layers for the observed and unobserved framings.", first.norms.len())}
                caption={caption(&first)} />
            <details>
                <summary>{"Numbers"}</summary>
                <table data-testid="norm-table">
                    <thead><tr><th scope="col">{"hook"}</th><th scope="col">{"observed"}</th><th scope="col">{"unobserved"}</th></tr></thead>
                    <tbody>
                        { for first.hooks.iter().enumerate().map(|(i, h)| html! {
                            <tr>
                                <td>{h}</td>
                                <td>{value(0, i).map_or("–".into(), |v| format!("{v:.3}"))}</td>
                                <td>{value(1, i).map_or("–".into(), |v| format!("{v:.3}"))}</td>
                            </tr>
                        }) }
                    </tbody>
                </table>
            </details>
        </section>
    }
}
