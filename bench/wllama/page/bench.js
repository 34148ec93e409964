// The wllama benchmark page (dist/wllama-bench/): loads a GGUF into wllama (llama.cpp compiled
// to wasm, CPU only, served from this origin) and times the benchmark's 128-token prompt as one
// prefill followed by greedy decoding, reading llama.cpp's own timings. bench/wllama.mjs drives it.
//
// wllama 3.8.1 takes prompts as text only (no token ids, no tokenizer API), so the page sends
// bench/prompt.json under the chat template, exactly as bench/llama_cpp.py builds it; llama.cpp
// tokenizes that text to the 128 ids in prompt_ids.json (no BOS: the GGUF's add_bos_token is
// false), and the page fails unless llama.cpp reports that many prompt tokens.
//
// Query: model (GGUF URL, required), prompt (default prompt.json), ids (default
// prompt_ids.json: a JSON list of token ids or {ids}), threads (default 1; more than one needs
// crossOriginIsolated), reps (timed completions after one warm-up, default 3), max_tokens
// (default 32). The result is JSON in #result, with data-done="true" (and data-error on failure).
import { Wllama } from './esm/index.js';

const q = new URLSearchParams(location.search);
const MODEL = q.get('model');
const PROMPT = q.get('prompt') ?? 'prompt.json';
const IDS = q.get('ids') ?? 'prompt_ids.json';
const THREADS = Number(q.get('threads') ?? 1);
const REPS = Number(q.get('reps') ?? 3);
const MAX_TOKENS = Number(q.get('max_tokens') ?? 32);

// wllama builds its worker from a Blob and never exposes the wasm memory. Prepend a few lines
// to that worker: remember the memory handed to the wasm module (emscripten's `env.memory`
// import) and send its size, as a debug log line, just before every reply the worker posts.
const MEMORY_TAG = '@@wasm-memory-bytes';
const WORKER_PRELUDE = `{
  let memory = null;
  for (const f of ['instantiate', 'instantiateStreaming']) {
    const original = WebAssembly[f];
    WebAssembly[f] = function (source, imports) {
      memory = imports?.env?.memory ?? memory;
      return original.apply(this, arguments);
    };
  }
  const post = globalThis.postMessage.bind(globalThis);
  globalThis.postMessage = (data, transfer) => {
    if (memory && data?.callbackId) post({ verb: 'console.debug', args: ['${MEMORY_TAG}', memory.buffer.byteLength] });
    post(data, transfer);
  };
}\n`;
const createObjectURL = URL.createObjectURL;
URL.createObjectURL = (obj) =>
  createObjectURL(obj instanceof Blob && obj.type.startsWith('text/javascript')
    ? new Blob([WORKER_PRELUDE, obj], { type: obj.type }) : obj);

let wasmMemoryBytes = null;
const nativeLog = []; // llama.cpp's log, kept for error reports
const logger = {
  debug: (...a) => { if (a[0] === MEMORY_TAG) wasmMemoryBytes = a[1]; else nativeLog.push(a.join(' ')); },
  log: (...a) => nativeLog.push(a.join(' ')),
  warn: (...a) => console.warn(...a),
  error: (...a) => console.error(...a),
};

const chatml = (system, user) =>
  `<|im_start|>system\n${system}<|im_end|>\n<|im_start|>user\n${user}<|im_end|>\n<|im_start|>assistant\n`;

// One completion of the prompt: greedy, exactly MAX_TOKENS new tokens, no prompt cache
// (every repetition prefills all the ids). `timings` are llama.cpp's: prompt_ms runs from the
// start of the prompt to the first sampled token; predicted_ms from there to the last token.
async function complete(wllama, prompt, promptTokens) {
  const t0 = performance.now();
  let firstMs = null;
  let text = '';
  let timings = null;
  await wllama.createCompletion({
    prompt,
    max_tokens: MAX_TOKENS,
    temperature: 0,
    ignore_eos: true,
    cache_prompt: false,
    stream: true,
    onData: (chunk) => {
      const piece = chunk.choices?.[0]?.text ?? '';
      if (piece && firstMs === null) firstMs = performance.now() - t0;
      text += piece;
      timings = chunk.timings ?? timings;
    },
  });
  const wallMs = performance.now() - t0;
  if (!timings) throw new Error('the completion returned no timings');
  if (timings.prompt_n !== promptTokens) {
    throw new Error(`llama.cpp read ${timings.prompt_n} prompt tokens, not the ${promptTokens} prompt ids`);
  }
  return {
    prompt_tokens: timings.prompt_n,
    generated_tokens: timings.predicted_n,
    prefill_ms: timings.prompt_ms,
    prefill_tok_s: timings.prompt_n / (timings.prompt_ms / 1000),
    // Tokens 2.. of the reply: predicted_ms spans predicted_n − 1 decode steps.
    decode_tok_s: (timings.predicted_n - 1) / (timings.predicted_ms / 1000),
    page_first_token_ms: firstMs,
    page_wall_ms: wallMs,
    text,
  };
}

async function main() {
  if (!MODEL) throw new Error('no ?model= given');
  const { system, user } = await (await fetch(PROMPT)).json();
  const ids = await (await fetch(IDS)).json();
  const promptTokens = (Array.isArray(ids) ? ids : ids.ids).length;
  const prompt = chatml(system, user);

  const t0 = performance.now();
  const response = await fetch(MODEL);
  if (!response.ok) throw new Error(`fetching ${MODEL}: HTTP ${response.status}`);
  const blob = await response.blob();
  const fetchMs = performance.now() - t0;
  const wllama = new Wllama({ default: './esm/wasm/wllama.wasm' }, { logger });
  wllama.setCompat(null); // never the CDN build
  await wllama.loadModel([blob], {
    n_threads: THREADS,
    n_gpu_layers: 0, // CPU only (no WebGPU)
    n_ctx: 512,
    n_batch: 128,
    n_ubatch: 128,
    n_parallel: 1,
  });
  const loadMs = performance.now() - t0;
  const memoryAfterLoad = wasmMemoryBytes;

  const warmUp = await complete(wllama, prompt, promptTokens);
  const reps = [];
  for (let i = 0; i < REPS; i++) reps.push(await complete(wllama, prompt, promptTokens));
  return {
    model: MODEL,
    model_bytes: blob.size,
    libllama: Wllama.getLibllamaVersion(),
    cross_origin_isolated: self.crossOriginIsolated,
    threads_requested: THREADS,
    threads: wllama.getNumThreads(),
    multithread: wllama.isMultithread(),
    fetch_ms: fetchMs,
    load_ms: loadMs,
    wasm_memory_after_load_bytes: memoryAfterLoad,
    wasm_memory_end_bytes: wasmMemoryBytes,
    warm_up: warmUp,
    reps,
  };
}

const out = document.getElementById('result');
main().then(
  (res) => { out.textContent = JSON.stringify(res); },
  (err) => {
    out.dataset.error = String(err?.stack ?? err);
    out.textContent = `${err}\n\nllama.cpp log (last lines):\n${nativeLog.slice(-20).join('\n')}`;
  },
).finally(() => { out.dataset.done = 'true'; });
