/**
 * The metric rule against a real Prometheus (Debian) scraping a prom-client endpoint: a business counter per
 * version pushed by the test, windows that end on evidence (a scrape seen after the counters moved), the query
 * as sent and its values kept in the bundle and re-judged by `gate --replay`; the query checked by
 * `spec validate` (Prometheus' PromQL grammar) and by `gate preflight` against the same Prometheus.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as yaml from 'js-yaml';
import { Counter, Registry } from 'prom-client';
import { parser as promqlParser } from '@prometheus-io/lezer-promql';
import { ISTIO_TELEMETRY, seriesSelector } from '../src/metrics/index.js';
import type { GateRule, ReleaseSpec } from '../src/spec/types.js';
import { judgeBundle, preflight, runGate, verdictExitCode } from '../src/validators/index.js';
import { runCli } from './helpers/cli.js';
import { freePort } from './helpers/ports.js';
import { startPrometheus, type PrometheusFixture } from './helpers/prometheus.js';
import { testBundle } from './helpers/bundle.js';
import { serveMetrics } from './helpers/metrics-endpoint.js';

const registry = new Registry();
const failed = new Counter({
  name: 'checkout_failed_total',
  help: 'failed checkouts',
  labelNames: ['version'],
  registers: [registry],
});
const QUERY = 'sum(increase(checkout_failed_total{version="{{version}}"}[{{window}}]))';

let endpoint: Awaited<ReturnType<typeof serveMetrics>>;
let prom: PrometheusFixture;
const dir = mkdtempSync(join(tmpdir(), 'gate-metric-'));

function spec(stable: string, candidate: string, rules: GateRule[], url = prom.url): ReleaseSpec {
  return {
    apiVersion: 'clover-cd/v1',
    kind: 'Release',
    metadata: { name: 'checkout' },
    application: 'shop',
    service: { name: 'checkout', namespace: 'shop', port: 8080, stable, candidate },
    strategy: { canary: { steps: [50], window: '10s' } },
    gate: { metrics: { source: 'prometheus', url, scrapeInterval: '1s' }, rules },
  };
}
const compare = (extra: Record<string, unknown> = {}): GateRule[] => [
  { metric: { name: 'checkout-failures', query: QUERY, compare: { ratio: 1.2 }, ...extra } },
];

/**
 * A window in which each version's counter grows by the given amount. Every counter exists with a large value
 * before the window (so Prometheus' extrapolation treats them alike), and the window ends once Prometheus has
 * scraped the grown values: no clock decides what it holds.
 */
async function windowOf(growth: Record<string, number>) {
  const start = Date.now();
  for (const version of Object.keys(growth)) failed.inc({ version }, 10_000);
  await prom.waitForScrape(Date.now());
  await prom.waitForScrape(Date.now());
  for (const [version, n] of Object.entries(growth)) failed.inc({ version }, n);
  await prom.waitForScrape(Date.now());
  return { start, end: Date.now() };
}

beforeAll(async () => {
  endpoint = await serveMetrics(registry);
  prom = await startPrometheus([endpoint.url]);
}, 60_000);

afterAll(async () => {
  await Promise.all([prom?.stop(), endpoint?.close()]);
  rmSync(dir, { recursive: true, force: true });
});

describe('metric rule on a real Prometheus', () => {
  // d1 → d2: the candidate's failures double; s1 → s2: steady; m1, m2: never reported.
  let window: { start: number; end: number };
  beforeAll(async () => {
    window = await windowOf({ d1: 100, d2: 200, s1: 150, s2: 150 });
  }, 30_000);

  it('a candidate whose counter doubles fails the ratio compare, and the replay agrees without Prometheus', async () => {
    const run = await runGate(spec('d1', 'd2', compare()), {
      window,
      endpoints: {},
      evidenceDir: dir,
      telemetry: ISTIO_TELEMETRY,
    });
    const [result] = run.verdict.results;
    expect(result.outcome).toBe('fail');
    expect(result.reason).toMatch(/checkout-failures: .* is above d1's .* × 1\.2 \(ratio 2\)/);
    // The queries as sent (rendered), evaluated at the window's end, and their values.
    const ev = run.bundle.evidence.metricRules!['checkout-failures'];
    expect(ev.at).toBe(window.end);
    expect(ev.versions.d2.value.query).toBe(
      `sum(increase(checkout_failed_total{version="d2"}[${Math.ceil((window.end - window.start) / 1000)}s]))`,
    );
    expect(ev.versions.d2.value.value! / ev.versions.d1.value.value!).toBeCloseTo(2, 6);
    expect(run.bundle.sources[0].queries.map((q) => q.query)).toContainEqual(
      expect.stringContaining('checkout_failed_total{version="d1"}'),
    );
    const r = await runCli(['gate', '--replay', run.bundlePath, '-o', 'json']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).verdict).toEqual(run.verdict);
  });

  it('a steady candidate passes, and spends none of the alpha budget', async () => {
    const run = await runGate(spec('s1', 's2', compare()), {
      window,
      endpoints: {},
      evidenceDir: dir,
      telemetry: ISTIO_TELEMETRY,
    });
    // Both counters grew alike: Prometheus extrapolates increase() to the range's edges, the ratio stays exact.
    expect(run.verdict.results[0].outcome).toBe('pass');
    expect(run.verdict.results[0].observed).toMatch(/^s2 (\S+), s1 \1 \(ratio 1\)$/);
    expect(verdictExitCode(run.verdict)).toBe(0);
    expect(run.verdict.budget!.shares.map((s) => s.kind)).toEqual(['split']);
  });

  it('a missing series is inconclusive (3), naming the query and the window', async () => {
    const run = await runGate(spec('m1', 'm2', compare()), {
      window,
      endpoints: {},
      evidenceDir: dir,
      telemetry: ISTIO_TELEMETRY,
    });
    expect(verdictExitCode(run.verdict)).toBe(3);
    expect(run.verdict.results[0].reason).toMatch(
      /^no data for m2: no series from sum\(increase\(checkout_failed_total\{version="m2"\}\[\d+s\]\)\) at .* \(window \d+s\)$/,
    );
  });

  it('a query Prometheus refuses is an error carrying its message; too few samples is inconclusive', async () => {
    const refused = spec('s1', 's2', [
      {
        metric: { name: 'instant-rate', query: 'rate(checkout_failed_total{version="{{version}}"})', max: 1 },
      },
      {
        metric: {
          name: 'few',
          query: QUERY,
          samples: 'sum(checkout_failed_total{version="{{version}}"}) * 0',
          minSamples: 10,
          max: 100,
        },
      },
    ]);
    const run = await runGate(refused, {
      window,
      endpoints: {},
      evidenceDir: dir,
      telemetry: ISTIO_TELEMETRY,
    });
    expect(run.verdict.results[0]).toMatchObject({ outcome: 'error' });
    expect(run.verdict.results[0].reason).toMatch(
      /Prometheus refused the query \(HTTP 400 bad_data\): .*range vector/,
    );
    expect(run.verdict.results[1].outcome).toBe('inconclusive');
    expect(run.verdict.results[1].reason).toMatch(/^too few samples for s2: 0 < minSamples 10/);
  });

  it('gate preflight runs each query once: 0 when present, 3 for a missing series, 2 for a refused query, 4 when down', async () => {
    const ok = await preflight(spec('d1', 'd2', compare()), {}, ISTIO_TELEMETRY);
    expect(ok.checks.filter((c) => c.check.startsWith('gate.rules[0].metric'))).toEqual([
      expect.objectContaining({
        check: 'gate.rules[0].metric (checkout-failures) value of d2',
        status: 'ok',
      }),
      expect.objectContaining({
        check: 'gate.rules[0].metric (checkout-failures) value of d1',
        status: 'ok',
      }),
    ]);
    const missing = await preflight(spec('q1', 'q2', compare()), {}, ISTIO_TELEMETRY);
    expect(missing.exitCode).toBe(3);
    expect(missing.checks).toContainEqual(
      expect.objectContaining({ status: 'missing', detail: expect.stringContaining('version="q2"') }),
    );
    const refused = await preflight(
      spec('d1', 'd2', [{ metric: { name: 'bad', query: 'rate(checkout_failed_total)', max: 1 } }]),
      {},
      ISTIO_TELEMETRY,
    );
    expect(refused.exitCode).toBe(2);
    expect(refused.checks).toContainEqual(
      expect.objectContaining({ status: 'invalid', detail: expect.stringMatching(/HTTP 400 bad_data/) }),
    );
    const dead = `http://127.0.0.1:${await freePort()}`;
    const down = await preflight(spec('d1', 'd2', compare(), dead), {}, ISTIO_TELEMETRY);
    expect(down.exitCode).toBe(4);
  });
});

describe('metric rule judged from a bundle', () => {
  const value = (v: number | null, query = 'q') => ({
    value: { query, value: v, series: v === null ? 0 : 1 },
  });
  const judge = (body: Record<string, unknown>, v2: number | null, v1?: number) =>
    judgeBundle(
      testBundle([{ metric: { name: 'm', query: 'q', ...body } }], {
        metricRules: {
          m: {
            at: 60_000,
            window: '1m',
            versions: { v2: value(v2), ...(v1 === undefined ? {} : { v1: value(v1) }) },
          },
        },
      }),
    ).results[0].outcome;

  it('thresholds, ranges, differences and the direction of harm', () => {
    expect([judge({ max: 5 }, 5), judge({ max: 5 }, 6), judge({ min: 2, max: 5 }, 1)]).toEqual([
      'pass',
      'fail',
      'fail',
    ]);
    expect([
      judge({ compare: { difference: 3 } }, 13, 10),
      judge({ compare: { difference: 3 } }, 14, 10),
    ]).toEqual(['pass', 'fail']);
    // A success counter: lower is worse.
    expect([
      judge({ compare: { ratio: 1.25, direction: 'decrease' } }, 80, 100),
      judge({ compare: { ratio: 1.25, direction: 'decrease' } }, 79, 100),
    ]).toEqual(['pass', 'fail']);
    // No data is never a pass: a NaN or an empty result, or no value of the stable version to compare with.
    expect([judge({ max: 5 }, null), judge({ compare: { ratio: 1.2 } }, 1)]).toEqual([
      'inconclusive',
      'inconclusive',
    ]);
  });
});

describe('series selectors', () => {
  it('a quote, backslash or newline in a label value stays inside its PromQL string', () => {
    const selector = seriesSelector('istio_requests_total', {
      request_path: '/a"b\\c\nd',
      reporter: 'destination',
    });
    expect(selector).toBe('istio_requests_total{request_path="/a\\"b\\\\c\\nd",reporter="destination"}');
    const errors: number[] = [];
    promqlParser.parse(`sum(${selector})`).iterate({
      enter: (n) => {
        if (n.type.isError) errors.push(n.from);
      },
    });
    expect(errors).toEqual([]);
  });
});

describe('metric rule at spec validate (through the binary)', () => {
  const write = (rules: unknown[], extra: Record<string, unknown> = {}) => {
    const s = spec('v1', 'v2', rules as GateRule[], 'http://prometheus:9090');
    const file = join(dir, `spec-${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(file, yaml.dump({ ...s, ...extra }));
    return file;
  };

  it('a query that does not parse is exit 2 naming the file, the field and the parser position', async () => {
    const file = write([
      { errorRate: { max: '1%' } },
      {
        metric: {
          name: 'x',
          query: 'sum(increase(checkout_failed_total{version="{{version}}"}[{{window}}])',
          max: 1,
        },
      },
    ]);
    const r = await runCli(['spec', 'validate', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      `${file}: gate.rules[1].metric.query: PromQL syntax error at column 55 of the rendered query: expected an argument, ',' or ')' closing the call, found the end of the query`,
    );
  });

  it('an unknown variable or template is exit 2 with a suggestion; a template by name is valid', async () => {
    const bad = write(
      [
        { metric: { name: 'x', query: 'sum(checkout_failed_total{version="{{vresion}}"})', max: 1 } },
        { metric: { template: 'checkout-failure', max: 1 } },
      ],
      { metrics: { 'checkout-failures': { query: QUERY } } },
    );
    const r = await runCli(['spec', 'validate', bad]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      'gate.rules[0].metric.query: unknown variable "vresion" (did you mean "version"?)',
    );
    expect(r.stderr).toContain(
      'gate.rules[1].metric.template: unknown template "checkout-failure" (did you mean "checkout-failures"?)',
    );
    const good = write([{ metric: { template: 'checkout-failures', max: 1 } }], {
      metrics: { 'checkout-failures': { query: QUERY } },
    });
    expect((await runCli(['spec', 'validate', good])).code).toBe(0);
    expect((await runCli(['spec', 'validate', 'examples/sdc-metric-rule.yaml'])).code).toBe(0);
  });
});
