// The worker's threads: one by default (faster on small models), several with `?threads=N`
// where the page is cross-origin isolated (the server's COOP and COEP headers, or the service
// worker's on hosts that cannot send them), one elsewhere, with the same page working either
// way. HAWTHORNE_PLAIN_URL serves the same page without the
// isolation headers, as a static host would (`cargo xtask test` starts both servers).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { launch, watchErrors, BASE } from './browser.mjs';

const PLAIN = process.env.HAWTHORNE_PLAIN_URL;
const plainOnly = PLAIN ? {} : { skip: 'HAWTHORNE_PLAIN_URL is not set (`cargo xtask test` sets it)' };

/** Threads `?threads=8` gives on an isolated page: every core, or one if `build-web` had no
 * nightly toolchain for the threaded worker (it warns, and the page falls back). */
async function expectedThreads(page) {
  return page.evaluate(async () => {
    const built = (await fetch('pkg/mt/worker.js', { method: 'HEAD' })).ok;
    return built ? Math.min(navigator.hardwareConcurrency || 1, 8) : 1;
  });
}

async function threadsShown(page) {
  await page.waitForSelector('[data-testid=model-ready]', { timeout: 120_000 });
  return Number(await page.getAttribute('[data-testid=threads]', 'data-threads'));
}

async function chatAnswers(page) {
  await page.click('[data-testid=send]');
  await page.waitForSelector('[data-testid=reply-unobserved][data-done=true]', { timeout: 120_000 });
  assert.ok((await page.textContent('[data-testid=reply-unobserved]')).trim().length > 0);
}

test('an isolated page runs one thread by default and every core with ?threads=8', { timeout: 300_000 }, async () => {
  const ctx = await launch();
  try {
    const page = await ctx.newPage();
    const errors = watchErrors(page);
    await page.goto(BASE + '/');
    assert.equal(await page.evaluate(() => self.crossOriginIsolated), true, 'the server sends COOP and COEP');
    assert.equal(await threadsShown(page), 1);
    await chatAnswers(page);
    await page.goto(BASE + '/?threads=8');
    const cores = await expectedThreads(page);
    await page.waitForFunction((n) => document.querySelector('[data-testid=threads]')?.dataset.threads === String(n), cores, { timeout: 120_000 });
    await chatAnswers(page);
    assert.deepEqual(errors, []);
  } finally {
    await ctx.close();
  }
});

test('a page that is not cross-origin isolated falls back to one thread, with no error', { timeout: 300_000, ...plainOnly }, async () => {
  const ctx = await launch({ serviceWorkers: 'block' });
  try {
    const page = await ctx.newPage();
    const errors = watchErrors(page);
    await page.goto(PLAIN + '/?threads=8');
    assert.equal(await page.evaluate(() => self.crossOriginIsolated), false);
    assert.equal(await threadsShown(page), 1);
    await chatAnswers(page);
    assert.deepEqual(errors, []);
  } finally {
    await ctx.close();
  }
});

test('on a host without the headers, the service worker makes the page isolated from its second load', { timeout: 300_000, ...plainOnly }, async () => {
  const ctx = await launch();
  try {
    const page = await ctx.newPage();
    const errors = watchErrors(page);
    await page.goto(PLAIN + '/?threads=8');
    assert.equal(await page.evaluate(() => self.crossOriginIsolated), false);
    // The page reloads itself once the service worker controls it (`web/boot.js`, only with
    // ?threads); waiting for the function survives that navigation.
    await page.waitForFunction(() => !!navigator.serviceWorker.controller && self.crossOriginIsolated, null, { timeout: 60_000 });
    const cores = await expectedThreads(page);
    assert.equal(await threadsShown(page), cores);
    await chatAnswers(page);
    assert.deepEqual(errors, []);
  } finally {
    await ctx.close();
  }
});

test('the threaded worker reports the same numbers as the CLI', { timeout: 600_000 }, async () => {
  const cliReport = process.env.HAWTHORNE_CLI_REPORT;
  assert.ok(cliReport, 'HAWTHORNE_CLI_REPORT points at the CLI report of examples/organism-deceptive.json');
  const cli = JSON.parse(readFileSync(cliReport, 'utf8'));
  const ctx = await launch();
  try {
    const page = await ctx.newPage();
    const errors = watchErrors(page);
    await page.goto(BASE + '/?threads=8');
    const cores = await expectedThreads(page);
    assert.equal(await threadsShown(page), cores);
    await page.click('[data-testid=run]');
    await page.waitForSelector('[data-testid=run-done], [data-testid=run-error]', { timeout: 300_000 });
    assert.equal(await page.$('[data-testid=run-error]'), null);
    assert.equal(await page.getAttribute('[data-testid=run-done]', 'data-spec-hash'), cli.provenance.spec_hash, 'same spec');
    const got = await page.$$eval('[data-testid=probe-table] [data-hook]', (rows) =>
      Object.fromEntries(rows.map((r) => [r.dataset.hook, [
        Number(r.dataset.logisticAuroc), Number(r.dataset.massMeanAuroc),
        Number(r.dataset.randomBest), Number(r.dataset.shuffledAuroc)]])));
    for (const h of cli.probes) {
      const want = [h.logistic.auroc, h.mass_mean.auroc, h.random_directions.best_auroc, h.shuffled_labels.auroc];
      want.forEach((w, i) => assert.ok(Math.abs(w - got[h.hook][i]) <= 1e-9, `${h.hook}[${i}]: page ${got[h.hook][i]} vs CLI ${w}`));
    }
    const gap = await page.getAttribute('[data-testid=gap-table] tr[data-group=all]', 'data-compliance-gap');
    assert.ok(Math.abs(Number(gap) - cli.behaviour.all.compliance_gap) <= 1e-9, `gap ${gap} vs CLI ${cli.behaviour.all.compliance_gap}`);
    assert.deepEqual(errors, []);
  } finally {
    await ctx.close();
  }
});
