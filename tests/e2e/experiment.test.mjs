// End to end on the default organism: run the experiment in the worker, compare every probe
// number with the native CLI's report for the same spec, steer, share the link, open a bad
// link and a lesson link. The UI thread must never be blocked for more than 50 ms during a run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { launch, watchErrors, BASE, screenshot } from './browser.mjs';

const CLI_REPORT = process.env.HAWTHORNE_CLI_REPORT;

/** The probe table's numbers: { hook: [logistic, mass-mean, random best, shuffled] }. */
async function probeNumbers(page) {
  return page.$$eval('[data-testid=probe-table] [data-hook]', (rows) =>
    Object.fromEntries(rows.map((r) => [r.dataset.hook, [
      Number(r.dataset.logisticAuroc), Number(r.dataset.massMeanAuroc),
      Number(r.dataset.randomBest), Number(r.dataset.shuffledAuroc)]])));
}

/** An NPY v1.0 little-endian f32 file: its header text and data. */
function readNpy(buf) {
  assert.ok(buf.subarray(0, 6).equals(Buffer.from('\x93NUMPY', 'latin1')), 'NPY magic');
  const len = buf.readUInt16LE(8);
  const header = buf.subarray(10, 10 + len).toString('latin1');
  assert.match(header, /'descr': '<f4'/);
  const body = buf.subarray(10 + len);
  return { header, data: new Float32Array(body.buffer.slice(body.byteOffset, body.byteOffset + body.length)) };
}

async function runAndWait(page) {
  await page.waitForSelector('[data-testid=model-ready]', { timeout: 120_000 });
  await page.evaluate(() => {
    window.__longTasks = [];
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) window.__longTasks.push(e.duration);
    }).observe({ type: 'longtask' });
  });
  await page.click('[data-testid=run]');
  await page.waitForSelector('[data-testid=run-done], [data-testid=run-error]', { timeout: 300_000 });
  const err = await page.$('[data-testid=run-error]');
  assert.equal(err, null, err ? await err.textContent() : '');
  return page.evaluate(() => window.__longTasks);
}

test('the default organism experiment runs in the worker and matches the CLI', { timeout: 600_000 }, async () => {
  const ctx = await launch();
  try {
    const page = await ctx.newPage();
    const errors = watchErrors(page);
    await page.goto(BASE + '/');
    const longTasks = await runAndWait(page);
    assert.ok(longTasks.every((d) => d <= 50), `UI thread blocked during the run: ${JSON.stringify(longTasks)}`);
    await page.waitForSelector('[data-testid=probe-chart]');
    const got = await probeNumbers(page);
    assert.ok(Object.keys(got).length > 2, 'a probe per hook');

    // Every number equals the native CLI's report for the same spec.
    assert.ok(CLI_REPORT, 'HAWTHORNE_CLI_REPORT points at the CLI report of examples/organism-deceptive.json');
    const cli = JSON.parse(readFileSync(CLI_REPORT, 'utf8'));
    const specHash = await page.getAttribute('[data-testid=run-done]', 'data-spec-hash');
    assert.equal(specHash, cli.provenance.spec_hash, 'same spec');
    for (const h of cli.probes) {
      const want = [h.logistic.auroc, h.mass_mean.auroc, h.random_directions.best_auroc, h.shuffled_labels.auroc];
      const have = got[h.hook];
      assert.ok(have, `page has ${h.hook}`);
      want.forEach((w, i) => assert.ok(Math.abs(w - have[i]) <= 1e-9, `${h.hook}[${i}]: page ${have[i]} vs CLI ${w}`));
    }
    // The page says how many independent framings stand behind the numbers, as the report does.
    const units = cli.test_units;
    assert.ok(units, 'the CLI report counts its test units');
    const unitsText = await page.textContent('[data-testid=test-units]');
    assert.ok(unitsText.includes(`${units.negative_framings} observed and ${units.positive_framings} unobserved framings`), unitsText);
    // The verdict, its controls and the permutation test: the page reaches the CLI's.
    assert.ok(cli.controls, 'the CLI report has controls');
    const verdict = await page.textContent('[data-testid=verdict]');
    assert.ok(verdict.includes(cli.controls.verdict.text.replaceAll('`', '')), `${verdict} vs CLI ${cli.controls.verdict.text}`);
    for (const c of cli.controls.lexical) {
      const cell = await page.textContent(`[data-testid=controls-table] tr[data-control=${c.name}] td`);
      assert.ok(cell.startsWith(c.metrics.auroc.toFixed(3)), `${c.name}: ${cell} vs CLI ${c.metrics.auroc}`);
    }
    const gap = await page.getAttribute('[data-testid=gap-table] tr[data-group=all]', 'data-compliance-gap');
    assert.ok(Math.abs(Number(gap) - cli.behaviour.all.compliance_gap) <= 1e-9, `gap ${gap} vs CLI ${cli.behaviour.all.compliance_gap}`);
    // The NPY exports hold the same arrays `hawthorne run` wrote next to its report: the same
    // header (dtype, shape) and the same floats up to wasm-vs-native summation order.
    for (const [button, file] of [['npy-activations', 'activations.npy'], ['npy-logistic', 'directions_logistic.npy']]) {
      const [download] = await Promise.all([page.waitForEvent('download'), page.click(`[data-testid=${button}]`)]);
      const got = readNpy(readFileSync(await download.path()));
      const want = readNpy(readFileSync(join(dirname(CLI_REPORT), file)));
      assert.equal(got.header, want.header, `${file} header`);
      let scale = 0, diff = 0;
      want.data.forEach((w, i) => { scale = Math.max(scale, Math.abs(w)); diff = Math.max(diff, Math.abs(w - got.data[i])); });
      console.log(`${file}: ${got.header.trim()} max |page − CLI| = ${diff.toExponential(2)} (max |CLI| ${scale.toFixed(3)})`);
      assert.ok(diff <= 1e-4 * scale, `${file}: max difference ${diff} against scale ${scale}`);
    }
    // Per-token probe scores for a chosen prompt.
    await page.click('[data-testid=score-tokens]');
    await page.waitForSelector('[data-testid=token-scores] .tok');
    const scores = await page.$$eval('[data-testid=token-scores] .tok', (s) => s.map((e) => Number(e.dataset.score)));
    assert.ok(scores.length > 10 && scores.every(Number.isFinite), `token scores ${scores}`);
    await screenshot(page, 'organism-report.png');

    // Steer: a negative α at the steering layer, resend, the unobserved reply is regenerated.
    await page.fill('[data-testid=request]', cli.spec.scenario.tasks[0].text);
    await page.click('[data-testid=send]');
    await page.waitForSelector('[data-testid=reply-unobserved][data-done=true]', { timeout: 120_000 });
    const before = await page.textContent('[data-testid=reply-unobserved]');
    await page.locator('[data-testid=steer-alpha]').fill('-1');
    await page.click('[data-testid=steer-send]');
    await page.waitForFunction(() => document.querySelector('#chat-heading') &&
      [...document.querySelectorAll('h3')].some((h) => h.textContent.includes('steered')), null, { timeout: 60_000 });
    await page.waitForSelector('[data-testid=reply-unobserved][data-done=true]', { timeout: 120_000 });
    const after = await page.textContent('[data-testid=reply-unobserved]');
    console.log(`unobserved reply before steering: ${JSON.stringify(before)}\nafter α = -1: ${JSON.stringify(after)}`);
    await screenshot(page, 'organism-steered.png');

    // The share link reproduces the numbers in a fresh page.
    const link = await page.inputValue('[data-testid=share-link]');
    assert.match(link, /#spec=/);
    const page2 = await ctx.newPage();
    const errors2 = watchErrors(page2);
    await page2.goto(link);
    await page2.waitForSelector('[data-testid=run-done]', { timeout: 300_000 });
    await page2.waitForSelector('[data-testid=probe-chart]');
    assert.deepEqual(await probeNumbers(page2), got, 'same numbers from the link');
    assert.deepEqual(errors, []);
    assert.deepEqual(errors2, []);
  } finally {
    await ctx.close();
  }
});

test('a malformed link shows a readable message, keeps its text, and the default still runs', { timeout: 300_000 }, async () => {
  const ctx = await launch();
  try {
    const page = await ctx.newPage();
    const errors = watchErrors(page);
    const bad = 'AAAA-this-is-not-a-spec';
    await page.goto(BASE + '/#spec=' + bad);
    await page.waitForSelector('[data-testid=link-error]');
    assert.match(await page.textContent('[data-testid=link-error]'), /could not be opened/);
    assert.equal(await page.inputValue('#bad-link'), bad, 'the link text is kept');
    assert.match(await page.textContent('[data-testid=spec-summary]'), /organism-deceptive/);
    // A truncated real link and a newer-version link are refused the same way.
    const good = new URL(await page.inputValue('[data-testid=share-link]')).hash.replace('#spec=', '');
    await page.goto(BASE + '/?t=1#spec=' + good.slice(0, good.length / 2));
    await page.waitForSelector('[data-testid=link-error]');
    await screenshot(page, 'bad-link.png');
    await runAndWait(page);
    assert.deepEqual(errors, []);
  } finally {
    await ctx.close();
  }
});

test('a lesson link opens its explanation and runs its experiment', { timeout: 300_000 }, async () => {
  const ctx = await launch();
  try {
    const page = await ctx.newPage();
    await page.goto(BASE + '/');
    const href = await page.getAttribute('[data-testid=lesson-link-4]', 'href');
    await page.goto(BASE + '/' + href);
    await page.waitForSelector('[data-testid=lesson][data-lesson="4"]');
    assert.match(await page.textContent('[data-testid=lesson]'), /the concept or the words/);
    await page.waitForSelector('[data-testid=run-done]', { timeout: 300_000 });
    assert.match(await page.textContent('[data-testid=spec-summary]'), /organism-deceptive/);
    // Split at random, the test prompts share their words with the training prompts: the
    // verdict names the TF-IDF control.
    assert.match(await page.textContent('[data-testid=verdict]'), /No evidence beyond the words/);
    assert.match(await page.textContent('[data-testid=controls-table] tr[data-control=tfidf] td'), /^1\.000/);
    await screenshot(page, 'lesson-4.png');
  } finally {
    await ctx.close();
  }
});
