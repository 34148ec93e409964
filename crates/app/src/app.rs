//! The root component: owns the worker bridge and the state, and lays out the panels.

use hawthorne_worker::agent::{EngineReactor, SerdeCodec};
use hawthorne_worker::protocol::{ChatRequest, Request};
use hawthorne_model::Sampling;
use yew::prelude::*;
use yew_agent::reactor::{use_reactor_bridge, ReactorEvent, ReactorProvider};

use crate::components::chat::ChatPanel;
use crate::components::experiment::ExperimentPanel;
use crate::components::model_picker::ModelPicker;
use crate::components::norm_chart::NormChart;
use crate::state::{model_for_id, Action, AppContext, AppState};

/// Path of the worker's wasm-bindgen script, relative to the page.
///
/// The worker is built with `wasm-bindgen --target no-modules` and spawned as a classic worker:
/// yew-agent 0.5's `ReactorSpawner::encoding` resets the `as_module` flag, so a module worker
/// cannot be combined with a custom codec.
const WORKER_PATH: &str = "pkg/worker.js";

/// Resolves `url` against the page, because the worker (started from a blob: URL) cannot
/// resolve relative URLs itself.
fn absolute_url(url: &str) -> String {
    gloo::utils::window()
        .location()
        .href()
        .ok()
        .and_then(|base| web_sys::Url::new_with_base(url, &base).ok())
        .map_or_else(|| url.to_string(), |u| u.href())
}

#[component]
pub fn App() -> Html {
    html! {
        <ReactorProvider<EngineReactor, SerdeCodec> path={WORKER_PATH} module=false lazy=false>
            <Workbench />
        </ReactorProvider<EngineReactor, SerdeCodec>>
    }
}

#[component]
fn Workbench() -> Html {
    let state = use_reducer(|| {
        let fragment = gloo::utils::window().location().hash().unwrap_or_default();
        AppState::from_link(crate::link::parse_fragment(&fragment))
    });
    let bridge = {
        let dispatch = state.dispatcher();
        use_reactor_bridge::<EngineReactor, _>(move |event| match event {
            ReactorEvent::Output(resp) => dispatch.dispatch(Action::Worker(resp)),
            ReactorEvent::Finished => dispatch.dispatch(Action::WorkerLost),
        })
    };

    let onload = {
        let (bridge, dispatch) = (bridge.clone(), state.dispatcher());
        Callback::from(move |url: String| {
            dispatch.dispatch(Action::LoadStarted(url.clone()));
            bridge.send(Request::Load { url: absolute_url(&url) });
        })
    };

    let onrun = {
        let (bridge, state, onload) = (bridge.clone(), state.clone(), onload.clone());
        Callback::from(move |()| {
            if state.spec_model_loaded() {
                let id = state.run.next_id;
                state.dispatch(Action::RunStarted(id));
                bridge.send(Request::Run { id, spec: Box::new(state.spec.clone()) });
            } else if let Some(m) = model_for_id(&state.spec.model.id) {
                state.dispatch(Action::Select(m.url.to_string()));
                state.dispatch(Action::RunPending(true));
                onload.emit(m.url.to_string());
            } else {
                state.dispatch(Action::Worker(hawthorne_worker::Response::RunFailed {
                    id: state.run.next_id,
                    message: format!("the page does not know the model `{}`", state.spec.model.id),
                }));
            }
        })
    };

    // A pending run starts as soon as its model is ready.
    {
        let (state, onrun) = (state.clone(), onrun.clone());
        let ready = state.spec_model_loaded() && state.run.pending && state.run.running.is_none();
        use_effect_with(ready, move |ready| {
            if *ready {
                onrun.emit(());
            }
        });
    }

    // After a run, the address bar holds the link that reproduces it.
    {
        let hash = state.run.report.as_ref().map(|r| r.spec.clone());
        use_effect_with(hash, move |spec| {
            if let Some(spec) = spec {
                let frag = crate::link::fragment_for(spec, None);
                if let Ok(history) = gloo::utils::window().history() {
                    let _ = history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&frag));
                }
            }
        });
    }

    let oncancel_run = {
        let (bridge, state) = (bridge.clone(), state.clone());
        Callback::from(move |()| {
            if let Some(id) = state.run.running {
                bridge.send(Request::Cancel { id });
            }
        })
    };

    // Load the default model as soon as the page opens.
    {
        let (onload, url) = (onload.clone(), state.selected.clone());
        use_effect_with((), move |_| onload.emit(url));
    }

    let onsend = {
        let (bridge, state) = (bridge.clone(), state.clone());
        Callback::from(move |()| {
            let id = state.chat.next_id;
            state.dispatch(Action::ChatStarted(id));
            bridge.send(Request::Chat(ChatRequest {
                id,
                system: state.system.clone(),
                user: state.user.clone(),
                max_tokens: state.max_tokens,
                sampling: Sampling::Greedy,
                steer: None,
            }));
        })
    };

    let oncancel = {
        let (bridge, state) = (bridge.clone(), state.clone());
        Callback::from(move |()| {
            if let Some(id) = state.chat.running {
                bridge.send(Request::Cancel { id });
            }
        })
    };

    html! {
        <ContextProvider<AppContext> context={state.clone()}>
            <header class="site-header">
                <h1>{"Hawthorne"}</h1>
                <p class="tagline">{"Does a model behave differently when it believes nobody is watching? Look inside it."}</p>
            </header>
            if state.worker_lost {
                <p class="error" role="alert">{"The engine worker stopped. Reload the page to start it again."}</p>
            }
            <div class="panels">
                <ModelPicker {onload} />
                <ExperimentPanel {onrun} oncancel={oncancel_run} />
                <ChatPanel {onsend} {oncancel} />
                <NormChart />
            </div>
            <footer class="site-footer">
                {"All computation runs in a Web Worker in this tab; nothing leaves your machine."}
            </footer>
        </ContextProvider<AppContext>>
    }
}
