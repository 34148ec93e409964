// "Compare models": the current experiment on both organisms, one after the other in the
// worker; the rows match the native CLI's report, the link reopens the comparison, and Stop
// ends it after the model running.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { launch, watchErrors, BASE, screenshot, labelOverlaps } from './browser.mjs';

const CLI_REPORT = process.env.HAWTHORNE_CLI_REPORT;

test('two organisms are compared in the worker, and the link reopens the comparison', { timeout: 600_000 }, async () => {
  const ctx = await launch();
  try {
    const page = await ctx.newPage();
    const errors = watchErrors(page);
    await page.goto(BASE + '/');
    await page.waitForSelector('[data-testid=model-ready]', { timeout: 120_000 });
    // Both organisms are ticked by default, SmolLM2 is not.
    assert.equal(await page.isChecked('[data-testid=compare-organism-deceptive]'), true);
    assert.equal(await page.isChecked('[data-testid=compare-organism-control]'), true);
    assert.equal(await page.isChecked('[data-testid=compare-smollm2-135m-instruct]'), false);
    await page.click('[data-testid=compare-start]');
    await page.waitForSelector('[data-testid=compare-status][data-done=true]', { timeout: 300_000 });
    assert.match(await page.textContent('[data-testid=compare-status]'), /Done: 2 models/);
    const rows = await page.$$eval('[data-testid=compare-table] tr[data-model]', (rs) => rs.map((r) => [r.dataset.model, Number(r.dataset.auroc), r.lastElementChild.textContent]));
    assert.deepEqual(rows.map((r) => r[0]), ['organism-deceptive', 'organism-control']);
    // The deceptive organism's row is the CLI's chosen-layer number for the same spec.
    const cli = JSON.parse(readFileSync(CLI_REPORT, 'utf8'));
    assert.ok(Math.abs(rows[0][1] - cli.layer_choice.test.auroc) <= 1e-9, `${rows[0][1]} vs CLI ${cli.layer_choice.test.auroc}`);
    assert.equal(rows[0][2], 'evidence');
    assert.equal(rows[1][2], 'no evidence');
    await page.waitForSelector('[data-testid=compare-chart]');
    assert.deepEqual(await labelOverlaps(page), []);
    const box = await page.$eval('[data-testid=compare-panel]', (el) => el.scrollWidth <= el.clientWidth + 1);
    assert.ok(box, 'the panel does not scroll sideways');
    await (await page.$('[data-testid=compare-panel]')).screenshot({ path: new URL('../../docs/compare-models.png', import.meta.url).pathname });

    // The link holds the models and the spec: a fresh page ticks the same models.
    await page.click('[data-testid=compare-smollm2-135m-instruct]');
    await page.click('[data-testid=compare-organism-control]');
    const href = await page.getAttribute('[data-testid=compare-link]', 'href');
    assert.match(href, /^#compare=organism-deceptive,smollm2-135m-instruct&spec=/);
    const other = await ctx.newPage();
    await other.goto(BASE + '/' + href);
    await other.waitForSelector('[data-testid=compare-panel]');
    assert.equal(await other.isChecked('[data-testid=compare-smollm2-135m-instruct]'), true);
    assert.equal(await other.isChecked('[data-testid=compare-organism-control]'), false);
    assert.deepEqual(errors, []);
  } finally {
    await ctx.close();
  }
});

test('Stop ends a comparison after the model that is running', { timeout: 300_000 }, async () => {
  const ctx = await launch();
  try {
    const page = await ctx.newPage();
    await page.goto(BASE + '/');
    await page.waitForSelector('[data-testid=model-ready]', { timeout: 120_000 });
    await page.click('[data-testid=compare-start]');
    await page.click('[data-testid=compare-stop]');
    await page.waitForSelector('[data-testid=compare-status][data-done=true]', { timeout: 120_000 });
    assert.match(await page.textContent('[data-testid=compare-status]'), /Stopped after [01] of 2 models/);
    // The page still works: the Compare button comes back (after a fresh worker has loaded
    // the model, when Stop found a step still running and replaced the worker).
    await page.waitForSelector('[data-testid=compare-start]:not([disabled])', { timeout: 120_000 });
  } finally {
    await ctx.close();
  }
});
