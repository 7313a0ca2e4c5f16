/**
 * Evidence sources against real components: a real Prometheus (Debian) scraping a prom-client endpoint that
 * serves Istio-shaped series, the direct scrape of the same endpoint, and a real Redis for Clover's keys.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as yaml from 'js-yaml';
import { Counter, Histogram, Registry } from 'prom-client';
import { openVisibilityStore } from '../src/services/redis.js';
import { scrapeTargets } from '../src/services/scrape.js';
import { judgedWindow, recordWindow } from '../src/stages/engine/window.js';
import type { ReleaseSpec } from '../src/spec/types.js';
import { preflight, runGate, verdictExitCode } from '../src/validators/index.js';
import { runCli } from './helpers/cli.js';
import { freePort } from './helpers/ports.js';
import { startPrometheus, type PrometheusFixture } from './helpers/prometheus.js';
import { startRedis, type RedisFixture } from './helpers/redis.js';
import { serveMetrics } from './helpers/metrics-endpoint.js';
import { gateQueries, ISTIO_TELEMETRY, selectMetrics } from '../src/metrics/index.js';

const registry = new Registry();
const requests = new Counter({
  name: 'istio_requests_total',
  help: 'requests',
  labelNames: [
    'reporter',
    'source_workload',
    'destination_workload',
    'destination_service_name',
    'destination_version',
    'response_code',
    'request_protocol',
  ],
  registers: [registry],
});
const duration = new Histogram({
  name: 'istio_request_duration_milliseconds',
  help: 'latency',
  labelNames: [
    'reporter',
    'source_workload',
    'destination_workload',
    'destination_service_name',
    'destination_version',
    'response_code',
    'request_protocol',
  ],
  buckets: [5, 10, 25, 50, 100, 250, 500, 1000],
  registers: [registry],
});

/** Record `n` requests through proxy-access-control → http-lb-<version>, `errors` of them answered 503. */
function traffic(version: string, n: number, errors: number, latencyMs: number): void {
  for (let i = 0; i < n; i++) {
    const code = i < errors ? '503' : '200';
    const hop = (svc: string, wl: string, ver: string, src: string) => {
      const labels = {
        reporter: 'destination',
        source_workload: src,
        destination_workload: wl,
        destination_service_name: svc,
        destination_version: ver,
        response_code: code,
        request_protocol: 'http',
      };
      requests.inc(labels);
      if (svc === 'http-lb') duration.observe(labels, latencyMs + (i % 10));
    };
    hop('proxy-access-control', 'proxy-access-control', 'v1', 'istio-ingressgateway');
    hop('http-lb', `http-lb-${version}`, version, 'proxy-access-control');
  }
}

let endpoint: Awaited<ReturnType<typeof serveMetrics>>;
let metricsUrl: string;
let prom: PrometheusFixture;
let redis: RedisFixture;
const dir = mkdtempSync(join(tmpdir(), 'gate-sources-'));

function spec(over: Partial<NonNullable<ReleaseSpec['gate']>> = {}): ReleaseSpec {
  return {
    apiVersion: 'clover-cd/v1',
    kind: 'Release',
    metadata: { name: 'lb' },
    application: 'sdc',
    service: { name: 'http-lb', namespace: 'default', port: 9180, stable: 'v1', candidate: 'v2' },
    strategy: { canary: { steps: [50], window: '10s' } },
    gate: {
      minSamples: 50,
      metrics: { source: 'prometheus', url: prom.url, scrapeInterval: '1s' },
      rules: [
        { conservation: { hops: ['proxy-access-control', 'http-lb'] } },
        { split: {} },
        { errorRate: { max: '1%' } },
        { compareErrors: {} },
        { latency: { percentile: 95, max: '250ms' } },
        { compareLatency: {} },
      ],
      ...over,
    },
  };
}

beforeAll(async () => {
  endpoint = await serveMetrics(registry);
  metricsUrl = endpoint.url;
  traffic('v1', 40, 0, 20); // before the window: must not be counted
  [prom, redis] = await Promise.all([startPrometheus([metricsUrl]), startRedis()]);
  await prom.waitForScrape();
}, 60_000);

afterAll(async () => {
  await Promise.all([prom?.stop(), redis?.stop(), endpoint?.close()]);
});

describe('gate on Prometheus evidence', () => {
  let window: { start: number; end: number };

  beforeAll(async () => {
    await prom.waitForScrape(Date.now());
    const start = Date.now();
    traffic('v1', 300, 1, 20);
    traffic('v2', 300, 60, 60);
    const end = Date.now();
    await prom.waitForScrape(end);
    window = { start, end };
  }, 30_000);

  const judgeWindow = () =>
    runGate(spec(), {
      telemetry: ISTIO_TELEMETRY,
      window,
      endpoints: {},
      candidateWeight: 50,
      evidenceDir: dir,
    });

  it('counts exactly the window, and fails a 20%-error, slower candidate with reasons', async () => {
    const run = await judgeWindow();
    const by = Object.fromEntries(run.verdict.results.map((r) => [r.rule.split(' ')[0], r]));
    expect(run.bundle.evidence.metrics!.hops['http-lb'].v1.requests).toBe(300);
    expect(run.bundle.evidence.metrics!.hops['http-lb'].v2).toEqual({
      requests: 300,
      errors: 60,
      codes: { '200': 240, '503': 60 },
    });
    expect(by.conservation.outcome).toBe('pass');
    expect(by.split.outcome).toBe('pass');
    expect(by.errorRate.outcome).toBe('fail');
    expect(by.errorRate.observed).toBe('20% (60 of 300)');
    expect(by.compareErrors.outcome).toBe('fail');
    expect(by.compareLatency.outcome).toBe('fail');
    expect(by.compareLatency.source).toContain('istio_request_duration_milliseconds');
    expect(run.verdict.outcome).toBe('fail');
    const queries = run.bundle.sources[0].queries;
    // Four counters (requests, duration buckets, sums, counts), each read at the window start and end, and the
    // scrape times at both edges (earliest and latest): the interval the counts cover.
    expect(queries.length).toBe(12);
    expect(queries[0].query).toContain('istio_requests_total{reporter="destination"}');
  });

  it('the CLI replays the written bundle with the same verdict and writes JUnit', async () => {
    const run = await judgeWindow();
    const junit = join(dir, 'gate.xml');
    const r = await runCli(['gate', '--replay', run.bundlePath, '--junit', junit, '-o', 'json']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).verdict).toEqual(run.verdict);
  });

  it('an empty window is inconclusive (3), naming the series expected', async () => {
    const start = Date.now() - 5 * 60_000;
    const run = await runGate(spec({ rules: [{ errorRate: { max: '1%' } }] }), {
      telemetry: ISTIO_TELEMETRY,
      window: { start, end: start + 1000 },
      endpoints: {},
      evidenceDir: dir,
    });
    expect(verdictExitCode(run.verdict)).toBe(3);
    expect(run.verdict.results[0].reason).toContain(
      'istio_requests_total{reporter="destination",destination_service_name="http-lb"}',
    );
  });

  it('a dead Prometheus is an infrastructure error (4) naming it, and the bundle is still written', async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const s = spec({ metrics: { source: 'prometheus', url: dead, scrapeInterval: '1s' } });
    const run = await runGate(s, {
      telemetry: ISTIO_TELEMETRY,
      window: { start: Date.now() - 60_000, end: Date.now() - 5000 },
      endpoints: {},
      evidenceDir: dir,
    });
    expect(verdictExitCode(run.verdict)).toBe(4);
    expect(run.bundle.sources[0].status).toBe('down');
    expect(run.bundle.sources[0].error).toContain(dead);
    expect(run.bundlePath).toMatch(/\.json$/);
  });

  it('the gate command runs end to end on a spec file', async () => {
    const file = join(dir, 'spec.yaml');
    writeFileSync(
      file,
      yaml.dump(
        spec({
          rules: [
            { errorRate: { max: '5%', version: 'stable' } },
            { conservation: { hops: ['proxy-access-control', 'http-lb'] } },
          ],
        }),
      ),
    );
    const r = await runCli([
      'gate',
      file,
      '--since',
      String(window.start),
      '--until',
      String(window.end),
      '--evidence-dir',
      dir,
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^gate PASS/);
    expect(r.stdout).toContain('proxy-access-control (v1 600) = 600');
  });
});

describe('direct scrape with counter deltas', () => {
  it('measures the same window without Prometheus', async () => {
    const keep = (n: string) => n.startsWith('istio_');
    const baseline = await scrapeTargets([metricsUrl], { keep });
    traffic('v1', 100, 0, 20);
    traffic('v2', 100, 0, 20);
    // 100 requests a version: enough to show a clean candidate below 10% and its median within 1.5× the stable one.
    const s = spec({
      metrics: { source: 'scrape', targets: [metricsUrl] },
      rules: [{ split: {} }, { errorRate: { max: '10%' } }, { compareLatency: { detect: '50%' } }],
    });
    const run = await runGate(s, {
      telemetry: ISTIO_TELEMETRY,
      window: { start: baseline.at, end: Date.now() },
      endpoints: {},
      candidateWeight: 50,
      metricsWindow: { start: baseline.at, baseline },
      evidenceDir: dir,
    });
    expect(run.bundle.evidence.metrics!.hops['http-lb'].v2.requests).toBe(100);
    expect(run.verdict.results.map((r) => r.outcome)).toEqual(['pass', 'pass', 'pass']);
  });

  it('a closed window, judged later in another process, gives the evidence the open one gives', async () => {
    const s = spec({
      metrics: { source: 'scrape', targets: [metricsUrl] },
      // 100 requests a version decide these rules (as above); the default 1% limit needs ~300.
      rules: [{ split: {} }, { errorRate: { max: '10%' } }, { compareLatency: { detect: '50%' } }],
    });
    const provider = selectMetrics(s.gate, {}, ISTIO_TELEMETRY, 'http-lb').provider!;
    const opened = await provider.open();
    traffic('v1', 100, 1, 20);
    traffic('v2', 100, 0, 20);
    const closed = await provider.close(opened, gateQueries('http-lb', ISTIO_TELEMETRY));
    const end = Date.now();
    // What the load stage keeps with the release state, read back by another process: plain JSON, no scrape to redo.
    const kept = judgedWindow(JSON.parse(JSON.stringify(recordWindow({ step: 0, window: closed, end }))));
    expect(kept.window.baseline).toBeUndefined();
    traffic('v2', 500, 500, 900); // after the window: must not count
    const judged = await runGate(s, {
      telemetry: ISTIO_TELEMETRY,
      window: { start: kept.window.start, end: kept.end },
      endpoints: {},
      candidateWeight: 50,
      metricsWindow: kept.window,
      evidenceDir: dir,
    });
    expect(judged.bundle.evidence.metrics!.hops['http-lb']).toMatchObject({
      v1: { requests: 100, errors: 1 },
      v2: { requests: 100, errors: 0 },
    });
    expect(judged.verdict.results.map((r) => r.outcome)).toEqual(['pass', 'pass', 'pass']);
    expect(kept.window.increase).toEqual(closed.increase);
  });

  it('a window with more counters than the release state keeps is judged an error that names Prometheus, not a pass', async () => {
    const s = spec({
      metrics: { source: 'scrape', targets: [metricsUrl] },
      rules: [{ errorRate: { max: '1%' } }],
    });
    const increase = Array.from({ length: 6000 }, (_, i) => ({
      name: 'istio_requests_total',
      labels: {
        reporter: 'destination',
        destination_service_name: 'http-lb',
        destination_version: 'v2',
        request_path: `/user/${i}`,
      },
      value: 1,
    }));
    const kept = judgedWindow(
      recordWindow({ step: 0, window: { start: Date.now() - 1000, increase }, end: Date.now() }),
    );
    const judged = await runGate(s, {
      telemetry: ISTIO_TELEMETRY,
      window: { start: kept.window.start, end: kept.end },
      endpoints: {},
      metricsWindow: kept.window,
      evidenceDir: dir,
    });
    expect(judged.verdict.outcome).toBe('error');
    expect(judged.bundle.sources.find((x) => x.name === 'scrape')).toMatchObject({
      status: 'down',
      error: expect.stringMatching(/more than the release state keeps .*gate\.metrics\.source: prometheus/),
    });
  });
});

describe('pre-flight', () => {
  it('finds the series, labels and both versions; names a missing version', async () => {
    traffic('v2', 1, 0, 20);
    await prom.waitForScrape(Date.now());
    const ok = await preflight(spec(), {}, ISTIO_TELEMETRY);
    expect(ok.checks.find((c) => c.check === 'version v2 reports telemetry')?.status).toBe('ok');
    const s = spec();
    s.service.candidate = 'v3';
    const missing = await preflight(s, {}, ISTIO_TELEMETRY);
    expect(missing.exitCode).toBe(3);
    expect(missing.checks.find((c) => c.check === 'version v3 reports telemetry')?.detail).toContain(
      'destination_version="v3"',
    );
    s.strategy.canary!.window = '2s';
    expect(
      (await preflight(s, {}, ISTIO_TELEMETRY)).checks.find(
        (c) => c.check === 'scrape interval fits the window',
      )?.status,
    ).toBe('invalid');
  });

  it('reads a direct scrape through the same provider the gate reads: endpoints, series, versions', async () => {
    traffic('v1', 1, 0, 20);
    traffic('v2', 1, 0, 20);
    const s = spec({ metrics: { source: 'scrape', targets: [metricsUrl] } });
    const ready = await preflight(s, {}, ISTIO_TELEMETRY);
    expect(ready.checks.find((c) => c.check === 'metrics endpoints reachable')).toMatchObject({
      status: 'ok',
      detail: metricsUrl,
    });
    expect(ready.checks.find((c) => c.check === 'version v2 reports telemetry')?.status).toBe('ok');
    const down = await preflight(
      spec({ metrics: { source: 'scrape', targets: [`http://127.0.0.1:${await freePort()}/metrics`] } }),
      {},
      ISTIO_TELEMETRY,
    );
    expect(down.exitCode).toBe(4);
    expect(down.checks.find((c) => c.check === 'metrics endpoints reachable')?.status).toBe('down');
  });
});

describe("Clover's visibility keys in Redis", () => {
  it('stats print in the shape of /visibility/get/stats/all; clear resets them', async () => {
    const store = await openVisibilityStore(redis.url);
    await store.write({
      traceCount: 3,
      spanCount: 6,
      metricCount: 2,
      services: ['http-lb'],
      tracingServices: ['http-lb'],
      responseTimes: { 'http-lb': { min: 1, avg: 2.5, max: 4 } },
      urls: { 'http://x/': 6 },
      userAgents: { chrome: 4, safari: 2 },
      nodeIds: { 'sidecar~1~http-lb-v1': 6 },
      statusCodes: { '200': 6 },
      statusUrl: { '200, http://x/': 6 },
      nodeUrl: { 'sidecar~1~http-lb-v1, http://x/': 6 },
      operationNames: ['http-lb.default'],
      upstreamClusters: ['inbound|9180||http-lb'],
    });
    await store.close();
    const r = await runCli(['visibility', 'stats', '--redis', redis.url, '-o', 'json']);
    expect(r.code).toBe(0);
    const stats = JSON.parse(r.stdout);
    expect(stats).toMatchObject({
      trace_count: '3',
      span_count: '6',
      metric_count: '2',
      response_times: [{ name: 'http-lb', min: '1.00', avg: '2.50', max: '4.00' }],
      user_agent_count: [
        ['safari', 2],
        ['chrome', 4],
      ],
      status_code_count: [['200, http://x/', 6]],
    });
    const c = await runCli(['visibility', 'clear', '--redis', redis.url]);
    expect(c.code).toBe(0);
    const after = JSON.parse(
      (await runCli(['visibility', 'stats', '--redis', redis.url, '-o', 'json'])).stdout,
    );
    expect(after).toMatchObject({
      trace_count: '0',
      user_agent_count: [],
      response_times: [{ name: 'http-lb', min: 'NA' }],
    });
  });

  it('an unreachable Redis exits 4 naming it', async () => {
    const url = `redis://127.0.0.1:${await freePort()}`;
    const r = await runCli(['visibility', 'stats', '--redis', url]);
    expect(r.code).toBe(4);
    expect(r.stderr).toContain(`Redis (${url})`);
  });
});
