// End to end: the page builds a report from activations collected by transformers (the
// collector's parity step writes them for examples/smollm2.json), equal to the CLI's report from
// the same directory; a link to it waits for the directory; a directory for another spec is
// refused with the reason.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { launch, watchErrors, BASE, screenshot } from './browser.mjs';

const DIR = process.env.HAWTHORNE_COLLECTED_DIR;

async function probeNumbers(page) {
  return page.$$eval('[data-testid=probe-table] [data-hook]', (rows) =>
    Object.fromEntries(rows.map((r) => [r.dataset.hook, [Number(r.dataset.logisticAuroc), Number(r.dataset.massMeanAuroc)]])));
}

test('collected activations open in the page and give the CLI report', { timeout: 600_000, skip: !DIR && 'HAWTHORNE_COLLECTED_DIR is not set' }, async () => {
  const acts = join(DIR, 'transformers-activations');
  const cli = JSON.parse(readFileSync(join(DIR, 'transformers-report', 'report.json'), 'utf8'));
  const link = readFileSync(join(DIR, 'spec-link.txt'), 'utf8').trim();
  const ctx = await launch();
  try {
    const page = await ctx.newPage();
    const errors = watchErrors(page);

    // A directory collected for another spec (the default organism's) is refused, by name.
    await page.goto(BASE + '/');
    await page.waitForSelector('[data-testid=model-ready]', { timeout: 120_000 });
    await page.setInputFiles('[data-testid=collected-dir]', acts);
    await page.waitForSelector('[data-testid=run-error]', { timeout: 60_000 });
    assert.match(await page.textContent('[data-testid=run-error]'), /collected for spec .*run `hawthorne prompts` on this spec/);

    // A link made on a collected report waits for the directory instead of running a model.
    // The zip of the folder gives the report first, then the folder itself gives it again.
    await page.goto(BASE + '/#spec=' + link + '&activations=collected');
    await page.waitForSelector('[data-testid=collected-link-notice]');
    assert.equal(await page.$('[data-testid=run-done]'), null, 'nothing ran before the directory was opened');
    await page.setInputFiles('[data-testid=collected-zip]', acts + '.zip');
    await page.waitForSelector('[data-testid=run-done], [data-testid=run-error]', { timeout: 300_000 });
    let err = await page.$('[data-testid=run-error]');
    assert.equal(err, null, err ? await err.textContent() : '');
    const fromZip = await probeNumbers(page);
    await page.reload();
    await page.waitForSelector('[data-testid=collected-link-notice]');
    assert.equal(await page.$('[data-testid=run-done]'), null, 'the reloaded link waits again');
    await page.setInputFiles('[data-testid=collected-dir]', acts);
    await page.waitForSelector('[data-testid=run-done], [data-testid=run-error]', { timeout: 300_000 });
    err = await page.$('[data-testid=run-error]');
    assert.equal(err, null, err ? await err.textContent() : '');
    assert.deepEqual(await probeNumbers(page), fromZip, 'the zip and the folder give the same report');
    assert.equal(await page.getAttribute('[data-testid=run-done]', 'data-spec-hash'), cli.provenance.spec_hash);
    assert.match(await page.textContent('[data-testid=collected-source]'), /activations collected by transformers/);
    const got = await probeNumbers(page);
    for (const h of cli.probes) {
      const have = got[h.hook];
      assert.ok(have, `page has ${h.hook}`);
      assert.ok(Math.abs(have[0] - h.logistic.auroc) <= 1e-9 && Math.abs(have[1] - h.mass_mean.auroc) <= 1e-9,
        `${h.hook}: page ${have} vs CLI ${h.logistic.auroc}, ${h.mass_mean.auroc}`);
    }
    const verdict = await page.textContent('[data-testid=verdict]');
    assert.ok(verdict.includes(cli.controls.verdict.text.replaceAll('`', '')), `${verdict} vs CLI ${cli.controls.verdict.text}`);
    const share = await page.inputValue('[data-testid=share-link]');
    assert.ok(share.endsWith('&activations=collected'), share);
    await page.locator('[data-testid=collected-panel]').screenshot({ path: join(import.meta.dirname, '..', '..', 'docs', 'collected.png') });
    assert.deepEqual(errors, []);
  } finally {
    await ctx.close();
  }
});
