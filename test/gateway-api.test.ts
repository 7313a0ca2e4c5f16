/**
 * service.mesh gateway-api end to end on the sandbox: the SDC sample's http-lb routed by its HTTPRoute
 * (deploy/sdc/gateway-api/), `release run` for canary, blue/green and A/B with a healthy and a faulty candidate,
 * and the HTTPRoute semantics the sandbox serves (precedence, matches, filters, mirror, invalid backends).
 * The parity of the engine's hosts on gateway-api is test/parity-gateway-canary.test.ts; blue/green and A/B on
 * gateway-api are covered here through release run.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { matchRuleName, type RouteRule } from '../src/routers/gateway-api/routes.js';
import { readState } from '../src/routers/state.js';
import { routeHttpRoutes } from '../src/sandbox/httproute.js';
import type { KubeObject } from '../src/services/platform.js';
import { loadSpec } from '../src/spec/load.js';
import { InvalidInputError } from '../src/util/errors.js';
import { releaseStatus, runRelease } from '../src/stages/index.js';
import { HTTP_ROUTE, startReleaseLab, type ReleaseLab } from './helpers/release-lab.js';

let lab: ReleaseLab;
beforeAll(async () => {
  lab = await startReleaseLab('gateway-api', 'gateway-api');
}, 60_000);
afterAll(async () => lab?.stop());
beforeEach(async () => lab.reset());

const rulesOf = (route: KubeObject) => route.spec!.rules as RouteRule[];

async function release(name: string, strategy: Record<string, unknown>, rules?: unknown[]) {
  const file = lab.writeSpec(name, strategy, { rules, gate: { maxWindow: '40s' } });
  const { spec } = loadSpec(file);
  const r = await runRelease(lab.sb.platform, spec, { autoApprove: true, evidenceDir: lab.evidenceDir });
  return {
    ...r,
    file,
    status: await releaseStatus(lab.sb.platform, spec),
    observed: await lab.observed(file),
  };
}

describe('release run on service.mesh gateway-api', () => {
  it('the sandbox routes http-lb by its HTTPRoute: every request on v1 at start, the per-version Services exist', async () => {
    expect(lab.initial.kind).toBe('HTTPRoute');
    expect(
      await lab.sb.platform.get({
        ...HTTP_ROUTE,
        kind: 'VirtualService',
        apiVersion: 'networking.istio.io/v1beta1',
      }),
    ).toBeUndefined();
    const o = await lab.observed(lab.writeSpec('probe', { canary: { steps: [50], window: '1s' } }));
    expect(o.stable).toBeGreaterThan(0);
    expect(o.candidate).toBe(0);
  }, 60_000);

  it('canary: a healthy candidate is promoted through backendRef weights, the user rule kept', async () => {
    const r = await release('gw-canary-ok', { canary: { steps: [25, 60], window: '1s' } });
    expect(r.exitCode).toBe(0);
    expect(r.status.state?.phase).toBe('promoted');
    expect(r.status.routes).toMatchObject({ weight: 100, stableWeight: 0, matchRoute: false });
    expect(r.observed).toMatchObject({ stable: 0 });
    expect(r.observed.candidate).toBeGreaterThan(0);
    const route = await lab.vs();
    expect(route.spec!.parentRefs).toEqual(lab.initial.spec!.parentRefs);
    expect(rulesOf(route)[0].backendRefs!.map((b) => [b.name, b.weight])).toEqual([
      ['http-lb-v1', 0],
      ['http-lb-v2', 100],
    ]);
    expect((readState(route)?.verdicts ?? []).map((v) => v.outcome)).toEqual(['pass', 'pass']);
  }, 300_000);

  it('canary: a faulty candidate is rolled back, every request observed on stable', async () => {
    await lab.sb.setFault('http-lb', 'v2', { errorRate: 0.3 });
    const r = await release('gw-canary-bad', { canary: { steps: [25, 60], window: '1s' } });
    expect(r.exitCode).toBe(1);
    expect(r.status.state).toMatchObject({ phase: 'rolledBack', cause: 'fail' });
    expect(r.status.routes).toMatchObject({ weight: 0, stableWeight: 100, matchRoute: false });
    expect(r.observed).toMatchObject({ candidate: 0 });
  }, 300_000);

  for (const healthy of [true, false])
    it(`blue/green through a preview match rule, ${healthy ? 'healthy: switched' : 'faulty: rolled back'}`, async () => {
      if (!healthy) await lab.sb.setFault('http-lb', 'v2', { errorRate: 0.3 });
      const r = await release(`gw-bg-${healthy}`, { blueGreen: { previewWindow: '1s' } }, [
        { errorRate: { max: '5%' } },
      ]);
      expect(r.exitCode).toBe(healthy ? 0 : 1);
      expect(r.status.routes).toMatchObject(
        healthy ? { weight: 100, matchRoute: false } : { weight: 0, stableWeight: 100, matchRoute: false },
      );
      expect(rulesOf(await lab.vs()).some((x) => x.name === matchRuleName(`gw-bg-${healthy}`))).toBe(false);
      expect(healthy ? r.observed.stable : r.observed.candidate).toBe(0);
    }, 300_000);

  for (const healthy of [true, false])
    it(`A/B through a header match rule, ${healthy ? 'healthy: promoted' : 'faulty: rolled back'}`, async () => {
      if (!healthy) await lab.sb.setFault('http-lb', 'v2', { errorRate: 0.3 });
      const r = await release(
        `gw-ab-${healthy}`,
        { abTest: { match: [{ headers: { 'user-agent': { regex: '.*chrome.*' } } }], window: '1s' } },
        [{ errorRate: { max: '5%' } }],
      );
      expect(r.exitCode).toBe(healthy ? 0 : 1);
      expect(r.status.state?.phase).toBe(healthy ? 'promoted' : 'rolledBack');
      expect(r.status.routes.matchRoute).toBe(false);
      expect(healthy ? r.observed.stable : r.observed.candidate).toBe(0);
    }, 300_000);

  it('an invalid backendRef answers 500 for its share; a weight outside 0..1,000,000 is refused with its field path', async () => {
    const rules = [
      {
        backendRefs: [
          { name: 'http-lb-v1', port: 9180, weight: 1 },
          { name: 'no-such-service', port: 9180, weight: 1 },
        ],
      },
    ];
    await lab.sb.platform.patch(HTTP_ROUTE, { spec: { rules } });
    const codes = new Map<number, number>();
    for (let i = 0; i < 80; i++) {
      const res = await fetch(`${lab.sb.urls.ingress}/`, { headers: { 'user-agent': 'curl' } });
      await res.arrayBuffer();
      codes.set(res.status, (codes.get(res.status) ?? 0) + 1);
    }
    expect(codes.get(500) ?? 0).toBeGreaterThan(15);
    expect(codes.get(200) ?? 0).toBeGreaterThan(15);
    const refused = await lab.sb.platform
      .patch(HTTP_ROUTE, {
        spec: { rules: [{ backendRefs: [{ name: 'http-lb-v1', port: 9180, weight: 1_000_001 }] }] },
      })
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(InvalidInputError);
    expect((refused as InvalidInputError).problems[0]).toMatchObject({
      path: '[0].spec.rules[0].backendRefs[0].weight',
      message: 'expected an integer 0..1000000, found 1000001',
    });
    expect(rulesOf(await lab.vs())).toEqual(rules.map((r) => expect.objectContaining(r)));
  }, 60_000);
});

describe('HTTPRoute semantics the sandbox serves (pure)', () => {
  const route = (name: string, rules: unknown[], created = '2026-01-01T00:00:00Z'): KubeObject => ({
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'HTTPRoute',
    metadata: { name, namespace: 'default', creationTimestamp: created },
    spec: { parentRefs: [{ group: '', kind: 'Service', name: 'http-lb' }], rules },
  });
  const to = (name: string, extra: Record<string, unknown> = {}) => ({
    backendRefs: [{ name, port: 9180 }],
    ...extra,
  });
  const req = (path: string, headers: Record<string, string> = {}, method = 'GET') => ({
    path,
    method,
    headers,
  });
  const opts = { random: () => 0.5, backendExists: (r: { name: string }) => r.name !== 'gone' };
  const routes = [
    route('a', [
      to('catch-all'),
      to('prefix-api', { matches: [{ path: { type: 'PathPrefix', value: '/api' } }] }),
      to('exact', { matches: [{ path: { type: 'Exact', value: '/api/v1' } }] }),
      to('header', {
        matches: [{ path: { type: 'PathPrefix', value: '/api' }, headers: [{ name: 'x-beta', value: '1' }] }],
      }),
      to('method', { matches: [{ path: { type: 'PathPrefix', value: '/api' }, method: 'POST' }] }),
      to('query', {
        matches: [
          {
            path: { type: 'PathPrefix', value: '/q' },
            queryParams: [{ type: 'RegularExpression', name: 'u', value: 'b.*' }],
          },
        ],
      }),
    ]),
    // Not bound to http-lb: never applies to it.
    {
      ...route('other', [to('wrong')]),
      spec: { parentRefs: [{ group: '', kind: 'Service', name: 'x' }], rules: [to('wrong')] },
    },
  ];
  const dest = (path: string, headers?: Record<string, string>, method?: string) =>
    routeHttpRoutes(routes, 'http-lb', req(path, headers, method), opts)?.destination.service;

  it('precedence: exact path, then longest prefix, then method, then more headers, then query; prefixes are whole path elements', () => {
    expect(dest('/api/v1')).toBe('exact');
    expect(dest('/api/v1', { 'x-beta': '1' })).toBe('exact');
    expect(dest('/api/v2', {}, 'POST')).toBe('method');
    expect(dest('/api/v2', { 'x-beta': '1' })).toBe('header');
    expect(dest('/api/v2')).toBe('prefix-api');
    expect(dest('/apix')).toBe('catch-all');
    expect(dest('/q?u=beta')).toBe('query');
    expect(dest('/q?u=alpha')).toBe('catch-all');
  });

  it('weights pick backends in proportion; filters modify headers; a mirror copies its share; an invalid backend is flagged', () => {
    const r = route('w', [
      {
        filters: [
          {
            type: 'RequestHeaderModifier',
            requestHeaderModifier: {
              set: [{ name: 'X-Team', value: 'lb' }],
              add: [{ name: 'x-trace', value: 'b' }],
              remove: ['x-debug'],
            },
          },
          {
            type: 'RequestMirror',
            requestMirror: { backendRef: { name: 'http-lb-v2', port: 9180 }, percent: 25 },
          },
        ],
        backendRefs: [
          { name: 'http-lb-v1', port: 9180, weight: 3 },
          { name: 'gone', port: 9180, weight: 1 },
        ],
        timeouts: { request: '1m30s' },
      },
    ]);
    const at = (x: number) =>
      routeHttpRoutes([r], 'http-lb', req('/', { 'x-trace': 'a' }), { ...opts, random: () => x });
    expect(at(0.74)!.destination.service).toBe('http-lb-v1');
    expect(at(0.74)!.invalidBackend).toBeUndefined();
    expect(at(0.76)!.invalidBackend).toMatch(/backendRef Service gone:9180 does not resolve/);
    expect(at(0.1)).toMatchObject({
      setHeaders: { 'x-team': 'lb', 'x-trace': 'a,b' },
      removeHeaders: ['x-debug'],
      mirror: { destination: { service: 'http-lb-v2', port: 9180 }, fraction: 0.25 },
      timeoutMs: 90_000,
    });
    const zero = route('z', [{ backendRefs: [{ name: 'http-lb-v1', port: 9180, weight: 0 }] }]);
    expect(routeHttpRoutes([zero], 'http-lb', req('/'), opts)!.invalidBackend).toMatch(
      /no backendRef with a weight/,
    );
  });
});
