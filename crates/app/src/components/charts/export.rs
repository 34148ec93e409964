//! Saving a chart as SVG or PNG: the chart's `<svg>` is serialised as it is on the page (every
//! style is an attribute, so the file stands alone); for PNG it is drawn at twice its size onto
//! a canvas through an `<img>` of a `data:` URL. Both end as a temporary `<a download>`.
//! Allowed by the page's CSP (`img-src data:`), and no markup is ever built from strings.

use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::{CanvasRenderingContext2d, HtmlAnchorElement, HtmlCanvasElement, HtmlImageElement};

/// A readable message from a thrown JavaScript value.
fn js_message(e: &wasm_bindgen::JsValue) -> String {
    if let Some(err) = e.dyn_ref::<js_sys::Error>() {
        return String::from(err.message());
    }
    e.as_string().unwrap_or_else(|| format!("{e:?}"))
}

/// Starts a download of `url` as `filename`.
fn download_url(url: &str, filename: &str) -> Result<(), String> {
    let document = web_sys::window().and_then(|w| w.document()).ok_or("the page has no document")?;
    let body = document.body().ok_or("the page has no body")?;
    let anchor: HtmlAnchorElement = document
        .create_element("a")
        .map_err(|e| js_message(&e))?
        .dyn_into()
        .map_err(|_| "the browser did not create a link element")?;
    anchor.set_href(url);
    anchor.set_download(filename);
    anchor.set_hidden(true);
    body.append_child(&anchor).map_err(|e| js_message(&e))?;
    anchor.click();
    anchor.remove();
    Ok(())
}

/// The chart's SVG as a `data:` URL, without the page-only parts (hover targets, the focus ring).
fn svg_data_url(svg: &web_sys::Element) -> Result<String, String> {
    let copy: web_sys::Element = svg.clone_node_with_deep(true).map_err(|e| js_message(&e))?.dyn_into().map_err(|_| "not an element")?;
    let extras = copy.query_selector_all(".chart-targets, .chart-active").map_err(|e| js_message(&e))?;
    for i in 0..extras.length() {
        if let Some(n) = extras.item(i).and_then(|n| n.dyn_into::<web_sys::Element>().ok()) {
            n.remove();
        }
    }
    let text = web_sys::XmlSerializer::new().and_then(|s| s.serialize_to_string(&copy)).map_err(|e| js_message(&e))?;
    Ok(format!("data:image/svg+xml;charset=utf-8,{}", String::from(js_sys::encode_uri_component(&text))))
}

/// Saves the chart `svg` as `{stem}.svg`, or rasterised at 2× as `{stem}.png`.
pub fn download_svg(svg: &web_sys::Element, stem: &str, png: bool) -> Result<(), String> {
    let url = svg_data_url(svg)?;
    if !png {
        return download_url(&url, &format!("{stem}.svg"));
    }
    let width = svg.get_attribute("width").and_then(|w| w.parse::<f64>().ok()).ok_or("the chart has no width")?;
    let height = svg.get_attribute("height").and_then(|h| h.parse::<f64>().ok()).ok_or("the chart has no height")?;
    let image = HtmlImageElement::new().map_err(|e| js_message(&e))?;
    let filename = format!("{stem}.png");
    let img = image.clone();
    // The image decodes asynchronously; the download starts when it has.
    let onload = Closure::once_into_js(move || {
        let draw = || -> Result<(), String> {
            let document = web_sys::window().and_then(|w| w.document()).ok_or("the page has no document")?;
            let canvas: HtmlCanvasElement =
                document.create_element("canvas").map_err(|e| js_message(&e))?.dyn_into().map_err(|_| "no canvas")?;
            canvas.set_width((width * 2.0) as u32);
            canvas.set_height((height * 2.0) as u32);
            let ctx: CanvasRenderingContext2d = canvas
                .get_context("2d")
                .map_err(|e| js_message(&e))?
                .ok_or("the canvas has no 2-D context")?
                .dyn_into()
                .map_err(|_| "no 2-D context")?;
            ctx.scale(2.0, 2.0).map_err(|e| js_message(&e))?;
            ctx.draw_image_with_html_image_element(&img, 0.0, 0.0).map_err(|e| js_message(&e))?;
            let png = canvas.to_data_url_with_type("image/png").map_err(|e| js_message(&e))?;
            download_url(&png, &filename)
        };
        if let Err(e) = draw() {
            gloo::console::error!(format!("Could not save the PNG: {e}"));
        }
    });
    image.set_onload(Some(onload.unchecked_ref()));
    image.set_src(&url);
    Ok(())
}
