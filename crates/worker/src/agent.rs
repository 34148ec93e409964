//! The yew-agent reactor that runs in the Web Worker: fetches model bytes, drives the engine in
//! small steps, streams progress and tokens out, and lets cancellation in between steps.

use std::collections::{BTreeMap, VecDeque};

use futures::{FutureExt, SinkExt, StreamExt};
use js_sys::{Reflect, Uint8Array};
use serde::de::DeserializeOwned;
use serde::Serialize;
use wasm_bindgen::{JsCast, JsValue, UnwrapThrowExt};
use wasm_bindgen_futures::JsFuture;
use web_sys::{ReadableStreamDefaultReader, WorkerGlobalScope};
use yew_agent::reactor::{reactor, ReactorScope};
use yew_agent::Codec;

use crate::engine::Engine;
use crate::protocol::{ChatRequest, LoadPhase, Request, Response};
use hawthorne_probe::{ExperimentSpec, Stage};

/// Page ↔ worker messages as structured-clone JS objects through `serde-wasm-bindgen`.
#[derive(Debug)]
pub struct SerdeCodec;

impl Codec for SerdeCodec {
    fn encode<I: Serialize>(input: I) -> JsValue {
        // Every protocol type is plain data, so serialisation cannot fail; if it ever did, the
        // receiver gets a string and reports a protocol error instead of the page freezing.
        serde_wasm_bindgen::to_value(&input).unwrap_or_else(|e| JsValue::from_str(&e.to_string()))
    }

    fn decode<O: DeserializeOwned>(input: JsValue) -> O {
        // The trait has no error channel: a mismatch means page and worker come from different
        // builds, which the service worker's versioned cache prevents.
        serde_wasm_bindgen::from_value(input).expect_throw("page and worker builds do not match")
    }
}

type Scope = ReactorScope<Request, Response>;

fn now_ms() -> f64 {
    js_sys::global()
        .unchecked_into::<WorkerGlobalScope>()
        .performance()
        .map_or(0.0, |p| p.now())
}

/// Lets the worker's event loop run: queued messages get posted and incoming ones received.
///
/// A message to ourselves over a `MessageChannel` comes back as a new task at once, whereas
/// `setTimeout(0)` called from a timer callback is clamped to 4 ms after five nested calls:
/// over the ~30 yields of a run that was 70–90 ms of idle time in the organism benchmark.
async fn yield_to_event_loop() {
    // Held until the message arrives, so the channel cannot be collected in between.
    let channel = web_sys::MessageChannel::new().ok();
    let promise = js_sys::Promise::new(&mut |resolve, _reject| match &channel {
        Some(channel) => {
            channel.port1().set_onmessage(Some(&resolve));
            let _ = channel.port2().post_message(&JsValue::NULL);
        }
        None => {
            let global = js_sys::global().unchecked_into::<WorkerGlobalScope>();
            let _ = global.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, 0);
        }
    });
    let _ = JsFuture::from(promise).await;
    if let Some(channel) = channel {
        channel.port1().close();
    }
}

/// Yields at most every `every_ms`, so loops stay fast but progress still streams.
struct Pacer {
    last: f64,
    every_ms: f64,
}

impl Pacer {
    fn new(every_ms: f64) -> Self {
        Pacer { last: now_ms(), every_ms }
    }

    async fn tick(&mut self) -> bool {
        if now_ms() - self.last >= self.every_ms {
            yield_to_event_loop().await;
            self.last = now_ms();
            return true;
        }
        false
    }
}

/// Current size of this module's linear memory.
fn wasm_memory_bytes() -> Option<u64> {
    let memory: js_sys::WebAssembly::Memory = wasm_bindgen::memory().dyn_into().ok()?;
    // An `ArrayBuffer`, or a `SharedArrayBuffer` in the multi-threaded build: read the length
    // the way both answer.
    let length = Reflect::get(&memory.buffer(), &"byteLength".into()).ok()?.as_f64()?;
    Some(length as u64)
}

fn js_err(e: JsValue) -> String {
    e.as_string()
        .or_else(|| Reflect::get(&e, &"message".into()).ok().and_then(|m| m.as_string()))
        .unwrap_or_else(|| format!("{e:?}"))
}

/// A downloaded file, held in JavaScript memory rather than in wasm's linear memory (which
/// never shrinks): the loader copies one tensor at a time out of it, so the worker's memory
/// holds the packed weights and not a second copy of the file. Dropped after loading.
struct Download {
    bytes: Uint8Array,
    sha256: String,
}

impl Download {
    fn len(&self) -> u64 {
        u64::from(self.bytes.length())
    }

    /// Bytes `range` of the file, copied into wasm memory.
    fn slice(&self, range: std::ops::Range<u64>) -> Option<Vec<u8>> {
        if range.end > self.len() || range.start > range.end {
            return None;
        }
        Some(self.bytes.subarray(range.start as u32, range.end as u32).to_vec())
    }
}

/// Fetches `url` with streamed progress, hashing it as it arrives.
async fn fetch_bytes(scope: &mut Scope, url: &str) -> Result<Download, String> {
    let global = js_sys::global().unchecked_into::<WorkerGlobalScope>();
    let resp = JsFuture::from(global.fetch_with_str(url)).await.map_err(js_err)?;
    let resp: web_sys::Response = resp.dyn_into().map_err(js_err)?;
    if !resp.ok() {
        return Err(format!("the server answered HTTP {} {}", resp.status(), resp.status_text()));
    }
    let total: Option<u64> = resp
        .headers()
        .get("content-length")
        .ok()
        .flatten()
        .and_then(|s| s.parse().ok());
    let body = resp.body().ok_or("the response has no body")?;
    let reader: ReadableStreamDefaultReader = body.get_reader().dyn_into().map_err(|o: js_sys::Object| js_err(o.into()))?;
    // wasm32 addresses 4 GiB; a larger file could never load.
    let cap = total.unwrap_or(1 << 20).min(u64::from(u32::MAX)) as u32;
    let mut file = Uint8Array::new_with_length(cap);
    let mut len: u32 = 0;
    let mut hash = hawthorne_model::FileHash::default();
    let mut chunk_buf = Vec::new();
    let mut pacer = Pacer::new(50.0);
    loop {
        let chunk = JsFuture::from(reader.read()).await.map_err(js_err)?;
        if Reflect::get(&chunk, &"done".into()).map_err(js_err)?.as_bool().unwrap_or(true) {
            break;
        }
        let value: Uint8Array = Reflect::get(&chunk, &"value".into()).map_err(js_err)?.dyn_into().map_err(js_err)?;
        let n = value.length();
        let need = len.checked_add(n).ok_or("the file is larger than 4 GiB, more than wasm can address")?;
        if need > file.length() {
            // No (or a wrong) Content-Length: grow by doubling.
            let grown = Uint8Array::new_with_length(need.max(file.length().saturating_mul(2)));
            grown.set(&file.subarray(0, len), 0);
            file = grown;
        }
        file.set(&value, len);
        chunk_buf.resize(n as usize, 0);
        value.copy_to(&mut chunk_buf);
        hash.update(&chunk_buf);
        len = need;
        if pacer.tick().await || total == Some(u64::from(len)) {
            let _ = scope
                .send(Response::LoadProgress { phase: LoadPhase::Download, done: u64::from(len), total })
                .await;
        }
    }
    Ok(Download { bytes: file.subarray(0, len), sha256: hash.finish() })
}

/// Bytes of the file read for its header first; doubled while the header (metadata and tensor
/// table: a few MB with a 262k-token vocabulary) does not fit.
const HEADER_GUESS: u64 = 4 << 20;

async fn load(scope: &mut Scope, engine: &mut Engine, url: String) {
    let t0 = now_ms();
    let file = match fetch_bytes(scope, &url).await {
        Ok(b) => b,
        Err(reason) => {
            let message = format!("could not download {url}: {reason}");
            let _ = scope.send(Response::LoadFailed { url, message }).await;
            return;
        }
    };
    let size = file.len();
    let _ = scope
        .send(Response::LoadProgress { phase: LoadPhase::Download, done: size, total: Some(size) })
        .await;
    let result = async {
        let mut header_len = HEADER_GUESS.min(size);
        let mut loader = loop {
            let header = file.slice(0..header_len).unwrap_or_default();
            match engine.begin_load(&header) {
                Ok(loader) => break loader,
                // A header cut short reads as a corrupt file: retry with more of it.
                Err(crate::engine::WorkerError::Model(hawthorne_model::ModelError::CorruptGguf(_))) if header_len < size => {
                    header_len = (header_len * 4).min(size);
                }
                Err(e) => return Err(e),
            }
        };
        let total = loader.total() as u64;
        let mut pacer = Pacer::new(40.0);
        while let Some(range) = loader.next_range() {
            let bytes = file.slice(range.clone()).ok_or_else(|| {
                hawthorne_model::ModelError::CorruptGguf(format!(
                    "a tensor needs bytes {}..{}, but the file has {size} bytes (truncated?)",
                    range.start, range.end
                ))
            })?;
            let done = loader.push(&bytes)?;
            drop(bytes);
            if pacer.tick().await {
                let _ = scope
                    .send(Response::LoadProgress { phase: LoadPhase::Tensors, done: done as u64, total: Some(total) })
                    .await;
            }
        }
        let _ = scope.send(Response::LoadProgress { phase: LoadPhase::Finalize, done: 0, total: None }).await;
        yield_to_event_loop().await;
        let model = engine.finish_load(loader, file.sha256.clone())?;
        let mut info = Engine::info(model, &url, size, now_ms() - t0);
        info.wasm_memory_bytes = wasm_memory_bytes();
        Ok::<_, crate::engine::WorkerError>(info)
    }
    .await;
    drop(file);
    let msg = match result {
        Ok(info) => Response::Loaded(info),
        Err(e) => Response::LoadFailed { message: format!("{url} is not a model Hawthorne can load: {e}"), url },
    };
    let _ = scope.send(msg).await;
}

/// Reads `url` only as far as its GGUF header (metadata and tensor table), then stops the
/// download, and checks what the file holds.
async fn inspect(url: &str) -> Result<hawthorne_model::gguf::ModelCheck, String> {
    let global = js_sys::global().unchecked_into::<WorkerGlobalScope>();
    let resp = JsFuture::from(global.fetch_with_str(url)).await.map_err(js_err)?;
    let resp: web_sys::Response = resp.dyn_into().map_err(js_err)?;
    if !resp.ok() {
        return Err(format!("the server answered HTTP {} {}", resp.status(), resp.status_text()));
    }
    let body = resp.body().ok_or("the response has no body")?;
    let reader: ReadableStreamDefaultReader = body.get_reader().dyn_into().map_err(|o: js_sys::Object| js_err(o.into()))?;
    let mut head: Vec<u8> = Vec::new();
    let mut want = HEADER_GUESS as usize;
    let mut ended = false;
    let result = loop {
        while head.len() < want && !ended {
            let chunk = JsFuture::from(reader.read()).await.map_err(js_err)?;
            if Reflect::get(&chunk, &"done".into()).map_err(js_err)?.as_bool().unwrap_or(true) {
                ended = true;
                break;
            }
            let value: Uint8Array = Reflect::get(&chunk, &"value".into()).map_err(js_err)?.dyn_into().map_err(js_err)?;
            head.extend(value.to_vec());
        }
        match hawthorne_model::GgufLoader::new(&head, hawthorne_model::ComputeMode::Packed) {
            Ok(loader) => break loader.check().map_err(|e| e.to_string()),
            // A header cut short reads as a corrupt file: read on.
            Err(hawthorne_model::ModelError::CorruptGguf(_)) if !ended => want = want.saturating_mul(4),
            Err(e) => break Err(e.to_string()),
        }
    };
    let _ = reader.cancel();
    result
}

/// Shortest time between two streamed replies of one chat (about 8 updates a second).
const TOKEN_INTERVAL_MS: f64 = 120.0;

async fn chat(scope: &mut Scope, engine: &Engine, req: ChatRequest, pending: &mut VecDeque<Request>) {
    let id = req.id;
    let t0 = now_ms();
    let fail = |e: &dyn std::fmt::Display| Response::ChatFailed { id, message: e.to_string() };
    let (ids, norms) = match engine.prompt_norms(&req) {
        Ok(x) => x,
        Err(e) => {
            let _ = scope.send(fail(&e)).await;
            return;
        }
    };
    let _ = scope.send(Response::ChatNorms { id, norms }).await;
    yield_to_event_loop().await;
    let mut gen = match engine.generator(&req, &ids) {
        Ok(g) => g,
        Err(e) => {
            let _ = scope.send(fail(&e)).await;
            return;
        }
    };
    let t_prefill = now_ms();
    let mut prefill_ms = None;
    let mut t_decode = t_prefill;
    let mut last_sent = f64::NEG_INFINITY;
    loop {
        let step = gen.step();
        if prefill_ms.is_none() {
            t_decode = now_ms();
            prefill_ms = Some(t_decode - t_prefill);
        }
        match step {
            // The reply so far, at most every `TOKEN_INTERVAL_MS`: each message re-renders the
            // page, and one per token kept its main thread busy a fifth of the time with a
            // report on screen. `ChatDone` carries the whole reply.
            Ok(Some(_)) if now_ms() - last_sent >= TOKEN_INTERVAL_MS => {
                last_sent = now_ms();
                let _ = scope.send(Response::ChatToken { id, text: gen.text().to_string() }).await;
            }
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => {
                let _ = scope.send(fail(&e)).await;
                return;
            }
        }
        yield_to_event_loop().await;
        if take_cancel(scope, id, pending) {
            break;
        }
    }
    // Decoding speed counts the tokens after the first, which came out of the prefill.
    let decoded = gen.n_tokens().saturating_sub(1);
    let generation = gen.finish();
    let decode_ms = now_ms() - t_decode;
    let tokens_per_s = if decoded > 0 && decode_ms > 0.0 { decoded as f64 / (decode_ms / 1000.0) } else { 0.0 };
    let _ = scope
        .send(Response::ChatDone {
            id,
            generation,
            ms: now_ms() - t0,
            tokens_per_s,
            prompt_tokens: ids.len(),
            prefill_ms: prefill_ms.unwrap_or(0.0),
        })
        .await;
}

/// Drains queued messages: `Cancel` for `id` sets the flag, anything else waits its turn.
fn take_cancel(scope: &mut Scope, id: u64, pending: &mut VecDeque<Request>) -> bool {
    let mut cancelled = false;
    while let Some(Some(msg)) = scope.next().now_or_never() {
        match msg {
            Request::Cancel { id: c } if c == id => cancelled = true,
            Request::Cancel { .. } => {}
            other => pending.push_back(other),
        }
    }
    cancelled
}

/// Runs [`Engine::warm_up_spec`] after a load, one step at a time, and stops as soon as any
/// request arrives: the user's own work always goes first. Nothing is reported.
async fn warm_up(scope: &mut Scope, engine: &Engine, pending: &mut VecDeque<Request>) {
    let Some(spec) = engine.warm_up_spec() else { return };
    let Ok(mut exp) = engine.experiment(&spec) else { return };
    while exp.stage() != Stage::Done && exp.step().is_ok() {
        yield_to_event_loop().await;
        while let Some(Some(msg)) = scope.next().now_or_never() {
            pending.push_back(msg);
        }
        if !pending.is_empty() {
            return;
        }
    }
}

/// wasm32 addresses 4 GiB; the worker's linear memory can never grow past it.
const ADDRESS_SPACE_MB: u64 = 4096;

/// Whether the page turned the address-space check off (`?memory_check=off`, which the
/// end-to-end suite uses to drive the worker into a real out-of-memory abort and watch the
/// page recover). `web/engine.js` sets the flag on the worker's global scope.
fn memory_check_off() -> bool {
    Reflect::get(&js_sys::global(), &"HAWTHORNE_MEMORY_CHECK_OFF".into()).ok().and_then(|v| v.as_bool()).unwrap_or(false)
}

/// Steps an experiment to its report, streaming progress (paced) and reading Stop between
/// steps; the time of each stage and its longest step go to `timings`.
async fn step_to_end<M: hawthorne_probe::LanguageModel + ?Sized>(
    scope: &mut Scope,
    mut exp: hawthorne_probe::Experiment<'_, M>,
    id: u64,
    pending: &mut VecDeque<Request>,
    timings: &mut BTreeMap<String, f64>,
) -> Result<(hawthorne_probe::Report, hawthorne_probe::SteeringBasis, hawthorne_probe::Exports), String> {
    let mut pacer = Pacer::new(30.0);
    while exp.stage() != Stage::Done {
        let stage = exp.stage();
        let t = now_ms();
        let step = exp.step();
        let ms = now_ms() - t;
        *timings.entry(format!("{stage:?}").to_lowercase()).or_insert(0.0) += ms;
        // The longest step of each stage: how long Stop can take before the page gives up
        // waiting and replaces the worker.
        let longest = timings.entry(format!("max_step_{stage:?}").to_lowercase()).or_insert(0.0);
        *longest = longest.max(ms);
        let p = step.map_err(|e| e.to_string())?;
        if pacer.tick().await || p.done == p.total {
            let _ = scope.send(Response::RunProgress { id, stage: p.stage, done: p.done as u64, total: p.total as u64 }).await;
            if take_cancel(scope, id, pending) {
                return Err("cancelled".to_string());
            }
        }
    }
    let basis = exp.steering_basis();
    let t = now_ms();
    let done = exp.finish_with_exports().map(|(r, x)| (r, basis, x)).map_err(|e| e.to_string());
    timings.insert("finish".into(), now_ms() - t);
    done
}

/// Fetches a whole (same-origin or `blob:`) URL into memory.
async fn fetch_all(url: &str) -> Result<Vec<u8>, String> {
    let global = js_sys::global().unchecked_into::<WorkerGlobalScope>();
    let resp: web_sys::Response = JsFuture::from(global.fetch_with_str(url)).await.map_err(js_err)?.dyn_into().map_err(js_err)?;
    if !resp.ok() {
        return Err(format!("the server answered HTTP {} {}", resp.status(), resp.status_text()));
    }
    let buf = JsFuture::from(resp.array_buffer().map_err(js_err)?).await.map_err(js_err)?;
    Ok(Uint8Array::new(&buf).to_vec())
}

/// Builds `spec`'s report from collected activations: `files` are (path inside the directory,
/// URL) pairs, or one zip of the directory.
async fn run_collected(
    scope: &mut Scope,
    engine: &mut Engine,
    id: u64,
    spec: ExperimentSpec,
    files: Vec<(String, String)>,
    pending: &mut VecDeque<Request>,
) {
    let mut timings: BTreeMap<String, f64> = BTreeMap::new();
    let t0 = now_ms();
    let outcome = async {
        let mut bytes = BTreeMap::new();
        for (path, url) in &files {
            let b = fetch_all(url).await.map_err(|e| format!("reading {path}: {e}"))?;
            bytes.insert(path.clone(), b);
        }
        // One zip: its entries replace it (the archive's bytes are dropped before parsing).
        let zip = (bytes.len() == 1).then(|| bytes.pop_first()).flatten();
        let bytes = match zip {
            Some((path, b)) if path.to_ascii_lowercase().ends_with(".zip") => {
                hawthorne_probe::recorded::files_from_zip(&b).map_err(|e| e.to_string())?
            }
            Some((path, b)) => hawthorne_probe::recorded::rooted(BTreeMap::from([(path, b)])),
            None => hawthorne_probe::recorded::rooted(bytes),
        };
        timings.insert("read_files".into(), now_ms() - t0);
        let rec = hawthorne_probe::Recorded::from_files(&spec, &bytes).map_err(|e| e.to_string())?;
        drop(bytes);
        let exp = hawthorne_probe::Experiment::new(&spec, &rec).map_err(|e| e.to_string())?;
        timings.insert("prepare".into(), now_ms() - t0);
        step_to_end(scope, exp, id, pending, &mut timings).await
    }
    .await;
    match outcome {
        Ok((mut report, _basis, exports)) => {
            // The loaded model did not make these activations: its steering keeps its own basis.
            engine.exports = Some(exports);
            timings.insert("total_run".into(), now_ms() - t0);
            report.timings = timings;
            let _ = scope.send(Response::RunDone { id, report: Box::new(report) }).await;
        }
        Err(message) => {
            let _ = scope.send(Response::RunFailed { id, message }).await;
        }
    }
}

async fn run(
    scope: &mut Scope,
    engine: &mut Engine,
    id: u64,
    spec: ExperimentSpec,
    budget_s: Option<f64>,
    pending: &mut VecDeque<Request>,
) {
    let fail = |message: String| Response::RunFailed { id, message };
    let mut timings: BTreeMap<String, f64> = BTreeMap::new();
    let t0 = now_ms();
    let outcome = {
        if let Err(e) = engine.prepare_mode(spec.model.compute) {
            let _ = scope.send(fail(e.to_string())).await;
            return;
        }
        let exp = match engine.experiment(&spec) {
            Ok(e) => e,
            Err(e) => {
                let _ = scope.send(fail(e.to_string())).await;
                return;
            }
        };
        timings.insert("prepare".into(), now_ms() - t0);
        let cost = exp.cost();
        if let Some(budget_s) = budget_s.filter(|b| !cost.within(*b)) {
            let _ = scope.send(Response::RunNeedsConsent { id, cost, budget_s }).await;
            return;
        }
        // The spec's own limit is checked by `Experiment::new`; this is the platform's.
        let used_mb = wasm_memory_bytes().unwrap_or(0) / (1 << 20);
        if !memory_check_off() && used_mb + cost.memory_mb > ADDRESS_SPACE_MB {
            let message = format!(
                "this run needs about {} MB for activations, but the engine has only {} MB of its {ADDRESS_SPACE_MB} MB address space left (the model and earlier work use {used_mb} MB); use fewer or shorter prompts, a smaller `limits.batch_size`, or fewer hooks",
                cost.memory_mb,
                ADDRESS_SPACE_MB.saturating_sub(used_mb)
            );
            let _ = scope.send(fail(message)).await;
            return;
        }
        let _ = scope.send(Response::RunEstimate { id, cost }).await;
        step_to_end(scope, exp, id, pending, &mut timings).await
    };
    match outcome {
        Ok((mut report, basis, exports)) => {
            engine.steering = Some(basis);
            engine.exports = Some(exports);
            timings.insert("total_run".into(), now_ms() - t0);
            report.timings = timings;
            let _ = scope.send(Response::RunDone { id, report: Box::new(report) }).await;
        }
        Err(message) => {
            let _ = scope.send(fail(message)).await;
        }
    }
}

/// The worker's main loop: one request at a time, in arrival order.
#[reactor(EngineReactor)]
pub async fn engine_reactor(mut scope: ReactorScope<Request, Response>) {
    let mut engine = Engine::default();
    let mut pending: VecDeque<Request> = VecDeque::new();
    let _ = scope.send(Response::Ready).await;
    loop {
        let req = match pending.pop_front() {
            Some(r) => r,
            None => match scope.next().await {
                Some(r) => r,
                None => break,
            },
        };
        match req {
            Request::Load { url } => {
                load(&mut scope, &mut engine, url).await;
                warm_up(&mut scope, &engine, &mut pending).await;
            }
            Request::Inspect { url } => {
                let msg = match inspect(&url).await {
                    Ok(check) => {
                        let (memory_estimate, refusal) = (check.memory_estimate(), check.refusal());
                        Response::Inspected { url, check: Box::new(check), memory_estimate, refusal }
                    }
                    Err(message) => Response::InspectFailed { url, message },
                };
                let _ = scope.send(msg).await;
            }
            Request::Chat(c) => chat(&mut scope, &engine, c, &mut pending).await,
            Request::Run { id, spec, budget_s } => run(&mut scope, &mut engine, id, *spec, budget_s, &mut pending).await,
            Request::RunCollected { id, spec, files } => run_collected(&mut scope, &mut engine, id, *spec, files, &mut pending).await,
            Request::TokenScores { id, system, user, layer } => {
                let msg = match engine.token_scores(&system, &user, layer) {
                    Ok((tokens, scores)) => Response::TokenScores { id, layer, tokens, scores },
                    Err(e) => Response::TokenScoresFailed { id, message: e.to_string() },
                };
                let _ = scope.send(msg).await;
            }
            Request::Export { id, array } => {
                let msg = match engine.export(array) {
                    Ok(npy) => Response::Array { id, array, npy: npy.to_vec() },
                    Err(e) => Response::ExportFailed { id, message: e.to_string() },
                };
                let _ = scope.send(msg).await;
            }
            Request::Cancel { .. } => {}
        }
    }
}
