/**
 * The gate end to end on real components: the sandbox mesh (Istio-shaped metrics, Jaeger API), a real
 * Prometheus scraping it every second, real Redis, and load from the load module's builtin engine.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPlan, runLoad } from '../src/jmeter/index.js';
import { startSandbox, type Sandbox } from '../src/sandbox/index.js';
import { openVisibilityStore } from '../src/services/redis.js';
import type { ReleaseSpec } from '../src/spec/types.js';
import { setTraffic } from '../src/stages/index.js';
import { runGate, verdictExitCode, type GateRun, type LoadRunResultLike } from '../src/validators/index.js';
import { runCli } from './helpers/cli.js';
import { freePort } from './helpers/ports.js';
import { startPrometheus, type PrometheusFixture } from './helpers/prometheus.js';
import { startRedis, type RedisFixture } from './helpers/redis.js';
import { ISTIO_TELEMETRY } from '../src/metrics/index.js';

let sandbox: Sandbox;
let prom: PrometheusFixture;
let redis: RedisFixture;
const dir = mkdtempSync(join(tmpdir(), 'gate-e2e-'));

const plan = loadPlan({
  load_spec: { num_threads: 4, loops: 40, ramp_time: 0 },
  url_list: [
    { name: 'url1', url: 'http://proxy-access-control.default:9180/', method: 'GET', 'user-agent': 'chrome' },
    {
      name: 'url2',
      url: 'http://proxy-access-control.default:9180/clover/testurl',
      method: 'GET',
      'user-agent': 'safari',
    },
  ],
});

function spec(prometheusUrl = prom.url): ReleaseSpec {
  return {
    apiVersion: 'clover-cd/v1',
    kind: 'Release',
    metadata: { name: 'http-lb-canary' },
    application: 'sdc',
    service: {
      name: 'http-lb',
      namespace: 'default',
      port: 9180,
      versionLabel: 'version',
      stable: 'v1',
      candidate: 'v2',
    },
    strategy: { canary: { steps: [50], window: '10s' } },
    gate: {
      minSamples: 40,
      metrics: { source: 'prometheus', url: prometheusUrl, scrapeInterval: '1s' },
      tracing: { url: sandbox.urls.jaeger },
      rules: [
        { conservation: { hops: ['proxy-access-control', 'http-lb'], tolerance: 0 } },
        { split: { confidence: 0.999 } },
        // ~160 candidate requests a window: enough to show a clean candidate below 10% and to rule out +10 points.
        { errorRate: { max: '10%' } },
        { compareErrors: { detect: '10%' } },
        { share: { userAgent: 'chrome', expect: '50%', tolerance: '1%' } },
      ],
    },
  };
}

/** Run the load through the sandbox ingress and gate the window around it. */
async function loadAndGate(extra?: (r: LoadRunResultLike) => Promise<LoadRunResultLike>): Promise<GateRun> {
  await prom.waitForScrape(Date.now());
  const start = Date.now();
  let load: LoadRunResultLike = await runLoad(plan, { engine: 'builtin', target: sandbox.urls.ingress });
  if (extra) load = await extra(load);
  const end = Date.now();
  await prom.waitForScrape(end);
  return runGate(spec(), {
    telemetry: ISTIO_TELEMETRY,
    window: { start, end },
    endpoints: {},
    load,
    candidateWeight: 50,
    evidenceDir: dir,
    redisUrl: redis.url,
  });
}

const byRule = (run: GateRun) =>
  Object.fromEntries(run.verdict.results.map((r) => [r.rule.split(' ')[0], r]));

beforeAll(async () => {
  sandbox = await startSandbox({ stateDir: join(dir, 'sandbox') });
  [prom, redis] = await Promise.all([startPrometheus([sandbox.urls.metrics]), startRedis()]);
  await setTraffic(sandbox.platform, spec('http://unused'), { weight: 50 });
}, 60_000);

afterAll(async () => {
  await Promise.all([prom?.stop(), redis?.stop(), sandbox?.stop()]);
  rmSync(dir, { recursive: true, force: true });
});

describe('gate on the sandbox', () => {
  let healthy: GateRun;

  it('a healthy candidate passes, with counts conserved from the load to the root spans', async () => {
    healthy = await loadAndGate();
    const r = byRule(healthy);
    expect(
      healthy.verdict.results
        .map((x) => `${x.outcome} ${x.rule}: ${x.reason}`)
        .filter((x) => !x.startsWith('pass')),
    ).toEqual([]);
    expect(verdictExitCode(healthy.verdict)).toBe(0);
    expect(r.conservation.observed).toContain('load sent = 320');
    // The load's own requests, told apart by the x-clover-cd-load header the engine sent, at every hop.
    expect(r.conservation.observed).toMatch(/proxy-access-control tagged \S+ \(v1 320\) = 320/);
    expect(r.conservation.observed).toMatch(/http-lb tagged \S+ \(v1 \d+ \+ v2 \d+\) = 320/);
    expect(r.conservation.observed).toMatch(/root spans tagged \S+ = 320/);
    expect(r.conservation.source).toBe('load + prometheus + jaeger');
  }, 60_000);

  it("writes Clover's visibility stats for the window to Redis", async () => {
    const store = await openVisibilityStore(redis.url);
    const stats = await store.read();
    await store.close();
    expect(Number(stats.trace_count)).toBe(320);
    expect(stats.user_agents).toEqual(['chrome', 'safari']);
    expect(stats.response_times.find((x) => x.name === 'http-lb')?.avg).toMatch(/^\d+\.\d\d$/);
  });

  it('a replayed bundle gives the same verdict', async () => {
    const r = await runCli(['gate', '--replay', healthy.bundlePath, '-o', 'json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).verdict).toEqual(healthy.verdict);
  });

  it('a candidate with a 30% abort fault fails on error rate and the comparison', async () => {
    // ~170 candidate requests: the limit's test rejects from ~35 errors (20%), so a 20% fault fails only about
    // half the draws; at 30% (~53 errors, σ ~6) all but about 1 in 1,000.
    await sandbox.setFault('http-lb', 'v2', { errorRate: 0.3, abortStatus: 503 });
    try {
      const run = await loadAndGate();
      const r = byRule(run);
      expect(verdictExitCode(run.verdict)).toBe(1);
      expect(r.errorRate.outcome).toBe('fail');
      expect(r.errorRate.reason).toMatch(/error rate above 10%/);
      expect(r.compareErrors.outcome).toBe('fail');
      expect(r.compareErrors.reason).toMatch(/v2 has more errors than v1/);
    } finally {
      await sandbox.setFault('http-lb', 'v2', null);
    }
  }, 60_000);

  it('a load that lost requests fails conservation', async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const run = await loadAndGate(async (load) => {
      // Part of the load went to a target that never received it: the client counted it as sent.
      const lost = await runLoad(
        { ...plan, threads: 1, loops: 3, requests: plan.requests.slice(0, 1) },
        { engine: 'builtin', target: dead },
      );
      const t = load.summary.total;
      return {
        ...load,
        summary: {
          ...load.summary,
          total: {
            ...t,
            count: t.count + lost.summary.total.count,
            errors: t.errors + lost.summary.total.errors,
          },
        },
      };
    });
    const r = byRule(run);
    expect(r.conservation.outcome).toBe('fail');
    expect(r.conservation.reason).toMatch(/lost/);
    expect(verdictExitCode(run.verdict)).toBe(1);
  }, 60_000);

  it('a dead Prometheus gives 4; an empty window gives 3', async () => {
    const start = Date.now() - 10 * 60_000;
    const dead = await runGate(spec(`http://127.0.0.1:${await freePort()}`), {
      telemetry: ISTIO_TELEMETRY,
      window: { start, end: start + 5000 },
      endpoints: {},
      evidenceDir: dir,
    });
    expect(verdictExitCode(dead.verdict)).toBe(4);
    expect(dead.verdict.summary).toMatch(/down: prometheus http:\/\/127\.0\.0\.1:\d+/);
    const empty = await runGate(spec(), {
      telemetry: ISTIO_TELEMETRY,
      window: { start, end: start + 5000 },
      endpoints: {},
      candidateWeight: 50,
      evidenceDir: dir,
    });
    expect(verdictExitCode(empty.verdict)).toBe(3);
  });
});
