//! Experiment panel: the scenario (spec) editor, Run/Stop with progress, share link and exports.

use hawthorne_probe::spec::{Condition, Split};
use hawthorne_probe::ExperimentSpec;
use wasm_bindgen::JsCast;
use web_sys::{HtmlInputElement, HtmlSelectElement, HtmlTextAreaElement};
use yew::prelude::*;

use hawthorne_worker::protocol::ArrayKind;

use crate::state::{Action, AppContext};

#[derive(Properties, PartialEq)]
pub struct ExperimentPanelProps {
    pub onrun: Callback<()>,
    pub oncancel: Callback<()>,
    /// Asks the worker for one of the last run's arrays as NPY.
    pub onexport: Callback<ArrayKind>,
}

/// Saves `text` as a file through a temporary blob URL.
pub fn download_text(name: &str, mime: &str, text: &str) -> Result<(), String> {
    download_parts(name, mime, &js_sys::Array::of1(&wasm_bindgen::JsValue::from_str(text)))
}

/// Saves `bytes` (e.g. an NPY array from the worker) as a file.
pub fn download_bytes(name: &str, mime: &str, bytes: &[u8]) -> Result<(), String> {
    download_parts(name, mime, &js_sys::Array::of1(&js_sys::Uint8Array::from(bytes)))
}

fn download_parts(name: &str, mime: &str, parts: &js_sys::Array) -> Result<(), String> {
    let opts = web_sys::BlobPropertyBag::new();
    opts.set_type(mime);
    let blob = web_sys::Blob::new_with_u8_array_sequence_and_options(parts, &opts).map_err(|e| format!("{e:?}"))?;
    let url = web_sys::Url::create_object_url_with_blob(&blob).map_err(|e| format!("{e:?}"))?;
    let doc = gloo::utils::document();
    let a: web_sys::HtmlAnchorElement = doc.create_element("a").map_err(|e| format!("{e:?}"))?.unchecked_into();
    a.set_href(&url);
    a.set_download(name);
    a.click();
    let _ = web_sys::Url::revoke_object_url(&url);
    Ok(())
}

fn summary(spec: &ExperimentSpec) -> String {
    let f = &spec.scenario.framings;
    let count = |c: Condition| f.iter().filter(|x| x.condition == c).count();
    let held = f.iter().filter(|x| x.held_out).count();
    format!(
        "{} observed, {} unobserved and {} neutral framings ({} held out) × {} tasks = {} prompts",
        count(Condition::Observed),
        count(Condition::Unobserved),
        count(Condition::Neutral),
        held,
        spec.scenario.tasks.len(),
        f.iter().map(|x| spec.scenario.tasks.iter().filter(|t| x.crosses(t)).count()).sum::<usize>()
    )
}

#[component]
pub fn ExperimentPanel(props: &ExperimentPanelProps) -> Html {
    let state = use_context::<AppContext>().expect("AppContext is provided by the root");
    // The JSON editor keeps whatever the user typed, valid or not (in the state, so that a
    // worker restart loses nothing).
    let notice = use_state(|| None::<String>);
    let spec = &state.spec;

    let set_spec = {
        let state = state.clone();
        move |spec: ExperimentSpec| state.dispatch(Action::SetSpec(Box::new(spec)))
    };
    let onseed = {
        let (set_spec, spec) = (set_spec.clone(), spec.clone());
        Callback::from(move |e: InputEvent| {
            let input: HtmlInputElement = e.target_unchecked_into();
            if let Ok(seed) = input.value().trim().parse::<u64>() {
                let mut s = spec.clone();
                s.seed = seed;
                set_spec(s);
            }
        })
    };
    let onsplit = {
        let (set_spec, spec) = (set_spec.clone(), spec.clone());
        Callback::from(move |e: Event| {
            let select: HtmlSelectElement = e.target_unchecked_into();
            let mut s = spec.clone();
            s.split = match select.value().as_str() {
                "by_family" => Split::ByFamily,
                "random" => Split::Random { test_fraction: 0.25 },
                "k_fold" => Split::KFold { k: 5 },
                "leave_framings_out" => Split::recommended(&s.scenario),
                _ => Split::ByFraming,
            };
            set_spec(s);
        })
    };
    let onhooks = {
        let (set_spec, spec) = (set_spec.clone(), spec.clone());
        Callback::from(move |e: Event| {
            let input: HtmlInputElement = e.target_unchecked_into();
            let mut s = spec.clone();
            s.hooks = input.value();
            set_spec(s);
        })
    };
    let ondraft = {
        let state = state.clone();
        Callback::from(move |e: InputEvent| {
            let area: HtmlTextAreaElement = e.target_unchecked_into();
            state.dispatch(Action::SetDraft(area.value()));
        })
    };
    let onreset = {
        let set_spec = set_spec.clone();
        Callback::from(move |_| set_spec(crate::link::default_spec()))
    };
    let onrun = {
        let cb = props.onrun.clone();
        Callback::from(move |_| cb.emit(()))
    };
    let oncancel = {
        let cb = props.oncancel.clone();
        Callback::from(move |_| cb.emit(()))
    };
    // Deflating the spec costs several milliseconds; this panel renders on every progress
    // message of a run, so the link is only recomputed when the spec changes.
    let fragment = use_memo(spec.clone(), |spec| crate::link::fragment_for(spec, None));
    // A report from collected activations: the link says so, and opens waiting for them.
    let collected = state.run.report.as_deref().is_some_and(crate::components::collected::is_collected);
    let link = format!(
        "{}{}{}",
        gloo::utils::window().location().href().ok().map(|h| h.split('#').next().unwrap_or("").to_string()).unwrap_or_default(),
        fragment,
        if collected { "&activations=collected" } else { "" }
    );
    let oncopy = {
        let (link, notice) = (link.clone(), notice.clone());
        Callback::from(move |_| {
            let clipboard = gloo::utils::window().navigator().clipboard();
            let _ = clipboard.write_text(&link);
            notice.set(Some(if link.contains("&activations=") {
                "Link copied. It carries the spec: whoever opens it needs the same collected activations to see this report.".into()
            } else {
                "Link copied. Anyone who opens it runs exactly this experiment.".into()
            }));
        })
    };
    let report = state.run.report.clone();
    let ondownload = |kind: &'static str| {
        let (report, notice) = (report.clone(), notice.clone());
        Callback::from(move |_| {
            let Some(r) = &report else { return };
            let result = match kind {
                "json" => serde_json::to_string_pretty(&**r)
                    .map_err(|e| e.to_string())
                    .and_then(|t| download_text("hawthorne-report.json", "application/json", &t)),
                "csv" => download_text("hawthorne-probes.csv", "text/csv", &r.probes_csv()),
                _ => download_text("hawthorne-report.md", "text/markdown", &r.to_markdown()),
            };
            if let Err(e) = result {
                notice.set(Some(format!("Download failed: {e}")));
            }
        })
    };
    let onnpy = |array: ArrayKind| {
        let onexport = props.onexport.clone();
        Callback::from(move |_| onexport.emit(array))
    };
    let running = state.run.running.is_some() || state.run.pending;
    let split_value = match spec.split {
        Split::ByFraming => "by_framing",
        Split::ByFamily => "by_family",
        Split::Random { .. } => "random",
        Split::KFold { .. } => "k_fold",
        Split::LeaveFramingsOut { .. } => "leave_framings_out",
    };
    let json = state.spec_draft.clone().unwrap_or_else(|| serde_json::to_string_pretty(spec).unwrap_or_default());
    let draft_error = &state.spec_draft_error;
    html! {
        <section class="panel wide" aria-labelledby="exp-heading">
            <h2 id="exp-heading">{"Experiment"}</h2>
            if let Some(msg) = &state.link_error {
                <div class="error" role="alert" data-testid="link-error">
                    <p>{msg}</p>
                    if let Some(text) = &state.link_text {
                        <label for="bad-link">{"The link text, kept as it was:"}</label>
                        <textarea id="bad-link" rows="2" readonly=true value={text.clone()} />
                    }
                </div>
            }
            <p data-testid="spec-summary">{format!("Model `{}` · {}", spec.model.id, summary(spec))}</p>
            <div class="row">
                <label for="seed">{"Seed"}</label>
                <input id="seed" type="number" min="0" value={spec.seed.to_string()} oninput={onseed} />
                <label for="split">{"Split"}</label>
                <select id="split" onchange={onsplit}>
                    <option value="leave_framings_out" selected={split_value == "leave_framings_out"}>{"leave framings out (every framing tested once)"}</option>
                    <option value="by_framing" selected={split_value == "by_framing"}>{"held-out framings"}</option>
                    <option value="by_family" selected={split_value == "by_family"}>{"held-out task families"}</option>
                    <option value="random" selected={split_value == "random"}>{"random 25%"}</option>
                    <option value="k_fold" selected={split_value == "k_fold"}>{"5-fold"}</option>
                </select>
                <label for="hooks">{"Hooks"}</label>
                <input id="hooks" type="text" size="36" value={spec.hooks.clone()} onchange={onhooks} />
            </div>
            <details>
                <summary>{"Edit the whole scenario (framings, tasks, settings) as JSON"}</summary>
                <textarea id="spec-json" rows="16" class="mono" value={json} oninput={ondraft} data-testid="spec-json" aria-describedby="spec-json-status" />
                <p id="spec-json-status" class={if draft_error.is_some() { "error" } else { "muted" }}>
                    { draft_error.clone().unwrap_or_else(|| "Valid. Edits apply as you type.".into()) }
                </p>
                <button type="button" onclick={onreset}>{"Reset to the default scenario"}</button>
            </details>
            <div class="row">
                <button onclick={onrun.clone()} disabled={running} data-testid="run">{"Run experiment"}</button>
                <button type="button" onclick={oncancel} disabled={state.run.running.is_none()} data-testid="cancel-run">{"Stop"}</button>
                <button type="button" onclick={oncopy} data-testid="copy-link">{"Copy share link"}</button>
            </div>
            <label for="share-link">{"Share link"}</label>
            <input id="share-link" type="text" readonly=true value={link} data-testid="share-link" class="mono wide-input" />
            if state.run.pending && state.run.running.is_none() {
                <p class="muted">{"Loading the scenario's model first…"}</p>
            }
            if let Some((cost, budget)) = &state.run.consent {
                <div class="notice" role="alert" data-testid="run-consent">
                    <p>{format!(
                        "This link's experiment was not started: it is estimated at {}, more than the {} a link may run without asking.",
                        cost.summary(),
                        hawthorne_probe::cost::human_seconds(*budget)
                    )}</p>
                    <button type="button" onclick={onrun.clone()} data-testid="run-anyway">{"Run it"}</button>
                </div>
            }
            if let (Some(cost), true) = (&state.run.estimate, state.run.running.is_some()) {
                <p class="muted" data-testid="run-estimate">{format!("Estimated {}.", cost.summary())}</p>
            }
            if let Some((stage, done, total)) = state.run.progress {
                <div class="load-progress">
                    <label for="run-bar">{format!("{} — {done} of {total}", stage.label())}</label>
                    <progress id="run-bar" data-testid="run-progress" max={total.max(1).to_string()} value={done.to_string()} />
                </div>
            }
            if let Some(err) = &state.run.error {
                <p class="error" role="alert" data-testid="run-error">{err}</p>
            }
            if let Some(n) = &*notice {
                <p class="muted" role="status">{n}</p>
            }
            if let Some(r) = &state.run.report {
                <div class="row" data-testid="run-done" data-spec-hash={r.provenance.spec_hash.clone()}
                    data-estimate-s={r.cost.as_ref().map_or(0.0, |c| c.seconds).to_string()}
                    data-total-ms={r.timings.get("total_run").copied().unwrap_or(0.0).to_string()}
                    data-timings={serde_json::to_string(&r.timings).unwrap_or_default()}>
                    <span class="muted" data-testid="run-took">{format!(
                        "Done in {:.2} s{} · spec {}…",
                        r.timings.get("total_run").copied().unwrap_or(0.0) / 1000.0,
                        r.cost.as_ref().map_or(String::new(), |c| format!(" (estimated {} on a slow laptop)", hawthorne_probe::cost::human_seconds(c.seconds))),
                        r.provenance.spec_hash.get(..12).unwrap_or_default()
                    )}</span>
                    <button type="button" onclick={ondownload("json")}>{"Report JSON"}</button>
                    <button type="button" onclick={ondownload("csv")}>{"Probe CSV"}</button>
                    <button type="button" onclick={ondownload("md")}>{"Summary (markdown)"}</button>
                </div>
                <div class="row" role="group" aria-label="Arrays as NPY for numpy">
                    <span class="muted">{"NPY (hooks in the probe table's order, prompts in the report's):"}</span>
                    <button type="button" onclick={onnpy(ArrayKind::Activations)} data-testid="npy-activations"
                        title="Readout activations, shape [hooks, prompts, d_model]">{"Activations"}</button>
                    <button type="button" onclick={onnpy(ArrayKind::MassMean)} data-testid="npy-mass-mean"
                        title="Unit mass-mean directions, shape [hooks, d_model]">{"Mass-mean directions"}</button>
                    <button type="button" onclick={onnpy(ArrayKind::Logistic)} data-testid="npy-logistic"
                        title="Unit logistic-probe directions, shape [hooks, d_model]">{"Logistic directions"}</button>
                </div>
                if let Some(err) = &state.run.export_error {
                    <p class="error" role="alert">{format!("Export failed: {err}")}</p>
                }
            }
        </section>
    }
}
