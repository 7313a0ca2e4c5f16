/**
 * The HTML reports in a real browser (Debian's chromium through playwright-core): gate reports of a healthy
 * and of a faulty window on the sandbox, and the load report of the JTL behind them. Each page must render
 * without console errors and without a request leaving the file, draw its charts, and the faulty one must
 * point at the rule that failed.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { copyFileSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser } from 'playwright-core';
import { analyzeJtl, buildReport } from '../src/jmeter/index.js';
import { gateHtmlPath, loadHtml } from '../src/reports/index.js';
import { loadSpec } from '../src/spec/load.js';
import { openWindow, runGateStage, runLoadStage, setTraffic } from '../src/stages/index.js';
import { chartsOnPage, launchBrowser, openPage, screenshotDir } from './helpers/browser.js';
import { startReleaseLab, type ReleaseLab } from './helpers/release-lab.js';

let lab: ReleaseLab;
let browser: Browser;
const shots = screenshotDir();
const runs: Record<string, { bundlePath: string; reportPath?: string; outcome: string; jtl: string }> = {};

async function gateWindow(file: string) {
  const { spec } = loadSpec(file);
  const endpoints = lab.sb.platform.endpoints();
  const w = await openWindow(spec, endpoints);
  const load = await runLoadStage(lab.sb.platform, spec, { durationS: 3, resultsDir: lab.evidenceDir });
  const run = await runGateStage(lab.sb.platform, spec, {
    window: w,
    load: load.load,
    candidateWeight: 50,
    evidenceDir: lab.evidenceDir,
  });
  return {
    bundlePath: run.bundlePath,
    reportPath: run.reportPath,
    outcome: run.verdict.outcome,
    jtl: load.load.jtlPath,
  };
}

beforeAll(async () => {
  [lab, browser] = await Promise.all([startReleaseLab('reports-browser'), launchBrowser()]);
  const file = lab.writeSpec(
    'reports-demo',
    { canary: { steps: [50], window: '3s' } },
    {
      threads: 4,
      rules: [
        { errorRate: { max: '1%', perRoute: true } },
        { compareErrors: { alpha: 0.005 } }, // with split's 0.1%, inside the gate's 1% budget
        { split: { confidence: 0.999 } },
        { latency: { percentile: 95, max: '250ms' } },
        { tail: { percentiles: [90], maxIncrease: '50%' } },
        { conservation: { hops: ['proxy-access-control', 'http-lb'], tolerance: '2%' } },
      ],
    },
  );
  await setTraffic(lab.sb.platform, loadSpec(file).spec, { weight: 50 });
  runs.healthy = await gateWindow(file);
  lab.sb.setFault('http-lb', 'v2', { errorRate: 0.3 });
  runs.faulty = await gateWindow(file);
  lab.sb.setFault('http-lb', 'v2', null);
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await lab?.stop();
});

describe('gate report', () => {
  it('is written beside every evidence bundle, self-contained and under 1 MB', () => {
    for (const r of Object.values(runs)) {
      expect(r.reportPath).toBe(gateHtmlPath(r.bundlePath));
      expect(existsSync(r.reportPath!)).toBe(true);
      expect(statSync(r.reportPath!).size).toBeLessThan(1024 * 1024);
      const html = readFileSync(r.reportPath!, 'utf8');
      expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+stylesheet[^>]+href=|https?:\/\/cdn/i);
    }
    for (const [name, r] of Object.entries(runs))
      copyFileSync(r.reportPath!, join(shots, `gate-${name}.html`));
    expect(runs.faulty.outcome).toBe('fail');
    expect(runs.healthy.outcome).not.toBe('fail');
  });

  it.each(['healthy', 'faulty'])(
    'renders the %s window with its charts and no console error',
    async (name) => {
      const { page, errors, external } = await openPage(browser);
      await page.goto(pathToFileURL(runs[name].reportPath!).href);
      await page.waitForSelector('[data-chart="latency"] canvas');
      const charts = await chartsOnPage(page);
      expect(charts.canvases).toBeGreaterThanOrEqual(1);
      expect(charts.drawnCanvases).toBe(charts.canvases);
      expect(charts.filledSvgs).toBeGreaterThanOrEqual(3); // errors, split, flow
      expect(await page.locator('#panel-errors svg.interval-plot').count()).toBeGreaterThanOrEqual(2); // all routes + per route
      expect(await page.locator('#panel-split svg.split-bar').count()).toBe(1);
      expect(await page.locator('#panel-conservation svg.flow').count()).toBe(1);
      await page.screenshot({ path: join(shots, `gate-${name}.png`), fullPage: true });
      expect(errors).toEqual([]);
      expect(external).toEqual([]);
      const failedPanels = await page.locator('.panel.failed').evaluateAll((els) => els.map((e) => e.id));
      const failedRules = await page
        .locator('.panel.failed .rule[data-outcome="fail"]')
        .evaluateAll((els) => els.map((e) => e.getAttribute('data-rule')));
      if (name === 'faulty') {
        expect(await page.locator('#verdict').textContent()).toBe('fail');
        expect(failedPanels).toContain('panel-errors');
        expect(failedRules).toContain('errorRate');
        // The failed row of the picture is marked too: the candidate's error rate in red.
        expect(await page.locator('#panel-errors svg text[fill="#c62828"]').count()).toBeGreaterThan(0);
        await page.locator('#panel-errors').screenshot({ path: join(shots, 'gate-faulty-errors-panel.png') });
      } else {
        expect(failedPanels).toEqual([]);
      }
    },
  );
});

describe('load report', () => {
  it('draws throughput, errors and latency percentiles over time per label', async () => {
    const jtl = runs.faulty.jtl;
    const analysis = await analyzeJtl(jtl);
    const file = join(lab.dir, 'load.html');
    writeFileSync(file, await loadHtml(buildReport(jtl, analysis), analysis));
    expect(statSync(file).size).toBeLessThan(1024 * 1024);
    copyFileSync(file, join(shots, 'load-report.html'));
    const { page, errors, external } = await openPage(browser);
    await page.goto(pathToFileURL(file).href);
    await page.waitForSelector('[data-chart="lat0"] canvas');
    const charts = await chartsOnPage(page);
    // TOTAL + two labels (root, test), two charts each.
    expect(charts.canvases).toBe(6);
    expect(charts.drawnCanvases).toBe(6);
    expect(
      await page
        .locator('section[data-label]')
        .evaluateAll((els) => els.map((e) => e.getAttribute('data-label'))),
    ).toEqual(['TOTAL', expect.any(String), expect.any(String)]);
    await page.screenshot({ path: join(shots, 'load-report.png'), fullPage: true });
    expect(errors).toEqual([]);
    expect(external).toEqual([]);
  });
});
