//! Collected activations: open a directory (or its zip) written by the Python collector from
//! `hawthorne prompts`, and see the current spec's report built from it in the worker.

use wasm_bindgen::JsValue;
use web_sys::HtmlInputElement;
use yew::prelude::*;

use crate::state::AppContext;

#[derive(Properties, PartialEq)]
pub struct CollectedProps {
    /// Called with (path inside the directory, `blob:` URL) of every file the user opened.
    pub oncollected: Callback<Vec<(String, String)>>,
}

/// `(relative path, blob: URL)` for each chosen file; a folder's files keep their path below the
/// folder the user picked (`webkitRelativePath`), a lone file its name.
fn chosen(input: &HtmlInputElement) -> Vec<(String, String)> {
    let Some(list) = input.files() else { return Vec::new() };
    (0..list.length())
        .filter_map(|i| list.get(i))
        .filter_map(|f| {
            let rel = js_sys::Reflect::get(&f, &JsValue::from_str("webkitRelativePath")).ok().and_then(|v| v.as_string()).filter(|s| !s.is_empty());
            let url = web_sys::Url::create_object_url_with_blob(&f).ok()?;
            Some((rel.unwrap_or_else(|| f.name()), url))
        })
        .collect()
}

/// Whether a report was built from collected activations (its first note says where from).
pub fn is_collected(report: &hawthorne_probe::Report) -> bool {
    report.notes.first().is_some_and(|n| n.starts_with("activations collected by"))
}

#[function_component(CollectedPanel)]
pub fn collected_panel(props: &CollectedProps) -> Html {
    let state = use_context::<AppContext>().expect("AppContext");
    let onchange = {
        let cb = props.oncollected.clone();
        Callback::from(move |e: Event| {
            let input: HtmlInputElement = e.target_unchecked_into();
            let files = chosen(&input);
            input.set_value("");
            if !files.is_empty() {
                cb.emit(files);
            }
        })
    };
    let busy = state.run.running.is_some();
    let from_collected = state.run.report.as_deref().filter(|r| is_collected(r));
    let waiting_for_directory = state.collected_link && from_collected.is_none();
    html! {
        <section class="panel" aria-labelledby="collected-heading" data-testid="collected-panel">
            <h2 id="collected-heading">{"Collected activations"}</h2>
            <p class="muted">
                {"Larger models run elsewhere: "}<code>{"hawthorne prompts SPEC"}</code>{" writes this spec's prompts, "}
                <code>{"python -m hawthorne_collect"}</code>{" collects their readouts with transformers or nnsight (locally or on NDIF), and the page builds the report here: probes, controls, behaviour and PCA."}
            </p>
            if waiting_for_directory {
                <p class="notice" role="status" data-testid="collected-link-notice">
                    {"This link's report was built from collected activations. The link carries the spec only: open the same directory (or its zip) below to see the report."}
                </p>
            }
            <div class="row">
                <label for="collected-dir">{"Directory"}</label>
                <input id="collected-dir" type="file" webkitdirectory=true multiple=true disabled={busy} onchange={onchange.clone()} data-testid="collected-dir" />
                <label for="collected-zip">{"or zip"}</label>
                <input id="collected-zip" type="file" accept=".zip,application/zip" disabled={busy} {onchange} data-testid="collected-zip" />
            </div>
            if let Some(r) = from_collected {
                <p data-testid="collected-source">{r.notes[0].clone()}</p>
                <p class="muted">
                    {"Logit lens, continuations, patching and steering need a live model: they are not run on collected activations. A share link to this report carries the spec; whoever opens it needs the same directory."}
                </p>
            }
        </section>
    }
}
