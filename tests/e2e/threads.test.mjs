// The worker's threads: one by default (faster on small models), several with `?threads=N`
// where the page is cross-origin isolated (the server's COOP and COEP headers, or the service
// worker's on hosts that cannot send them), one elsewhere, with the same page working either
// way. HAWTHORNE_PLAIN_URL serves the same page without the
// isolation headers, as a static host would (`cargo xtask test` starts both servers).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { launch, watchErrors, BASE } from './browser.mjs';

const PLAIN = process.env.HAWTHORNE_PLAIN_URL;
const plainOnly = PLAIN ? {} : { skip: 'HAWTHORNE_PLAIN_URL is not set (`cargo xtask test` sets it)' };

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
    const cores = await page.evaluate(() => Math.min(navigator.hardwareConcurrency || 1, 8));
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
    await page.waitForFunction(async () => !!(await navigator.serviceWorker.ready).active, null, { timeout: 60_000 });
    await page.reload();
    await page.waitForFunction(() => !!navigator.serviceWorker.controller, null, { timeout: 60_000 });
    assert.equal(await page.evaluate(() => self.crossOriginIsolated), true);
    const cores = await page.evaluate(() => Math.min(navigator.hardwareConcurrency || 1, 8));
    assert.equal(await threadsShown(page), cores);
    await chatAnswers(page);
    assert.deepEqual(errors, []);
  } finally {
    await ctx.close();
  }
});
