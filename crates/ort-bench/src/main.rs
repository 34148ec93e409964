//! Benchmark page for ONNX Runtime Web: loads the exported SmolLM2 graph through `ort` with the
//! `ort-web` backend and times its prefill of the 128-token benchmark prompt, for comparison with
//! the candle worker in the same Chromium (`bench/ort-web.mjs`).
//!
//! Not part of the app: ort-web needs `window` and `document`, so it cannot run in the worker
//! where all of the app's compute lives. onnxruntime-web's files come from the pinned npm package,
//! served from this origin (never a CDN), each checked against the SRI hashes below; telemetry is
//! off.
//!
//! The page reads `onnx` and `ids` (URLs) from its query string and writes one JSON object into
//! `#result` (`data-done="true"` when finished, `data-error` on failure).

#[cfg(target_arch = "wasm32")]
mod page {
    use ort::session::{RunOptions, Session};
    use ort::value::Tensor;
    use wasm_bindgen::prelude::*;
    use wasm_bindgen::JsCast;

    /// onnxruntime-web 1.30.0's files, as `npm ci` in `bench/ort-web` installs them, with their
    /// SHA-384 (base64). `cargo xtask build-ort-bench` refuses files that do not match.
    pub const ORT_WEB_SCRIPT: (&str, &str) =
        ("ort.wasm.min.js", include_str!("../../../bench/ort-web/sri/ort.wasm.min.js.sha384"));
    pub const ORT_WEB_WRAPPER: (&str, &str) =
        ("ort-wasm-simd-threaded.mjs", include_str!("../../../bench/ort-web/sri/ort-wasm-simd-threaded.mjs.sha384"));
    pub const ORT_WEB_BINARY: (&str, &str) =
        ("ort-wasm-simd-threaded.wasm", include_str!("../../../bench/ort-web/sri/ort-wasm-simd-threaded.wasm.sha384"));

    const WARMUP: usize = 1;
    const RUNS: usize = 5;

    fn err(e: impl std::fmt::Display) -> JsValue {
        JsValue::from_str(&e.to_string())
    }

    fn now() -> f64 {
        web_sys::window().and_then(|w| w.performance()).map_or(0.0, |p| p.now())
    }

    async fn fetch_text(url: &str) -> Result<String, JsValue> {
        let window = web_sys::window().ok_or("no window")?;
        let resp: web_sys::Response = wasm_bindgen_futures::JsFuture::from(window.fetch_with_str(url)).await?.dyn_into()?;
        if !resp.ok() {
            return Err(err(format!("{url}: HTTP {}", resp.status())));
        }
        Ok(wasm_bindgen_futures::JsFuture::from(resp.text()?).await?.as_string().unwrap_or_default())
    }

    fn param(name: &str) -> Option<String> {
        let search = web_sys::window()?.location().search().ok()?;
        search.trim_start_matches('?').split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k == name).then(|| js_sys::decode_uri_component(v).ok().and_then(|s| s.as_string())).flatten()
        })
    }

    fn median(mut xs: Vec<f64>) -> f64 {
        xs.sort_by(f64::total_cmp);
        xs[xs.len() / 2]
    }

    async fn bench() -> Result<serde_json::Value, JsValue> {
        let window = web_sys::window().ok_or("no window")?;
        let base = web_sys::Url::new_with_base("ort-web/", &window.location().href()?)?.href();
        let mut dist = ort_web::Dist::new(base).with_script_name(ORT_WEB_SCRIPT.0).with_binary_name(ORT_WEB_BINARY.0);
        dist.integrities().set_main(ORT_WEB_SCRIPT.1.trim());
        dist.integrities().set_wrapper(ORT_WEB_WRAPPER.1.trim());
        dist.integrities().set_binary(ORT_WEB_BINARY.1.trim());
        let t0 = now();
        ort::set_api(ort_web::api(dist).await.map_err(err)?);
        let runtime_ms = now() - t0;
        let env = ort::init().with_telemetry(false).build().map_err(err)?;

        let onnx_url = param("onnx").ok_or("missing ?onnx=URL")?;
        let ids: Vec<i64> =
            serde_json::from_str(&fetch_text(&param("ids").ok_or("missing &ids=URL")?).await?).map_err(err)?;
        let t = now();
        let mut session = Session::builder(&env).map_err(err)?.commit_from_url(&onnx_url).await.map_err(err)?;
        let load_ms = now() - t;
        let steer_shape = session
            .inputs()
            .iter()
            .find(|i| i.name() == "steer")
            .and_then(|i| match i.dtype() {
                ort::value::ValueType::Tensor { shape, .. } => Some(shape.to_vec()),
                _ => None,
            })
            .ok_or("the graph has no `steer` input")?;
        let (l, d) = (steer_shape[0] as usize, steer_shape[1] as usize);

        let n = ids.len();
        let options = RunOptions::new().map_err(err)?;
        let mut times = Vec::new();
        let mut next_token = 0usize;
        for i in 0..WARMUP + RUNS {
            let inputs = ort::inputs![
                "input_ids" => Tensor::from_array(([1usize, n], ids.clone())).map_err(err)?,
                "attention_mask" => Tensor::from_array(([1usize, n], vec![1i64; n])).map_err(err)?,
                "steer" => Tensor::from_array(([l, d], vec![0.0f32; l * d])).map_err(err)?,
            ];
            let t = now();
            let mut outputs = session.run_async(inputs, &options).await.map_err(err)?;
            ort_web::sync_outputs(&mut outputs).await.map_err(err)?;
            let ms = now() - t;
            let (_, logits) = outputs["logits"].try_extract_tensor::<f32>().map_err(err)?;
            let v = logits.len() / n;
            let last = &logits[(n - 1) * v..];
            next_token = last.iter().enumerate().fold(0, |best, (j, x)| if *x > last[best] { j } else { best });
            if i >= WARMUP {
                times.push(ms);
            }
        }
        let prefill_ms = median(times.clone());
        Ok(serde_json::json!({
            "onnx": onnx_url,
            "prompt_tokens": n,
            "runtime_init_ms": runtime_ms,
            "load_ms": load_ms,
            "prefill_ms": prefill_ms,
            "prefill_tok_s": n as f64 / (prefill_ms / 1e3),
            "prefill_ms_runs": times,
            "next_token": next_token,
            "cross_origin_isolated": js_sys::Reflect::get(&window, &"crossOriginIsolated".into()).ok().and_then(|v| v.as_bool()),
        }))
    }

    pub fn start() {
        console_error_panic_hook::set_once();
        wasm_bindgen_futures::spawn_local(async {
            let Some(out) = web_sys::window().and_then(|w| w.document()).and_then(|d| d.get_element_by_id("result")) else {
                return;
            };
            match bench().await {
                Ok(v) => out.set_text_content(Some(&v.to_string())),
                Err(e) => {
                    let msg = e.as_string().unwrap_or_else(|| format!("{e:?}"));
                    let _ = out.set_attribute("data-error", &msg);
                    out.set_text_content(Some(&format!("failed: {msg}")));
                }
            }
            let _ = out.set_attribute("data-done", "true");
        });
    }
}

fn main() {
    #[cfg(target_arch = "wasm32")]
    page::start();
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("ort_bench is a browser page: build it with `cargo xtask build-ort-bench`");
}
