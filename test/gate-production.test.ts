/**
 * The gate outside the demo's closed world, on seeded data with known truth: uneven weights, tail-only and
 * spread-independent latency regressions, one failing endpoint, traffic across the window's edges, sampled
 * traces, sample-size planning, old bundles, and load results that are not complete.
 */
import { describe, expect, it } from '@jest/globals';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { countProblem } from '../src/jmeter/index.js';
import type { GateRule } from '../src/spec/types.js';
import { cloverRoutes } from '../src/server/clover-routes.js';
import { judgeBundle } from '../src/validators/index.js';
import { plannedSamples } from '../src/validators/sample-size.js';
import { compareProportions } from '../src/validators/stats.js';
import type { VersionCounts } from '../src/validators/types.js';
import { testBundle } from './helpers/bundle.js';
import { runCli } from './helpers/cli.js';
import { mulberry32 } from '../bench/gate-scenarios.js';

const counts = (requests: number, errors = 0): VersionCounts => ({
  requests,
  errors,
  codes: { '200': requests - errors, ...(errors ? { '503': errors } : {}) },
});

/** Latency samples: lognormal around 50 ms; `change` rewrites a candidate draw from its standard normal z. */
function latencies(seed: number, sigma: number, change: (ms: number, z: number) => number = (ms) => ms) {
  const rnd = mulberry32(seed);
  const draw = (n: number, cand: boolean) =>
    Array.from({ length: n }, () => {
      const z = Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
      const ms = 50 * Math.exp(sigma * z);
      return cand ? change(ms, z) : ms;
    });
  return { v1: draw(18_000, false), v2: draw(2_000, true) };
}

const bundle = testBundle;

const traced = (durations: Record<string, number[]>) => ({
  traces: 0,
  spans: 0,
  rootSpans: 0,
  requests: [],
  versions: {},
  hops: {},
  durations,
});

describe('latency: tail and median regressions, at any spread', () => {
  const rules: GateRule[] = [{ compareLatency: {} }, { tail: {} }];

  it('p99 +50% with the median unchanged fails, and the tail rule is the first reason', () => {
    const d = latencies(7, 0.6, (ms, z) => (z > 2.054 ? ms * 1.5 : ms)); // the slowest 2% of the candidate
    const v = judgeBundle(bundle(rules, { traces: traced(d) }));
    expect(v.outcome).toBe('fail');
    expect(v.results.map((r) => r.outcome)).toEqual(['pass', 'fail']);
    expect(v.summary).toMatch(/^FAIL: 1 fail, 1 pass \(first: tail: v2's p99 is 1\.[4-6]\d× v1's/);
  });

  it('median +30% fails at σ 0.6 and at σ 1.2 alike (the effect is a ratio, not Cliff’s δ)', () => {
    for (const sigma of [0.6, 1.2]) {
      const v = judgeBundle(
        bundle([{ compareLatency: {} }], { traces: traced(latencies(11, sigma, (ms) => ms * 1.3)) }),
      );
      expect(v.results[0].outcome).toBe('fail');
      expect(v.results[0].observed).toMatch(/^p50 v2 .* 1\.[23]\d×/);
    }
  });

  it('the histogram fallback estimates the same ratio instead of shrinking it', () => {
    const d = latencies(13, 0.6, (ms) => ms * 1.3);
    const le = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, Infinity];
    const hist = (xs: number[]) => ({ le, counts: le.map((b) => xs.filter((x) => x <= b).length) });
    const metrics = {
      source: 'prometheus' as const,
      hops: { 'http-lb': { v1: counts(18_000), v2: counts(2_000) } },
      latency: { v1: hist(d.v1), v2: hist(d.v2) },
      missing: [],
    };
    const r = judgeBundle(bundle([{ compareLatency: {} }], { metrics })).results[0];
    expect(r.source).toContain('istio_request_duration_milliseconds');
    expect(r.outcome).toBe('fail');
    expect((r.details as { ratio: number }).ratio).toBeGreaterThan(1.2);
  });

  it('an old rule with maxEffect is judged by the ratio, and says so', () => {
    const r = judgeBundle(
      bundle([{ compareLatency: { alpha: 0.01, maxEffect: 0.2 } }], { traces: traced(latencies(17, 0.6)) }),
    ).results[0];
    expect(r.outcome).toBe('pass');
    expect(r.reason).toMatch(/maxEffect 0\.2 is no longer used/);
  });
});

describe('errors: calibrated at a 10/90 split, per route', () => {
  it('keeps α at 10% weight and a 0.5% base rate (seeded: 4,000 healthy windows)', () => {
    const rnd = mulberry32(3);
    // Binomial draws by geometric gaps between errors (O(errors), not O(requests)).
    const binomial = (n: number, p: number) => {
      let k = 0;
      for (
        let i = Math.floor(Math.log(1 - rnd()) / Math.log(1 - p));
        i < n;
        i += 1 + Math.floor(Math.log(1 - rnd()) / Math.log(1 - p))
      )
        k++;
      return k;
    };
    let alarms = 0;
    for (let i = 0; i < 4000; i++)
      if (compareProportions(binomial(18_000, 0.005), 18_000, binomial(2_000, 0.005), 2_000).p < 0.05)
        alarms++;
    expect(alarms / 4000).toBeLessThanOrEqual(0.05);
    expect(alarms / 4000).toBeGreaterThan(0.03); // mid-p: not Fisher's conservatism either
  });

  it('503s on 3% of one endpoint fail the gate although the overall rate is under the limit', () => {
    const routes = {
      '/clover/api': { v1: counts(4500, 20), v2: counts(500, 18) },
      '/': { v1: counts(4500, 22), v2: counts(500, 3) },
      '/clover/testurl': { v1: counts(4500, 23), v2: counts(500, 2) },
      '/clover/static': { v1: counts(4500, 21), v2: counts(500, 2) },
    };
    const metrics = {
      source: 'prometheus' as const,
      hops: { 'http-lb': { v1: counts(18_000, 86), v2: counts(2_000, 25) } },
      latency: {},
      missing: [],
      routes,
    };
    const v = judgeBundle(
      bundle(
        [
          { errorRate: { max: '2%', perRoute: true } },
          { compareErrors: { alpha: 0.01, perRoute: true } },
          { errorRate: { max: '2%', route: '/' } },
        ],
        { metrics },
      ),
    );
    expect(v.results.map((r) => r.outcome)).toEqual(['fail', 'fail', 'pass']);
    expect(v.results[0].reason).toMatch(
      /at \/clover\/api above 2%.*although the overall rate is 1\.25% \(25 of 2000\)/,
    );
    expect(v.results[1].reason).toMatch(/more errors than v1 at \/clover\/api/);
  });
});

describe('conservation on production traffic', () => {
  const rule: GateRule[] = [{ conservation: { hops: ['proxy-access-control', 'http-lb'], tolerance: 0 } }];
  const load = {
    engine: 'builtin',
    runId: 'run-1',
    startedAt: 5_000,
    endedAt: 55_000,
    sent: 2000,
    errors: 0,
    codes: {},
    userAgents: {},
    labels: {},
  };
  /** User traffic through the window: 20,000 requests at 3 ms through the proxy; 5 were in flight at an edge. */
  const metrics = (lostTagged = 0) => ({
    source: 'prometheus' as const,
    hops: {
      'proxy-access-control': { v1: counts(22_005) },
      'http-lb': { v1: counts(19_800 - lostTagged), v2: counts(2_200) },
    },
    tagged: {
      'proxy-access-control': { v1: counts(2000) },
      'http-lb': { v1: counts(1800 - lostTagged), v2: counts(200) },
    },
    hopLatencyMs: { 'proxy-access-control': 3, 'http-lb': 2 },
    latency: {},
    missing: [],
  });

  it('traffic across the window edges passes: the load is counted exactly, all traffic within what was in flight', () => {
    const r = judgeBundle(bundle(rule, { load, metrics: metrics() })).results[0];
    expect(r.outcome).toBe('pass');
    expect(r.reason).toMatch(/in flight at the window edges: ±\d+/);
  });

  it('three lost load requests fail, named at the hop that lost them', () => {
    const r = judgeBundle(bundle(rule, { load, metrics: metrics(3) })).results[0];
    expect(r.outcome).toBe('fail');
    expect(r.reason).toMatch(/http-lb tagged vs load sent \(2000\): 3 lost/);
  });

  it('1% sampled traces: root spans are scaled with a sampling allowance, never used as exact', () => {
    const traces = { ...traced({}), rootSpans: 213, sampling: { type: 'probabilistic', param: 0.01 } };
    const r = judgeBundle(bundle(rule, { load, metrics: metrics(), traces })).results[0];
    expect(r.outcome).toBe('pass');
    expect(r.observed).toMatch(/root spans = 213 \(÷ 1% ≈ 21300 ± \d+\)/);
    expect(r.reason).toMatch(/traces are sampled .*not an exact count/);
    // The spec's gate.traceSampling says the same without tags; an unknown sampler is left out.
    expect(
      judgeBundle(
        bundle(
          rule,
          { load, metrics: metrics(), traces: { ...traces, sampling: undefined } },
          { traceSampling: 0.01 },
        ),
      ).results[0].outcome,
    ).toBe('pass');
    const unknown = judgeBundle(
      bundle(rule, {
        load,
        metrics: metrics(),
        traces: { ...traces, sampling: { type: 'ratelimiting', param: 2 } },
      }),
    ).results[0];
    expect(unknown.reason).toMatch(/root spans left out: sampler.type=ratelimiting/);
  });
});

describe('windows sized by evidence', () => {
  it('plans the candidate requests from every rule, and a shorter window of an old bundle is inconclusive, never a pass', () => {
    const gate = {
      minSamples: 100,
      rules: [
        { errorRate: { max: '1%' } },
        { tail: { percentiles: [95, 99] } },
        { compareErrors: { alpha: 0.01 } },
      ] as GateRule[],
    };
    const plan = plannedSamples(gate, { weightPercent: 10 });
    expect(plan.candidate).toBe(1000);
    expect(plan.total).toBe(10_000);
    // Each rule: the candidate requests after which a healthy canary of ordinary traffic has ruled out its detect size.
    expect(plan.items.map((i) => [i.rule, i.candidate])).toEqual([
      ['minSamples', 100],
      ['errorRate 1%', 925],
      ['tail p95/p99', 1000],
      ['compareErrors', 640],
    ]);
    expect(
      plannedSamples({ ...gate, rules: [{ compareErrors: { perRoute: true } }] }, { weightPercent: 10 })
        .items[1],
    ).toMatchObject({
      rule: 'compareErrors per route',
      why: expect.stringMatching(/\+3% on each of 4 routes/),
    });
    expect(
      plannedSamples(
        { ...gate, rules: [{ compareErrors: {} }] },
        { weightPercent: 10, baselineErrorRate: 0.02 },
      ).candidate,
    ).toBeGreaterThan(640);
    const metrics = {
      source: 'prometheus' as const,
      hops: { 'http-lb': { v1: counts(2700, 54), v2: counts(300, 12) } },
      latency: {},
      missing: [],
    };
    const v = judgeBundle(
      bundle(
        [{ errorRate: { max: '5%' } }, { compareErrors: {} }],
        { metrics },
        { plannedSamples: plan.candidate },
      ),
    );
    expect(v.outcome).toBe('inconclusive');
    expect(v.results[0].reason).toBe('too few samples: v2 has 300 of the 1000 planned (minSamples 100)');
  });
});

describe('old bundles', () => {
  it('gate --replay judges a bundle written before tags, routes and sampling existed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'old-bundle-'));
    const old = bundle(
      [
        { conservation: { hops: ['proxy-access-control', 'http-lb'], tolerance: 0 } },
        { compareErrors: { alpha: 0.01 } },
        { compareLatency: { alpha: 0.01, maxEffect: 0.2 } },
      ],
      {
        load: { engine: 'builtin', sent: 1000, errors: 0, codes: {}, userAgents: {}, labels: {} },
        metrics: {
          source: 'prometheus',
          hops: {
            'proxy-access-control': { v1: counts(1000) },
            'http-lb': { v1: counts(500, 2), v2: counts(500, 3) },
          },
          latency: {},
          missing: [],
        },
        traces: {
          ...traced({
            v1: Array.from({ length: 500 }, (_, i) => 40 + (i % 20)),
            v2: Array.from({ length: 500 }, (_, i) => 40 + (i % 20)),
          }),
          rootSpans: 1000,
        },
      },
      { candidateWeight: 50, minSamples: 30 },
    );
    writeFileSync(join(dir, 'old.json'), JSON.stringify(old));
    const r = await runCli(['gate', '--replay', join(dir, 'old.json')]);
    expect(r.stdout).toMatch(/PASS: 3 pass/);
    expect(r.code).toBe(0);
    writeFileSync(join(dir, 'future.json'), JSON.stringify({ ...old, version: 2 }));
    const bad = await runCli(['gate', '--replay', join(dir, 'future.json')]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/version: expected 1, found (number )?2/);
  }, 30_000);
});

describe('complete load results', () => {
  const plan = { load_spec: { num_threads: 2, loops: 3 }, url_list: [{ url: 'a' }, { url: 'b' }] };
  const jtl = (rows: number, cut = false) =>
    `timeStamp,elapsed,label,responseCode\n${Array.from({ length: rows }, (_, i) => `${i},1,url1,200\n`).join('')}${cut ? '99,1,ur' : ''}`;
  const route = async (rows: number, cut = false, summary = rows) => {
    const routes = cloverRoutes({
      jmeterGen: async () => 'Generated test plan',
      jmeterStart: async () => 'Started load run x',
      jmeterResults: async (kind) =>
        kind === 'log'
          ? `Retrieved all results\nsummary = ${summary} in 00:00:01 = 12.0/s\n`
          : `Retrieved all results\n${jtl(rows, cut)}`,
    });
    await routes.handle('POST', '/jmeter/gen', plan);
    await routes.handle('POST', '/jmeter/start', {});
    return String((await routes.handle('GET', '/jmeter/results/results', undefined))!.body);
  };

  it('the Clover route says "Retrieved all results" only when the rows match the plan and JMeter', async () => {
    expect(await route(12)).toMatch(/^Retrieved all results\n/);
    expect(await route(2)).toMatch(
      /^Results incomplete: the plan sends 12 samples, the results file has 2\n/,
    );
    expect(await route(12, true)).toMatch(/^Results incomplete: the last row is cut off/);
    expect(await route(11, false, 12)).toMatch(
      /^Results incomplete: JMeter counted 12 samples, the results file has 11/,
    );
  });

  it('a load run whose count does not match the plan is reported', () => {
    const summary = { total: { count: 10 }, labels: {} } as never;
    expect(countProblem({ expected: 12, summary }, 10)).toBe('received 10 of the 12 samples the plan sends');
    expect(countProblem({ expected: 12, summary }, 12)).toMatch(
      /^JMeter counted 12 samples, the results file holds 10/,
    );
    expect(countProblem({ expected: 10, summary }, 10)).toBeUndefined();
  });
});
