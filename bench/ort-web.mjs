// ONNX Runtime Web in headless Chromium: opens the benchmark page built by
// `cargo xtask build-ort-bench` (dist/ort-bench/), which loads the exported SmolLM2 through
// ort + ort-web and times the prefill of the same 128 prompt ids the other benchmarks use.
// Medians over browser launches go to stdout as one JSON object; progress goes to stderr.
//
//   HAWTHORNE_URL=http://127.0.0.1:8000 node bench/ort-web.mjs
//
// Environment: HAWTHORNE_URL, CHROMIUM, BENCH_RUNS (browser launches, default 3). Uses
// playwright-core from tests/e2e; never downloads a browser.
import { launch, watchErrors, BASE } from '../tests/e2e/browser.mjs';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const log = (...a) => console.error('[ort-web bench]', ...a);
const median = (xs) => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? null : s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

const results = [];
const requests = new Set();
for (let r = 0; r < RUNS; r++) {
  const ctx = await launch();
  try {
    const page = await ctx.newPage();
    const errors = watchErrors(page);
    // Every request must stay on this origin (no CDN, no telemetry beacon).
    page.on('request', (req) => requests.add(new URL(req.url()).origin));
    await page.goto(`${BASE}/ort-bench/?onnx=smollm2.onnx&ids=prompt_ids.json`);
    await page.waitForSelector('#result[data-done=true]', { timeout: 600_000 });
    const error = await page.getAttribute('#result', 'data-error');
    if (error) throw new Error(`the ort-web page failed: ${error}`);
    const res = JSON.parse(await page.textContent('#result'));
    log(`run ${r + 1}/${RUNS}: session from URL ${res.load_ms.toFixed(0)} ms, prefill ${res.prefill_ms.toFixed(0)} ms ` +
      `(${res.prefill_tok_s.toFixed(1)} tok/s), next token ${res.next_token}`);
    results.push(res);
    if (errors.length) throw new Error(`the page reported errors: ${errors.join('; ')}`);
  } finally {
    await ctx.close();
  }
}
const origins = [...requests].filter((o) => o !== new URL(BASE).origin);
if (origins.length) throw new Error(`the page contacted other origins: ${origins.join(', ')}`);

console.log(JSON.stringify({
  url: BASE,
  runs: RUNS,
  prompt_tokens: results[0]?.prompt_tokens ?? null,
  prefill_tok_s: median(results.map((x) => x.prefill_tok_s)),
  prefill_ms: median(results.map((x) => x.prefill_ms)),
  load_ms: median(results.map((x) => x.load_ms)),
  runtime_init_ms: median(results.map((x) => x.runtime_init_ms)),
  next_token: results[0]?.next_token ?? null,
  cross_origin_isolated: results[0]?.cross_origin_isolated ?? null,
  results,
}));
