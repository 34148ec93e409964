// Shared Playwright helpers: launch Debian's Chromium headless with the flags this project
// relies on (no sandbox inside containers, no background network traffic).
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const BASE = process.env.HAWTHORNE_URL ?? 'http://127.0.0.1:8000';

// Profiles still on disk; removed when their browser closes, and the rest when the process
// exits (a failed test may never close its browser).
const profiles = new Set();
function removeProfile(dir) {
  try {
    // Chromium may still be writing into the profile as its context closes: retry, and if it
    // is still busy leave it for the exit handler rather than fail the test.
    rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
    profiles.delete(dir);
  } catch {
    // removed at exit
  }
}
process.on('exit', () => { for (const dir of [...profiles]) removeProfile(dir); });

/** `options` are merged into Playwright's context options (e.g. `serviceWorkers: 'block'`). */
export async function launch(options = {}) {
  const userDataDir = mkdtempSync(join(tmpdir(), 'hawthorne-e2e-'));
  profiles.add(userDataDir);
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--no-first-run', '--disable-sync',
    ],
    viewport: { width: 1280, height: 900 },
    acceptDownloads: true,
    ...options,
  });
  // The profile holds the page's model cache (up to 700 MB with a real model): remove it when
  // the browser closes, or every run leaves it behind in the temporary directory.
  context.on('close', () => removeProfile(userDataDir));
  for (const page of context.pages()) diagnose(page);
  context.on('page', diagnose);
  return context;
}

/** Keeps each page's console, errors and failed requests, and adds them, with the model panel's
 *  text, to the error of a wait for the model that times out: a model that never becomes ready
 *  then says why in the test's output. Diagnostics only; no wait changes. */
function diagnose(page) {
  const log = [];
  const keep = (line) => { log.push(line); if (log.length > 60) log.shift(); };
  page.on('console', (m) => keep(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => keep(`pageerror: ${e.message}`));
  page.on('requestfailed', (r) => keep(`requestfailed: ${r.url()} ${r.failure()?.errorText ?? ''}`));
  page.on('crash', () => keep('the page crashed'));
  const wait = page.waitForSelector.bind(page);
  page.waitForSelector = async (selector, options) => {
    try {
      return await wait(selector, options);
    } catch (e) {
      if (String(selector).includes('model-ready')) {
        const panel = await page.evaluate(() => {
          const model = document.querySelector('[aria-labelledby=model-heading]');
          const lost = document.querySelector('[data-testid=worker-lost]');
          return `${lost ? 'worker lost: ' + lost.innerText + '\n' : ''}${model ? model.innerText : document.body.innerText.slice(0, 1500)}`;
        }).catch((err) => `(page unavailable: ${err.message})`);
        e.message += `\n--- model panel ---\n${panel}\n--- page log ---\n${log.join('\n')}`;
      }
      throw e;
    }
  };
}

/** Collects console errors and uncaught page errors so tests can assert there were none. */
export function watchErrors(page) {
  const errors = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });
  return errors;
}

/** Saves a full-page screenshot into docs/ (committed, used by the README). */
export async function screenshot(page, name) {
  const { fileURLToPath } = await import('node:url');
  const dir = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'docs');
  await page.screenshot({ path: join(dir, name), fullPage: true });
}

/** Pairs of chart labels whose drawn boxes intersect (rotation included), per chart. */
export async function labelOverlaps(page) {
  return page.evaluate(() => {
    const corners = (el) => {
      const b = el.getBBox();
      const m = el.getCTM();
      const pts = [[b.x, b.y], [b.x + b.width, b.y], [b.x + b.width, b.y + b.height], [b.x, b.y + b.height]];
      return pts.map(([x, y]) => [m.a * x + m.c * y + m.e, m.b * x + m.d * y + m.f]);
    };
    // Separating-axis test for two convex quadrilaterals, shrunk by half a pixel of slack.
    const overlap = (p, q) => {
      for (const poly of [p, q]) {
        for (let i = 0; i < 4; i++) {
          const [x1, y1] = poly[i];
          const [x2, y2] = poly[(i + 1) % 4];
          const nx = y2 - y1, ny = x1 - x2;
          const len = Math.hypot(nx, ny) || 1;
          const proj = (r) => r.map(([x, y]) => (x * nx + y * ny) / len);
          const a = proj(p), b = proj(q);
          if (Math.max(...a) - 0.5 <= Math.min(...b) || Math.max(...b) - 0.5 <= Math.min(...a)) return false;
        }
      }
      return true;
    };
    const found = [];
    for (const svg of document.querySelectorAll('.chart-box svg')) {
      const labels = [...svg.querySelectorAll('text.chart-label')].filter((t) => t.textContent.trim() !== '');
      const boxes = labels.map(corners);
      // Nothing is cut by the chart's edges either.
      const [w, h] = [Number(svg.getAttribute('width')), Number(svg.getAttribute('height'))];
      boxes.forEach((b, i) => {
        if (b.some(([x, y]) => x < -0.5 || y < -0.5 || x > w + 0.5 || y > h + 0.5)) found.push(`${svg.dataset.testid}: "${labels[i].textContent}" is cut by the edge`);
      });
      for (let i = 0; i < labels.length; i++) {
        for (let j = i + 1; j < labels.length; j++) {
          if (overlap(boxes[i], boxes[j])) found.push(`${svg.dataset.testid}: "${labels[i].textContent}" × "${labels[j].textContent}"`);
        }
      }
    }
    return found;
  });
}

/** How far the page scrolls sideways, and the widest element that sticks out. */
export async function sideways(page) {
  return page.evaluate(() => {
    const over = document.documentElement.scrollWidth - document.documentElement.clientWidth;
    let culprit = '';
    if (over > 0) {
      for (const el of document.querySelectorAll('body *')) {
        const r = el.getBoundingClientRect();
        if (r.right > document.documentElement.clientWidth + 1) { culprit = `${el.tagName}.${el.className}`; break; }
      }
    }
    return { over, culprit };
  });
}

