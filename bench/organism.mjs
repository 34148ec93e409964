// The workshop path in headless Chromium: time to interactive on the default page, then the
// default organism experiment (examples/organism-deceptive.json, the page's default spec) run
// in the worker, several times per page load.
//
// Times are taken inside the page with `performance.now()` (milliseconds since navigation
// started), recorded by a MutationObserver installed before any page script runs:
// - `ui_ms`: the app has rendered its controls (the Run button exists);
// - `interactive_ms`: the bundled organism is loaded in the worker and Run is enabled, i.e. a
//   click does real work at once. This is the time to interactive reported in bench/RESULTS.md.
// For each run, `run_ms` is the worker's own time for the experiment (`timings.total_run` in the
// report) and `run_wall_ms` is from the click to the report on screen (rendering included).
//
//   HAWTHORNE_URL=http://127.0.0.1:8000 node bench/organism.mjs
//
// Environment: HAWTHORNE_URL (a served dist/), CHROMIUM, BENCH_RUNS (browser launches, default
// 3), BENCH_EXPERIMENTS (runs per launch, default 3). Medians go to stdout as one JSON object;
// progress goes to stderr. Uses playwright-core from tests/e2e; never downloads a browser.
import { launch, watchErrors, BASE } from '../tests/e2e/browser.mjs';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const EXPERIMENTS = Number(process.env.BENCH_EXPERIMENTS ?? 3);
// BENCH_THREADS caps the worker's threads (`?threads=N`; 1 forces the single-threaded build).
const QUERY = process.env.BENCH_THREADS ? `?threads=${Number(process.env.BENCH_THREADS)}` : '';
const log = (...a) => console.error('[organism bench]', ...a);
const median = (xs) => {
  const s = xs.filter((x) => x !== null && Number.isFinite(x)).sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? null : s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

// Installed before the page's scripts: stamps the first time each marker appears.
function observeMarks() {
  window.__marks = {};
  const marks = {
    ui: '[data-testid=run]',
    interactive: '[data-testid=model-ready]',
  };
  let lastReport = null;
  const check = () => {
    // A finished run: the report's timings changed (the previous report stays up during a run).
    const report = document.querySelector('[data-testid=run-done]')?.dataset.timings ?? null;
    if (report !== null && report !== lastReport) {
      lastReport = report;
      window.__marks.done = performance.now();
    }
    for (const [name, sel] of Object.entries(marks)) {
      if (window.__marks[name] === undefined && document.querySelector(sel)) {
        if (name === 'interactive' && document.querySelector('[data-testid=run]')?.disabled) continue;
        window.__marks[name] = performance.now();
      }
    }
  };
  new MutationObserver(check).observe(document, { childList: true, subtree: true, attributes: true });
  // Yew enables the Run button through the `disabled` property, which no mutation reports;
  // a light poll catches the moment the page becomes interactive when nothing else changes.
  setInterval(check, 5);
}

const loads = [];
const runs = [];
for (let r = 0; r < RUNS; r++) {
  const ctx = await launch();
  try {
    const page = await ctx.newPage();
    const errors = watchErrors(page);
    await page.addInitScript(observeMarks);
    await page.goto(BASE + '/' + QUERY);
    await page.waitForFunction(() => window.__marks?.interactive !== undefined, null, { timeout: 120_000 });
    const marks = await page.evaluate(() => window.__marks);
    const model = await page.textContent('[data-testid=model-ready]');
    loads.push({ ui_ms: marks.ui, interactive_ms: marks.interactive });
    log(`launch ${r + 1}/${RUNS}: controls at ${marks.ui.toFixed(0)} ms, organism ready at ${marks.interactive.toFixed(0)} ms (${model.trim().slice(0, 60)}…)`);
    for (let e = 0; e < EXPERIMENTS; e++) {
      await page.waitForSelector('[data-testid=run]:not([disabled])');
      const clicked = await page.evaluate(() => {
        delete window.__marks.done;
        const t = performance.now();
        document.querySelector('[data-testid=run]').click();
        return t;
      });
      await page.waitForFunction(() => window.__marks.done !== undefined, null, { timeout: 300_000 });
      const done = await page.evaluate(() => window.__marks.done);
      const timings = JSON.parse(await page.getAttribute('[data-testid=run-done]', 'data-timings'));
      runs.push({ launch: r, experiment: e, run_ms: timings.total_run, run_wall_ms: done - clicked, timings });
      log(`  experiment ${e + 1}/${EXPERIMENTS}: worker ${timings.total_run.toFixed(0)} ms, click to report ${(done - clicked).toFixed(0)} ms (${Object.entries(timings).filter(([k]) => k !== 'total_run').map(([k, v]) => `${k} ${v.toFixed(0)}`).join(', ')})`);
    }
    if (errors.length) throw new Error(`the page reported errors: ${errors.join('; ')}`);
  } finally {
    await ctx.close();
  }
}

const stages = [...new Set(runs.flatMap((x) => Object.keys(x.timings)))].sort();
console.log(JSON.stringify({
  url: BASE,
  launches: RUNS,
  experiments_per_launch: EXPERIMENTS,
  ui_ms: median(loads.map((l) => l.ui_ms)),
  interactive_ms: median(loads.map((l) => l.interactive_ms)),
  run_ms: median(runs.map((x) => x.run_ms)),
  run_wall_ms: median(runs.map((x) => x.run_wall_ms)),
  stage_ms: Object.fromEntries(stages.map((s) => [s, median(runs.map((x) => x.timings[s] ?? null))])),
  loads,
  runs: runs.map(({ timings, ...rest }) => rest),
}));
