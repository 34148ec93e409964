// The static site (`cargo xtask site`) hosted under a subpath by a plain static server, as
// GitHub Pages or `python3 -m http.server` would host it: no COOP/COEP headers, nothing but
// files. The page must load, run the default experiment, follow a lesson link, ask for nothing
// outside its directory, and work offline after the first visit; `?threads=N` must get a
// cross-origin-isolated page by the service worker's headers.
//
// HAWTHORNE_SITE_DIR names the site's directory (`cargo xtask test` writes one to
// target/site-test/hawthorne); its parent is served, so the page lives at /<dir name>/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { launch, watchErrors } from './browser.mjs';

const SITE = process.env.HAWTHORNE_SITE_DIR;
const skip = SITE ? {} : { skip: 'HAWTHORNE_SITE_DIR is not set (`cargo xtask test` sets it; or run `cargo xtask site --out DIR` and point it there)' };

let server;
let root; // http://127.0.0.1:PORT
let prefix; // /hawthorne/
const log = []; // every request the server answered: { method, path, status }

before(async () => {
  if (!SITE) return;
  const dir = resolve(SITE);
  assert.ok(existsSync(join(dir, '.hawthorne-site')) && existsSync(join(dir, 'index.html')),
    `${dir} is not a site written by \`cargo xtask site\``);
  prefix = `/${basename(dir)}/`;
  // Port 0: the OS picks a free one, and the server says which (unbuffered, -u).
  server = spawn('python3', ['-u', '-m', 'http.server', '0', '--bind', '127.0.0.1', '--directory', dirname(dir)],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  server.stderr.setEncoding('utf8');
  server.stderr.on('data', (text) => {
    for (const m of text.matchAll(/"([A-Z]+) (\S+) HTTP\/[\d.]+" (\d{3})/g)) log.push({ method: m[1], path: m[2], status: Number(m[3]) });
  });
  root = await new Promise((ok, fail) => {
    let out = '';
    server.stdout.setEncoding('utf8');
    server.stdout.on('data', (text) => {
      out += text;
      const port = out.match(/port (\d+)/);
      if (port) ok(`http://127.0.0.1:${port[1]}`);
    });
    server.on('exit', (code) => fail(new Error(`python3 -m http.server exited (${code}): ${out}`)));
    setTimeout(() => fail(new Error(`python3 -m http.server did not start: ${out}`)), 10_000);
  });
});

after(() => server?.kill());

/** Requests that left the site's directory or failed, from the server's log. */
function strayRequests() {
  return log.filter((r) => !r.path.startsWith(prefix) || r.status >= 400).map((r) => `${r.status} ${r.method} ${r.path}`);
}

/** Polls `fn` in the page until it returns true, across the page's own reloads. */
async function eventually(page, fn, what, timeout = 60_000) {
  const end = Date.now() + timeout;
  while (Date.now() < end) {
    try {
      if (await page.evaluate(fn)) return;
    } catch {
      // the page is reloading: its execution context went away
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.fail(`timed out waiting for ${what}`);
}

async function chatAnswers(page) {
  await page.click('[data-testid=send]');
  await page.waitForSelector('[data-testid=reply-unobserved][data-done=true]', { timeout: 120_000 });
  assert.ok((await page.textContent('[data-testid=reply-unobserved]')).trim().length > 0);
}

test('the site runs under a subpath on a plain static server, follows a lesson link, and works offline', { timeout: 600_000, ...skip }, async () => {
  const ctx = await launch();
  try {
    const page = await ctx.newPage();
    const errors = watchErrors(page);
    const site = root + prefix;
    await page.goto(site);
    await page.waitForSelector('[data-testid=model-ready]', { timeout: 120_000 });
    assert.match(await page.textContent('[data-testid=model-ready]'), /organism/i);

    // The default experiment.
    await page.click('[data-testid=run]');
    await page.waitForSelector('[data-testid=run-done], [data-testid=run-error]', { timeout: 300_000 });
    const err = await page.$('[data-testid=run-error]');
    assert.equal(err, null, err ? await err.textContent() : '');
    assert.match(await page.textContent('[data-testid=spec-summary]'), /organism-deceptive/);
    const firstRun = await page.getAttribute('[data-testid=run-done]', 'data-spec-hash');
    // The share link keeps the subpath.
    assert.ok((await page.inputValue('[data-testid=share-link]')).startsWith(site + '#spec='));

    // A lesson link: the control organism (another model file, fetched from the subpath).
    const href = await page.getAttribute('[data-testid=lesson-link-5]', 'href');
    assert.match(href, /^#lesson=5&spec=/, 'lesson links are fragments, relative to the page');
    await page.click('[data-testid=lesson-link-5]');
    await page.waitForSelector('[data-testid=lesson][data-lesson="5"]');
    await page.waitForSelector(`[data-testid=run-done]:not([data-spec-hash="${firstRun}"]), [data-testid=run-error]`, { timeout: 300_000 });
    assert.equal(await page.$('[data-testid=run-error]'), null);
    assert.match(await page.textContent('[data-testid=spec-summary]'), /organism-control/);
    assert.equal(new URL(page.url()).pathname, prefix);

    // The service worker, scoped to the subpath, controls the page and has cached the shell
    // and the organisms under the subpath.
    await eventually(page, () => !!navigator.serviceWorker.controller, 'the service worker to control the page');
    assert.equal(await page.evaluate(() => navigator.serviceWorker.controller.scriptURL), site + 'sw.js');
    await eventually(page, async () => {
      for (const k of await caches.keys()) {
        if (await (await caches.open(k)).match('models/organism-deceptive.gguf')) return true;
      }
      return false;
    }, 'the organisms in the cache');
    assert.deepEqual(strayRequests(), [], 'every request stays inside the site and succeeds');

    // Offline: the page, the engine and the default organism come from the cache, served with
    // COOP and COEP by the service worker, so the page is now cross-origin isolated although
    // the server never sent those headers.
    const served = log.length;
    await ctx.setOffline(true);
    await page.goto(site);
    await page.waitForSelector('[data-testid=model-ready]', { timeout: 120_000 });
    assert.match(await page.textContent('[data-testid=model-ready]'), /organism/i);
    assert.equal(await page.evaluate(() => self.crossOriginIsolated), true, 'the service worker adds COOP and COEP');
    await chatAnswers(page);
    assert.equal(log.length, served, 'nothing reached the server while offline');
    assert.deepEqual(errors.filter((e) => !e.includes('ERR_INTERNET_DISCONNECTED')), []);
  } finally {
    await ctx.close();
  }
});

test('?threads=2 on a host without COOP/COEP reloads once and runs cross-origin isolated', { timeout: 300_000, ...skip }, async () => {
  const ctx = await launch();
  try {
    const page = await ctx.newPage();
    const errors = watchErrors(page);
    let loads = 0;
    page.on('load', () => { loads += 1; });
    await page.goto(root + prefix + '?threads=2');
    // The first load is served by the server, without the headers; once the service worker
    // takes control the page reloads itself, and the reload is served by the worker.
    await eventually(page, () => self.crossOriginIsolated, 'the page to become cross-origin isolated');
    await page.waitForSelector('[data-testid=model-ready]', { timeout: 120_000 });
    // Every core up to the two asked for, or one if the site has no threaded worker (built
    // without the nightly toolchain).
    const cores = await page.evaluate(() => navigator.hardwareConcurrency || 1);
    const expected = existsSync(join(SITE, 'pkg/mt/worker.js')) ? Math.min(cores, 2) : 1;
    assert.equal(Number(await page.getAttribute('[data-testid=threads]', 'data-threads')), expected);
    await chatAnswers(page);
    assert.equal(loads, 2, 'one reload, no more');
    assert.deepEqual(errors, []);
    assert.deepEqual(strayRequests(), []);
  } finally {
    await ctx.close();
  }
});
