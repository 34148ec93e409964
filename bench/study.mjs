// The evaluation-awareness study (examples/study-smollm2.json: 760 prompts, every layer, all
// controls) in the page's worker on SmolLM2, in headless Chromium: the browser side of the
// study's performance target. The native side is `hawthorne run examples/study-smollm2.json`
// (its report's `timings`); bench/study.md sets the two side by side.
//
//   HAWTHORNE_URL=http://127.0.0.1:8000 node bench/study.mjs
//
// Opens the study's share link, agrees to the 98 MB download and to the over-budget run, and
// waits for the report. Prints one JSON object: the worker's per-stage timings (ms) and the
// wall time from the click to the report. Environment: HAWTHORNE_URL, CHROMIUM, BENCH_THREADS
// (`?threads=N`), BENCH_MODEL (a known model id). Uses playwright-core from tests/e2e; never downloads a browser.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launch, watchErrors, BASE } from '../tests/e2e/browser.mjs';

const log = (...a) => console.error('[study bench]', ...a);
const QUERY = process.env.BENCH_THREADS ? `?threads=${Number(process.env.BENCH_THREADS)}` : '';
const root = new URL('..', import.meta.url).pathname;
// BENCH_MODEL runs the same spec on another known model (for example gemma-3-270m), as
// `hawthorne study --model` does: the spec's model id is replaced and its sha256 dropped.
let specPath = `${root}/examples/study-smollm2.json`;
if (process.env.BENCH_MODEL) {
  const spec = JSON.parse(readFileSync(specPath, 'utf8'));
  spec.model = { id: process.env.BENCH_MODEL };
  specPath = join(mkdtempSync(join(tmpdir(), 'study-bench-')), 'spec.json');
  writeFileSync(specPath, JSON.stringify(spec));
}
const link = execFileSync(process.env.HAWTHORNE_BIN ?? `${root}/target/release/hawthorne`, ['spec', 'encode', specPath]).toString().trim();

const ctx = await launch();
try {
  const page = await ctx.newPage();
  const errors = watchErrors(page);
  await page.goto(`${BASE}/${QUERY}#spec=${link}`);
  await page.click('[data-testid=allow-download]', { timeout: 60_000 });
  await page.waitForSelector('[data-testid=run-anyway]', { timeout: 600_000 });
  log('model loaded; starting the study');
  const t0 = Date.now();
  await page.click('[data-testid=run-anyway]');
  await page.waitForSelector('[data-testid=run-done], [data-testid=run-error]', { timeout: 3_600_000 });
  const wall = Date.now() - t0;
  const timings = JSON.parse((await page.getAttribute('[data-testid=run-done]', 'data-timings')) ?? '{}');
  const verdict = await page.textContent('[data-testid=verdict]');
  console.log(JSON.stringify({ model: process.env.BENCH_MODEL ?? 'smollm2-135m-instruct', wall_ms: wall, timings, verdict, threads: QUERY || 'one', errors }, null, 1));
} finally {
  await ctx.close();
}
