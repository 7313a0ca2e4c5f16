import { describe, expect, it } from '@jest/globals';
import { routeRequest, subsetLabels } from '../src/sandbox/routing.js';
import { TraceStore } from '../src/sandbox/traces.js';
import { parseGoDurationUs } from '../src/sandbox/jaeger.js';
import type { KubeObject } from '../src/services/platform.js';

const vs = (http: unknown[], extra: Record<string, unknown> = {}): KubeObject => ({
  apiVersion: 'networking.istio.io/v1alpha3',
  kind: 'VirtualService',
  metadata: { name: 'r', namespace: 'default' },
  spec: { hosts: ['http-lb.default.svc.cluster.local'], http, ...extra },
});
const req = (path: string, headers: Record<string, string> = {}, method = 'GET') => ({
  path,
  headers,
  method,
});
const to = (subset: string, weight?: number) => ({ destination: { host: 'http-lb', subset }, weight });

describe('VirtualService semantics', () => {
  const rules = [
    vs([
      { name: 'exact', match: [{ uri: { exact: '/a' } }], route: [to('ex')] },
      { name: 'regex', match: [{ uri: { regex: '/r/[0-9]+' } }], route: [to('re')] },
      {
        name: 'hdr',
        match: [{ uri: { prefix: '/p' }, headers: { 'x-v': { prefix: 'be' } } }],
        route: [to('hp')],
      },
      { name: 'method', match: [{ method: { exact: 'POST' } }], route: [to('post')] },
      { name: 'query', match: [{ queryParams: { u: { exact: '1' } } }], route: [to('q')] },
      {
        name: 'default',
        route: [to('v1', 70), to('v2', 30)],
        timeout: '1.5s',
        retries: { attempts: 2, perTryTimeout: '500ms', retryOn: '5xx' },
      },
    ]),
  ];
  it('matches uri exact / prefix / regex (whole value), headers, method and query in order', () => {
    expect(routeRequest(rules, 'http-lb', req('/a'))!.destination.subset).toBe('ex');
    expect(routeRequest(rules, 'http-lb', req('/a/b'), { random: () => 0 })!.destination.subset).toBe('v1');
    expect(routeRequest(rules, 'http-lb', req('/r/42'))!.destination.subset).toBe('re');
    expect(routeRequest(rules, 'http-lb', req('/r/42x'), { random: () => 0.99 })!.destination.subset).toBe(
      'v2',
    );
    expect(routeRequest(rules, 'http-lb', req('/px', { 'x-v': 'beta' }))!.destination.subset).toBe('hp');
    expect(
      routeRequest(rules, 'http-lb', req('/px', { 'x-v': 'alpha' }), { random: () => 0 })!.destination.subset,
    ).toBe('v1');
    expect(routeRequest(rules, 'http-lb', req('/z', {}, 'POST'))!.destination.subset).toBe('post');
    expect(routeRequest(rules, 'http-lb', req('/z?u=1'))!.destination.subset).toBe('q');
  });
  it('picks weighted destinations by their weights, with timeouts and retries', () => {
    const d = routeRequest(rules, 'http-lb', req('/z'), { random: () => 0.69 })!;
    expect(d).toMatchObject({
      destination: { subset: 'v1' },
      timeoutMs: 1500,
      retries: { attempts: 2, perTryTimeoutMs: 500, retryOn: ['5xx'] },
      routeName: 'r/default',
    });
    expect(routeRequest(rules, 'http-lb', req('/z'), { random: () => 0.7 })!.destination.subset).toBe('v2');
  });
  it('reads mirror, mirrorPercentage / legacy mirrorPercent / mirrors, and fault percentages', () => {
    const d = routeRequest(
      [
        vs([
          {
            route: [to('v1')],
            mirror: { host: 'snort-ids' },
            mirrorPercentage: { value: 25 },
            fault: {
              delay: { fixedDelay: '1s', percent: 10 },
              abort: { httpStatus: 503, percentage: { value: 50 } },
            },
          },
        ]),
      ],
      'http-lb',
      req('/'),
    )!;
    expect(d).toMatchObject({
      mirror: { destination: { service: 'snort-ids' }, fraction: 0.25 },
      delay: { ms: 1000, fraction: 0.1 },
      abort: { status: 503, fraction: 0.5 },
    });
    expect(
      routeRequest(
        [vs([{ route: [to('v1')], mirror: { host: 'snort-ids' }, mirrorPercent: 5 }])],
        'http-lb',
        req('/'),
      )!.mirror!.fraction,
    ).toBe(0.05);
    expect(
      routeRequest(
        [vs([{ route: [to('v1')], mirrors: [{ destination: { host: 'snort-ids' } }] }])],
        'http-lb',
        req('/'),
      )!.mirror!.fraction,
    ).toBe(1);
  });
  it('ignores VirtualServices for other hosts and gateway-bound ones for sidecars', () => {
    expect(routeRequest(rules, 'clover-server1', req('/a'))).toBeUndefined();
    expect(
      routeRequest([vs([{ route: [to('v1')] }], { gateways: ['sdc-gateway'] })], 'http-lb', req('/')),
    ).toBeUndefined();
    expect(
      routeRequest(
        [vs([{ route: [to('v1')] }], { gateways: ['default/sdc-gateway', 'mesh'] })],
        'http-lb',
        req('/'),
      ),
    ).toBeDefined();
  });
  it('resolves DestinationRule subsets to labels', () => {
    const dr: KubeObject = {
      apiVersion: 'networking.istio.io/v1',
      kind: 'DestinationRule',
      metadata: { name: 'x' },
      spec: {
        host: 'http-lb.default.svc.cluster.local',
        subsets: [{ name: 'v2', labels: { version: 'v2' } }],
      },
    };
    expect(subsetLabels([dr], 'http-lb', 'v2')).toEqual({ version: 'v2' });
    expect(subsetLabels([dr], 'http-lb', 'v9')).toBeUndefined();
  });
});

describe('trace store', () => {
  const span = (i: number, trace: number, service = 'http-lb') => ({
    traceId: trace.toString(16),
    spanId: (i + 1).toString(16),
    service,
    operation: `${service}:9180/*`,
    startUs: 1e15 + i,
    durationUs: 100 + i,
    nodeId: 'sidecar~127.0.0.1~x',
    url: '/u',
    method: 'GET',
    statusCode: i % 10 === 0 ? 500 : 200,
    userAgent: 'ua',
    upstreamCluster: 'inbound|9180||http-lb',
    requestSize: 0,
    responseSize: 10,
    requestId: `r${trace}`,
  });
  it('stays bounded, evicts the oldest spans, and finds the newest traces first', () => {
    const s = new TraceStore(100);
    for (let i = 0; i < 250; i++) s.add(span(i, Math.floor(i / 5) + 1));
    expect(s.size).toBe(100);
    expect(s.trace('1')).toBeUndefined();
    expect(s.trace((50).toString(16))!.map((x) => x.spanId)).toEqual(
      ['f6', 'f7', 'f8', 'f9', 'fa'].map((h) => h.padStart(16, '0')),
    );
    expect(s.find({ service: 'http-lb', limit: 2 })).toEqual([
      (50).toString(16).padStart(32, '0'),
      (49).toString(16).padStart(32, '0'),
    ]);
    expect(s.find({ service: 'http-lb', tags: { 'http.status_code': '500' } })).toHaveLength(10);
    expect(s.find({ service: 'http-lb', minDurationUs: 340 })).toHaveLength(2);
    expect(s.find({ service: 'nope' })).toEqual([]);
  });
  it('parses Go durations as Jaeger does', () => {
    expect(parseGoDurationUs('1.5s')).toBe(1.5e6);
    expect(parseGoDurationUs('1h30m')).toBe(5.4e9);
    expect(parseGoDurationUs('2d')).toBe(1.728e11);
    expect(parseGoDurationUs('abc')).toBeUndefined();
  });
});
