import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import { startSandbox, type Sandbox } from '../src/sandbox/index.js';
import { LOAD_RUNS_KEPT, MeshTelemetry, type RequestRecord } from '../src/sandbox/telemetry.js';
import { createSdcClient, type SdcClient } from '../src/services/sdc.js';
import { ConflictError, type KubeObject } from '../src/services/platform.js';
import { startRedis, type RedisFixture } from './helpers/redis.js';
import { waitFor } from './helpers/ports.js';
import { binomialInterval, diff, scrape, sendRequests } from './helpers/sandbox-load.js';

const VS_REF = {
  apiVersion: 'networking.istio.io/v1beta1',
  kind: 'VirtualService',
  namespace: 'default',
  name: 'http-lb',
};
const dest = (subset: string, weight?: number) => ({
  destination: { host: 'http-lb', subset, port: { number: 9180 } },
  ...(weight === undefined ? {} : { weight }),
});
const lbVs = (http: unknown[], apiVersion = 'networking.istio.io/v1alpha3'): KubeObject => ({
  apiVersion,
  kind: 'VirtualService',
  metadata: { name: 'http-lb', namespace: 'default' },
  spec: { hosts: ['http-lb'], http },
});

let redis: RedisFixture;
let sb: Sandbox;
let sdc: SdcClient;
const byVersion = () =>
  scrape(
    sb.urls.metrics,
    'istio_requests_total',
    { reporter: 'destination', destination_service_name: 'http-lb' },
    'destination_version',
  );
const byService = (svc: string, by = 'destination_workload') =>
  scrape(
    sb.urls.metrics,
    'istio_requests_total',
    { reporter: 'destination', destination_service_name: svc },
    by,
  );

beforeAll(async () => {
  redis = await startRedis();
  sb = await startSandbox({ redisUrl: redis.url });
  sdc = createSdcClient(sb.urls.grpc);
});

afterAll(async () => {
  sdc?.close();
  await sb?.stop();
  await redis?.stop();
});

describe('sandbox mesh routing', () => {
  it('starts every SDC workload, ready, with 100% of http-lb on v1', async () => {
    for (const name of [
      'proxy-access-control',
      'http-lb-v1',
      'http-lb-v2',
      'clover-server1',
      'clover-server5',
      'snort-ids',
    ]) {
      expect(await sb.platform.workloadStatus('default', name)).toMatchObject({
        ready: true,
        availableReplicas: 1,
      });
    }
    const before = await byVersion();
    const { codes } = await sendRequests(sb.urls.ingress + '/', 200);
    expect(codes).toEqual({ 200: 200 });
    expect(diff(await byVersion(), before)).toEqual({ v1: 200 });
  });

  it('splits 5,000 requests 90/10 within the 99.9% binomial interval', async () => {
    const vs = (await sb.platform.get(VS_REF))!;
    await sb.platform.patch(
      VS_REF,
      { spec: { http: [{ name: 'primary', route: [dest('v1', 90), dest('v2', 10)] }] } },
      { resourceVersion: vs.metadata.resourceVersion },
    );
    const before = await byVersion();
    const n = 5000;
    const { codes } = await sendRequests(sb.urls.ingress + '/clover/testurl', n, {
      concurrency: 32,
      timeoutMs: 60_000,
    });
    expect(codes['200']).toBe(n);
    const d = diff(await byVersion(), before);
    expect(d.v1 + d.v2).toBe(n);
    const [lo, hi] = binomialInterval(n, 0.1);
    expect(d.v2).toBeGreaterThanOrEqual(lo);
    expect(d.v2).toBeLessThanOrEqual(hi);
    // patching with a stale resourceVersion is a conflict the caller can retry
    await expect(
      sb.platform.patch(VS_REF, { spec: {} }, { resourceVersion: vs.metadata.resourceVersion }),
    ).rejects.toBeInstanceOf(ConflictError);
  });

  it('sends 100% to v2 on a header match (v1alpha3 object) and the rest to v1', async () => {
    await sb.platform.apply([
      lbVs([
        {
          match: [
            { headers: { 'x-canary': { exact: 'yes' } } },
            { headers: { 'user-agent': { regex: '.*Canary.*' } } },
          ],
          route: [dest('v2')],
        },
        { route: [dest('v1')] },
      ]),
    ]);
    let before = await byVersion();
    await sendRequests(sb.urls.ingress + '/', 300, { headers: { 'x-canary': 'yes' } });
    expect(diff(await byVersion(), before)).toEqual({ v2: 300 });
    before = await byVersion();
    await sendRequests(sb.urls.ingress + '/', 100, { headers: { 'user-agent': 'jmeter Canary/1.0' } });
    await sendRequests(sb.urls.ingress + '/', 100, { headers: { 'x-canary': 'no' } });
    expect(diff(await byVersion(), before)).toEqual({ v2: 100, v1: 100 });
  });

  it('mirrors requests to snort-ids by VirtualService mirror (proxy mirroring turned off over gRPC)', async () => {
    const proxy = await sdc.setProxy({ forwardTo: 'http-lb', mirrorTo: '' });
    expect(proxy.mirrorTo).toBe('');
    await sb.platform.apply([
      lbVs(
        [{ route: [dest('v1')], mirror: { host: 'snort-ids' }, mirrorPercentage: { value: 100 } }],
        'networking.istio.io/v1',
      ),
    ]);
    const before = await byService('snort-ids');
    await sendRequests(sb.urls.ingress + '/mirrored', 200);
    await waitFor(
      'mirrored copies at snort-ids',
      async () => (diff(await byService('snort-ids'), before)['snort-ids'] ?? 0) >= 200,
      10_000,
    );
    expect(diff(await byService('snort-ids'), before)).toEqual({ 'snort-ids': 200 });
    await sdc.setProxy({ forwardTo: 'http-lb', mirrorTo: 'snort-ids' });
  });

  it('answers ~50% 503 under a 50% abort fault', async () => {
    await sb.platform.apply([
      lbVs(
        [{ fault: { abort: { httpStatus: 503, percentage: { value: 50 } } }, route: [dest('v1')] }],
        'networking.istio.io/v1beta1',
      ),
    ]);
    const n = 1000;
    const { codes } = await sendRequests(sb.urls.ingress + '/', n, { concurrency: 32 });
    const [lo, hi] = binomialInterval(n, 0.5);
    expect(codes['503']).toBeGreaterThanOrEqual(lo);
    expect(codes['503']).toBeLessThanOrEqual(hi);
    expect(codes['503'] + codes['200']).toBe(n);
  });

  it('applies fault knobs per workload version: errors, resets, delay', async () => {
    await sb.platform.apply([lbVs([{ route: [dest('v2')] }])]);
    await sb.setFault('http-lb', 'v2', { errorRate: 1 });
    expect((await sendRequests(sb.urls.ingress + '/', 50)).codes).toEqual({ 500: 50 });
    const errs = await scrape(
      sb.urls.metrics,
      'istio_requests_total',
      { reporter: 'destination', destination_workload: 'http-lb-v2' },
      'response_code',
    );
    expect(errs['500']).toBeGreaterThanOrEqual(50);
    await sb.setFault('http-lb', 'v2', { resetRate: 1 });
    expect((await sendRequests(sb.urls.ingress + '/', 20)).codes).toEqual({ 503: 20 });
    await sb.setFault('http-lb', 'v2', { delayMs: 150 });
    const t0 = Date.now();
    expect((await sendRequests(sb.urls.ingress + '/', 2, { concurrency: 1 })).codes).toEqual({ 200: 2 });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(300);
    await sb.setFault('http-lb', 'v2', null);
    expect((await sendRequests(sb.urls.ingress + '/', 20)).codes).toEqual({ 200: 20 });
  });

  it('applies route timeouts and retries on in-process hops (504 UT; 3 attempts reach the failing version)', async () => {
    const codesAt = () =>
      scrape(
        sb.urls.metrics,
        'istio_requests_total',
        { reporter: 'destination', destination_workload: 'http-lb-v2' },
        'response_code',
      );
    await sb.setFault('http-lb', 'v2', { delayMs: 300 });
    await sb.platform.apply([lbVs([{ route: [dest('v2')], timeout: '50ms' }])]);
    const late = await codesAt();
    const timedOut = () =>
      scrape(
        sb.urls.metrics,
        'istio_requests_total',
        { reporter: 'source', response_flags: 'UT' },
        'response_code',
      );
    const timedOutBefore = await timedOut();
    expect((await sendRequests(sb.urls.ingress + '/', 3)).codes).toEqual({ 504: 3 });
    // Cut by the route's timeout (Envoy's UT flag), not answered late: evidence, not the wall clock.
    expect(diff(await timedOut(), timedOutBefore)).toEqual({ 504: 3 });
    // the workload still finishes the abandoned requests, as an upstream does after Envoy gave up on it
    await waitFor(
      'the abandoned requests to finish',
      async () => (diff(await codesAt(), late)['200'] ?? 0) === 3,
    );
    await sb.setFault('http-lb', 'v2', { errorRate: 1, abortStatus: 503 });
    await sb.platform.apply([lbVs([{ route: [dest('v2')], retries: { attempts: 2, retryOn: '5xx' } }])]);
    const before = await codesAt();
    expect((await sendRequests(sb.urls.ingress + '/', 10)).codes).toEqual({ 503: 10 });
    expect(diff(await codesAt(), before)).toEqual({ 503: 30 });
    await sb.setFault('http-lb', 'v2', null);
    await sb.platform.apply([lbVs([{ route: [dest('v2')] }])]);
  });

  it('re-points http-lb-v2 at clover-server4/5 over gRPC', async () => {
    expect((await sdc.getBackends('http-lb-v2')).backends).toEqual([
      'clover-server1',
      'clover-server2',
      'clover-server3',
    ]);
    await sdc.setBackends('http-lb-v2', ['clover-server4', 'clover-server5:9180']);
    const { bodies } = await sendRequests(sb.urls.ingress + '/', 40);
    expect(Object.fromEntries(bodies)).toEqual({ 'clover-server4': 20, 'clover-server5': 20 });
    await sdc.setRoutes('clover-server4', [{ path: '/health', status: 204, body: '' }]);
    await sdc.setBackends('http-lb-v2', ['clover-server4']);
    expect((await sendRequests(sb.urls.ingress + '/health', 5)).codes).toEqual({ 204: 5 });
    await expect(sdc.setBackends('http-lb-v9', ['clover-server1'])).rejects.toThrow(
      /no workload "http-lb-v9"/,
    );
    await sdc.setBackends('http-lb-v2', ['clover-server1', 'clover-server2', 'clover-server3']);
  });

  it('starts a workload for a new Deployment and routes to its subset', async () => {
    const v3 = structuredClone(
      (await sb.platform.get({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        namespace: 'default',
        name: 'http-lb-v2',
      }))!,
    );
    v3.metadata = { name: 'http-lb-v3', namespace: 'default', labels: { app: 'http-lb', version: 'v3' } };
    (
      v3.spec as { template: { metadata: { labels: Record<string, string> } } }
    ).template.metadata.labels.version = 'v3';
    await sb.platform.apply([v3]);
    await waitFor(
      'http-lb-v3 ready',
      async () => (await sb.platform.workloadStatus('default', 'http-lb-v3')).ready,
    );
    await sb.platform.apply([
      {
        apiVersion: 'networking.istio.io/v1beta1',
        kind: 'DestinationRule',
        metadata: { name: 'http-lb', namespace: 'default' },
        spec: {
          host: 'http-lb',
          subsets: ['v1', 'v2', 'v3'].map((v) => ({ name: v, labels: { version: v } })),
        },
      },
      lbVs([{ route: [dest('v3')] }]),
    ]);
    const before = await byVersion();
    await sendRequests(sb.urls.ingress + '/', 30);
    expect(diff(await byVersion(), before)).toEqual({ v3: 30 });
    await sb.platform.delete({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      namespace: 'default',
      name: 'http-lb-v3',
    });
    await waitFor(
      'http-lb-v3 gone',
      async () => !(await sb.platform.workloadStatus('default', 'http-lb-v3')).ready,
    );
    expect((await sendRequests(sb.urls.ingress + '/', 5)).codes).toEqual({ 503: 5 });
    await sb.platform.apply([lbVs([{ route: [dest('v1', 100), dest('v2', 0)] }])]);
  });

  it('rejects a VirtualService whose weights do not add up to 100, naming the field', async () => {
    await expect(sb.platform.apply([lbVs([{ route: [dest('v1', 60), dest('v2', 60)] }])])).rejects.toThrow(
      /invalid object/,
    );
    await expect(
      sb.platform.apply([lbVs([{ route: [dest('v1', 60), dest('v2', 60)] }])]),
    ).rejects.toMatchObject({
      problems: [
        expect.objectContaining({
          path: '[0].spec.http[0].route',
          message: 'weights must add up to 100, found 120',
        }),
      ],
    });
  });
});

describe('sandbox telemetry and IDS', () => {
  it('records one span per hop with the Envoy tag names, served in Jaeger shape', async () => {
    const requestId = `req-${Date.now()}`;
    await sendRequests(sb.urls.ingress + '/clover/testurl?x=1', 1, {
      headers: { 'x-request-id': requestId, 'user-agent': 'span-test/1.0' },
    });
    const q = new URLSearchParams({
      service: 'istio-ingressgateway',
      tags: JSON.stringify({ 'guid:x-request-id': requestId }),
      lookback: '1h',
      limit: '20',
    });
    let body: {
      data: Array<{
        traceID: string;
        spans: Array<Record<string, unknown>>;
        processes: Record<string, { serviceName: string }>;
      }>;
      errors: unknown;
    };
    await waitFor('the trace with all hops', async () => {
      body = await (await fetch(`${sb.urls.jaeger}/api/traces?${q}`)).json();
      return body.data.length === 1 && body.data[0].spans.length === 5;
    });
    const trace = body!.data[0];
    expect(body!.errors).toBeNull();
    const services = trace.spans.map((s) => trace.processes[s.processID as string].serviceName).sort();
    expect(services).toEqual(
      [
        'clover-server1',
        'clover-server2',
        'clover-server3',
        'http-lb',
        'istio-ingressgateway',
        'proxy-access-control',
        'snort-ids',
      ].filter((s) => services.includes(s)),
    );
    expect(services).toHaveLength(5);
    const roots = trace.spans.filter((s) => (s.references as unknown[]).length === 0);
    expect(roots).toHaveLength(1);
    expect(trace.processes[roots[0].processID as string].serviceName).toBe('istio-ingressgateway');
    for (const s of trace.spans) {
      const tags = Object.fromEntries(
        (s.tags as Array<{ key: string; value: string }>).map((t) => [t.key, t.value]),
      );
      for (const k of [
        'node_id',
        'http.url',
        'http.method',
        'http.status_code',
        'user_agent',
        'upstream_cluster',
        'request_size',
        'response_size',
        'guid:x-request-id',
      ]) {
        expect(tags).toHaveProperty([k]);
      }
      expect(tags['guid:x-request-id']).toBe(requestId);
      expect(tags.user_agent).toBe('span-test/1.0');
      expect(s).toMatchObject({ traceID: trace.traceID, flags: 1, logs: [] });
      expect(typeof s.startTime).toBe('number');
      expect(typeof s.duration).toBe('number');
    }
    const lb = trace.spans.find((s) => trace.processes[s.processID as string].serviceName === 'http-lb')!;
    expect(
      (lb.tags as Array<{ key: string; value: string }>).find((t) => t.key === 'upstream_cluster')!.value,
    ).toBe('inbound|9180||http-lb.default.svc.cluster.local');
    const byId = await (await fetch(`${sb.urls.jaeger}/api/traces/${trace.traceID}`)).json();
    expect(byId.data[0].spans).toHaveLength(5);
  });

  it('answers the Jaeger query API like jaeger-query', async () => {
    const services = await (await fetch(`${sb.urls.jaeger}/api/services`)).json();
    expect(services).toMatchObject({ errors: null, limit: 0, offset: 0 });
    expect(services.data).toEqual(
      expect.arrayContaining([
        'istio-ingressgateway',
        'proxy-access-control',
        'http-lb',
        'clover-server1',
        'snort-ids',
      ]),
    );
    const ops = await (await fetch(`${sb.urls.jaeger}/api/services/http-lb/operations`)).json();
    expect(ops.data).toEqual(['http-lb.default.svc.cluster.local:9180/*']);
    const none = await fetch(`${sb.urls.jaeger}/api/traces/00000000000000000000000000abcdef`);
    expect(none.status).toBe(404);
    expect((await none.json()).errors[0]).toMatchObject({ code: 404 });
    expect((await fetch(`${sb.urls.jaeger}/api/traces?limit=5`)).status).toBe(400);
    expect((await fetch(`${sb.urls.jaeger}/api/traces?service=http-lb&minDuration=abc`)).status).toBe(400);
    // Clover's collector query form: µs timestamps, a 'loopback' typo, empty durations
    const nowS = Math.floor(Date.now() / 1000);
    const clover = await (
      await fetch(
        `${sb.urls.jaeger}/api/traces?end=${nowS + 1}757000&limit=3&loopback=1h&maxDuration&minDuration&service=http-lb&start=${nowS - 300}757000`,
      )
    ).json();
    expect(clover.data).toHaveLength(3);
    const slow = await (await fetch(`${sb.urls.jaeger}/api/traces?service=http-lb&minDuration=1h`)).json();
    expect(slow.data).toEqual([]);
    const errors = await (
      await fetch(
        `${sb.urls.jaeger}/api/traces?service=http-lb&tags=${encodeURIComponent('{"http.status_code":"500"}')}&limit=1000`,
      )
    ).json();
    expect(errors.data.length).toBeGreaterThan(0);
  });

  it('puts an alert into Redis under snort_events / snort_event:<n> for a signature request, and notifies the proxy', async () => {
    const client = new Redis(redis.url);
    try {
      const before = await client.smembers('snort_events');
      await sendRequests(sb.urls.ingress + '/scan', 1, {
        headers: { 'user-agent': 'Mozilla/5.0 (compatible; asafaweb.com)' },
      });
      await waitFor('an alert in Redis', async () => (await client.scard('snort_events')) > before.length);
      const ids = (await client.smembers('snort_events')).filter((id) => !before.includes(id));
      expect(ids).toHaveLength(1);
      const event = await client.hgetall(`snort_event:${ids[0]}`);
      expect(event).toMatchObject({
        'event-id': ids[0],
        'signature-id': '10000003',
        'generator-id': '1',
        protocol: '6',
        msg: 'MALWARE-CNC User-Agent ASafaWeb Scan',
      });
      expect(event.data).toContain('asafaweb.com');
      const alerts = await sdc.listAlerts();
      expect(alerts.alerts.map((a) => a.signatureId)).toContain(10000003);
      expect((await sdc.getProxy()).alerts.map((a) => String(a.eventId))).toContain(ids[0]);
      // a rule added at run time takes effect on the next request
      await sdc.addIdsRule({
        sid: 10000010,
        rev: 1,
        msg: 'sqlmap scan',
        protocol: 'tcp',
        content: 'sqlmap',
        nocase: true,
      });
      await sendRequests(sb.urls.ingress + '/', 1, { headers: { 'user-agent': 'SQLMap/1.7' } });
      await waitFor('the sqlmap alert', async () =>
        (await sdc.listAlerts()).alerts.some((a) => a.signatureId === 10000010),
      );
      const rules = await sdc.listIdsRules();
      expect(rules.ruleText).toContain(
        'alert tcp any any -> $HOME_NET any (msg:"sqlmap scan"; content:"sqlmap"; nocase; sid:10000010; rev:1;)',
      );
    } finally {
      client.disconnect();
    }
  });
});

describe('sandbox with socket hops (every hop a real HTTP exchange, as in --netns mode)', () => {
  let sock: Sandbox;
  beforeAll(async () => {
    sock = await startSandbox({ hopTransport: 'socket' });
  });
  afterAll(async () => {
    await sock?.stop();
  });

  it('routes a 50/50 split, resets a connection as 503 UC, and records one span per hop', async () => {
    const vs = (await sock.platform.get(VS_REF))!;
    await sock.platform.patch(
      VS_REF,
      { spec: { http: [{ route: [dest('v1', 50), dest('v2', 50)] }] } },
      { resourceVersion: vs.metadata.resourceVersion },
    );
    const versions = () =>
      scrape(
        sock.urls.metrics,
        'istio_requests_total',
        { reporter: 'destination', destination_service_name: 'http-lb' },
        'destination_version',
      );
    const n = 400;
    expect((await sendRequests(sock.urls.ingress + '/', n)).codes).toEqual({ 200: n });
    const d = await versions();
    const [lo, hi] = binomialInterval(n, 0.5);
    expect(d.v1 + d.v2).toBe(n);
    expect(d.v2).toBeGreaterThanOrEqual(lo);
    expect(d.v2).toBeLessThanOrEqual(hi);

    await sock.setFault('http-lb', 'v2', { resetRate: 1 });
    await sock.platform.apply([lbVs([{ route: [dest('v2')] }])]);
    expect((await sendRequests(sock.urls.ingress + '/', 10)).codes).toEqual({ 503: 10 });
    const flags = await scrape(
      sock.urls.metrics,
      'istio_requests_total',
      { reporter: 'source', source_workload: 'proxy-access-control', response_code: '503' },
      'response_flags',
    );
    expect(flags).toEqual({ UC: 10 });
    await sock.setFault('http-lb', 'v2', null);

    const requestId = `sock-${Date.now()}`;
    await sendRequests(sock.urls.ingress + '/x', 1, { headers: { 'x-request-id': requestId } });
    const q = new URLSearchParams({
      service: 'proxy-access-control',
      tags: JSON.stringify({ 'guid:x-request-id': requestId }),
    });
    await waitFor('5 spans over sockets', async () => {
      const body = await (await fetch(`${sock.urls.jaeger}/api/traces?${q}`)).json();
      return body.data.length === 1 && body.data[0].spans.length === 5;
    });
  });
});

describe('sandbox telemetry keeps a bounded number of load runs', () => {
  const request = (loadTag?: string): RequestRecord => ({
    reporter: 'destination',
    sourceWorkload: 'proxy-access-control',
    sourceVersion: 'unknown',
    destinationWorkload: 'http-lb-v2',
    destinationService: 'http-lb',
    destinationVersion: 'v2',
    namespace: 'default',
    responseCode: 200,
    responseFlags: '-',
    durationMs: 3,
    requestBytes: 10,
    responseBytes: 100,
    loadTag,
  });
  const runsIn = async (t: MeshTelemetry) =>
    [...new Set([...(await t.metricsText()).matchAll(/clover_cd_load="([^"]+)"/g)].map((m) => m[1]))].sort();

  it(`drops the series of the load run that sent least recently once more than ${LOAD_RUNS_KEPT} sent, never user traffic's`, async () => {
    const t = new MeshTelemetry();
    t.record(request());
    for (let i = 0; i < LOAD_RUNS_KEPT; i++) t.record(request(`run-${i}`));
    // run-0 sends again: run-1 is now the one that sent least recently.
    t.record(request('run-0'));
    t.record(request('run-new'));
    const kept = await runsIn(t);
    expect(kept).toHaveLength(LOAD_RUNS_KEPT + 1);
    expect(kept).toEqual(expect.arrayContaining(['unknown', 'run-0', 'run-new']));
    expect(kept).not.toContain('run-1');
    // The counts of what is kept are untouched.
    expect(await t.metricsText()).toMatch(/istio_requests_total\{[^}]*clover_cd_load="run-0"[^}]*\} 2 /);
  });
});
