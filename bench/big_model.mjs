// Loads a large GGUF in the page's worker through "Load from a URL" and reports the worker's
// memory, the load time and a short greedy answer's timing (one thread).
//
// Usage (the server running, the file under models/):
//   cargo run --release -p hawthorne-model --example llama1b_shape -- models/bench-llama-3.2-1b-shape-q4_k.gguf
//   HAWTHORNE_URL=http://127.0.0.1:8000 node bench/big_model.mjs models/bench-llama-3.2-1b-shape-q4_k.gguf
import { launch } from '../tests/e2e/browser.mjs';

const BASE = process.env.HAWTHORNE_URL ?? 'http://127.0.0.1:8000';
const file = process.argv[2] ?? 'models/bench-llama-3.2-1b-shape-q4_k.gguf';

const ctx = await launch();
try {
  const page = await ctx.newPage();
  await page.goto(BASE + '/');
  await page.waitForSelector('[data-testid=model-ready]', { timeout: 120_000 });
  await page.fill('[data-testid=model-url]', `${BASE}/${file}`);
  await page.click('[data-testid=model-url-check]');
  await page.waitForSelector('[data-testid=model-check], [data-testid=model-refusal]', { timeout: 120_000 });
  const check = await page.textContent('[data-testid=user-model]');
  const t0 = Date.now();
  await page.click('[data-testid=load-user-model]');
  await page.waitForFunction(
    () => document.querySelector('[data-testid=model-ready]')?.textContent.includes('16 layers')
      || document.querySelector('[data-testid=load-error]'),
    null, { timeout: 600_000 });
  const loadS = (Date.now() - t0) / 1000;
  const error = await page.textContent('[data-testid=load-error]').catch(() => null);
  if (error) throw new Error(error);
  const memory = Number(await page.getAttribute('[data-testid=wasm-memory]', 'data-bytes'));
  await page.fill('[data-testid=request]', 'Hello');
  await page.fill('#max-tokens', '4');
  const t1 = Date.now();
  await page.click('[data-testid=send]');
  await page.waitForSelector('[data-testid=reply-observed][data-done=true], [data-testid=chat-error]', { timeout: 600_000 });
  const failed = await page.$('[data-testid=chat-error]');
  if (failed) throw new Error(await failed.textContent());
  const stats = await page.textContent('[data-testid=chat-stats-observed]').catch(() => '');
  const result = {
    file, check: check.trim(), load_s: loadS, worker_memory_mib: memory / 2 ** 20,
    answer_s: (Date.now() - t1) / 1000, stats: stats?.trim(),
    date: new Date().toISOString(), load_average: (await import('node:os')).loadavg(),
  };
  console.log(JSON.stringify(result, null, 1));
} finally {
  await ctx.close();
}
