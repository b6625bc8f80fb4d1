/**
 * A headless Chromium for the console tests (Debian's /usr/bin/chromium driven by playwright-core,
 * a fresh profile per launch), plus helpers to wait for a console page and to save screenshots
 * under test-artifacts/console/.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { chromium } from 'playwright-core';
import type { BrowserContext, Page } from 'playwright-core';
import { tempDir } from '../helpers/tmp.js';

export const CHROMIUM = '/usr/bin/chromium';
export const ARTIFACTS_DIR = join(process.cwd(), 'test-artifacts', 'console');

export const DESKTOP = { width: 1280, height: 800 } as const;
export const PHONE = { width: 390, height: 844 } as const;

/**
 * A browser with a fresh profile (its own --user-data-dir, which playwright passes for a
 * persistent context) showing one page at `viewport`. Script errors and console errors (CSP
 * violations among them) are pushed to `problems`.
 */
export async function openBrowser(
  t: Pick<TestContext, 'after'>,
  viewport: { width: number; height: number },
  problems: string[],
): Promise<{ context: BrowserContext; page: Page }> {
  const profile = tempDir(t, 'strata-chromium-');
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    timeout: 30_000,
    viewport,
    deviceScaleFactor: 1,
    isMobile: viewport.width < 500,
    hasTouch: viewport.width < 500,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  t.after(() => context.close());
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(15_000);
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console error: ${msg.text()}`);
  });
  return { context, page };
}

/** Opens a console route and waits until its content is rendered. */
export async function openRoute(page: Page, base: string, route: string): Promise<void> {
  await page.goto(`${base}/#${route}`);
  const id = route.replace(/^\//, '').split('?')[0] || 'overview';
  await page.waitForSelector(`main[data-page="${id}"]:not([aria-busy])`);
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS_DIR, { recursive: true });
  const path = join(ARTIFACTS_DIR, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** The text of the element with data-k=key inside `scope` (default: the page). */
export async function textOf(page: Page, key: string, scope = ''): Promise<string> {
  const loc = page.locator(`${scope} [data-k="${key}"]`.trim()).first();
  return ((await loc.textContent()) ?? '').trim();
}
