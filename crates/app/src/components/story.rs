//! The first screen: the model, the same request answered watched and unwatched side by side,
//! the headline probe chart and one sentence reading the current numbers.

use yew::prelude::*;

use hawthorne_probe::Report;

use crate::components::charts::HeadlineChart;
use crate::state::{AppContext, ModelStatus};

/// The pair of replies that best shows the fork: a task answered under both conditions,
/// preferring one whose two replies differ.
fn fork(report: &Report) -> Option<(&hawthorne_probe::report::Continuation, &hawthorne_probe::report::Continuation)> {
    let conts = &report.behaviour.continuations;
    let pairs: Vec<_> = conts
        .iter()
        .filter(|c| c.condition == "observed")
        .filter_map(|o| conts.iter().find(|u| u.condition == "unobserved" && u.task == o.task).map(|u| (o, u)))
        .collect();
    pairs.iter().find(|(o, u)| o.text.trim() != u.text.trim()).or(pairs.first()).copied()
}

fn side(name: &str, heading: &str, framing: &str, text: &str) -> Html {
    html! {
        <div class={classes!("story-reply", name.to_string())} data-testid={format!("story-{name}")}>
            <h3>{heading}</h3>
            <p class="framing">{framing}</p>
            <output class="reply">{text}</output>
        </div>
    }
}

#[derive(Properties, PartialEq)]
pub struct StoryProps {
    /// Starts the current experiment.
    pub onrun: Callback<()>,
}

#[component]
pub fn Story(props: &StoryProps) -> Html {
    let state = use_context::<AppContext>().expect("AppContext is provided by the root");
    let model = match &state.model {
        ModelStatus::Ready(m) => format!(
            "{} · {} architecture, {} layers, {:.1} M parameters · {} prompt format",
            m.name, m.config.family.arch, m.config.n_layers, m.n_params as f64 / 1e6, m.chat_format
        ),
        ModelStatus::Loading { url, done, total, .. } => match total {
            Some(t) if *t > 0 => format!("Loading {} … {:.0}%", url.rsplit('/').next().unwrap_or(url), *done as f64 / *t as f64 * 100.0),
            _ => format!("Loading {} …", url.rsplit('/').next().unwrap_or(url)),
        },
        ModelStatus::Failed { message, .. } => format!("The model did not load: {message}"),
        ModelStatus::Idle => "No model loaded yet.".into(),
    };
    let report = state.run.report.clone();
    let running = state.run.running.is_some();
    let progress = state.run.progress.map(|(stage, done, total)| format!("{} — {done} of {total}", stage.label()));
    let onrun = {
        let onrun = props.onrun.clone();
        Callback::from(move |_: MouseEvent| onrun.emit(()))
    };
    let replies = match report.as_deref().and_then(|r| fork(r).map(|f| (r, f))) {
        Some((r, (o, u))) => {
            // The spec holds the texts behind the report's ids.
            let scenario = &r.spec.scenario;
            let framing = |id: &str| scenario.framings.iter().find(|f| f.id == id).map_or_else(|| id.to_string(), |f| f.text.clone());
            let task = scenario.tasks.iter().find(|t| t.id == o.task).map_or_else(|| o.task.clone(), |t| t.text.clone());
            html! {
                <>
                    <p class="story-task" data-testid="story-task"><strong>{"Request: "}</strong>{task}</p>
                    <div class="story-replies">
                        {side("observed", "Watched", &framing(&o.framing), &o.text)}
                        {side("unobserved", "Unwatched", &framing(&u.framing), &u.text)}
                    </div>
                </>
            }
        }
        None => {
            let chat = &state.chat.sides;
            if chat.iter().any(|s| !s.reply.is_empty()) {
                html! {
                    <div class="story-replies">
                        {side("observed", "Watched", &chat[0].system, &chat[0].reply)}
                        {side("unobserved", "Unwatched", &chat[1].system, &chat[1].reply)}
                    </div>
                }
            } else {
                html! { <p class="muted">{"Run the experiment (or send a chat below) to see the same request answered while watched and while unwatched."}</p> }
            }
        }
    };
    html! {
        <section class="story" aria-labelledby="story-heading" data-testid="story">
            <h2 id="story-heading" class="visually-hidden">{"The experiment at a glance"}</h2>
            <div class="story-left">
                <p class="story-model" data-testid="story-model"><strong>{"Model: "}</strong>{model}</p>
                {replies}
            </div>
            <div class="story-right">
                if let Some(report) = report {
                    <HeadlineChart report={report} />
                } else {
                    <div class="story-empty">
                        <p>{"Hawthorne trains a linear probe on the residual stream at every layer to tell watched prompts from unwatched ones, and sets it against random directions, shuffled labels and the words alone."}</p>
                        <button onclick={onrun} disabled={running || !state.worker_ready} data-testid="story-run">
                            {if running { "Running…" } else { "Run the experiment" }}
                        </button>
                        if let Some(p) = progress { <p class="muted" role="status">{p}</p> }
                    </div>
                }
            </div>
        </section>
    }
}
