//! Saving a chart's canvas as a PNG: the canvas becomes a `data:` URL that a temporary
//! `<a download>` element hands to the browser. Allowed by the page's CSP (`img-src data:`), and
//! no markup is ever built from strings.

use wasm_bindgen::JsCast;
use web_sys::{HtmlAnchorElement, HtmlCanvasElement};
use yew::prelude::*;

/// A readable message from a thrown JavaScript value.
fn js_message(e: &wasm_bindgen::JsValue) -> String {
    if let Some(err) = e.dyn_ref::<js_sys::Error>() {
        return String::from(err.message());
    }
    e.as_string().unwrap_or_else(|| format!("{e:?}"))
}

/// Starts a download of `canvas` as a PNG file called `filename`.
pub fn download_png(canvas: &HtmlCanvasElement, filename: &str) -> Result<(), String> {
    let url = canvas.to_data_url_with_type("image/png").map_err(|e| js_message(&e))?;
    let document = web_sys::window().and_then(|w| w.document()).ok_or("the page has no document")?;
    let body = document.body().ok_or("the page has no body")?;
    let anchor: HtmlAnchorElement = document
        .create_element("a")
        .map_err(|e| js_message(&e))?
        .dyn_into()
        .map_err(|_| "the browser did not create a link element")?;
    anchor.set_href(&url);
    anchor.set_download(filename);
    anchor.set_hidden(true);
    body.append_child(&anchor).map_err(|e| js_message(&e))?;
    anchor.click();
    anchor.remove();
    Ok(())
}

#[derive(Debug, Properties, PartialEq)]
pub struct DownloadPngProps {
    /// The chart's canvas.
    pub canvas: NodeRef,
    /// The saved file's name, ending in `.png`.
    pub filename: AttrValue,
    /// What the chart is, for the button's accessible name ("the probe chart").
    pub what: AttrValue,
}

/// A "Download PNG" button for a chart's canvas; a failure shows as text beside it.
#[component]
pub fn DownloadPng(props: &DownloadPngProps) -> Html {
    let error = use_state_eq(|| None::<String>);
    let onclick = {
        let (canvas, filename, error) = (props.canvas.clone(), props.filename.clone(), error.clone());
        Callback::from(move |_: MouseEvent| {
            let result = canvas
                .cast::<HtmlCanvasElement>()
                .ok_or_else(|| "the chart is not on the page".to_string())
                .and_then(|c| download_png(&c, &filename));
            error.set(result.err());
        })
    };
    html! {
        <div class="row chart-actions">
            <button type="button" {onclick} aria-label={format!("Download PNG of {}", props.what)}>{"Download PNG"}</button>
            if let Some(e) = &*error {
                <span class="error" role="alert">{format!("Could not save the PNG: {e}")}</span>
            }
        </div>
    }
}
