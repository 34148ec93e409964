// End to end: the user's own model file. It is checked in the worker before loading (shown
// architecture, tensor types, memory), a file that is not a model is refused with a sentence,
// and a share link made on a user's file asks for that file and refuses a different one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { launch, watchErrors, BASE, screenshot } from './browser.mjs';

const ROOT = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const DECEPTIVE = join(ROOT, 'models', 'organism-deceptive.gguf');
const CONTROL = join(ROOT, 'models', 'organism-control.gguf');
const QWEN3 = join(ROOT, 'crates', 'model', 'tests', 'fixtures', 'families', 'qwen3.gguf');
const NOT_A_MODEL = join(ROOT, 'README.md');

async function openFile(page, path) {
  await page.setInputFiles('[data-testid=model-file]', path);
  await page.waitForSelector('[data-testid=model-check], [data-testid=model-refusal]', { timeout: 60_000 });
}

async function loadOpened(page, layers) {
  await page.click('[data-testid=load-user-model]');
  await page.waitForFunction(
    (n) => document.querySelector('[data-testid=model-ready]')?.textContent.includes(`${n} layers`)
      || document.querySelector('[data-testid=load-error]'),
    layers, { timeout: 120_000 });
}

test('a user file is checked before loading, loads, and a wrong file is refused', { timeout: 300_000 }, async () => {
  const ctx = await launch();
  try {
    const page = await ctx.newPage();
    const errors = watchErrors(page);
    await page.goto(BASE + '/');
    await page.waitForSelector('[data-testid=model-ready]', { timeout: 120_000 });

    // Not a GGUF: refused with a sentence, nothing loads.
    await openFile(page, NOT_A_MODEL);
    assert.match(await page.textContent('[data-testid=model-refusal]'), /README\.md is not a model Hawthorne can load: not a GGUF file/);

    // Another architecture: its header is read and shown first.
    await openFile(page, QWEN3);
    const check = await page.textContent('[data-testid=model-check]');
    assert.match(check, /qwen3 architecture · 2 layers · d_model 32/);
    assert.match(check, /F32 ×\d+/);
    assert.match(check, /needs about/);
    await loadOpened(page, 2);
    assert.match(await page.textContent('[data-testid=architecture]'), /qwen3/);

    // The organism as the user's own file: the spec now names it and pins its hash.
    await openFile(page, DECEPTIVE);
    await loadOpened(page, 4);
    const link = await page.inputValue('[data-testid=share-link]');
    await screenshot(page, 'own-model.png');

    // The link, opened elsewhere, asks for the file.
    const page2 = await ctx.newPage();
    await page2.goto(link);
    await page2.waitForSelector('[data-testid=file-needed]');
    assert.match(await page2.textContent('[data-testid=file-needed]'), /organism-deceptive\.gguf \(6\.7 MB\), sha256 [0-9a-f]{12}…/);
    await page2.waitForSelector('[data-testid=model-ready]', { timeout: 120_000 });
    await page2.click('[data-testid=run]').catch(() => {});
    // A different file is refused, and the link's experiment is kept.
    await openFile(page2, CONTROL);
    await loadOpened(page2, 4);
    assert.match(await page2.textContent('[data-testid=load-error]'), /a different file/);
    assert.equal(await page2.inputValue('[data-testid=share-link]'), link);
    // The right file runs the experiment.
    await openFile(page2, DECEPTIVE);
    await loadOpened(page2, 4);
    await page2.waitForSelector('[data-testid=run-done]', { timeout: 300_000 });
    assert.match(await page2.textContent('[data-testid=verdict]'), /Evidence/);
    assert.deepEqual(errors, []);
  } finally {
    await ctx.close();
  }
});
