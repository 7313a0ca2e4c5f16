import { describe, expect, it } from '@jest/globals';
import { XMLParser } from 'fast-xml-parser';
import {
  judgeBundle,
  renderJUnit,
  renderMarkdown,
  renderText,
  verdictExitCode,
  checkSplit,
} from '../src/validators/index.js';
import {
  compareProportions,
  exactBinomialInterval,
  histogramQuantile,
  mannWhitney,
  mannWhitneyHistograms,
  wilsonInterval,
} from '../src/validators/stats.js';
import { ISTIO_TELEMETRY, type MeshTelemetry } from '../src/metrics/index.js';
import { metricEvidence } from '../src/validators/metrics.js';
import type { EvidenceBundle, VersionCounts } from '../src/validators/types.js';
import type { GateRule } from '../src/spec/types.js';
import { testBundle } from './helpers/bundle.js';

function counts(requests: number, errors: number): VersionCounts {
  return { requests, errors, codes: { '200': requests - errors, ...(errors ? { '500': errors } : {}) } };
}

/** The shared test bundle at 50% with Prometheus up, a balanced mesh and a load run, unless `over` says otherwise. */
function bundle(
  rules: GateRule[],
  over: Partial<EvidenceBundle['evidence']> = {},
  extra: Partial<EvidenceBundle> = {},
): EvidenceBundle {
  return testBundle(
    rules,
    {
      metrics: {
        source: 'prometheus',
        hops: {
          'proxy-access-control': { v1: counts(1000, 0) },
          'http-lb': { v1: counts(500, 2), v2: counts(500, 3) },
        },
        latency: {},
        missing: [],
      },
      load: {
        engine: 'builtin',
        sent: 1000,
        errors: 5,
        codes: { '200': 995, '500': 5 },
        userAgents: { chrome: 330, safari: 670 },
        labels: {},
      },
      ...over,
    },
    {
      candidateWeight: 50,
      minSamples: 30,
      sources: [{ name: 'prometheus', url: 'http://p', status: 'ok', queries: [] }],
      ...extra,
    },
  );
}

describe('statistics', () => {
  it('Mann-Whitney matches R wilcox.test (normal approximation, continuity correction)', () => {
    const r = mannWhitney([1, 2, 3, 4, 5], [6, 7, 8, 9, 10]);
    expect(r.u).toBe(25);
    expect(r.cles).toBe(1);
    expect(r.pGreater).toBeCloseTo(0.0061, 3);
    const same = mannWhitney([1, 2, 3], [1, 2, 3]);
    expect(same.cliffsDelta).toBe(0);
    expect(same.pGreater).toBeGreaterThan(0.4);
  });

  it('Mann-Whitney on histograms treats bins as ties', () => {
    const h1 = { le: [10, 20, 50, Infinity], counts: [80, 95, 100, 100] };
    const h2 = { le: [10, 20, 50, Infinity], counts: [20, 60, 100, 100] };
    const r = mannWhitneyHistograms(h1, h2);
    expect(r.nBaseline).toBe(100);
    expect(r.cliffsDelta).toBeGreaterThan(0.4);
    expect(r.pGreater).toBeLessThan(1e-6);
  });

  it('binomial intervals contain the truth and exclude the far', () => {
    const w = wilsonInterval(100, 1000, 0.999);
    expect(w.low).toBeLessThan(0.1);
    expect(w.high).toBeGreaterThan(0.1);
    expect(w.high).toBeLessThan(0.14);
    const e = exactBinomialInterval(0, 50, 0.95);
    expect(e.low).toBe(0);
    expect(e.high).toBeCloseTo(0.0711, 3);
  });

  it('proportion test: mid-p exact without a margin, Farrington-Manning with one', () => {
    expect(compareProportions(0, 100, 5, 100).method).toBe('mid-p-exact');
    // Fisher's one-sided p is 0.0297; mid-p counts the observed table half: 0.0297 − ½·P(X = 5).
    expect(compareProportions(0, 100, 5, 100).p).toBeCloseTo(0.0148, 3);
    expect(compareProportions(10, 2000, 12, 2000, 0.005).method).toBe('farrington-manning');
    expect(compareProportions(10, 2000, 110, 2000).p).toBeLessThan(1e-6);
    expect(compareProportions(10, 2000, 12, 2000, 0.005).p).toBeGreaterThan(0.5);
  });

  it('histogram quantile interpolates like Prometheus', () => {
    expect(histogramQuantile({ le: [10, 20, Infinity], counts: [50, 100, 100] }, 0.75)).toBe(15);
  });
});

describe('metric evidence read with the telemetry description it is given', () => {
  // A mesh whose telemetry names everything differently (Linkerd's proxy metrics, for instance).
  const other: MeshTelemetry = {
    mesh: 'other',
    requests: 'response_total',
    duration: {
      family: 'response_latency_ms',
      bucket: 'response_latency_ms_bucket',
      sum: 'response_latency_ms_sum',
      count: 'response_latency_ms_count',
    },
    labels: {
      service: 'dst_service',
      version: 'dst_version',
      workload: 'dst_deployment',
      code: 'status_code',
      reporter: 'direction',
      load: 'load_run',
      route: 'route',
    },
    serverReporter: 'inbound',
  };
  const series = (version: string, code: string, value: number, direction = 'inbound') => ({
    name: 'response_total',
    labels: { direction, dst_service: 'http-lb', dst_version: version, status_code: code, load_run: 'r1' },
    value,
  });

  it('counts its series by its labels, and names them when they are missing', () => {
    const m = metricEvidence(
      'prometheus',
      [series('v1', '200', 90), series('v2', '503', 10), series('v2', '200', 500, 'outbound')],
      'http-lb',
      other,
      { loadRunId: 'r1' },
    );
    expect(m.hops['http-lb']).toEqual({
      v1: { requests: 90, errors: 0, codes: { '200': 90 } },
      v2: { requests: 10, errors: 10, codes: { '503': 10 } },
    });
    expect(m.tagged?.['http-lb'].v2.requests).toBe(10);
    expect(m.missing).toEqual(['response_latency_ms_bucket{direction="inbound",dst_service="http-lb"}']);
    // Istio's names find nothing in them: no literal is read behind the description's back.
    expect(metricEvidence('prometheus', [series('v1', '200', 90)], 'http-lb', ISTIO_TELEMETRY).hops).toEqual(
      {},
    );
  });

  it("a bundle's rules name the series of the telemetry it recorded, on replay too", () => {
    const b = testBundle(
      [{ errorRate: { max: '1%' } }],
      { metrics: { source: 'prometheus', hops: {}, latency: {}, missing: [] } },
      { telemetry: other },
    );
    const [result] = judgeBundle(b).results;
    expect(result.outcome).toBe('inconclusive');
    expect(result.reason).toContain('response_total{direction="inbound",dst_service="http-lb"}');
    expect(result.reason).not.toContain('istio_');
  });
});

describe('metric evidence from Istio series', () => {
  it('groups requests by hop and version, errors are 5xx', () => {
    const m = metricEvidence(
      'scrape',
      [
        {
          name: 'istio_requests_total',
          labels: {
            reporter: 'destination',
            destination_service_name: 'http-lb',
            destination_workload: 'http-lb-v2',
            response_code: '503',
          },
          value: 4,
        },
        {
          name: 'istio_requests_total',
          labels: {
            reporter: 'destination',
            destination_service_name: 'http-lb',
            destination_version: 'v2',
            response_code: '200',
          },
          value: 6,
        },
        {
          name: 'istio_requests_total',
          labels: {
            reporter: 'source',
            destination_service_name: 'http-lb',
            destination_version: 'v2',
            response_code: '200',
          },
          value: 99,
        },
      ],
      'http-lb',
      ISTIO_TELEMETRY,
    );
    expect(m.hops['http-lb'].v2).toEqual({ requests: 10, errors: 4, codes: { '503': 4, '200': 6 } });
    expect(m.missing).toEqual([
      'istio_request_duration_milliseconds_bucket{reporter="destination",destination_service_name="http-lb"}',
    ]);
  });
});

describe('rules and verdict', () => {
  it('a healthy bundle passes every rule, with observed / expected / source / reason', () => {
    const b = bundle([
      { conservation: { hops: ['proxy-access-control', 'http-lb'] } },
      { split: { confidence: 0.999 } },
      { errorRate: { max: '1%' } },
      { compareErrors: { alpha: 0.01 } },
      { share: { userAgent: 'chrome', expect: '33%', tolerance: '3%' } },
    ]);
    const v = judgeBundle(b);
    expect(v.results.map((r) => r.outcome)).toEqual(['pass', 'pass', 'pass', 'pass', 'pass']);
    expect(v.outcome).toBe('pass');
    expect(verdictExitCode(v)).toBe(0);
    const c = v.results[0];
    expect(c.observed).toContain('load sent = 1000');
    expect(c.observed).toContain('http-lb (v1 500 + v2 500) = 1000');
    expect(c.source).toBe('load + prometheus');
    expect(v.results[2].observed).toBe('0.6% (3 of 500)');
  });

  it('lost requests fail conservation, naming the hop and how many', () => {
    const b = bundle([{ conservation: { hops: ['proxy-access-control', 'http-lb'], tolerance: 0 } }]);
    b.evidence.metrics!.hops['http-lb'].v2 = counts(495, 3);
    const v = judgeBundle(b);
    expect(v.outcome).toBe('fail');
    expect(v.results[0].reason).toMatch(/http-lb .*: 5 lost/);
  });

  it('a 20% error candidate fails the threshold and the comparison', () => {
    const b = bundle([{ errorRate: { max: '1%' } }, { compareErrors: {} }]);
    b.evidence.metrics!.hops['http-lb'].v2 = counts(500, 100);
    const v = judgeBundle(b);
    expect(v.results.map((r) => r.outcome)).toEqual(['fail', 'fail']);
    expect(verdictExitCode(v)).toBe(1);
  });

  it('skewed traffic fails the split rule', () => {
    const b = bundle([{ split: {} }], {}, { candidateWeight: 10 });
    expect(judgeBundle(b).results[0].reason).toMatch(/outside the observed interval/);
    expect(checkSplit({ stable: 900, candidate: 100 }, 10).outcome).toBe('pass');
  });

  it('no data is never a pass: too few samples or an empty window is inconclusive (3)', () => {
    const b = bundle([{ errorRate: { max: '1%' } }, { compareLatency: {} }]);
    b.evidence.metrics!.hops['http-lb'].v2 = counts(10, 0);
    const v = judgeBundle(b);
    expect(v.results[0].outcome).toBe('inconclusive');
    expect(v.results[0].reason).toMatch(/too few samples: v2 has 10 \(minSamples 30\)/);
    expect(v.results[1].reason).toMatch(
      /no data in the window: expected series istio_request_duration_milliseconds_bucket/,
    );
    expect(verdictExitCode(v)).toBe(3);
    const empty = bundle([{ errorRate: { max: '1%' } }], {
      metrics: { source: 'prometheus', hops: {}, latency: {}, missing: [] },
      load: undefined,
    });
    expect(judgeBundle(empty).outcome).toBe('inconclusive');
  });

  it('a source that is down gives error (4), naming it', () => {
    const b = bundle([{ errorRate: { max: '1%' } }], { metrics: undefined });
    b.sources[0] = {
      name: 'prometheus',
      url: 'http://127.0.0.1:1',
      status: 'down',
      error: 'Prometheus (GET http://127.0.0.1:1/api/v1/query): ECONNREFUSED',
      queries: [],
    };
    const v = judgeBundle(b);
    expect(v.outcome).toBe('error');
    expect(verdictExitCode(v)).toBe(4);
    expect(v.results[0].reason).toContain('prometheus is down');
  });

  it('latency comparison on trace durations catches a slower candidate', () => {
    const base = Array.from({ length: 400 }, (_, i) => 20 + (i % 40));
    const b = bundle(
      [{ compareLatency: { alpha: 0.01, maxEffect: 0.2 } }, { latency: { percentile: 95, max: '50ms' } }],
      {
        metrics: undefined,
        traces: {
          traces: 800,
          spans: 800,
          rootSpans: 800,
          requests: [],
          hops: {},
          versions: { v1: counts(400, 0), v2: counts(400, 0) },
          durations: { v1: base, v2: base.map((x) => x * 2) },
        },
      },
    );
    const v = judgeBundle(b);
    expect(v.results[0].outcome).toBe('fail');
    expect(v.results[0].source).toBe('jaeger span durations');
    expect(v.results[1].outcome).toBe('fail');
  });

  it('count rules read the request table from root spans', () => {
    const traces = {
      traces: 60,
      spans: 60,
      rootSpans: 60,
      hops: {},
      versions: {},
      durations: {},
      requests: [
        { url: 'http://x/url3', status: '404', userAgent: 'chrome', count: 30 },
        { url: 'http://x/', status: '200', userAgent: 'safari', count: 30 },
      ],
    };
    const b = bundle(
      [
        { count: { route: '/url3', status: 404, expect: 'all' } },
        { count: { status: '5xx', expect: 'none' } },
        { count: { route: '/', status: 404, expect: 'all' } },
      ],
      { traces },
    );
    expect(judgeBundle(b).results.map((r) => r.outcome)).toEqual(['pass', 'pass', 'fail']);
  });

  it('replay: judging the same bundle again gives the same verdict', () => {
    const b = bundle([{ errorRate: { max: '1%' } }, { split: {} }]);
    const v = judgeBundle(b);
    expect(judgeBundle(JSON.parse(JSON.stringify({ ...b, verdict: v })))).toEqual(v);
  });
});

describe('reports', () => {
  const b = bundle([{ errorRate: { max: '1%' } }, { compareErrors: {} }, { compareLatency: {} }]);
  b.evidence.metrics!.hops['http-lb'].v2 = counts(500, 100);
  const v = judgeBundle(b);

  it('JUnit XML has one testcase per rule, failures and skipped', () => {
    const doc = new XMLParser({ ignoreAttributes: false }).parse(renderJUnit(v, b));
    const suite = doc.testsuites.testsuite;
    expect(suite['@_tests']).toBe('3');
    expect(suite['@_failures']).toBe('2');
    expect(suite['@_skipped']).toBe('1');
    expect(suite.testcase[0].failure['@_message']).toMatch(/error rate above 1%/);
  });

  it('JUnit of an error verdict (exit 4) has an <error>; of an inconclusive one (exit 3), <skipped> with the reason', () => {
    const parse = (x: string) => new XMLParser({ ignoreAttributes: false }).parse(x).testsuites.testsuite;
    const passed = {
      rule: 'errorRate',
      outcome: 'pass' as const,
      observed: '0%',
      expected: '≤ 1%',
      source: 'prometheus',
      reason: 'ok',
    };
    const down = {
      ...b,
      sources: [
        {
          name: 'prometheus' as const,
          status: 'down' as const,
          error: 'connect ECONNREFUSED 127.0.0.1:9090',
          queries: [],
        },
      ],
    };
    const err = parse(
      renderJUnit({ outcome: 'error', summary: 'ERROR: a source is down', results: [passed] }, down),
    );
    expect(err['@_errors']).toBe('1');
    const errCase = err.testcase.find((c: any) => c['@_name'] === 'verdict');
    expect(errCase.error['@_message']).toMatch(/a source is down; prometheus is down: connect ECONNREFUSED/);
    const inc = parse(
      renderJUnit(
        { outcome: 'inconclusive', summary: 'INCONCLUSIVE: 12 samples, 50 needed', results: [passed] },
        b,
      ),
    );
    expect(inc['@_skipped']).toBe('1');
    expect(inc.testcase.find((c: any) => c['@_name'] === 'verdict').skipped['@_message']).toBe(
      'inconclusive: INCONCLUSIVE: 12 samples, 50 needed',
    );
    // A verdict some rule already carries adds no testcase.
    expect(parse(renderJUnit(v, b))['@_tests']).toBe('3');
  });

  it('text and Markdown show every rule with its reason', () => {
    const text = renderText(v, b, '/tmp/x.json');
    expect(text).toMatch(/^gate FAIL/);
    expect(text).toContain('observed  20% (100 of 500)');
    expect(text).toContain('clover-cd gate --replay /tmp/x.json');
    const mdText = renderMarkdown(v, b);
    expect(mdText).toContain('| ❌ | errorRate (max 1%) | 20% (100 of 500) |');
  });
});

describe('l4 rule on clovisor evidence', () => {
  const l4Counts = (connections: number, resets: number) => ({
    connections,
    resetConnections: resets,
    resetsSent: 0,
    resetsReceived: resets,
    retransmits: 0,
    segmentsOut: connections * 4,
    connectFailures: 0,
    workloads: [],
    resetRate: connections ? resets / connections : undefined,
    retransmitRate: 0,
  });
  const l4 = (v2Resets: number) => ({
    source: 'clovisor' as const,
    window: { start: 0, end: 60_000 },
    versions: { v1: l4Counts(200, 0), v2: l4Counts(200, v2Resets) },
    targets: [],
    lost: { events: 0, kernel: { eventsLost: 0, connsFull: 0 } },
    complete: true,
  });
  const rules: GateRule[] = [{ errorRate: { max: '5%' } }, { l4: { resetRate: '1%' } }];

  it('fails on the candidate reset rate while L7 errors stay under their threshold', () => {
    const v = judgeBundle(bundle(rules, { l4: l4(40) as any }));
    expect(v.outcome).toBe('fail');
    const r = v.results.find((x) => x.rule.startsWith('l4'))!;
    expect(r.outcome).toBe('fail');
    expect(r.reason).toMatch(/reset rate of v2 20\.00% > 1%/);
    expect(v.results.find((x) => x.rule.startsWith('errorRate'))!.outcome).toBe('pass');
  });

  it('passes a healthy candidate', () => {
    expect(judgeBundle(bundle(rules, { l4: l4(0) as any })).outcome).toBe('pass');
  });

  it('without L4 evidence skips an optional rule and is inconclusive for a required one', () => {
    const missing = {
      sources: [
        {
          name: 'clovisor' as const,
          status: 'not-configured' as const,
          queries: [],
          error: 'no clovisor tracer is running',
        },
      ],
    };
    const optional = judgeBundle(bundle(rules, {}, missing));
    expect(optional.outcome).toBe('pass');
    const required = judgeBundle(bundle([{ l4: { resetRate: '1%', required: true } }], {}, missing));
    expect(required.outcome).toBe('inconclusive');
    expect(required.results[0].reason).toMatch(/L4 evidence missing for v2.*no clovisor tracer is running/);
  });
});

describe('observed split at the edges', () => {
  it('all traffic on one version matches a 100% / 0% weight exactly', () => {
    expect(checkSplit({ stable: 0, candidate: 7075 }, 100).outcome).toBe('pass');
    expect(checkSplit({ stable: 7075, candidate: 0 }, 0).outcome).toBe('pass');
    expect(checkSplit({ stable: 3, candidate: 7072 }, 100).outcome).toBe('fail');
  });
});
