// wllama (llama.cpp compiled to wasm) in headless Chromium: opens the page
// `xtask/src/wllama.rs` builds (dist/wllama-bench/) for each GGUF file, which loads it into
// wllama and times the benchmark prompt (the same 128 token ids the other benchmarks use; the
// page checks the count) as one prefill, then 32 greedy tokens. Each file gets fresh browser
// launches; in each, one page load with one thread and, when the page is cross-origin isolated
// (threads need SharedArrayBuffer), one with two. Medians per file and thread count go to
// stdout as one JSON object; progress goes to stderr.
//
//   HAWTHORNE_URL=http://127.0.0.1:8000 node bench/wllama.mjs [FILE.gguf ...]
//
// FILEs are names under dist/wllama-bench/models/ (default: WLLAMA_MODELS, space-separated,
// or every .gguf file there). Environment: HAWTHORNE_URL, CHROMIUM, BENCH_RUNS (browser
// launches per file, default 3), BENCH_REPS (timed completions per page after a warm-up,
// default 3). Uses playwright-core from tests/e2e; never downloads a browser.
import { readdirSync } from 'node:fs';
import { launch, watchErrors, BASE } from '../tests/e2e/browser.mjs';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const REPS = Number(process.env.BENCH_REPS ?? 3);
const MAX_TOKENS = 32;
const files = process.argv.slice(2).length ? process.argv.slice(2)
  : process.env.WLLAMA_MODELS ? process.env.WLLAMA_MODELS.split(/\s+/).filter(Boolean)
    : readdirSync(new URL('../dist/wllama-bench/models/', import.meta.url)).filter((f) => f.endsWith('.gguf')).sort();
const log = (...a) => console.error('[wllama bench]', ...a);
const median = (xs) => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? null : s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

// One page load: model load, a warm-up completion, then REPS timed ones.
async function runPage(ctx, file, threads, requests) {
  const page = await ctx.newPage();
  try {
    const errors = watchErrors(page);
    // Every request must stay on this origin (no CDN); the page's CSP enforces it as well.
    page.on('request', (req) => requests.add(new URL(req.url()).origin));
    const query = new URLSearchParams({ model: `models/${file}`, threads, reps: REPS, max_tokens: MAX_TOKENS });
    await page.goto(`${BASE}/wllama-bench/?${query}`);
    await page.waitForSelector('#result[data-done=true]', { timeout: 900_000 });
    const error = await page.getAttribute('#result', 'data-error');
    if (error) throw new Error(`the wllama page failed on ${file}: ${error}\n${await page.textContent('#result')}`);
    if (errors.length) throw new Error(`the page reported errors: ${errors.join('; ')}`);
    return JSON.parse(await page.textContent('#result'));
  } finally {
    await page.close();
  }
}

const pages = [];
const requests = new Set();
let browser = null;
for (const file of files) {
  for (let run = 0; run < RUNS; run++) {
    const ctx = await launch();
    try {
      browser ??= ctx.browser()?.version() ?? null;
      for (const threads of [1, 2]) {
        const res = await runPage(ctx, file, threads, requests);
        const f = (x, d = 1) => (x == null ? '–' : x.toFixed(d));
        log(`${file}, run ${run + 1}/${RUNS}, ${res.threads} thread(s) (isolated: ${res.cross_origin_isolated}): ` +
          `load ${f(res.load_ms, 0)} ms, wasm memory ${f(res.wasm_memory_after_load_bytes && res.wasm_memory_after_load_bytes / 2 ** 20)} MiB; ` +
          `prefill ${res.reps.map((r) => f(r.prefill_tok_s)).join(' / ')} tok/s, ` +
          `decode ${res.reps.map((r) => f(r.decode_tok_s)).join(' / ')} tok/s`);
        pages.push({ file, run, ...res });
        if (!res.cross_origin_isolated) break; // no SharedArrayBuffer: wllama runs one thread only
      }
    } finally {
      await ctx.close();
    }
  }
}
const origins = [...requests].filter((o) => o !== new URL(BASE).origin && !o.startsWith('blob:') && o !== 'null');
if (origins.length) throw new Error(`the page contacted other origins: ${origins.join(', ')}`);

// One row per file and thread count: medians over every timed completion (prefill, decode)
// and over page loads (load time, memory).
const rows = [];
for (const file of files) {
  for (const threads of [1, 2]) {
    const ps = pages.filter((p) => p.file === file && p.threads === threads);
    if (ps.length === 0) continue;
    const reps = ps.flatMap((p) => p.reps);
    rows.push({
      file,
      threads,
      model_bytes: ps[0].model_bytes,
      page_loads: ps.length,
      completions: reps.length,
      prefill_tok_s: median(reps.map((r) => r.prefill_tok_s)),
      prefill_ms: median(reps.map((r) => r.prefill_ms)),
      decode_tok_s: median(reps.map((r) => r.decode_tok_s)),
      page_first_token_ms: median(reps.map((r) => r.page_first_token_ms)),
      load_ms: median(ps.map((p) => p.load_ms)),
      fetch_ms: median(ps.map((p) => p.fetch_ms)),
      wasm_memory_after_load_bytes: median(ps.map((p) => p.wasm_memory_after_load_bytes)),
      wasm_memory_end_bytes: median(ps.map((p) => p.wasm_memory_end_bytes)),
      reply: ps[0].reps[0]?.text ?? null,
    });
  }
}

console.log(JSON.stringify({
  url: BASE,
  browser,
  wllama: '3.8.1',
  libllama: pages[0]?.libllama ?? null,
  runs: RUNS,
  reps_per_run: REPS,
  max_tokens: MAX_TOKENS,
  prompt_tokens: pages[0]?.reps[0]?.prompt_tokens ?? null,
  cross_origin_isolated: pages[0]?.cross_origin_isolated ?? null,
  rows,
  pages,
}));
