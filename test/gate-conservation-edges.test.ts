/**
 * Conservation that knows what it does not know: trace sampling nobody stated, snapshot instants known only
 * within their skew, and a trace store that dropped spans of the window. Each source covers the interval the
 * metric snapshots were actually taken at.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { scrapeProvider } from '../src/metrics/scrape.js';
import { handleJaeger } from '../src/sandbox/jaeger.js';
import { TraceStore } from '../src/sandbox/traces.js';
import { createJaegerClient, eachDataElement, forEachTrace } from '../src/services/jaeger.js';
import type { GateRule } from '../src/spec/types.js';
import { judgeFixed } from '../src/validators/verdict.js';
import { mulberry32 } from '../bench/gate-scenarios.js';
import { testBundle } from './helpers/bundle.js';
import type { EvidenceBundle, VersionCounts } from '../src/validators/types.js';

const counts = (requests: number): VersionCounts => ({ requests, errors: 0, codes: { '200': requests } });
const rule: GateRule[] = [{ conservation: { hops: ['proxy-access-control', 'http-lb'], tolerance: 0 } }];

/** A window of user traffic (no load): both hops at `first`, the root spans as given. */
function bundle(
  first: number,
  roots: number,
  extra: {
    sampling?: { type: string; param: number };
    interval?: { start: number; end: number; uncertaintyMs: number };
    incomplete?: string;
    seconds?: number;
  } = {},
): EvidenceBundle {
  const seconds = extra.seconds ?? 60;
  return testBundle(
    rule,
    {
      metrics: {
        source: 'scrape',
        hops: {
          'proxy-access-control': { v1: counts(first) },
          'http-lb': { v1: counts(first - Math.round(first / 10)), v2: counts(Math.round(first / 10)) },
        },
        hopLatencyMs: { 'proxy-access-control': 0.1, 'http-lb': 0.08 },
        latency: {},
        missing: [],
        ...(extra.interval ? { interval: extra.interval } : {}),
      },
      traces: {
        traces: roots,
        spans: 2 * roots,
        rootSpans: roots,
        requests: [],
        versions: {},
        durations: {},
        hops: {},
        sampling: extra.sampling,
        ...(extra.incomplete ? { incomplete: extra.incomplete } : {}),
      },
    },
    { window: { start: 0, end: seconds * 1000 }, candidateWeight: undefined, minSamples: 30 },
  );
}

const judge = (b: EvidenceBundle) => judgeFixed(b).results[0];

describe('trace sampling nobody stated', () => {
  it('1% sampling with every metric hop balanced: the trace leg is skipped with the rate the counts imply, never a fail', () => {
    const r = judge(bundle(20_000, 230));
    expect(r.outcome).toBe('pass');
    expect(r.observed).toMatch(/root spans = 230 \(not used: ~1\.15% of proxy-access-control\)/);
    expect(r.reason).toMatch(
      /root spans left out: the trace sampling rate is unknown \(no sampler tags on root spans and no gate\.traceSampling\) and the spans are ~1\.15% of the requests — set gate\.traceSampling/,
    );
  });

  it('any sampling rate from 0.1% to 50%, with the hops balanced, is never a fail (500 seeded windows)', () => {
    const rnd = mulberry32(21);
    const outcomes = new Set<string>();
    for (let i = 0; i < 500; i++) {
      const requests = 1000 + Math.floor(rnd() * 49_000);
      const rate = [0.001, 0.005, 0.01, 0.02, 0.1, 0.5][i % 6];
      let roots = 0;
      for (let k = 0; k < requests; k++) if (rnd() < rate) roots++;
      const r = judge(bundle(requests, roots));
      outcomes.add(r.outcome);
      if (r.outcome !== 'pass') throw new Error(`${roots} root spans of ${requests} requests: ${r.reason}`);
      expect(r.reason).toMatch(/root spans left out: the trace sampling rate is unknown/);
    }
    expect([...outcomes]).toEqual(['pass']);
  });

  it('root spans that match the requests as they are were all kept: counted exactly; more than the requests still fail', () => {
    const exact = judge(bundle(20_000, 20_000));
    expect(exact.outcome).toBe('pass');
    expect(exact.observed).toMatch(/root spans = 20000(;|$)/);
    const extra = judge(bundle(20_000, 20_400));
    expect(extra.outcome).toBe('fail');
    expect(extra.reason).toMatch(/root spans vs proxy-access-control \(20000\): 400 extra/);
  });

  it('a metric hop that loses requests still fails, whatever the traces say', () => {
    const b = bundle(20_000, 230);
    b.evidence.metrics!.hops['http-lb'].v1 = counts(17_960);
    expect(judge(b).outcome).toBe('fail');
  });
});

describe('snapshot instants known within a skew', () => {
  it('the measured skew × the arrival rate is allowed at both edges, and shown', () => {
    // 100 requests a second; the root spans were counted over an interval 80 ms off the metric snapshots.
    const without = judge(bundle(1239, 1255, { seconds: 12.39, sampling: { type: 'const', param: 1 } }));
    expect(without.outcome).toBe('fail');
    const withSkew = judge(
      bundle(1239, 1255, {
        seconds: 12.39,
        sampling: { type: 'const', param: 1 },
        interval: { start: 0, end: 12_390, uncertaintyMs: 80 },
      }),
    );
    expect(withSkew.outcome).toBe('pass');
    expect(withSkew.reason).toMatch(/snapshot instants known to ±80 ms/);
  });

  const servers: Server[] = [];
  afterAll(() => servers.forEach((s) => s.close()));

  it("a direct scrape's window runs from the baseline snapshot to the end snapshot, as they were taken", async () => {
    let requests = 0;
    let stamp = 0;
    const stamped = { on: false };
    const server = createServer((_req, res) => {
      requests += 7;
      stamp = Date.now();
      const line = `istio_requests_total{reporter="destination",destination_service_name="http-lb",destination_version="v1",response_code="200"} ${requests}`;
      res.end(`${line}${stamped.on ? ` ${stamp}` : ''}\n`);
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`;
    const queries = [{ series: 'istio_requests_total', by: ['destination_version'] }];
    const provider = scrapeProvider([url], queries);
    // Without sample timestamps: the middle of each snapshot's request, ± half its round trip.
    const before = Date.now();
    const w = await provider.open();
    expect(w.start).toBeGreaterThanOrEqual(before);
    expect(w.start).toBeGreaterThanOrEqual(w.baseline!.at);
    expect(w.start).toBeLessThanOrEqual(w.baseline!.receivedAt!);
    let covered: { start: number; end: number; uncertaintyMs: number } | undefined;
    const inc = await provider.increases(w, Date.now(), queries, { onInterval: (i) => (covered = i) });
    expect(inc).toEqual([{ name: 'istio_requests_total', labels: { destination_version: 'v1' }, value: 7 }]);
    expect(covered!.start).toBe(w.start);
    expect(covered!.end).toBeGreaterThanOrEqual(covered!.start);
    // With them (as the sandbox writes): exactly the instants the counters were read.
    stamped.on = true;
    const w2 = await provider.open();
    expect(w2.start).toBe(stamp);
    const first = stamp;
    await provider.increases(w2, Date.now(), queries, { onInterval: (i) => (covered = i) });
    expect(covered).toEqual({ start: first, end: stamp, uncertaintyMs: 0 });
  });

  it('a direct scrape keeps only the series its reads select, and refuses a query outside them', async () => {
    const lines = [
      'istio_requests_total{reporter="destination",destination_service_name="http-lb",response_code="200"} 5',
      'istio_requests_total{reporter="source",destination_service_name="http-lb",response_code="200"} 5',
      'istio_requests_total{reporter="destination",destination_service_name="say \\"hi\\"",response_code="200"} 3',
      'istio_request_bytes_count{reporter="destination",destination_service_name="http-lb"} 5',
    ];
    const server = createServer((_req, res) => res.end(lines.join('\n') + '\n'));
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`;
    const reads = [
      {
        series: 'istio_requests_total',
        match: { reporter: 'destination' },
        by: ['destination_service_name'],
      },
    ];
    const w = await scrapeProvider([url], reads).open();
    expect(w.baseline!.series.map((s) => s.labels.destination_service_name)).toEqual(['http-lb', 'say "hi"']);
    await expect(
      scrapeProvider([url], reads).increases(w, Date.now(), [
        { series: 'istio_requests_total', match: { reporter: 'source' }, by: [] },
      ]),
    ).rejects.toThrow(/keeps only the series of its reads/);
  });
});

describe('a trace store that evicted spans of the window', () => {
  it('says so in the Jaeger envelope; the collector reports it and conservation leaves the root spans out', async () => {
    const store = new TraceStore(20);
    const t0 = Date.now() * 1000;
    for (let i = 0; i < 30; i++) {
      const id = (i + 1).toString(16).padStart(32, '0');
      store.add({
        traceId: id,
        spanId: id.slice(16),
        service: 'proxy-access-control',
        operation: 'op',
        startUs: t0 + i * 1000,
        durationUs: 100,
        nodeId: 'sidecar~10.0.0.1~proxy-access-control-v1-a.default~default.svc.cluster.local',
        url: 'http://x/',
        method: 'GET',
        userAgent: 'ua',
        upstreamCluster: '-',
        statusCode: 200,
        requestSize: 0,
        responseSize: 0,
        requestId: `r${i}`,
      });
    }
    const server = createServer((req, res) => void handleJaeger(store, req, res));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const jaeger = createJaegerClient(url);
      const whole = await forEachTrace(
        jaeger,
        { service: 'proxy-access-control', startMs: t0 / 1000 - 1000, endMs: t0 / 1000 + 1000 },
        () => undefined,
      );
      expect(whole.traces).toBe(20);
      expect(whole.incomplete).toMatch(
        /the sandbox trace store \(capacity 20 spans\) evicted spans of this window/,
      );
      // A window after the evicted spans is complete.
      const late = await forEachTrace(
        jaeger,
        { service: 'proxy-access-control', startMs: t0 / 1000 + 15, endMs: t0 / 1000 + 1000 },
        () => undefined,
      );
      expect(late.incomplete).toBeUndefined();
    } finally {
      server.close();
    }
    const r = judge(bundle(20_000, 19_000, { sampling: { type: 'const', param: 1 }, incomplete: 'evicted' }));
    expect(r.outcome).toBe('pass');
    expect(r.reason).toMatch(
      /root spans left out: the trace store says the window is incomplete \(evicted\)/,
    );
  });

  it("the streaming reader hands over the envelope's other fields with the data elements removed", async () => {
    const body = '{"data":[{"a":1},{"b":"]"}],"total":0,"errors":[{"code":206,"msg":"partial"}]}';
    const got: string[] = [];
    let rest = '';
    const chunks = [body.slice(0, 11), body.slice(11, 19), body.slice(19)];
    await eachDataElement(
      (async function* () {
        yield* chunks;
      })(),
      (j) => got.push(j),
      (r) => (rest = r),
    );
    expect(got).toEqual(['{"a":1}', '{"b":"]"}']);
    expect(JSON.parse(rest)).toEqual({ data: [], total: 0, errors: [{ code: 206, msg: 'partial' }] });
  });
});
