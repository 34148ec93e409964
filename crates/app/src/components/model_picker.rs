//! Model picker: choose a model (or open one's own file, drop it, or give a URL), see what a
//! user's file holds before it loads, load it in the worker, and watch the progress.

use hawthorne_worker::protocol::LoadPhase;
use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

use crate::state::{Action, AppContext, ModelStatus, UserModel, MODELS};

#[derive(Properties, PartialEq)]
pub struct ModelPickerProps {
    /// Called with the model URL to load.
    pub onload: Callback<String>,
    /// Called with (name, size, URL) of a user's file or URL, to read its header in the worker.
    pub oninspect: Callback<(String, Option<u64>, String)>,
}

/// A `blob:` URL the worker can fetch for a file the user opened (the bytes stay on disk until
/// the worker reads them; nothing is uploaded).
fn file_url(file: &web_sys::File) -> Option<(String, Option<u64>, String)> {
    let url = web_sys::Url::create_object_url_with_blob(file).ok()?;
    Some((file.name(), Some(file.size() as u64), url))
}

/// What the worker read from the user's file, and the button that loads it (or why it cannot).
fn user_model_view(u: &UserModel, onload: &Callback<String>, busy: bool) -> Html {
    let size = u.size.map(|b| format!(" ({})", mb(b))).unwrap_or_default();
    let body = match &u.check {
        None => html! { <p class="muted">{format!("Reading the header of {}{size}…", u.name)}</p> },
        Some(Err(message)) => html! {
            <p class="error" role="alert" data-testid="model-refusal">{format!("{} is not a model Hawthorne can load: {message}", u.name)}</p>
        },
        Some(Ok(c)) => {
            let cfg = &c.check.config;
            let types = c.check.tensor_types.iter().map(|(t, n)| format!("{t} ×{n}")).collect::<Vec<_>>().join(", ");
            let load = {
                let (onload, url) = (onload.clone(), u.url.clone());
                Callback::from(move |_| onload.emit(url.clone()))
            };
            html! {
                <>
                    <p data-testid="model-check">
                        {format!(
                            "{}{size}: {} architecture · {} layers · d_model {} · {:.1} M parameters · tensors {types} · prompt format {} · needs about {} in the worker.",
                            c.check.name.clone().unwrap_or_else(|| u.name.clone()),
                            cfg.family.arch,
                            cfg.n_layers,
                            cfg.d_model,
                            c.check.n_params as f64 / 1e6,
                            c.check.chat_format,
                            mb(c.memory_estimate)
                        )}
                    </p>
                    if let Some(why) = &c.refusal {
                        <p class="error" role="alert" data-testid="model-refusal">{format!("{} cannot load in this page: {why}.", u.name)}</p>
                    } else {
                        <button type="button" onclick={load} disabled={busy} data-testid="load-user-model">{format!("Load {}", u.name)}</button>
                    }
                </>
            }
        }
    };
    html! { <div class="user-model" data-testid="user-model">{body}</div> }
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

#[component]
pub fn ModelPicker(props: &ModelPickerProps) -> Html {
    let state = use_context::<AppContext>().expect("AppContext is provided by the root");
    let onchange = {
        let state = state.clone();
        Callback::from(move |e: Event| {
            let select: HtmlSelectElement = e.target_unchecked_into();
            state.dispatch(Action::Select(select.value()));
        })
    };
    let onclick = {
        let (onload, url) = (props.onload.clone(), state.selected.clone());
        Callback::from(move |_| onload.emit(url.clone()))
    };
    let onfile = {
        let oninspect = props.oninspect.clone();
        Callback::from(move |e: Event| {
            let input: HtmlInputElement = e.target_unchecked_into();
            if let Some(picked) = input.files().and_then(|f| f.get(0)).as_ref().and_then(file_url) {
                oninspect.emit(picked);
            }
        })
    };
    let ondrop = {
        let oninspect = props.oninspect.clone();
        Callback::from(move |e: DragEvent| {
            e.prevent_default();
            if let Some(picked) = e.data_transfer().and_then(|d| d.files()).and_then(|f| f.get(0)).as_ref().and_then(file_url) {
                oninspect.emit(picked);
            }
        })
    };
    let ondragover = Callback::from(|e: DragEvent| e.prevent_default());
    let url_input = use_node_ref();
    let onurl = {
        let (oninspect, url_input) = (props.oninspect.clone(), url_input.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let Some(input) = url_input.cast::<HtmlInputElement>() else { return };
            let url = input.value().trim().to_string();
            if !url.is_empty() {
                let name = url.rsplit('/').next().unwrap_or(&url).split(['?', '#']).next().unwrap_or("model.gguf").to_string();
                oninspect.emit((name, None, url));
            }
        })
    };
    let loading = matches!(state.model, ModelStatus::Loading { .. });
    let status = match &state.model {
        ModelStatus::Idle => html! { <p class="muted">{"No model loaded."}</p> },
        ModelStatus::Loading { phase, done, total, .. } => {
            let (label, value, max) = match phase {
                LoadPhase::Download => (
                    format!("Downloading… {}{}", mb(*done), total.map(|t| format!(" of {}", mb(t))).unwrap_or_default()),
                    *done as f64,
                    total.map(|t| t as f64),
                ),
                LoadPhase::Tensors => (
                    format!("Preparing weights… tensor {done} of {}", total.unwrap_or(0)),
                    *done as f64,
                    total.map(|t| t as f64),
                ),
                LoadPhase::Finalize => ("Building the tokenizer…".to_string(), 1.0, Some(1.0)),
            };
            html! {
                <div class="load-progress">
                    <label for="load-bar">{label}</label>
                    if let Some(max) = max {
                        <progress id="load-bar" data-testid="load-progress" max={max.to_string()} value={value.to_string()} />
                    } else {
                        <progress id="load-bar" data-testid="load-progress" />
                    }
                </div>
            }
        }
        ModelStatus::Ready(info) => html! {
            <dl class="model-info" data-testid="model-ready">
                <dt>{"Model"}</dt><dd>{&info.name}</dd>
                <dt>{"Architecture"}</dt>
                <dd data-testid="architecture">{format!("{} · prompt format {}", info.config.family.arch, if info.chat_format.is_empty() { "chatml" } else { &info.chat_format })}</dd>
                <dt>{"Shape"}</dt>
                <dd>{format!("{} layers · d_model {} · {} heads ({} KV) · vocab {}", info.config.n_layers, info.config.d_model, info.config.n_heads, info.config.n_kv_heads, info.config.d_vocab)}</dd>
                <dt>{"Parameters"}</dt><dd>{format!("{:.1} M", info.n_params as f64 / 1e6)}</dd>
                <dt>{"File"}</dt><dd>{format!("{} · sha256 {}…", mb(info.bytes), &info.sha256[..12])}</dd>
                <dt>{"Loaded in"}</dt><dd>{format!("{:.2} s", info.load_ms / 1000.0)}</dd>
                <dt>{"Weights"}</dt>
                <dd data-testid="weights" data-compute={info.compute.to_string()}>
                    {format!("{} ({}) · {} kernels", mb(info.weight_bytes), match info.compute {
                        hawthorne_model::ComputeMode::Packed => "packed in the file's quantisation",
                        hawthorne_model::ComputeMode::F32 => "f32",
                    }, info.kernel)}
                </dd>
                <dt>{"Worker threads"}</dt>
                <dd data-testid="threads" data-threads={info.threads.to_string()}>
                    {info.threads.to_string()}
                    if info.threads == 1 && !cross_origin_isolated() {
                        <span class="muted">{" (this page is not cross-origin isolated, so the worker cannot share memory between threads)"}</span>
                    } else if info.threads == 1 {
                        <span class="muted">{" (add ?threads=N to the address for N; one is faster on small models)"}</span>
                    }
                </dd>
                if let Some(mem) = info.wasm_memory_bytes {
                    <dt>{"Worker memory"}</dt><dd data-testid="wasm-memory" data-bytes={mem.to_string()}>{mb(mem)}</dd>
                }
            </dl>
        },
        ModelStatus::Failed { message, .. } => html! {
            <p class="error" role="alert" data-testid="load-error">{message}</p>
        },
    };
    html! {
        <section class="panel" aria-labelledby="model-heading">
            <h2 id="model-heading">{"Model"}</h2>
            <div class="row">
                <label for="model-select">{"Model"}</label>
                <select id="model-select" {onchange} disabled={loading}>
                    { for MODELS.iter().map(|m| html! {
                        <option value={m.url} selected={state.selected == m.url}>
                            {format!("{} ({})", m.label, m.size)}
                        </option>
                    }) }
                </select>
                <button {onclick} disabled={loading} data-testid="load-model">{"Load"}</button>
            </div>
            <p class="muted" data-testid="model-note">{ MODELS.iter().find(|m| m.url == state.selected).map(|m| format!("{} · {} · licence: {}", m.note, m.size, m.licence)).unwrap_or_default() }</p>
            <div class="own-model" ondrop={ondrop} ondragover={ondragover} data-testid="model-drop">
                <label for="model-file">{"Open a model file… "}</label>
                <input type="file" id="model-file" accept=".gguf" onchange={onfile} disabled={loading} data-testid="model-file" />
                <span class="muted">{" or drop a .gguf here. It is read in this tab, never uploaded."}</span>
                <form class="row" onsubmit={onurl}>
                    <label for="model-url">{"Load from a URL"}</label>
                    <input type="url" id="model-url" ref={url_input} placeholder="https://…/model.gguf" data-testid="model-url" />
                    <button type="submit" disabled={loading} data-testid="model-url-check">{"Check"}</button>
                </form>
            </div>
            if let Some(u) = &state.user_model {
                { user_model_view(u, &props.onload, loading) }
            }
            {status}
        </section>
    }
}

/// Whether the page may share memory with its workers (the multi-threaded engine needs it).
fn cross_origin_isolated() -> bool {
    js_sys::Reflect::get(&gloo::utils::window(), &"crossOriginIsolated".into())
        .ok()
        .and_then(|v| v.as_bool())
        .unwrap_or(false)
}
