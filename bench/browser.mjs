// The engine in headless Chromium: load SmolLM2 in the page's worker and chat with the
// 128-token benchmark prompt (bench/prompt.json), reading the numbers the page shows.
//
// Each run opens a fresh browser, loads the model (load time, wasm memory after loading),
// then sends the chat twice (prefill tok/s from the page's prefill time, decode tok/s from the
// tokens after the first, and the share of the chat's wall time the page's main thread was busy). When the page shows several chat sides, each gets the same framing
// and each side's reply is one sample (the worker runs them one after another). Medians over runs go to stdout as one JSON object; progress goes
// to stderr.
//
// Load time is the worker's own (`Loaded in`, from fetching the file to a ready model);
// `load_wall_ms` is from navigation to the ready model, wasm download and start-up included.
//
//   HAWTHORNE_URL=http://127.0.0.1:8000 node bench/browser.mjs
//
// Environment: HAWTHORNE_URL (a served dist/, `cargo xtask serve`), CHROMIUM (default
// /usr/bin/chromium), BENCH_RUNS (browser launches, default 3), BENCH_CHATS (chats per launch,
// default 2), BENCH_MAX_TOKENS (reply length, default 32), BENCH_MODEL (see below), BENCH_THREADS (the worker's
// thread cap; default: as many as the page allows). Uses playwright-core from
// tests/e2e (`npm ci` there); never downloads a browser.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { launch, watchErrors, BASE } from '../tests/e2e/browser.mjs';

const SMOLLM2 = 'models/SmolLM2-135M-Instruct.Q4_1.gguf';
// BENCH_MODEL: another copy of SmolLM2 (a URL path on this origin, e.g. a re-quantised file);
// the page offers only its own models, so the bench adds it to the model list.
const MODEL = process.env.BENCH_MODEL ?? SMOLLM2;
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const CHATS = Number(process.env.BENCH_CHATS ?? 2);
const MAX_TOKENS = Number(process.env.BENCH_MAX_TOKENS ?? 32);
// BENCH_THREADS caps the worker's threads (`?threads=N`; 1 forces the single-threaded build).
const QUERY = process.env.BENCH_THREADS ? `?threads=${Number(process.env.BENCH_THREADS)}` : '';
const prompt = JSON.parse(readFileSync(fileURLToPath(new URL('prompt.json', import.meta.url)), 'utf8'));

const log = (...a) => console.error('[browser bench]', ...a);
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? null : s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

// `t0`: when navigation started (the page may start loading a model by itself).
async function loadModel(page, t0) {
  if (MODEL !== SMOLLM2) {
    await page.waitForSelector('#model-select');
    await page.evaluate((url) => {
      const option = document.createElement('option');
      option.value = url;
      option.textContent = url;
      document.querySelector('#model-select').appendChild(option);
    }, MODEL);
  }
  await page.selectOption('#model-select', MODEL);
  const ready = async () =>
    (await page.locator('[data-testid=model-ready]').textContent().catch(() => '')) ?? '';
  if (!(await ready()).includes('30 layers')) {
    await page.waitForSelector('[data-testid=load-model]:not([disabled])', { timeout: 120_000 });
    await page.click('[data-testid=load-model]');
  }
  await page.waitForFunction(
    () => document.querySelector('[data-testid=model-ready]')?.textContent.includes('30 layers'),
    null, { timeout: 300_000 });
  const wallMs = Date.now() - t0;
  const info = await page.textContent('[data-testid=model-ready]');
  const loaded = /Loaded in\s*([\d.]+)\s*s/.exec(info);
  const memory = await page.getAttribute('[data-testid=wasm-memory]', 'data-bytes');
  return {
    load_ms: loaded ? Number(loaded[1]) * 1000 : null,
    load_wall_ms: wallMs,
    wasm_memory_bytes: memory === null ? null : Number(memory),
    threads: Number(await page.getAttribute('[data-testid=threads]', 'data-threads')),
  };
}

// Replies and their stats: one chat box (`reply`, `chat-stats`) or several side by side
// (`reply-<side>`, `chat-stats-<side>`, each with its own framing); every side is a sample.
const REPLIES = '[data-testid=reply], [data-testid^=reply-]';
const STATS = '[data-testid=chat-stats], [data-testid^=chat-stats-]';

// The page's main-thread busy time (CDP `Performance.getMetrics`: TaskDuration, seconds of
// tasks on the renderer's main thread) as a share of the wall time between two readings.
async function mainThreadClock(page) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Performance.enable');
  return async () => {
    const { metrics } = await cdp.send('Performance.getMetrics');
    const get = (n) => metrics.find((m) => m.name === n)?.value ?? NaN;
    return { busy: get('TaskDuration'), at: get('Timestamp') };
  };
}

async function chat(page, clock) {
  const framings = await page.$$('[data-testid^=framing-]');
  if (framings.length === 0) await page.fill('#framing', prompt.system);
  for (const f of framings) await f.fill(prompt.system);
  await page.fill('[data-testid=request]', prompt.user);
  await page.fill('#max-tokens', String(MAX_TOKENS));
  const before = await clock();
  await page.click('[data-testid=send]');
  // Wait for the new chat to start (the previous one's stats go away), then for every reply.
  await page.waitForFunction((sel) => [...document.querySelectorAll(sel)].some((r) => r.dataset.done !== 'true'),
    REPLIES, { timeout: 30_000 }).catch(() => {});
  await page.waitForFunction(([replies, stats]) => {
    const rs = [...document.querySelectorAll(replies)];
    return rs.length > 0 && rs.every((r) => r.dataset.done === 'true')
      && document.querySelectorAll(stats).length === rs.length;
  }, [REPLIES, STATS], { timeout: 600_000 });
  const after = await clock();
  const mainThread = (after.busy - before.busy) / (after.at - before.at);
  const stats = await page.$$eval(STATS, (els) => els.map((el) => {
    const promptTokens = Number(el.dataset.promptTokens);
    const prefillMs = Number(el.dataset.prefillMs);
    const generated = /·\s*(\d+) tokens/.exec(el.textContent);
    return {
      side: el.dataset.testid.replace(/^chat-stats-?/, '') || null,
      prompt_tokens: promptTokens,
      prefill_ms: prefillMs,
      prefill_tok_s: promptTokens / (prefillMs / 1000),
      decode_tok_s: Number(el.dataset.decodeTps),
      generated_tokens: generated ? Number(generated[1]) : null,
    };
  }));
  return stats.map((s) => ({ ...s, main_thread_share: mainThread }));
}

const loads = [];
const chats = [];
for (let run = 0; run < RUNS; run++) {
  const ctx = await launch();
  try {
    const page = await ctx.newPage();
    const errors = watchErrors(page);
    const t0 = Date.now();
    await page.goto(BASE + '/' + QUERY);
    const l = await loadModel(page, t0);
    log(`run ${run + 1}/${RUNS}: loaded in ${l.load_ms} ms (wall ${l.load_wall_ms} ms), wasm memory ${l.wasm_memory_bytes} bytes`);
    loads.push(l);
    const clock = await mainThreadClock(page);
    for (let c = 0; c < CHATS; c++) {
      for (const r of await chat(page, clock)) {
        log(`  chat ${c + 1}/${CHATS}${r.side ? ` (${r.side})` : ''}: ${r.prompt_tokens} prompt tokens, ` +
          `prefill ${r.prefill_ms} ms (${r.prefill_tok_s.toFixed(1)} tok/s), ` +
          `decode ${r.decode_tok_s} tok/s over ${r.generated_tokens} tokens; ` +
          `page main thread busy ${(100 * r.main_thread_share).toFixed(1)}% of the chat's wall time`);
        chats.push(r);
      }
    }
    if (errors.length) throw new Error(`the page reported errors: ${errors.join('; ')}`);
  } finally {
    await ctx.close();
  }
}

const browserVersion = await (async () => {
  const ctx = await launch();
  try { return ctx.browser()?.version() ?? null; } finally { await ctx.close(); }
})().catch(() => null);

console.log(JSON.stringify({
  url: BASE,
  browser: browserVersion,
  runs: RUNS,
  chats_per_run: CHATS,
  max_tokens: MAX_TOKENS,
  prompt_tokens: median(chats.map((c) => c.prompt_tokens)),
  prefill_tok_s: median(chats.map((c) => c.prefill_tok_s)),
  prefill_ms: median(chats.map((c) => c.prefill_ms)),
  decode_tok_s: median(chats.map((c) => c.decode_tok_s)),
  main_thread_share: median(chats.map((c) => c.main_thread_share)),
  load_ms: median(loads.map((l) => l.load_ms)),
  load_wall_ms: median(loads.map((l) => l.load_wall_ms)),
  wasm_memory_bytes: median(loads.map((l) => l.wasm_memory_bytes)),
  threads: Math.max(...loads.map((l) => l.threads)),
  loads,
  chats,
}));
