/**
 * The stage server's dashboard in a real browser (Debian's chromium through playwright-core): a release
 * started through the API on the sandbox is listed, its step and weights change on the open page while the
 * jobs run (polling, no reload), and its release page links each gate job's report, served by job id.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { loadSpec } from '../src/spec/load.js';
import type { ReleaseSpec } from '../src/spec/types.js';
import { stageRegistry } from '../src/stages/actions.js';
import { startStageService, type StageService } from '../src/server/index.js';
import { chartsOnPage, launchBrowser, openPage, screenshotDir, type WatchedPage } from './helpers/browser.js';
import { startReleaseLab, type ReleaseLab } from './helpers/release-lab.js';

const TOKEN = 'dash-admin-token-0123456789';
const READ = 'dash-read-token-0123456789';
const RELEASE = 'dash-canary';
let lab: ReleaseLab;
let svc: StageService;
let browser: Browser;
let spec: ReleaseSpec;
let watched: WatchedPage;
const shots = screenshotDir();

async function api(path: string, init: RequestInit = {}, token = TOKEN): Promise<Response> {
  return fetch(`${svc.url}${path}`, {
    ...init,
    headers: {
      authorization: `Bearer ${token}`,
      'content-type': 'application/json',
      ...(init.headers as Record<string, string>),
    },
  });
}

/** Start a stage job through the API and wait (bounded) until it is no longer RUNNING. */
async function runJob(
  action: string,
  body: Record<string, unknown> = {},
  onRunning?: () => Promise<void>,
): Promise<{ id: string; status: string; progress: string }> {
  const r = await api(`/api/v1/releases/${RELEASE}/${action}`, {
    method: 'POST',
    body: JSON.stringify({ spec, ...body }),
  });
  expect(r.status).toBe(202);
  const { id } = (await r.json()) as { id: string };
  if (onRunning) await onRunning();
  for (let i = 0; i < 600; i++) {
    const job = (await (await api(`/api/v1/jobs/${id}`)).json()) as {
      id: string;
      status: string;
      progress: string;
    };
    if (job.status !== 'RUNNING') return job;
    await svc.jobs.whenIdle();
  }
  throw new Error(`job ${action} did not finish`);
}

const cell = (field: string) => `tr[data-release="${RELEASE}"] [data-field="${field}"]`;

beforeAll(async () => {
  [lab, browser] = await Promise.all([startReleaseLab('dashboard'), launchBrowser()]);
  spec = loadSpec(
    lab.writeSpec(
      RELEASE,
      { canary: { steps: [20, 50], window: '4s' } },
      { rules: [{ errorRate: { max: '1%' } }, { split: { confidence: 0.999 } }] },
    ),
  ).spec;
  svc = await startStageService({
    port: 0,
    host: '127.0.0.1',
    registry: stageRegistry({ platform: lab.sb.platform, evidenceDir: lab.evidenceDir }),
    auth: { token: TOKEN },
    ui: { platform: lab.sb.platform, evidenceDir: lab.evidenceDir, readToken: READ },
  });
  watched = await openPage(browser);
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await svc?.stop();
  await lab?.stop();
});

describe('dashboard', () => {
  it('asks a browser to log in, and accepts the read-only token for the dashboard only', async () => {
    expect((await fetch(`${svc.url}/ui/api/releases`)).status).toBe(401);
    expect((await fetch(`${svc.url}/ui`, { redirect: 'manual' })).headers.get('location')).toBe('/ui/login');
    expect((await api('/ui/api/releases', {}, READ)).status).toBe(200);
    expect((await api(`/api/v1/jobs?release=${RELEASE}`, {}, READ)).status).toBe(403);
    expect((await api('/ui/api/releases', {}, 'wrong-token')).status).toBe(401);
    const { page } = watched;
    await page.goto(`${svc.url}/ui`);
    await page.waitForURL(/\/ui\/login$/);
    await page.fill('input[name=token]', READ);
    await Promise.all([page.waitForURL(/\/ui$/), page.click('button[type=submit]')]);
    const cookie = (await page.context().cookies()).find((c) => c.name === 'clover_cd_ui')!;
    expect(cookie.httpOnly).toBe(true);
    expect(cookie.sameSite).toBe('Strict');
    expect(cookie.value).not.toContain(READ);
  });

  it('lists a release started through the API and follows its steps while the jobs run', async () => {
    const { page, errors } = watched;
    expect((await runJob('deploy')).status).toBe('SUCCEEDED');
    expect((await runJob('traffic', { step: 1 })).status).toBe('SUCCEEDED');
    await page.waitForFunction((sel) => document.querySelector(sel)?.textContent === '1/2', cell('step'), {
      timeout: 20_000,
    });
    expect(await page.textContent(cell('weights'))).toContain('v2 20%');
    const gate = await runJob('gate', { step: 1 }, async () => {
      // While the analysis window runs, the page shows the running job (no reload).
      await page.waitForFunction(
        (sel) => /RUNNING/.test(document.querySelector(sel)?.textContent ?? ''),
        cell('job'),
        { timeout: 20_000 },
      );
      await page.screenshot({ path: join(shots, 'dashboard-running.png'), fullPage: true });
    });
    expect(gate.status).toBe('SUCCEEDED');
    expect((await runJob('traffic', { step: 2 })).status).toBe('SUCCEEDED');
    // The step reads 2/2 as soon as step 1 passed (the release moves on before it shifts): the weights say
    // when the page has caught up with the second shift.
    await page.waitForFunction(
      (sel) => /v2 50%/.test(document.querySelector(sel)?.textContent ?? ''),
      cell('weights'),
      {
        timeout: 20_000,
      },
    );
    expect(await page.textContent(cell('step'))).toBe('2/2');
    expect(await page.textContent(cell('verdict'))).toContain('pass');
    await page.screenshot({ path: join(shots, 'dashboard-step2.png'), fullPage: true });
    expect(errors).toEqual([]);
  }, 120_000);

  it('shows the release timeline and serves the gate report of a step by job id', async () => {
    const { page, errors } = watched;
    await page.goto(`${svc.url}/ui/releases/${RELEASE}`);
    await page.waitForSelector('.step[data-step="1"] a.report');
    expect(await page.getAttribute('.step[data-step="1"]', 'data-status')).toBe('done');
    expect(await page.getAttribute('.step[data-step="2"]', 'data-status')).toBe('current');
    await page.screenshot({ path: join(shots, 'release-page.png'), fullPage: true });
    const href = (await page.getAttribute('.step[data-step="1"] a.report', 'href'))!;
    expect(href).toMatch(/^\/ui\/jobs\/[0-9a-f-]+\/report$/);
    await page.click('.step[data-step="1"] a.report');
    await page.waitForSelector('[data-chart="latency"] canvas');
    expect(await page.textContent('#verdict')).toBe('pass');
    const charts = await chartsOnPage(page);
    expect(charts.drawnCanvases).toBeGreaterThanOrEqual(1);
    await page.screenshot({ path: join(shots, 'served-gate-report.png'), fullPage: true });
    expect(errors).toEqual([]);
    // Evidence is found by job id only: an unknown id, or a job without evidence, is a 404.
    expect((await api('/ui/jobs/not-a-job/evidence', {}, READ)).status).toBe(404);
    const evidence = await api(href.replace(/report$/, 'evidence'), {}, READ);
    expect(evidence.status).toBe(200);
    expect(((await evidence.json()) as { kind: string }).kind).toBe('clover-cd/evidence');
  }, 60_000);
});
