/**
 * The gate on production-like traffic: user requests (no load tag) flow through the sandbox before, during
 * and after the window, the load runs inside it, and traces are kept at 100% or sampled at 1% (as Istio's
 * default). A real Prometheus scrapes the sandbox every second.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expectedSamples, loadPlan, runLoad } from '../src/jmeter/index.js';
import { startSandbox, type Sandbox } from '../src/sandbox/index.js';
import type { ReleaseSpec } from '../src/spec/types.js';
import { setTraffic } from '../src/stages/index.js';
import { runGate, type GateRun } from '../src/validators/index.js';
import { startPrometheus, type PrometheusFixture } from './helpers/prometheus.js';
import { ISTIO_TELEMETRY } from '../src/metrics/index.js';

let sandbox: Sandbox;
let prom: PrometheusFixture;
const dir = mkdtempSync(join(tmpdir(), 'gate-continuous-'));

/**
 * The tagged load: 320 requests with every trace kept. Sampled at 1%, 320 requests leave the window without a
 * sampled root span in up to 4% of runs (0.99^320; the user requests beside them make it less), and then the
 * gate rightly cannot say how traces are sampled: 1,400 make that 0.99^1400 < 1 in a million.
 */
const planFor = (sampling: number) =>
  loadPlan({
    load_spec: { num_threads: 4, loops: sampling < 1 ? 175 : 40, ramp_time: 0 },
    url_list: [
      { name: 'url1', url: 'http://proxy-access-control.default:9180/', method: 'GET' },
      { name: 'url2', url: 'http://proxy-access-control.default:9180/clover/testurl', method: 'GET' },
    ],
  });

function spec(): ReleaseSpec {
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
      metrics: { source: 'prometheus', url: prom.url, scrapeInterval: '1s' },
      tracing: { url: sandbox.urls.jaeger },
      rules: [
        { conservation: { hops: ['proxy-access-control', 'http-lb'], tolerance: 0 } },
        { split: { confidence: 0.999 } },
        { errorRate: { max: '10%' } },
        { compareErrors: { detect: '10%' } },
      ],
    },
  };
}

/** User traffic: one request after another, untagged, until stopped. */
function userTraffic(): { stop(): Promise<number> } {
  let running = true;
  let sent = 0;
  const loop = (async () => {
    while (running) {
      await fetch(`${sandbox.urls.ingress}/clover/user`)
        .then((r) => r.arrayBuffer())
        .catch(() => undefined);
      sent++;
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return sent;
    },
  };
}

/** User traffic before, during and after a window that holds one tagged load run. */
async function gateWithUserTraffic(
  plan: ReturnType<typeof planFor>,
): Promise<{ run: GateRun; users: number }> {
  const users = userTraffic();
  await prom.waitForScrape(Date.now());
  const start = Date.now();
  const load = await runLoad(plan, { engine: 'builtin', target: sandbox.urls.ingress });
  const end = Date.now();
  await prom.waitForScrape(end);
  const run = await runGate(spec(), {
    telemetry: ISTIO_TELEMETRY,
    window: { start, end },
    endpoints: {},
    load,
    candidateWeight: 50,
    evidenceDir: dir,
  });
  return { run, users: await users.stop() };
}

beforeAll(async () => {
  sandbox = await startSandbox({ stateDir: join(dir, 'sandbox') });
  prom = await startPrometheus([sandbox.urls.metrics]);
  await setTraffic(sandbox.platform, { ...spec(), gate: undefined } as ReleaseSpec, { weight: 50 });
}, 60_000);

afterAll(async () => {
  await Promise.all([prom?.stop(), sandbox?.stop()]);
  rmSync(dir, { recursive: true, force: true });
});

describe.each([1, 0.01])('continuous user traffic, traces sampled at %p', (sampling) => {
  const plan = planFor(sampling);
  const tagged = expectedSamples(plan)!.total;
  beforeAll(async () => {
    sandbox.core.mesh.traceSampling = sampling;
    await sandbox.setFault('http-lb', 'v2', null);
  });

  it('a healthy candidate passes; the load is counted exactly beside the user traffic', async () => {
    const { run, users } = await gateWithUserTraffic(plan);
    expect(users).toBeGreaterThan(0);
    expect(
      run.verdict.results
        .map((r) => `${r.outcome} ${r.rule}: ${r.reason}`)
        .filter((r) => !r.startsWith('pass')),
    ).toEqual([]);
    const conservation = run.verdict.results[0];
    expect(conservation.observed).toMatch(
      new RegExp(`proxy-access-control tagged \\S+ \\(v1 ${tagged}\\) = ${tagged}`),
    );
    if (sampling < 1)
      expect(conservation.reason).toMatch(
        /traces are sampled \(sampler.type=probabilistic, sampler.param=0.01\)/,
      );
    else expect(conservation.observed).toMatch(new RegExp(`root spans tagged \\S+ = ${tagged}`));
  }, 60_000);

  it('a 30%-error candidate fails with errorRate as its first reason', async () => {
    // ~170 candidate requests: the 10% limit's test rejects from ~35 errors, which a 20% fault reaches in only
    // about half the draws; 30% (~50 errors) in all but about 1 in 1,000.
    await sandbox.setFault('http-lb', 'v2', { errorRate: 0.3 });
    try {
      const { run } = await gateWithUserTraffic(plan);
      expect(run.verdict.outcome).toBe('fail');
      expect(run.verdict.summary).toMatch(/\(first: errorRate /);
      expect(run.verdict.results[0].outcome).toBe('pass'); // conservation holds: errors are answers, not losses
    } finally {
      await sandbox.setFault('http-lb', 'v2', null);
    }
  }, 60_000);
});
