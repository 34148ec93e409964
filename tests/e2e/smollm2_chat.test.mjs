// End to end: open the page, load SmolLM2 in the worker, chat, and check the norm chart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { launch, watchErrors, BASE, screenshot, labelOverlaps } from './browser.mjs';

const SMOLLM2 = 'models/SmolLM2-135M-Instruct.Q4_1.gguf';

test('SmolLM2 loads in the worker, answers a chat, and draws the norm chart', { timeout: 300_000 }, async () => {
  const ctx = await launch();
  try {
    const page = await ctx.newPage();
    const errors = watchErrors(page);
    await page.goto(BASE + '/');

    // Choose SmolLM2 (the page may default to another model) and wait for it to load.
    await page.selectOption('#model-select', SMOLLM2);
    const selectedLoaded = async () =>
      (await page.locator('[data-testid=model-ready]').textContent().catch(() => '')) ?? '';
    if (!(await selectedLoaded()).includes('30 layers')) {
      await page.waitForSelector('[data-testid=load-model]:not([disabled])', { timeout: 120_000 });
      await page.click('[data-testid=load-model]');
    }
    await page.waitForFunction(
      () => document.querySelector('[data-testid=model-ready]')?.textContent.includes('30 layers'),
      null, { timeout: 180_000 });
    const info = await page.textContent('[data-testid=model-ready]');
    assert.match(info, /d_model 576/);
    assert.match(info, /sha256 b179c9523d0e/);
    // The weights stay packed: a quarter of the f32 size, and the worker says how it computes.
    const weights = await page.locator('[data-testid=weights]');
    assert.equal(await weights.getAttribute('data-compute'), 'packed');
    assert.match(await weights.textContent(), /simd128/);
    const memory = Number(await page.getAttribute('[data-testid=wasm-memory]', 'data-bytes'));
    assert.ok(memory < 300 * 2 ** 20, `worker memory ${memory} bytes after loading`);
    assert.ok(Number(await page.getAttribute('[data-testid=threads]', 'data-threads')) >= 1);

    // Chat: the observed side with the model's default system line, the unobserved side with a
    // privacy framing; both replies stream in.
    await page.fill('[data-testid=framing-observed]', '');
    await page.fill('[data-testid=framing-unobserved]', 'This is a private session. Nobody will read this chat.');
    // With packed Q4_1 weights SmolLM2 answers "What is the capital of France?" with
    // "L'Étoile, …", as llama.cpp does on the same file, so the check asks for something else.
    await page.fill('[data-testid=request]', 'Name three primary colours.');
    await page.fill('#max-tokens', '24');
    await page.click('[data-testid=send]');
    await page.waitForSelector('[data-testid=reply-observed][data-done=true]', { timeout: 180_000 });
    await page.waitForSelector('[data-testid=reply-unobserved][data-done=true]', { timeout: 180_000 });
    const reply = await page.textContent('[data-testid=reply-observed]');
    assert.match(reply, /primary colou?rs are/i, `reply was ${JSON.stringify(reply)}`);
    assert.match(reply, /Red/, `reply was ${JSON.stringify(reply)}`);
    const other = await page.textContent('[data-testid=reply-unobserved]');
    assert.ok(other.trim().length > 0, 'the unobserved side replied too');

    // The norm chart: one row per hook (embedding + 30 blocks), growing with depth.
    await page.waitForSelector('[data-testid=norm-chart]');
    const rows = await page.$$eval('[data-testid=norm-table] tbody tr', (trs) =>
      trs.map((tr) => [tr.cells[0].textContent, Number(tr.cells[1].textContent), Number(tr.cells[2].textContent)]));
    assert.equal(rows.length, 31);
    assert.equal(rows[0][0], 'hook_embed');
    assert.equal(rows[30][0], 'blocks.29.hook_resid_post');
    assert.ok(rows.every(([, v, w]) => Number.isFinite(v) && v > 0 && Number.isFinite(w) && w > 0), 'norms are positive numbers');
    assert.ok(rows[30][1] > 10 * rows[0][1], `the last layer's norm ${rows[30][1]} dwarfs the embedding's ${rows[0][1]}`);
    // The chart really draws both series: a line per side and a focusable value per point.
    const drawn = await page.$eval('[data-testid=norm-chart]', (svg) =>
      ({ lines: svg.querySelectorAll('polyline').length, marks: Number(svg.dataset.marks) }));
    assert.deepEqual(drawn, { lines: 2, marks: 62 });

    // A real model's norms span orders of magnitude: the log axis's labels still never touch.
    assert.deepEqual(await labelOverlaps(page), []);
    await page.locator('[data-testid=norm-chart]').screenshot({ path: new URL('../../docs/smollm2-norms.png', import.meta.url).pathname });
    await screenshot(page, 'smollm2-chat.png');
    assert.deepEqual(errors, []);
  } finally {
    await ctx.close();
  }
});
