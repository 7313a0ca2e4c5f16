/**
 * Debian's Chromium driven by playwright-core (never a downloaded browser): scripts/setup.sh installs the
 * `chromium` package. Each page records its console errors and uncaught exceptions.
 */
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM = process.env.CLOVER_CD_CHROMIUM ?? '/usr/bin/chromium';

export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} is missing: run scripts/setup.sh (it installs Debian's chromium package)`);
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 30_000,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-dev-shm-usage',
    ],
  });
}

export interface WatchedPage {
  page: Page;
  /** Console errors, page errors and failed requests seen so far. */
  errors: string[];
  /** Requests that left the machine (anything but file:, data: and loopback). */
  external: string[];
}

export async function openPage(
  browser: Browser,
  opts: { width?: number; height?: number } = {},
): Promise<WatchedPage> {
  const ctx = await browser.newContext({
    viewport: { width: opts.width ?? 1280, height: opts.height ?? 900 },
  });
  const page = await ctx.newPage();
  page.setDefaultTimeout(15_000);
  const errors: string[] = [];
  const external: string[] = [];
  page.on('console', (m) => m.type() === 'error' && errors.push(`console: ${m.text()}`));
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('requestfailed', (r) => errors.push(`requestfailed: ${r.url()} ${r.failure()?.errorText ?? ''}`));
  page.on('request', (r) => {
    const u = r.url();
    if (!/^(file:|data:|about:|http:\/\/127\.0\.0\.1[:/]|http:\/\/localhost[:/])/.test(u)) external.push(u);
  });
  return { page, errors, external };
}

/** Where screenshots go: $CLOVER_CD_SCREENSHOTS, else a fresh temporary folder. */
export function screenshotDir(): string {
  const dir = process.env.CLOVER_CD_SCREENSHOTS ?? mkdtempSync(join(tmpdir(), 'clover-cd-shots-'));
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Charts drawn on the page: uPlot canvases with pixels drawn, and SVG pictures with marks. */
export async function chartsOnPage(
  page: Page,
): Promise<{ canvases: number; drawnCanvases: number; svgs: number; filledSvgs: number }> {
  return page.evaluate(() => {
    const canvases = [...document.querySelectorAll('canvas')];
    const drawn = canvases.filter((c) => {
      const ctx = c.getContext('2d');
      if (!ctx || !c.width || !c.height) return false;
      const d = ctx.getImageData(0, 0, c.width, c.height).data;
      let painted = 0;
      for (let i = 3; i < d.length; i += 4 * 7) if (d[i] !== 0) painted++;
      return painted > 50;
    });
    const svgs = [...document.querySelectorAll('main svg')];
    const filled = svgs.filter(
      (s) => s.querySelectorAll('rect,circle,line,path').length > 0 && s.getBoundingClientRect().width > 0,
    );
    return {
      canvases: canvases.length,
      drawnCanvases: drawn.length,
      svgs: svgs.length,
      filledSvgs: filled.length,
    };
  });
}
