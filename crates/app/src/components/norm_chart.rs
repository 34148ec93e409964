//! Chart of the last prompt token's residual-stream norm per layer, drawn with plotters on a
//! canvas, with the numbers also in a table for screen readers and tests.

use plotters::prelude::*;
use plotters_canvas::CanvasBackend;
use web_sys::HtmlCanvasElement;
use yew::prelude::*;

use hawthorne_worker::protocol::LayerNorms;

use crate::state::AppContext;

/// Okabe–Ito blue, distinguishable under every common colour-vision deficiency.
const LINE: RGBColor = RGBColor(0, 114, 178);

fn draw(canvas: HtmlCanvasElement, norms: &LayerNorms) -> Result<(), String> {
    let backend = CanvasBackend::with_canvas_object(canvas).ok_or("the canvas has no 2-D context")?;
    let root = backend.into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let n = norms.norms.len();
    let lo = norms.norms.iter().copied().fold(f32::INFINITY, f32::min).max(1e-3) * 0.8;
    let hi = norms.norms.iter().copied().fold(0.0, f32::max) * 1.25;
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
    let points: Vec<(f32, f32)> = norms.norms.iter().enumerate().map(|(i, &v)| (i as f32, v)).collect();
    chart.draw_series(LineSeries::new(points.clone(), LINE.stroke_width(2))).map_err(|e| e.to_string())?;
    chart
        .draw_series(points.into_iter().map(|p| Circle::new(p, 3, LINE.filled())))
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

#[component]
pub fn NormChart() -> Html {
    let state = use_context::<AppContext>().expect("AppContext is provided by the root");
    let canvas = use_node_ref();
    let error = use_state(|| None::<String>);
    {
        let (canvas, error) = (canvas.clone(), error.clone());
        use_effect_with(state.chat.norms.clone(), move |norms| {
            if let (Some(norms), Some(c)) = (norms, canvas.cast::<HtmlCanvasElement>()) {
                error.set(draw(c, norms).err());
            }
        });
    }
    let Some(norms) = &state.chat.norms else {
        return html! {
            <section class="panel wide" aria-labelledby="norm-heading">
                <h2 id="norm-heading">{"Residual norm by layer"}</h2>
                <p class="muted">{"Send a chat to see how the residual stream's norm at the last prompt token grows through the layers."}</p>
                <canvas ref={canvas} width="960" height="360" hidden=true />
            </section>
        };
    };
    html! {
        <section class="panel wide" aria-labelledby="norm-heading">
            <h2 id="norm-heading">{"Residual norm by layer"}</h2>
            <p class="muted">{format!("‖resid_post‖ at the last prompt token (position {} of {}).", norms.n_tokens - 1, norms.n_tokens)}</p>
            <canvas ref={canvas} width="960" height="360" role="img" data-testid="norm-chart"
                aria-label={format!("Line chart of residual norm over {} layers, from {:.1} to {:.1}", norms.norms.len(), norms.norms.first().copied().unwrap_or(0.0), norms.norms.last().copied().unwrap_or(0.0))} />
            if let Some(e) = &*error { <p class="error">{format!("Could not draw the chart: {e}")}</p> }
            <details>
                <summary>{"Numbers"}</summary>
                <table data-testid="norm-table">
                    <thead><tr><th scope="col">{"hook"}</th><th scope="col">{"norm"}</th></tr></thead>
                    <tbody>
                        { for norms.hooks.iter().zip(&norms.norms).map(|(h, v)| html! {
                            <tr><td>{h}</td><td>{format!("{v:.3}")}</td></tr>
                        }) }
                    </tbody>
                </table>
            </details>
        </section>
    }
}
