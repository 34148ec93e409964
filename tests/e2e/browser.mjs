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
  return context;
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
