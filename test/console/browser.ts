/**
 * A headless Chromium for the console tests (Debian's /usr/bin/chromium driven by playwright-core,
 * a fresh profile per launch), plus helpers to wait for a console page and to save screenshots
 * and measured timings under test-artifacts/console/.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { chromium } from 'playwright-core';
import type { BrowserContext, Page } from 'playwright-core';

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
  // Removed only after the browser has closed: removed first (tempDir's own hook runs before a
  // later-registered close), Chromium went on writing into it and left it behind.
  const profile = mkdtempSync(join(tmpdir(), 'strata-chromium-'));
  const launched: { context?: BrowserContext } = {};
  t.after(async () => {
    await launched.context?.close().catch(() => undefined);
    rmSync(profile, { recursive: true, force: true });
  });
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
  launched.context = context;
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

/** Saves the whole page (or only the viewport, for pages thousands of pixels long). */
export async function screenshot(page: Page, name: string, o: { fullPage?: boolean } = {}): Promise<string> {
  mkdirSync(ARTIFACTS_DIR, { recursive: true });
  const path = join(ARTIFACTS_DIR, `${name}.png`);
  await page.screenshot({ path, fullPage: o.fullPage ?? true });
  return path;
}

/** Writes a JSON record (measured timings) beside the screenshots. */
export function saveArtifact(name: string, value: unknown): string {
  mkdirSync(ARTIFACTS_DIR, { recursive: true });
  const path = join(ARTIFACTS_DIR, name);
  writeFileSync(path, `${JSON.stringify(value, null, 2)}\n`);
  return path;
}

/**
 * Loads a console route from scratch (a blank page first, so nothing is reused from the current
 * document) and returns the browser's own figure: ms from the navigation's start to the browse
 * page's 'strata:browse-rendered' mark (the API answer fetched and the table built).
 */
export async function freshBrowseLoadMs(
  page: Page,
  base: string,
  route: string,
  selector: string,
): Promise<number> {
  await page.goto('about:blank');
  await page.goto(`${base}/#${route}`);
  await page.waitForSelector(selector);
  return page.evaluate<number>(`performance.getEntriesByName('strata:browse-rendered').at(-1).startTime`);
}

/** The text of the element with data-k=key inside `scope` (default: the page). */
export async function textOf(page: Page, key: string, scope = ''): Promise<string> {
  const loc = page.locator(`${scope} [data-k="${key}"]`.trim()).first();
  return ((await loc.textContent()) ?? '').trim();
}
