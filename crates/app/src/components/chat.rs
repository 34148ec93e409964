//! Chat panel: a framing (system text) and a request, the model's reply streamed from the worker.

use web_sys::{HtmlInputElement, HtmlTextAreaElement};
use yew::prelude::*;

use crate::state::{Action, AppContext, OBSERVED_FRAMING, UNOBSERVED_FRAMING};

#[derive(Properties, PartialEq)]
pub struct ChatPanelProps {
    pub onsend: Callback<()>,
    pub oncancel: Callback<()>,
}

/// Longest request the box accepts; longer text is kept but the send button explains why not.
const MAX_CHARS: usize = 4000;

#[component]
pub fn ChatPanel(props: &ChatPanelProps) -> Html {
    let state = use_context::<AppContext>().expect("AppContext is provided by the root");
    let text_action = |make: fn(String) -> Action| {
        let state = state.clone();
        Callback::from(move |e: InputEvent| {
            let area: HtmlTextAreaElement = e.target_unchecked_into();
            state.dispatch(make(area.value()));
        })
    };
    let onsystem = text_action(Action::SetSystem);
    let onuser = text_action(Action::SetUser);
    let onmax = {
        let state = state.clone();
        Callback::from(move |e: InputEvent| {
            let input: HtmlInputElement = e.target_unchecked_into();
            if let Ok(n) = input.value().parse::<usize>() {
                state.dispatch(Action::SetMaxTokens(n.clamp(1, 512)));
            }
        })
    };
    let preset = |text: &'static str| {
        let state = state.clone();
        Callback::from(move |_| state.dispatch(Action::SetSystem(text.to_string())))
    };
    let running = state.chat.running.is_some();
    let too_long = state.system.len() + state.user.len() > MAX_CHARS;
    let can_send = state.ready_model().is_some() && !running && !state.user.trim().is_empty() && !too_long;
    let onsubmit = {
        let onsend = props.onsend.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            if can_send {
                onsend.emit(());
            }
        })
    };
    let oncancel = {
        let cb = props.oncancel.clone();
        Callback::from(move |_| cb.emit(()))
    };
    let hint = if state.ready_model().is_none() {
        Some("Load a model first.")
    } else if too_long {
        Some("The framing and request are too long for a chat turn here (4,000 characters at most).")
    } else {
        None
    };
    html! {
        <section class="panel" aria-labelledby="chat-heading">
            <h2 id="chat-heading">{"Chat"}</h2>
            <form {onsubmit}>
                <label for="framing">{"Framing (system prompt)"}</label>
                <div class="row presets">
                    <button type="button" onclick={preset(OBSERVED_FRAMING)}>{"Observed"}</button>
                    <button type="button" onclick={preset(UNOBSERVED_FRAMING)}>{"Unobserved"}</button>
                    <button type="button" onclick={preset("")}>{"Model default"}</button>
                </div>
                <textarea id="framing" rows="2" value={state.system.clone()} oninput={onsystem} />
                <label for="request">{"Request"}</label>
                <textarea id="request" rows="3" value={state.user.clone()} oninput={onuser} data-testid="request" />
                <div class="row">
                    <label for="max-tokens">{"Max tokens"}</label>
                    <input id="max-tokens" type="number" min="1" max="512" value={state.max_tokens.to_string()} oninput={onmax} />
                    <button type="submit" disabled={!can_send} data-testid="send">{"Send"}</button>
                    <button type="button" onclick={oncancel} disabled={!running} data-testid="stop">{"Stop"}</button>
                </div>
                if let Some(hint) = hint {
                    <p class="muted">{hint}</p>
                }
            </form>
            <h3>{"Reply"}</h3>
            <output class="reply" aria-live="polite" data-testid="reply" data-done={(!running && state.chat.stats.is_some()).to_string()}>
                {&state.chat.reply}
                if running { <span class="cursor" aria-hidden="true">{"▍"}</span> }
            </output>
            if let Some(stats) = &state.chat.stats {
                <p class="muted" data-testid="chat-stats"
                    data-prompt-tokens={stats.prompt_tokens.to_string()} data-prefill-ms={format!("{:.1}", stats.prefill_ms)}
                    data-decode-tps={format!("{:.2}", stats.tokens_per_s)}>
                    {format!("prompt {} tokens, prefill {:.0} ms ({:.0} tok/s) · {} tokens generated, {:.1} tok/s · stopped: {}",
                        stats.prompt_tokens, stats.prefill_ms,
                        stats.prompt_tokens as f64 / (stats.prefill_ms / 1000.0).max(1e-9),
                        stats.tokens, stats.tokens_per_s, stats.stop)}
                </p>
            }
            if let Some(err) = &state.chat.error {
                <p class="error" role="alert">{err}</p>
            }
        </section>
    }
}
