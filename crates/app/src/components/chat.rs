//! Side-by-side chat: one request under an observed and an unobserved framing, both replies
//! streamed from the worker, optionally steering the unobserved side.

use web_sys::{HtmlInputElement, HtmlTextAreaElement};
use yew::prelude::*;

use crate::state::{Action, AppContext};

#[derive(Properties, PartialEq)]
pub struct ChatPanelProps {
    pub onsend: Callback<()>,
    pub oncancel: Callback<()>,
}

/// Longest framing + request the box sends; longer text is kept but not sent.
const MAX_CHARS: usize = 4000;

const SIDE_NAMES: [&str; 2] = ["observed", "unobserved"];

#[component]
pub fn ChatPanel(props: &ChatPanelProps) -> Html {
    let state = use_context::<AppContext>().expect("AppContext is provided by the root");
    let onuser = {
        let state = state.clone();
        Callback::from(move |e: InputEvent| {
            let area: HtmlTextAreaElement = e.target_unchecked_into();
            state.dispatch(Action::SetUser(area.value()));
        })
    };
    let onmax = {
        let state = state.clone();
        Callback::from(move |e: InputEvent| {
            let input: HtmlInputElement = e.target_unchecked_into();
            if let Ok(n) = input.value().parse::<usize>() {
                state.dispatch(Action::SetMaxTokens(n.clamp(1, 512)));
            }
        })
    };
    let onscenario = {
        let state = state.clone();
        Callback::from(move |_| state.dispatch(Action::FromScenario))
    };
    let running = state.chat.running();
    let too_long = state.chat.sides.iter().any(|s| s.system.len() + state.user.len() > MAX_CHARS);
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
        Some("A framing plus the request is too long for one chat turn here (4,000 characters at most).")
    } else {
        None
    };
    let side = |i: usize| {
        let sd = &state.chat.sides[i];
        let name = SIDE_NAMES[i];
        let onframing = {
            let state = state.clone();
            Callback::from(move |e: InputEvent| {
                let area: HtmlTextAreaElement = e.target_unchecked_into();
                state.dispatch(Action::SetFraming(i, area.value()));
            })
        };
        let ondefault = {
            let state = state.clone();
            Callback::from(move |_| state.dispatch(Action::SetFraming(i, String::new())))
        };
        let steered = i == 1 && state.chat.steer.is_some_and(|s| s.alpha != 0.0);
        html! {
            <div class={classes!("chat-side", name)}>
                <label for={format!("framing-{name}")}>{format!("{} framing", if i == 0 { "Observed" } else { "Unobserved" })}</label>
                <textarea id={format!("framing-{name}")} rows="3" value={sd.system.clone()} oninput={onframing} data-testid={format!("framing-{name}")} />
                <button type="button" class="small" onclick={ondefault}>{"Use the model's default system line"}</button>
                <h3>{format!("Reply ({name}{})", if steered { ", steered" } else { "" })}</h3>
                <output class="reply" aria-live="polite" data-testid={format!("reply-{name}")}
                    data-done={(sd.running.is_none() && sd.stats.is_some()).to_string()}>
                    {&sd.reply}
                    if sd.running.is_some() { <span class="cursor" aria-hidden="true">{"▍"}</span> }
                </output>
                if let Some(stats) = &sd.stats {
                    <p class="muted" data-testid={format!("chat-stats-{name}")}
                        data-prompt-tokens={stats.prompt_tokens.to_string()} data-prefill-ms={format!("{:.1}", stats.prefill_ms)}
                        data-decode-tps={format!("{:.2}", stats.tokens_per_s)}>
                        {format!("prompt {} tokens, prefill {:.0} ms ({:.0} tok/s) · {} tokens, {:.1} tok/s · stopped: {}",
                            stats.prompt_tokens, stats.prefill_ms,
                            stats.prompt_tokens as f64 / (stats.prefill_ms / 1000.0).max(1e-9),
                            stats.tokens, stats.tokens_per_s, stats.stop)}
                    </p>
                }
                if let Some(err) = &sd.error {
                    <p class="error" role="alert">{err}</p>
                }
            </div>
        }
    };
    html! {
        <section class="panel wide" aria-labelledby="chat-heading">
            <h2 id="chat-heading">{"Chat: watched and unwatched"}</h2>
            <form {onsubmit}>
                <label for="request">{"Request (the same for both)"}</label>
                <textarea id="request" rows="2" value={state.user.clone()} oninput={onuser} data-testid="request" />
                <div class="row">
                    <button type="button" onclick={onscenario}>{"Use the scenario's framings"}</button>
                    <label for="max-tokens">{"Max tokens"}</label>
                    <input id="max-tokens" type="number" min="1" max="512" value={state.max_tokens.to_string()} oninput={onmax} />
                    <button type="submit" disabled={!can_send} data-testid="send">{"Send to both"}</button>
                    <button type="button" onclick={oncancel} disabled={!running} data-testid="stop">{"Stop"}</button>
                </div>
                if let Some(hint) = hint {
                    <p class="muted">{hint}</p>
                }
            </form>
            <div class="chat-sides">
                {side(0)}
                {side(1)}
            </div>
        </section>
    }
}
