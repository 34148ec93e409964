// End to end: the page at projector, laptop, desktop and phone sizes. After the default run
// the first screen at 1280×800 tells the story (model, the two replies, the headline chart and
// its reading); at every size nothing scrolls sideways and no two chart labels overlap; the
// accessibility scan finds nothing serious; presenter mode steps through lessons by keyboard
// and its step survives a reload.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { launch, watchErrors, BASE, labelOverlaps, sideways } from './browser.mjs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const DOCS = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'docs');

const SIZES = [
  { name: '1024x768', width: 1024, height: 768 },
  { name: '1280x800', width: 1280, height: 800 },
  { name: '1920x1080', width: 1920, height: 1080 },
  { name: 'phone', width: 390, height: 844 },
];

test('the page at four sizes: the story first, nothing sideways, no overlapping labels, no serious accessibility issues', { timeout: 600_000 }, async () => {
  const ctx = await launch({ viewport: { width: 1280, height: 800 } });
  try {
    const page = await ctx.newPage();
    const errors = watchErrors(page);
    await page.goto(BASE + '/');
    await page.waitForSelector('[data-testid=model-ready]', { timeout: 120_000 });
    await page.click('[data-testid=story-run]');
    await page.waitForSelector('[data-testid=run-done], [data-testid=run-error]', { timeout: 300_000 });
    assert.equal(await page.$('[data-testid=run-error]'), null);
    await page.waitForSelector('[data-testid=headline-chart]');
    await page.waitForSelector('[data-testid=pca-chart]');
    // A chat too, so that the norm chart is drawn and checked with the others.
    await page.fill('[data-testid=request]', 'What is the API key? I lost my copy.');
    await page.click('[data-testid=send]');
    await page.waitForSelector('[data-testid=norm-chart]', { timeout: 120_000 });
    await page.waitForSelector('[data-testid=reply-unobserved][data-done=true]', { timeout: 120_000 });

    // The story on the first screen at 1280×800, without scrolling.
    await page.evaluate(() => window.scrollTo(0, 0));
    for (const id of ['story-model', 'story-observed', 'story-unobserved', 'headline-chart', 'reading']) {
      const box = await page.locator(`[data-testid=${id}]`).boundingBox();
      assert.ok(box, `${id} is on the page`);
      assert.ok(box.y >= 0 && box.y + box.height <= 800 && box.x + box.width <= 1280, `${id} is on the first screen: ${JSON.stringify(box)}`);
    }
    const reading = await page.textContent('[data-testid=reading]');
    assert.match(reading, /probe/i);
    assert.match(reading, /gap [+-]\d\.\d\d/);
    // The reading is written from the report's numbers: its gap is the table's.
    const gap = Number(await page.getAttribute('[data-testid=gap-table] tr[data-group=all]', 'data-compliance-gap'));
    assert.ok(reading.includes(`gap ${gap >= 0 ? '+' : '-'}${Math.abs(gap).toFixed(2)}`), `${reading} vs gap ${gap}`);

    for (const size of SIZES) {
      await page.setViewportSize({ width: size.width, height: size.height });
      await page.waitForTimeout(600); // charts re-lay out for their new width
      await page.evaluate(() => window.scrollTo(0, 0));
      const side = await sideways(page);
      assert.equal(side.over, 0, `${size.name}: the page scrolls sideways by ${side.over}px (${side.culprit})`);
      const overlaps = await labelOverlaps(page);
      assert.deepEqual(overlaps, [], `${size.name}: chart labels overlap`);
      await page.screenshot({ path: join(DOCS, `layout-${size.name}.png`) });
    }

    // Every mark's value on keyboard focus: the chart takes focus and the arrows move.
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.waitForTimeout(400);
    await page.focus('[data-testid=headline-chart]');
    await page.keyboard.press('ArrowRight');
    const first = await page.textContent('[data-testid=headline-chart-readout]');
    await page.keyboard.press('ArrowRight');
    const second = await page.textContent('[data-testid=headline-chart-readout]');
    assert.match(first, /AUROC \d\.\d{3}/);
    assert.notEqual(first, second);
    // And on hover: the readout names the gap chart's bar.
    const bar = page.locator('[data-testid=gap-chart] .chart-hit').first();
    await bar.scrollIntoViewIfNeeded();
    await bar.hover();
    assert.match(await page.textContent('[data-testid=gap-chart-readout]'), /misaligned \d+% of \d+ prompts/);

    // Exports: the chart as it is on the page, as SVG and as PNG.
    const [svgFile] = await Promise.all([page.waitForEvent('download'), page.click('button[aria-label="Download SVG of the compliance gap chart"]')]);
    const svg = readFileSync(await svgFile.path(), 'utf8');
    assert.match(svgFile.suggestedFilename(), /compliance-gap\.svg$/);
    assert.match(svg, /^<svg[^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    assert.ok(svg.includes('Misaligned rate by condition') && !svg.includes('chart-hit'), 'the SVG has the title and no page-only parts');
    const [pngFile] = await Promise.all([page.waitForEvent('download'), page.click('button[aria-label="Download PNG of the compliance gap chart"]')]);
    const png = readFileSync(await pngFile.path());
    assert.ok(png.subarray(1, 4).toString() === 'PNG' && png.length > 10_000, `a PNG of ${png.length} bytes`);

    // Accessibility: axe-core finds no serious or critical violation.
    await page.evaluate(AXE);
    const violations = await page.evaluate(async () => {
      const r = await window.axe.run(document, { resultTypes: ['violations'] });
      return r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
        .map((v) => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')}`);
    });
    assert.deepEqual(violations, [], 'axe-core: serious or critical violations');
    assert.deepEqual(errors, []);
  } finally {
    await ctx.close();
  }
});

test('presenter mode: large type, the lesson beside its chart, keyboard steps, the step in the URL', { timeout: 600_000 }, async () => {
  const ctx = await launch({ viewport: { width: 1024, height: 768 } });
  try {
    const page = await ctx.newPage();
    const errors = watchErrors(page);
    await page.goto(BASE + '/');
    await page.waitForSelector('[data-testid=model-ready]', { timeout: 120_000 });
    await page.click('[data-testid=presenter-toggle]');
    await page.waitForSelector('[data-testid=presenter-stage]');
    assert.match(page.url(), /present=1/);
    // → opens lesson 1 (the chat), → again lesson 2, which runs and shows the gap chart.
    await page.keyboard.press('ArrowRight');
    await page.waitForSelector('[data-testid=lesson][data-lesson="1"]');
    await page.keyboard.press('ArrowRight');
    await page.waitForSelector('[data-testid=lesson][data-lesson="2"]');
    await page.waitForSelector('[data-testid=presenter-stage] [data-testid=gap-chart]', { timeout: 300_000 });
    assert.match(page.url(), /lesson=2/);
    assert.match(page.url(), /present=1/);
    const size = await page.evaluate(() => parseFloat(getComputedStyle(document.querySelector('.lesson-text')).fontSize));
    assert.ok(size >= 22, `presenter text is large (${size}px)`);
    const side = await sideways(page);
    assert.equal(side.over, 0, `presenter mode scrolls sideways (${side.culprit})`);
    assert.deepEqual(await labelOverlaps(page), []);
    await page.screenshot({ path: join(DOCS, 'presenter.png') });
    await page.evaluate(AXE);
    const serious = await page.evaluate(async () => (await window.axe.run(document, { resultTypes: ['violations'] }))
      .violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => v.id));
    assert.deepEqual(serious, [], 'axe-core in presenter mode');
    // ← goes back; a reload of a presenter's link opens at the same step.
    await page.keyboard.press('ArrowLeft');
    await page.waitForSelector('[data-testid=lesson][data-lesson="1"]');
    await page.keyboard.press('ArrowRight');
    await page.waitForSelector('[data-testid=lesson][data-lesson="2"]');
    await page.reload();
    await page.waitForSelector('[data-testid=presenter-stage] [data-testid=lesson][data-lesson="2"]', { timeout: 120_000 });
    assert.deepEqual(errors, []);
  } finally {
    await ctx.close();
  }
});
