// After one visit the page works with no network: the service worker serves the app and the
// model from its cache.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { launch, watchErrors, BASE } from './browser.mjs';

test('the page and the default model load offline after the first visit', { timeout: 300_000 }, async () => {
  const ctx = await launch();
  try {
    const page = await ctx.newPage();
    await page.goto(BASE + '/');
    await page.waitForSelector('[data-testid=model-ready]', { timeout: 120_000 });
    // Wait until the service worker controls the page and has cached the shell.
    await page.waitForFunction(async () => {
      const reg = await navigator.serviceWorker.ready;
      return !!reg.active && !!navigator.serviceWorker.controller;
    }, null, { timeout: 60_000 }).catch(async () => {
      // The first load installs the worker; a reload brings the page under its control.
      await page.reload();
      await page.waitForFunction(() => !!navigator.serviceWorker.controller, null, { timeout: 60_000 });
    });
    await page.waitForSelector('[data-testid=model-ready]', { timeout: 120_000 });
    // The install step has cached the shell and the bundled organisms.
    await page.waitForFunction(async () => {
      const keys = await caches.keys();
      for (const k of keys) {
        const c = await caches.open(k);
        if (await c.match('models/organism-deceptive.gguf')) return true;
      }
      return false;
    }, null, { timeout: 60_000 });
    await ctx.setOffline(true);
    const errors = watchErrors(page);
    await page.reload();
    await page.waitForSelector('[data-testid=model-ready]', { timeout: 120_000 });
    assert.match(await page.textContent('[data-testid=model-ready]'), /organism/i);
    // And the model still answers.
    await page.click('[data-testid=send]');
    await page.waitForSelector('[data-testid=reply-unobserved][data-done=true]', { timeout: 120_000 });
    assert.ok((await page.textContent('[data-testid=reply-unobserved]')).trim().length > 0);
    assert.deepEqual(errors.filter((e) => !e.includes('ERR_INTERNET_DISCONNECTED')), []);
  } finally {
    await ctx.close();
  }
});
