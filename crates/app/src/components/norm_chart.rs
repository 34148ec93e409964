//! Chart of the last prompt token's residual-stream norm per layer, drawn with plotters on a
//! canvas, with the numbers also in a table for screen readers and tests.

use plotters::prelude::*;
use plotters_canvas::CanvasBackend;
use web_sys::HtmlCanvasElement;
use yew::prelude::*;

use hawthorne_worker::protocol::LayerNorms;

use crate::state::AppContext;

/// Okabe–Ito blue (observed) and orange (unobserved), distinguishable under every common
/// colour-vision deficiency.
const COLOURS: [RGBColor; 2] = [RGBColor(0, 114, 178), RGBColor(230, 159, 0)];
const NAMES: [&str; 2] = ["observed", "unobserved"];

fn draw(canvas: HtmlCanvasElement, sides: &[Option<LayerNorms>; 2]) -> Result<(), String> {
    let present: Vec<&LayerNorms> = sides.iter().flatten().collect();
    let Some(first) = present.first() else { return Ok(()) };
    let backend = CanvasBackend::with_canvas_object(canvas).ok_or("the canvas has no 2-D context")?;
    let root = backend.into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let n = first.norms.len();
    let all = present.iter().flat_map(|n| n.norms.iter().copied());
    let lo = all.clone().fold(f32::INFINITY, f32::min).max(1e-3) * 0.8;
    let hi = all.fold(0.0, f32::max) * 1.25;
    let mut chart = ChartBuilder::on(&root)
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(0f32..(n.max(2) - 1) as f32, (lo..hi).log_scale())
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("layer (0 = embedding, i = after block i−1)")
        .y_desc("‖resid‖ (log scale)")
        .x_labels(n.min(16))
        .x_label_formatter(&|x| format!("{}", x.round() as i64))
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 16))
        .draw()
        .map_err(|e| e.to_string())?;
    for (k, side) in sides.iter().enumerate() {
        let Some(norms) = side else { continue };
        let c = COLOURS[k];
        let points: Vec<(f32, f32)> = norms.norms.iter().enumerate().map(|(i, &v)| (i as f32, v)).collect();
        chart
            .draw_series(LineSeries::new(points.clone(), c.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(NAMES[k])
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(3)));
        // Observed as circles, unobserved as triangles, so the series differ by shape too.
        if k == 0 {
            chart.draw_series(points.into_iter().map(|p| Circle::new(p, 3, c.filled()))).map_err(|e| e.to_string())?;
        } else {
            chart.draw_series(points.into_iter().map(|p| TriangleMarker::new(p, 4, c.filled()))).map_err(|e| e.to_string())?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font(("sans-serif", 15))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

#[component]
pub fn NormChart() -> Html {
    let state = use_context::<AppContext>().expect("AppContext is provided by the root");
    let canvas = use_node_ref();
    let error = use_state(|| None::<String>);
    let sides = [state.chat.sides[0].norms.clone(), state.chat.sides[1].norms.clone()];
    {
        let (canvas, error) = (canvas.clone(), error.clone());
        use_effect_with(sides.clone(), move |sides| {
            if let Some(c) = canvas.cast::<HtmlCanvasElement>() {
                if sides.iter().any(Option::is_some) {
                    error.set(draw(c, sides).err());
                }
            }
        });
    }
    let Some(first) = sides.iter().flatten().next().cloned() else {
        return html! {
            <section class="panel wide" aria-labelledby="norm-heading">
                <h2 id="norm-heading">{"Residual norm by layer"}</h2>
                <p class="muted">{"Send a chat to see how the residual stream's norm at the last prompt token grows through the layers."}</p>
                <canvas ref={canvas} width="960" height="360" hidden=true />
            </section>
        };
    };
    let value = |k: usize, i: usize| sides[k].as_ref().and_then(|n| n.norms.get(i).copied());
    html! {
        <section class="panel wide" aria-labelledby="norm-heading">
            <h2 id="norm-heading">{"Residual norm by layer"}</h2>
            <p class="muted">{"‖resid_post‖ at the last prompt token, where the answer starts, under each framing. The norm grows by orders of magnitude through the network, which is why steering vectors are scaled to the norm at their layer."}</p>
            <canvas ref={canvas} width="960" height="360" role="img" data-testid="norm-chart"
                aria-label={format!("Line chart of residual norm over {} layers for the observed and unobserved framings", first.norms.len())} />
            if let Some(e) = &*error { <p class="error">{format!("Could not draw the chart: {e}")}</p> }
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
