//! Per-token probe scores: each token of a chosen prompt coloured by its projection on the
//! observed→unobserved direction at a chosen layer (blue = reads as watched, orange = unwatched).

use hawthorne_probe::spec::Condition;
use web_sys::HtmlSelectElement;
use yew::prelude::*;

use crate::state::AppContext;

#[derive(Properties, PartialEq)]
pub struct TokenHeatmapProps {
    /// Ask the worker for scores: (system, user, layer).
    pub onscore: Callback<(String, String, usize)>,
}

/// Background colour for a score in units of the residual norm: diverging Okabe–Ito blue/orange.
fn colour(score: f32, scale: f32) -> String {
    let t = (score / scale.max(1e-6)).clamp(-1.0, 1.0);
    let (r, g, b) = if t >= 0.0 { (230.0, 159.0, 0.0) } else { (0.0, 114.0, 178.0) };
    let a = t.abs() * 0.85;
    format!("background-color: rgba({r}, {g}, {b}, {a:.2})")
}

#[component]
pub fn TokenHeatmap(props: &TokenHeatmapProps) -> Html {
    let state = use_context::<AppContext>().expect("AppContext is provided by the root");
    let framing = use_state(|| 0usize);
    let task = use_state(|| 0usize);
    // `usize::MAX` until the user picks one: the middle layer of whatever model ran.
    let layer_choice = use_state(|| usize::MAX);
    let Some(report) = state.run.report.clone() else { return html! {} };
    let n_layers = report.provenance.n_layers;
    let layer = if *layer_choice < n_layers { *layer_choice } else { n_layers / 2 };
    let spec = &report.spec;
    let fr = &spec.scenario.framings;
    let select = |h: UseStateHandle<usize>| {
        Callback::from(move |e: Event| {
            let s: HtmlSelectElement = e.target_unchecked_into();
            if let Ok(v) = s.value().parse() {
                h.set(v);
            }
        })
    };
    let onclick = {
        let (onscore, framing, task) = (props.onscore.clone(), *framing, *task);
        let system = fr.get(framing).map(|f| f.text.clone()).unwrap_or_default();
        let user = spec.scenario.tasks.get(task).map(|t| t.text.clone()).unwrap_or_default();
        Callback::from(move |_| onscore.emit((system.clone(), user.clone(), layer)))
    };
    let tv = &state.token_view;
    let scale = tv.scores.iter().map(|s| s.abs()).fold(0.0f32, f32::max);
    html! {
        <section class="panel wide" aria-labelledby="tokens-heading">
            <h2 id="tokens-heading">{"Probe score per token"}</h2>
            <p class="muted">{"Each token's residual at the chosen layer projected on the observed→unobserved direction (in units of the layer's mean norm). Orange reads as “nobody is watching”, blue as “watched”. Where does the cue's information sit, and does it reach the tokens after the framing?"}</p>
            <div class="row">
                <label for="tok-framing">{"Framing"}</label>
                <select id="tok-framing" onchange={select(framing.clone())}>
                    { for fr.iter().enumerate().map(|(i, f)| html! {
                        <option value={i.to_string()} selected={i == *framing}>
                            {format!("[{}{}] {}", match f.condition { Condition::Observed => "observed", Condition::Unobserved => "unobserved", Condition::Neutral => "neutral" }, if f.held_out { ", held out" } else { "" }, f.text)}
                        </option>
                    }) }
                </select>
                <label for="tok-task">{"Task"}</label>
                <select id="tok-task" onchange={select(task.clone())}>
                    { for spec.scenario.tasks.iter().enumerate().map(|(i, t)| html! {
                        <option value={i.to_string()} selected={i == *task}>{&t.text}</option>
                    }) }
                </select>
                <label for="tok-layer">{"Layer"}</label>
                <select id="tok-layer" onchange={select(layer_choice.clone())}>
                    { for (0..n_layers).map(|l| html! { <option value={l.to_string()} selected={l == layer}>{l}</option> }) }
                </select>
                <button type="button" {onclick} disabled={tv.waiting.is_some()} data-testid="score-tokens">{"Score tokens"}</button>
            </div>
            if let Some(e) = &tv.error { <p class="error" role="alert">{e}</p> }
            if !tv.tokens.is_empty() {
                <p class="tokens" data-testid="token-scores" data-layer={tv.layer.to_string()}>
                    { for tv.tokens.iter().zip(&tv.scores).map(|(t, s)| html! {
                        <span class="tok" style={colour(*s, scale)} title={format!("{s:+.3}")} data-score={s.to_string()}>{t.replace('\n', "⏎")}</span>
                    }) }
                </p>
                <p class="muted">{format!("blocks.{}.hook_resid_post · largest |score| {:.3}", tv.layer, scale)}</p>
            }
        </section>
    }
}
