//! The root component: owns the worker bridge and the state, and lays out the panels.

use hawthorne_worker::agent::{EngineReactor, SerdeCodec};
use hawthorne_worker::protocol::{ChatRequest, Request};
use hawthorne_model::Sampling;
use yew::prelude::*;
use yew_agent::reactor::{use_reactor_bridge, ReactorEvent, ReactorProvider};

use crate::components::chat::ChatPanel;
use crate::components::compare::ComparePanel;
use crate::components::collected::CollectedPanel;
use crate::components::experiment::ExperimentPanel;
use crate::components::charts::figure::Type as ChartType;
use crate::components::charts::{GapChart, LensChart, PatchingHeatmap, PcaScatter, ProbeChart, SteeringChart};
use crate::components::lesson::LessonPanel;
use crate::components::steer::SteerPanel;
use crate::components::token_heatmap::TokenHeatmap;
use crate::components::model_picker::ModelPicker;
use crate::components::norm_chart::NormChart;
use crate::components::staged::Staged;
use crate::components::story::Story;
use crate::lessons::{Focus, LESSONS};
use crate::state::{model_for_id, Action, AppContext, AppState};

/// Path of the script that starts the worker, relative to the page.
///
/// `web/engine.js` picks the engine build inside the worker: the multi-threaded one where the
/// page asks for threads and is cross-origin isolated, the single-threaded one elsewhere. It is spawned as a classic
/// worker: yew-agent 0.5's `ReactorSpawner::encoding` resets the `as_module` flag, so a module
/// worker cannot be combined with a custom codec.
const WORKER_PATH: &str = "web/engine.js";

/// The worker's script with its lifeline id (see [`crate::lifeline`]) and the page's
/// `?threads=N` passed on (N ≥ 2 asks for the threaded build on an isolated page; without it
/// the worker runs one thread). `?memory_check=off` (tests only) is passed on too.
fn worker_path(life: &str) -> String {
    let search = gloo::utils::window().location().search().unwrap_or_default();
    let params = web_sys::UrlSearchParams::new_with_str(&search).ok();
    let mut path = format!("{WORKER_PATH}?life={life}");
    if let Some(n) = params.as_ref().and_then(|p| p.get("threads")).and_then(|t| t.parse::<u32>().ok()) {
        path.push_str(&format!("&threads={n}"));
    }
    if params.as_ref().and_then(|p| p.get("memory_check")).as_deref() == Some("off") {
        path.push_str("&memory_check=off");
    }
    path
}

/// How long Stop waits for the worker to finish its current step before replacing it.
const STOP_GRACE_MS: u32 = 60;

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

/// The root: owns the state (so that it outlives any one worker) and the worker provider,
/// which is keyed by the worker's lifeline id: a restart mounts a fresh worker.
#[component]
pub fn App() -> Html {
    let state = use_reducer(|| {
        let fragment = gloo::utils::window().location().hash().unwrap_or_default();
        AppState::from_fragment(&fragment)
    });
    // One id per page, plus the restart count: each worker's lifeline is its own.
    let page_id = use_memo((), |_| format!("{:08x}", (js_sys::Math::random() * f64::from(u32::MAX)) as u64));
    let generation = state.engine_generation;
    let life = format!("{page_id}-{generation}");
    {
        let dispatch = state.dispatcher();
        use_effect_with(life.clone(), move |life| {
            let watch = crate::lifeline::watch(life, move |reason| dispatch.dispatch(Action::WorkerDied { generation, reason }));
            move || drop(watch)
        });
    }
    html! {
        <ReactorProvider<EngineReactor, SerdeCodec> key={life.clone()} path={worker_path(&life)} module=false lazy=false>
            <Workbench state={state} />
        </ReactorProvider<EngineReactor, SerdeCodec>>
    }
}

#[derive(Properties, PartialEq)]
struct WorkbenchProps {
    state: AppContext,
}

#[component]
fn Workbench(props: &WorkbenchProps) -> Html {
    let state = props.state.clone();
    // Following a lesson or share link inside the page changes only the fragment.
    {
        let dispatch = state.dispatcher();
        use_effect_with((), move |_| {
            let listener = gloo::events::EventListener::new(&gloo::utils::window(), "hashchange", move |_| {
                let fragment = gloo::utils::window().location().hash().unwrap_or_default();
                dispatch.dispatch(Action::OpenLink(fragment));
            });
            move || drop(listener)
        });
    }
    let generation = state.engine_generation;
    let bridge = {
        let dispatch = state.dispatcher();
        use_reactor_bridge::<EngineReactor, _>(move |event| match event {
            // Exported arrays go straight to a download, never through the state.
            ReactorEvent::Output(hawthorne_worker::Response::Array { array, npy, .. }) => {
                let saved = crate::components::experiment::download_bytes(array.file_name(), "application/octet-stream", &npy);
                dispatch.dispatch(Action::Exported(saved.err()));
            }
            ReactorEvent::Output(hawthorne_worker::Response::ExportFailed { message, .. }) => {
                dispatch.dispatch(Action::Exported(Some(message)));
            }
            ReactorEvent::Output(resp) => dispatch.dispatch(Action::Worker(resp)),
            ReactorEvent::Finished => dispatch.dispatch(Action::WorkerDied {
                generation,
                reason: Some("The engine's message loop ended.".into()),
            }),
        })
    };

    let onload = {
        let (bridge, dispatch) = (bridge.clone(), state.dispatcher());
        Callback::from(move |url: String| {
            dispatch.dispatch(Action::LoadStarted(url.clone()));
            bridge.send(Request::Load { url: absolute_url(&url) });
        })
    };

    let oninspect = {
        let (bridge, dispatch) = (bridge.clone(), state.dispatcher());
        Callback::from(move |(name, size, url): (String, Option<u64>, String)| {
            let url = absolute_url(&url);
            dispatch.dispatch(Action::UserModelChosen { name, size, url: url.clone() });
            bridge.send(Request::Inspect { url });
        })
    };

    // Starts the spec's run; a run that a link started (not a click) carries the cost budget,
    // and the worker refuses it if the estimate is over.
    let start_run = {
        let (bridge, state, onload) = (bridge.clone(), state.clone(), onload.clone());
        Callback::from(move |budget_s: Option<f64>| {
            if state.spec_model_loaded() {
                let id = state.run.next_id;
                state.dispatch(Action::RunStarted(id));
                bridge.send(Request::Run { id, spec: Box::new(state.spec.clone()), budget_s });
            } else if let Some(m) = model_for_id(&state.spec.model.id) {
                state.dispatch(Action::AllowDownload);
                state.dispatch(Action::Select(m.url.to_string()));
                state.dispatch(Action::RunPending(true));
                onload.emit(m.url.to_string());
            } else if let Some(needed) = state.file_needed() {
                // Runs as soon as the right file is opened and loaded.
                state.dispatch(Action::RunPending(true));
                state.dispatch(Action::Worker(hawthorne_worker::Response::RunFailed { id: state.run.next_id, message: needed }));
            } else {
                state.dispatch(Action::Worker(hawthorne_worker::Response::RunFailed {
                    id: state.run.next_id,
                    message: format!("the page does not know the model `{}`", state.spec.model.id),
                }));
            }
        })
    };
    // Collected activations: the current spec's report from a directory or zip the user opened.
    let oncollected = {
        let (bridge, state) = (bridge.clone(), state.clone());
        Callback::from(move |files: Vec<(String, String)>| {
            let id = state.run.next_id;
            state.dispatch(Action::RunStarted(id));
            let files = files.into_iter().map(|(path, url)| (path, absolute_url(&url))).collect();
            bridge.send(Request::RunCollected { id, spec: Box::new(state.spec.clone()), files });
        })
    };
    let onrun = {
        let start_run = start_run.clone();
        Callback::from(move |()| start_run.emit(None))
    };

    let onsweep = {
        let state = state.clone();
        Callback::from(move |layer: usize| {
            let mut spec = state.spec.clone();
            spec.steering.enabled = true;
            spec.steering.layer = Some(layer);
            state.dispatch(Action::SetSpec(Box::new(spec)));
            // The pending-run effect starts it (the model is already loaded).
            state.dispatch(Action::RunPending(true));
        })
    };

    let onscore = {
        let (bridge, state) = (bridge.clone(), state.clone());
        Callback::from(move |(system, user, layer): (String, String, usize)| {
            let id = state.token_view.next_id;
            state.dispatch(Action::TokenScoresRequested(id));
            bridge.send(Request::TokenScores { id, system, user, layer });
        })
    };

    // A pending run starts as soon as its model is ready (a link's only within the budget).
    {
        let (state, start_run) = (state.clone(), start_run.clone());
        let ready = state.spec_model_loaded() && state.run.pending && state.run.running.is_none();
        let budget = state.run.from_link.then_some(hawthorne_probe::cost::DEFAULT_BUDGET_S);
        use_effect_with(ready, move |ready| {
            if *ready {
                start_run.emit(budget);
            }
        });
    }

    // After a run, the address bar holds the link that reproduces it (one from collected
    // activations says so, and waits for them when reopened).
    {
        // The lesson stays in the link in presenter mode, or while the spec is the lesson's own
        // (a spec edited during a lesson is no longer that lesson's).
        let lesson = state.lesson.filter(|n| state.presenter || state.run.report.as_ref().is_some_and(|r| r.spec == (LESSONS[n - 1].spec)()));
        let hash = state.run.report.as_ref().map(|r| (r.spec.clone(), crate::components::collected::is_collected(r), lesson, state.presenter));
        use_effect_with(hash, move |spec| {
            if let Some((spec, collected, lesson, presenter)) = spec {
                // The lesson and presenter mode stay in the link, so a presenter's link (or a
                // reload) opens at the same step.
                let mut frag = crate::link::fragment_for(spec, *lesson);
                if *collected {
                    frag.push_str("&activations=collected");
                }
                if *presenter {
                    frag.push_str("&present=1");
                }
                if let Ok(history) = gloo::utils::window().history() {
                    let _ = history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&frag));
                }
            }
        });
    }

    let onexport = {
        let (bridge, state) = (bridge.clone(), state.clone());
        Callback::from(move |array| bridge.send(Request::Export { id: state.run.next_id, array }))
    };

    // Stop: the worker stops at the end of its current step. A step that is still running
    // `STOP_GRACE_MS` later (a forward pass of a large model, a large bootstrap) is not waited
    // for: the worker is replaced, so that Stop always takes effect at once.
    let oncancel_run = {
        let (bridge, state) = (bridge.clone(), state.clone());
        Callback::from(move |()| {
            if let Some(id) = state.run.running {
                bridge.send(Request::Cancel { id });
                let dispatch = state.dispatcher();
                gloo::timers::callback::Timeout::new(STOP_GRACE_MS, move || dispatch.dispatch(Action::StopOverdue(id))).forget();
            }
        })
    };

    // Load the scenario's model as soon as the page opens (or a link names another one),
    // unless it is a large download the user has not agreed to yet.
    {
        let (onload, url) = (onload.clone(), state.selected.clone());
        let asking = state.download_consent.is_some();
        let loaded_or_loading = match &state.model {
            crate::state::ModelStatus::Ready(info) => info.url.ends_with(&url),
            crate::state::ModelStatus::Loading { url: u, .. } => u.ends_with(&url),
            _ => false,
        };
        use_effect_with((url.clone(), asking), move |_| {
            if !loaded_or_loading && !asking {
                onload.emit(url);
            }
        });
    }

    let onsend = {
        let (bridge, state) = (bridge.clone(), state.clone());
        Callback::from(move |()| {
            let first = state.chat.next_id;
            let ids = [first, first + 1];
            state.dispatch(Action::ChatStarted(ids));
            for (side, id) in ids.into_iter().enumerate() {
                bridge.send(Request::Chat(ChatRequest {
                    id,
                    system: state.chat.sides[side].system.clone(),
                    user: state.user.clone(),
                    max_tokens: state.max_tokens,
                    sampling: Sampling::Greedy,
                    steer: if side == 1 { state.chat.steer } else { None },
                }));
            }
        })
    };

    let oncancel = {
        let (bridge, state) = (bridge.clone(), state.clone());
        Callback::from(move |()| {
            for side in &state.chat.sides {
                if let Some(id) = side.running {
                    bridge.send(Request::Cancel { id });
                }
            }
        })
    };

    let onrestart = {
        let state = state.clone();
        Callback::from(move |_| state.dispatch(Action::RestartWorker))
    };
    let onallow = {
        let (state, onload) = (state.clone(), onload.clone());
        Callback::from(move |_| {
            state.dispatch(Action::AllowDownload);
            onload.emit(state.selected.clone());
        })
    };

    // Presenter mode: the toggle keeps the address bar in step, and the arrow keys (or Page
    // Up/Down, as clickers send) step through the lessons.
    let onpresenter = {
        let state = state.clone();
        Callback::from(move |_: MouseEvent| {
            let on = !state.presenter;
            state.dispatch(Action::SetPresenter(on));
            let hash = gloo::utils::window().location().hash().unwrap_or_default();
            let frag = crate::components::lesson::with_presenter(&hash, on);
            if let Ok(history) = gloo::utils::window().history() {
                let _ = history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&frag));
            }
        })
    };
    {
        let (presenter, lesson) = (state.presenter, state.lesson);
        use_effect_with((presenter, lesson), move |&(presenter, lesson)| {
            let listener = presenter.then(|| {
                let options = gloo::events::EventListenerOptions::enable_prevent_default();
                gloo::events::EventListener::new_with_options(&gloo::utils::window(), "keydown", options, move |e| {
                    let Some(e) = wasm_bindgen::JsCast::dyn_ref::<web_sys::KeyboardEvent>(e) else { return };
                    // Keys already used by a chart or typed into a field are not for us.
                    let typing = e.target().and_then(|t| wasm_bindgen::JsCast::dyn_into::<web_sys::Element>(t).ok())
                        .is_some_and(|el| matches!(el.tag_name().to_ascii_lowercase().as_str(), "input" | "textarea" | "select"));
                    if e.default_prevented() || typing || e.alt_key() || e.ctrl_key() || e.meta_key() {
                        return;
                    }
                    let n = lesson.unwrap_or(0);
                    let target = match e.key().as_str() {
                        "ArrowRight" | "PageDown" => (n < LESSONS.len()).then_some(n),
                        "ArrowLeft" | "PageUp" => (n > 1).then(|| n - 2),
                        _ => return,
                    };
                    e.prevent_default();
                    if let Some(i) = target {
                        let _ = gloo::utils::window().location().set_hash(&crate::components::lesson::lesson_href(i, true));
                    }
                })
            });
            move || drop(listener)
        });
    }

    // What a lesson is about, beside its text in presenter mode. Before its report exists, the
    // run's state: progress, or why it has not run (an error, a link waiting for consent).
    let report_view = |focus: Focus| -> Html {
        let waiting = state.run.error.is_some() || state.run.consent.is_some();
        match (focus, state.run.report.clone()) {
            (Focus::Chat, _) => html! { <ChatPanel onsend={onsend.clone()} oncancel={oncancel.clone()} /> },
            (Focus::Gap, Some(r)) => html! { <GapChart report={r} /> },
            (Focus::Probes, Some(r)) => html! { <ProbeChart report={r} /> },
            (Focus::Lens, Some(r)) => html! { <><LensChart report={r.clone()} /><PatchingHeatmap report={r} /></> },
            (Focus::Steering, Some(r)) => html! { <>
                <SteeringChart report={r} />
                <SteerPanel onsend={onsend.clone()} onsweep={onsweep.clone()} />
                <ChatPanel onsend={onsend.clone()} oncancel={oncancel.clone()} />
            </> },
            (_, None) if waiting => html! { <ExperimentPanel onrun={onrun.clone()} oncancel={oncancel_run.clone()} onexport={onexport.clone()} /> },
            (_, None) => html! { <Story onrun={onrun.clone()} /> },
        }
    };

    html! {
        <ContextProvider<AppContext> context={state.clone()}>
        <ContextProvider<ChartType> context={if state.presenter { ChartType::LARGE } else { ChartType::NORMAL }}>
            <div class={classes!("page", state.presenter.then_some("presenter"))}>
            <header class="site-header">
                <div>
                    <h1>{"Hawthorne"}</h1>
                    <p class="tagline">{"Does a model behave differently when it believes nobody is watching? Look inside it."}</p>
                </div>
                <button type="button" class="presenter-toggle" onclick={onpresenter} aria-pressed={state.presenter.to_string()} data-testid="presenter-toggle">
                    {if state.presenter { "Leave presenter mode" } else { "Presenter mode" }}
                </button>
            </header>
            if let Some(reason) = &state.worker_lost {
                <div class="error" role="alert" data-testid="worker-lost">
                    <p>{format!("{reason} Your experiment, your texts and the last report are kept.")}</p>
                    <button type="button" onclick={onrestart} data-testid="restart-engine">{"Restart the engine"}</button>
                </div>
            }
            if let Some(m) = state.download_consent {
                <div class="notice" role="alert" data-testid="download-consent">
                    <p>{format!("This link uses {}, a {} download. It is fetched once, then kept by the browser.", m.label, m.size)}</p>
                    <button type="button" onclick={onallow} data-testid="allow-download">{format!("Download {} and run", m.size)}</button>
                </div>
            }
            if let Some(needed) = state.file_needed() {
                <div class="notice" role="alert" data-testid="file-needed"><p>{needed}</p></div>
            }
            if state.presenter {
                <main class="presenter-stage" data-testid="presenter-stage">
                    <LessonPanel />
                    <div class="presenter-view">
                        {state.lesson.map_or_else(|| html! { <Story onrun={onrun.clone()} /> }, |n| report_view(LESSONS[n - 1].focus))}
                    </div>
                </main>
            } else {
                // In the DOM the story comes first, then the lessons, then the panels; on wide
                // screens the grid puts the lessons in a rail at the left (`style.css`).
                <main class="workbench">
                    <Story onrun={onrun.clone()} />
                    <aside class={classes!("rail", state.lesson.is_none().then_some("idle"))}><LessonPanel /></aside>
                    <div class="panels">
                        <ExperimentPanel onrun={onrun.clone()} oncancel={oncancel_run.clone()} {onexport} />
                        <ModelPicker {onload} {oninspect} />
                        <ChatPanel onsend={onsend.clone()} oncancel={oncancel.clone()} />
                        if let Some(report) = state.run.report.clone() {
                            <Staged generation={std::rc::Rc::as_ptr(&report) as usize}>
                                <ProbeChart report={report.clone()} />
                                <GapChart report={report.clone()} />
                                <LensChart report={report.clone()} />
                                <PatchingHeatmap report={report.clone()} />
                                <SteeringChart report={report.clone()} />
                                <PcaScatter report={report.clone()} />
                                <SteerPanel onsend={onsend.clone()} {onsweep} />
                                <TokenHeatmap {onscore} />
                            </Staged>
                        }
                        <NormChart />
                        <ComparePanel oncancel={oncancel_run.clone()} />
                        <CollectedPanel {oncollected} />
                    </div>
                </main>
            }
            <footer class="site-footer">
                {"All computation runs in a Web Worker in this tab; nothing leaves your machine."}
            </footer>
            </div>
        </ContextProvider<ChartType>>
        </ContextProvider<AppContext>>
    }
}
