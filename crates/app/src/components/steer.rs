//! Steering controls: pick a layer and α; the unobserved side of the chat is regenerated with
//! α × (mean residual norm) × the probe direction added at that layer, and a sweep reruns the
//! experiment's steering curve at the chosen layer.

use hawthorne_worker::protocol::SteerSetting;
use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

use crate::state::{Action, AppContext};

#[derive(Properties, PartialEq)]
pub struct SteerPanelProps {
    /// Resend the chat (both sides; the unobserved one steered).
    pub onsend: Callback<()>,
    /// Rerun the experiment with the steering sweep at this layer.
    pub onsweep: Callback<usize>,
}

#[component]
pub fn SteerPanel(props: &SteerPanelProps) -> Html {
    let state = use_context::<AppContext>().expect("AppContext is provided by the root");
    let Some(report) = state.run.report.clone() else {
        return html! {};
    };
    let n_layers = report.provenance.n_layers;
    let default_layer = state.spec.steering.layer.unwrap_or(n_layers / 2).min(n_layers.saturating_sub(1));
    let current = state.chat.steer.unwrap_or(SteerSetting { layer: default_layer, alpha: 0.0 });
    let set = {
        let state = state.clone();
        move |s: SteerSetting| state.dispatch(Action::SetSteer(Some(s)))
    };
    let onlayer = {
        let set = set.clone();
        Callback::from(move |e: Event| {
            let sel: HtmlSelectElement = e.target_unchecked_into();
            if let Ok(layer) = sel.value().parse() {
                set(SteerSetting { layer, ..current });
            }
        })
    };
    let onalpha = {
        let set = set.clone();
        Callback::from(move |e: InputEvent| {
            let input: HtmlInputElement = e.target_unchecked_into();
            if let Ok(alpha) = input.value().parse::<f64>() {
                set(SteerSetting { alpha, ..current });
            }
        })
    };
    let onsend = {
        let cb = props.onsend.clone();
        Callback::from(move |_| cb.emit(()))
    };
    let onsweep = {
        let cb = props.onsweep.clone();
        Callback::from(move |_| cb.emit(current.layer))
    };
    let busy = state.chat.running() || state.run.running.is_some();
    html! {
        <section class="panel wide" aria-labelledby="steer-heading">
            <h2 id="steer-heading">{"Steer"}</h2>
            <p class="muted">{"Add α × the observed→unobserved direction (mass-mean probe at that layer, scaled to the layer's mean residual norm) on every position. Negative α pushes towards “watched”."}</p>
            <div class="row">
                <label for="steer-layer">{"Layer"}</label>
                <select id="steer-layer" onchange={onlayer} data-testid="steer-layer">
                    { for (0..n_layers).map(|l| html! {
                        <option value={l.to_string()} selected={l == current.layer}>{format!("blocks.{l}.hook_resid_post")}</option>
                    }) }
                </select>
                <label for="steer-alpha">{format!("α = {:+.2}", current.alpha)}</label>
                <input id="steer-alpha" type="range" min="-2" max="2" step="0.05" value={current.alpha.to_string()}
                    oninput={onalpha} data-testid="steer-alpha" aria-valuetext={format!("alpha {:.2}", current.alpha)} />
                <button type="button" onclick={onsend} disabled={busy} data-testid="steer-send">{"Resend the chat"}</button>
                <button type="button" onclick={onsweep} disabled={busy} data-testid="steer-sweep">{"Sweep α at this layer"}</button>
            </div>
        </section>
    }
}
