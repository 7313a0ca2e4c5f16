/**
 * The Gateway API router's patches, on objects: only the managed rule's backendRef weights, the candidate's
 * RequestMirror filter and clover-cd's own match rule change; the user's other rules, filters, parentRefs,
 * hostnames and timeouts come through shift, promote and rollback exactly as they were.
 */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { fileURLToPath } from 'node:url';
import { buildPlan, PROMOTED_TARGET, STABLE_TARGET, type TrafficTarget } from '../src/canary/plan.js';
import { meshOf } from '../src/routers/index.js';
import {
  gatewayApiNames,
  MAX_BACKEND_WEIGHT,
  matchRuleName,
  observeRules,
  renderBackendServices,
  rulesForTarget,
  type RouteRule,
} from '../src/routers/gateway-api/routes.js';
import { gatewayApiRoutes } from '../src/routers/gateway-api/router.js';
import type { KubeObject } from '../src/services/platform.js';
import { loadSpec } from '../src/spec/load.js';
import type { ReleaseSpec } from '../src/spec/types.js';
import { InvalidInputError } from '../src/util/errors.js';

const example = (f: string) => loadSpec(fileURLToPath(new URL(`../examples/${f}`, import.meta.url))).spec;
const onGatewayApi = (s: ReleaseSpec): ReleaseSpec => ({
  ...s,
  service: { ...s.service, mesh: 'gateway-api' },
});
const canary = onGatewayApi(example('sdc-canary.yaml'));
const ab = onGatewayApi(example('sdc-ab.yaml'));
const plan = buildPlan(canary);
const names = gatewayApiNames(canary);

const PARENTS = [
  { group: '', kind: 'Service', name: 'http-lb', port: 9180 },
  { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'sdc-gateway', namespace: 'edge' },
];
const HEADER_MODIFIER = {
  type: 'RequestHeaderModifier',
  requestHeaderModifier: { set: [{ name: 'x-team', value: 'lb' }], remove: ['x-debug'] },
};
/** Another writer's rules: a debug header to v1 only, and an admin path to another service. */
const FOREIGN: RouteRule[] = [
  {
    name: 'debug-to-v1',
    matches: [
      { path: { type: 'PathPrefix', value: '/' }, headers: [{ type: 'Exact', name: 'x-debug', value: '1' }] },
    ],
    filters: [HEADER_MODIFIER],
    backendRefs: [{ group: '', kind: 'Service', name: 'http-lb-v1', port: 9180, weight: 1 }],
  },
  {
    name: 'admin',
    matches: [{ path: { type: 'PathPrefix', value: '/admin' } }],
    backendRefs: [{ group: '', kind: 'Service', name: 'admin', port: 8080, weight: 1 }],
    timeouts: { request: '3s' },
  },
];
const MANAGED: RouteRule = {
  name: 'lb',
  matches: [{ path: { type: 'PathPrefix', value: '/' } }],
  filters: [HEADER_MODIFIER],
  backendRefs: [{ group: '', kind: 'Service', name: 'http-lb-v1', port: 9180, weight: 1 }],
  timeouts: { request: '10s', backendRequest: '2s' },
};

const routeWith = (rules: RouteRule[]): KubeObject => ({
  apiVersion: 'gateway.networking.k8s.io/v1',
  kind: 'HTTPRoute',
  metadata: { name: 'http-lb', namespace: 'default', resourceVersion: '7' },
  spec: { parentRefs: PARENTS, hostnames: ['http-lb.default.svc.cluster.local'], rules },
});
const original = [FOREIGN[0], MANAGED, FOREIGN[1]];
const patched = (rules: RouteRule[], t: TrafficTarget, p = plan) =>
  routeWith(rulesForTarget(routeWith(rules), p, names, t));

describe('Gateway API router: the user HTTPRoute, weights and foreign rules', () => {
  it('is registered as service.mesh gateway-api with the Istio series the gate reads', () => {
    const mesh = meshOf(canary);
    expect(mesh.name).toBe('gateway-api');
    expect(mesh.telemetry.requests).toBe('istio_requests_total');
    const routes = gatewayApiRoutes(plan, canary);
    expect(routes.ref).toEqual({
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      namespace: 'default',
      name: 'http-lb',
    });
    expect(names).toEqual({ httpRoute: 'http-lb', stable: 'http-lb-v1', candidate: 'http-lb-v2' });
    expect(renderBackendServices(canary).map((s) => [s.metadata.name, s.spec!.selector])).toEqual([
      ['http-lb-v1', { app: 'http-lb', version: 'v1' }],
      ['http-lb-v2', { app: 'http-lb', version: 'v2' }],
    ]);
    const named = gatewayApiNames({
      ...canary,
      service: { ...canary.service, httpRoute: 'lb-route', backends: { stable: 'lb-blue' } },
    });
    expect(named).toEqual({ httpRoute: 'lb-route', stable: 'lb-blue', candidate: 'http-lb-v2' });
  });

  it('a shift sets relative weights on the managed rule only; filters, timeouts, parentRefs, hostnames and other rules stay', () => {
    const route = patched(original, { weight: 25, matchRoute: false });
    const rules = route.spec!.rules as RouteRule[];
    expect(rules[0]).toEqual(FOREIGN[0]);
    expect(rules[2]).toEqual(FOREIGN[1]);
    expect(rules[1]).toEqual({
      ...MANAGED,
      backendRefs: [
        { group: '', kind: 'Service', name: 'http-lb-v1', port: 9180, weight: 75 },
        { name: 'http-lb-v2', port: 9180, weight: 25 },
      ],
    });
    expect(route.spec!.parentRefs).toEqual(PARENTS);
    expect(observeRules(route, plan, names)).toEqual({
      weight: 25,
      stableWeight: 75,
      mirrorPercent: undefined,
      matchRoute: false,
    });
  });

  it('promotion and rollback are computed from the current rules, not from a copy taken at the start', () => {
    const shifted = patched(original, { weight: 60, matchRoute: false }).spec!.rules as RouteRule[];
    const promoted = patched(shifted, PROMOTED_TARGET);
    expect(observeRules(promoted, plan, names)).toMatchObject({ weight: 100, stableWeight: 0 });
    // Another writer adds a rule after the promotion; a rollback keeps it and puts every request on stable.
    const later = [
      ...(promoted.spec!.rules as RouteRule[]),
      { name: 'late', backendRefs: [{ name: 'x', port: 1 }] },
    ];
    const back = patched(later, STABLE_TARGET);
    const rules = back.spec!.rules as RouteRule[];
    expect(rules.map((r) => r.name)).toEqual(['debug-to-v1', 'lb', 'admin', 'late']);
    expect(rules[1].backendRefs!.map((b) => [b.name, b.weight])).toEqual([
      ['http-lb-v1', 100],
      ['http-lb-v2', 0],
    ]);
    expect(rules[1].filters).toEqual([HEADER_MODIFIER]);
    expect(rules[1].timeouts).toEqual(MANAGED.timeouts);
  });

  it('A/B adds a named match rule before the managed one (header regex, the cookie as a Cookie header) and removes it on promote', () => {
    const abPlan = buildPlan(ab);
    const rules = rulesForTarget(routeWith(original), abPlan, names, { weight: 0, matchRoute: true });
    expect(rules.map((r) => r.name)).toEqual(['debug-to-v1', matchRuleName('http-lb-ab'), 'lb', 'admin']);
    expect(rules[1]).toEqual({
      name: matchRuleName('http-lb-ab'),
      timeouts: MANAGED.timeouts,
      filters: [HEADER_MODIFIER],
      matches: [
        {
          path: { type: 'PathPrefix', value: '/' },
          headers: [{ type: 'RegularExpression', name: 'user-agent', value: '.*chrome.*' }],
        },
        {
          path: { type: 'PathPrefix', value: '/' },
          headers: [{ type: 'RegularExpression', name: 'Cookie', value: '^(.*?;)?(beta=true)(;.*)?$' }],
        },
      ],
      backendRefs: [{ name: 'http-lb-v2', port: 9180, weight: 1 }],
    });
    expect(observeRules(routeWith(rules), abPlan, names)).toMatchObject({ weight: 0, matchRoute: true });
    const promoted = rulesForTarget(routeWith(rules), abPlan, names, PROMOTED_TARGET);
    expect(promoted.map((r) => r.name)).toEqual(['debug-to-v1', 'lb', 'admin']);
  });

  it('a blue/green preview matches the preview header on top of the managed rule own matches', () => {
    const bgPlan = buildPlan(onGatewayApi(example('sdc-bluegreen.yaml')));
    const rules = rulesForTarget(routeWith(original), bgPlan, names, { weight: 0, matchRoute: true });
    const ours = rules.find((r) => r.name === matchRuleName(bgPlan.release))!;
    expect(ours.matches).toEqual([
      {
        path: { type: 'PathPrefix', value: '/' },
        headers: [{ type: 'Exact', name: 'x-clover-cd-preview', value: 'true' }],
      },
    ]);
  });

  it('mirroring is a RequestMirror filter to the candidate with its percent, added after the user filters and removed by the next step', () => {
    const mirrored = patched(original, { weight: 0, mirrorPercent: 50, matchRoute: false });
    const managed = (mirrored.spec!.rules as RouteRule[])[1];
    expect(managed.filters).toEqual([
      HEADER_MODIFIER,
      {
        type: 'RequestMirror',
        requestMirror: { backendRef: { name: 'http-lb-v2', port: 9180 }, percent: 50 },
      },
    ]);
    expect(observeRules(mirrored, plan, names)).toMatchObject({ mirrorPercent: 50, weight: 0 });
    const next = patched(mirrored.spec!.rules as RouteRule[], { weight: 10, matchRoute: false });
    expect((next.spec!.rules as RouteRule[])[1].filters).toEqual([HEADER_MODIFIER]);
    // A rule without filters gets none back after the mirror goes.
    const bare = [{ ...MANAGED, filters: undefined }];
    const there = patched(bare, { weight: 0, mirrorPercent: 12.5, matchRoute: false }).spec!
      .rules as RouteRule[];
    expect(there[0].filters![0].requestMirror).toMatchObject({
      fraction: { numerator: 125000, denominator: 1000000 },
    });
    const gone = patched(there, STABLE_TARGET).spec!.rules as RouteRule[];
    expect('filters' in gone[0]).toBe(false);
  });

  it('a route without a rule to the stable Service is exit 2 naming service.backends.stable', () => {
    let err: unknown;
    try {
      rulesForTarget(routeWith([FOREIGN[1]]), plan, names, { weight: 10, matchRoute: false });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidInputError);
    expect((err as InvalidInputError).exitCode).toBe(2);
    expect((err as InvalidInputError).problems[0]).toMatchObject({ path: 'service.backends.stable' });
    expect((err as Error).message).toContain(
      'HTTPRoute default/http-lb has no rule with a backendRef to Service http-lb-v1',
    );
  });

  it('property: through any sequence of targets, foreign rules are kept byte for byte and weights stay in range', () => {
    const name = fc.stringMatching(/^[a-z][a-z0-9-]{0,10}$/).filter((n) => !n.startsWith('clover-cd'));
    const foreignRule = fc.record({
      name,
      matches: fc.array(
        fc.record({
          path: fc.record({
            type: fc.constantFrom('PathPrefix', 'Exact'),
            value: fc.constantFrom('/', '/a', '/b/c'),
          }),
          headers: fc.array(fc.record({ type: fc.constant('Exact' as const), name, value: name }), {
            maxLength: 2,
          }),
        }),
        { maxLength: 2 },
      ),
      filters: fc.array(fc.constant(HEADER_MODIFIER), { maxLength: 1 }),
      backendRefs: fc.array(
        fc.record({
          name: fc.constantFrom('admin', 'other'),
          port: fc.integer({ min: 1, max: 65535 }),
          weight: fc.integer({ min: 0, max: 100 }),
        }),
        { minLength: 1, maxLength: 3 },
      ),
    });
    const target: fc.Arbitrary<TrafficTarget> = fc.oneof(
      fc.record({ weight: fc.integer({ min: 0, max: 100 }), matchRoute: fc.constant(false) }),
      fc.record({
        weight: fc.constant(0),
        mirrorPercent: fc.integer({ min: 1, max: 100 }),
        matchRoute: fc.constant(false),
      }),
      fc.constant({ weight: 0, matchRoute: true }),
      fc.constant(STABLE_TARGET),
      fc.constant(PROMOTED_TARGET),
    );
    fc.assert(
      fc.property(
        fc.array(foreignRule, { maxLength: 4 }),
        fc.array(foreignRule, { maxLength: 3 }),
        fc.array(target, { minLength: 1, maxLength: 6 }),
        (before, after, targets) => {
          let route = routeWith([...before, MANAGED, ...after]);
          const managedAt = () =>
            (route.spec!.rules as RouteRule[]).findIndex((r) => r.name === 'lb' && r.timeouts);
          for (const t of targets) {
            // The managed rule is the one naming the stable Service that every request reaches: MANAGED.
            const rules = rulesForTarget(route, plan, names, t);
            route = routeWith(rules);
            const i = managedAt();
            const others = rules.filter((r, j) => j !== i && r.name !== matchRuleName(plan.release));
            expect(JSON.stringify(others)).toBe(JSON.stringify([...before, ...after]));
            for (const r of rules)
              for (const b of r.backendRefs ?? []) {
                expect(Number.isInteger(b.weight ?? 1)).toBe(true);
                expect(b.weight ?? 1).toBeGreaterThanOrEqual(0);
                expect(b.weight ?? 1).toBeLessThanOrEqual(MAX_BACKEND_WEIGHT);
              }
            expect(rules[i].filters).toEqual(
              t.mirrorPercent
                ? [HEADER_MODIFIER, expect.objectContaining({ type: 'RequestMirror' })]
                : [HEADER_MODIFIER],
            );
            expect(rules[i].timeouts).toEqual(MANAGED.timeouts);
            expect(observeRules(route, plan, names)).toMatchObject({
              weight: t.weight,
              matchRoute: t.matchRoute,
            });
          }
          expect(route.spec!.parentRefs).toEqual(PARENTS);
        },
      ),
      { numRuns: 200 },
    );
  });
});
