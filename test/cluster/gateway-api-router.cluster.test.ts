import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { initialState, type ReleaseState } from '../../src/canary/machine.js';
import { buildPlan, PROMOTED_TARGET, STABLE_TARGET, type TrafficTarget } from '../../src/canary/plan.js';
import { createRouter, type TrafficRouter } from '../../src/routers/index.js';
import { createKubernetesPlatform } from '../../src/services/kubernetes.js';
import type { Platform } from '../../src/services/platform.js';
import type { ReleaseSpec } from '../../src/spec/types.js';
import { adminKubectl, removeTestNamespace } from '../helpers/cluster.js';

/**
 * The Gateway API router's writes on a real kube-apiserver with Gateway API v1.6.1's CRDs
 * (../shared/tools/real-apiserver): the user's own HTTPRoute — two rules clover-cd does not manage, a
 * RequestHeaderModifier filter on the managed rule, two parentRefs, hostnames and timeouts — is stored, defaulted
 * and validated by the server, and keeps every one of them through shift, A/B, promote and rollback; the weights
 * are the plan's; a write raced by another writer (409 on a stale resourceVersion) is recomputed from a fresh
 * read and keeps that writer's change. Opt-in (npm run test:cluster), skipped when the server is not up.
 */
const ADMIN = join(process.env.REALK8S_DIR ?? '/tmp/realk8s', 'run', 'admin.kubeconfig');
const up = existsSync(ADMIN);
if (!up)
  console.warn(
    `Gateway API router check skipped: ${ADMIN} does not exist (bash ../shared/tools/real-apiserver/up.sh)`,
  );

const kubectl = adminKubectl;

type Obj = Record<string, any>;
const ns = `gw-router-${process.pid}`;
const parentRefs = [
  { name: 'mesh-gateway', namespace: 'istio-system', sectionName: 'http' },
  // A mesh (GAMMA) parent; `group: ""` is left out because a 1.20 server turns an empty string into null.
  { kind: 'Service', name: 'http-lb', port: 9180 },
];
const debugRule = {
  name: 'debug-by-someone-else',
  matches: [{ path: { type: 'PathPrefix', value: '/debug' } }],
  backendRefs: [{ name: 'debug-backend', port: 9180 }],
};
const teamRule = {
  name: 'team-b',
  matches: [{ headers: [{ name: 'x-team', value: 'b' }] }],
  backendRefs: [{ name: 'http-lb-v1', port: 9180 }],
  timeouts: { request: '5s' },
};
const headerFilter = {
  type: 'RequestHeaderModifier',
  requestHeaderModifier: { add: [{ name: 'x-routed-by', value: 'users-route' }] },
};

function specOf(strategy: ReleaseSpec['strategy']): ReleaseSpec {
  return {
    apiVersion: 'clover-cd/v1',
    kind: 'Release',
    metadata: { name: 'http-lb-gw' },
    service: {
      name: 'http-lb',
      namespace: ns,
      port: 9180,
      stable: 'v1',
      candidate: 'v2',
      mesh: 'gateway-api',
    },
    strategy,
  } as ReleaseSpec;
}

(up ? describe : describe.skip)('the Gateway API router on a real API server', () => {
  let platform: Platform;
  const routeOf = (): Obj => JSON.parse(kubectl(['-n', ns, 'get', 'httproute', 'http-lb', '-o', 'json']));

  beforeAll(() => {
    kubectl(['create', 'namespace', ns]);
    kubectl(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'gateway.networking.k8s.io/v1',
        kind: 'HTTPRoute',
        metadata: { name: 'http-lb', namespace: ns },
        spec: {
          parentRefs,
          hostnames: ['http-lb.example.com'],
          rules: [
            debugRule,
            {
              matches: [{ path: { type: 'PathPrefix', value: '/' } }],
              filters: [headerFilter],
              backendRefs: [{ name: 'http-lb-v1', port: 9180 }],
              timeouts: { request: '10s' },
            },
            teamRule,
          ],
        },
      }),
    );
    platform = createKubernetesPlatform({ kubeconfig: ADMIN });
  });
  afterAll(() => {
    if (up) removeTestNamespace(kubectl, ns, 'httproutes.gateway.networking.k8s.io,services');
  });

  /** Move the route to `target` with a state, as the engine does: one conflict-retried write. */
  const write = async (router: TrafficRouter, state: ReleaseState, target: TrafficTarget) =>
    router.apply(() => ({ state, target }));

  /** What the user wrote and clover-cd must keep, as the server stored it (with its defaults). */
  const usersParts = (r: Obj) => ({
    parentRefs: r.spec.parentRefs,
    hostnames: r.spec.hostnames,
    foreign: r.spec.rules.filter((x: Obj) => x.name === 'debug-by-someone-else' || x.name === 'team-b'),
    managedFilters: r.spec.rules.find((x: Obj) => !x.name)?.filters,
    managedTimeouts: r.spec.rules.find((x: Obj) => !x.name)?.timeouts,
  });
  const weights = (r: Obj) =>
    Object.fromEntries(
      (r.spec.rules.find((x: Obj) => !x.name).backendRefs as Obj[]).map((b) => [b.name, b.weight ?? 1]),
    );

  it("keeps the user's rules, filters, parentRefs, hostnames and timeouts through shift, promote and rollback; weights are the plan's", async () => {
    const spec = specOf({ canary: { steps: [25, 60], window: '1m' } });
    const plan = buildPlan(spec);
    const router = createRouter(platform, plan, spec);
    const before = usersParts(routeOf());
    expect(before.foreign).toHaveLength(2);
    // The server defaulted what the user left out (backendRefs' group/kind/weight, the path match): kept as stored.
    expect(before.foreign[0].backendRefs[0]).toMatchObject({ kind: 'Service', weight: 1 });

    const prepared = await router.prepare();
    expect(prepared.routes).toMatchObject({ weight: 0, stableWeight: 100 });
    // The version Services the route's backendRefs name are created beside it.
    for (const svc of ['http-lb-v1', 'http-lb-v2'])
      expect(
        JSON.parse(kubectl(['-n', ns, 'get', 'service', svc, '-o', 'json'])).spec.selector,
      ).toMatchObject({
        app: 'http-lb',
      });

    let state = initialState(plan, 'v2', new Date());
    for (const w of [25, 60]) {
      const after = await write(
        router,
        { ...state, phase: 'progressing', weight: w },
        { weight: w, matchRoute: false },
      );
      expect(after.routes).toMatchObject({ weight: w, stableWeight: 100 - w });
      const stored = routeOf();
      expect(weights(stored)).toEqual({ 'http-lb-v1': 100 - w, 'http-lb-v2': w });
      expect(usersParts(stored)).toEqual(before);
      state = after.state!;
    }
    await write(router, { ...state, phase: 'promoted', weight: 100 }, PROMOTED_TARGET);
    expect(weights(routeOf())).toEqual({ 'http-lb-v1': 0, 'http-lb-v2': 100 });
    expect(usersParts(routeOf())).toEqual(before);

    const back = await write(router, { ...state, phase: 'rolledBack', weight: 0 }, STABLE_TARGET);
    expect(back.routes).toMatchObject({ weight: 0, stableWeight: 100 });
    expect(weights(routeOf())['http-lb-v2'] ?? 0).toBe(0);
    expect(usersParts(routeOf())).toEqual(before);
    expect(back.state?.phase).toBe('rolledBack');
  });

  it("an A/B match rule is added beside the user's and removed at rollback, leaving the route as it was", async () => {
    const spec = specOf({
      abTest: { match: [{ headers: { 'user-agent': { regex: '.*chrome.*' } } }], window: '1m' },
    });
    const plan = buildPlan(spec);
    const router = createRouter(platform, plan, spec);
    const before = usersParts(routeOf());
    const state = initialState(plan, 'v2', new Date());
    await router.prepare();
    await write(router, { ...state, phase: 'progressing' }, { weight: 0, matchRoute: true });
    const withMatch = routeOf();
    const added = (withMatch.spec.rules as Obj[]).filter((r) => r.name?.startsWith('clover-cd-'));
    expect(added).toHaveLength(1);
    expect(added[0].backendRefs.map((b: Obj) => b.name)).toEqual(['http-lb-v2']);
    expect(JSON.stringify(added[0].matches)).toContain('chrome');
    expect(usersParts(withMatch)).toEqual(before);
    await write(router, { ...state, phase: 'rolledBack' }, STABLE_TARGET);
    expect((routeOf().spec.rules as Obj[]).filter((r) => r.name?.startsWith('clover-cd-'))).toEqual([]);
    expect(usersParts(routeOf())).toEqual(before);
  });

  it('a write raced by another writer is answered 409 and recomputed from a fresh read: both changes are kept', async () => {
    const spec = specOf({ canary: { steps: [30], window: '1m' } });
    const plan = buildPlan(spec);
    const router = createRouter(platform, plan, spec);
    await router.prepare();
    const state = initialState(plan, 'v2', new Date());
    let reads = 0;
    await router.apply(() => {
      // Between clover-cd's read and its write, someone else edits the route (the resourceVersion moves on).
      if (reads++ === 0)
        kubectl(['-n', ns, 'label', 'httproute', 'http-lb', 'edited-by=someone-else', '--overwrite']);
      return {
        state: { ...state, phase: 'progressing', weight: 30 },
        target: { weight: 30, matchRoute: false },
      };
    });
    expect(reads).toBe(2);
    const stored = routeOf();
    expect(stored.metadata.labels).toMatchObject({ 'edited-by': 'someone-else' });
    expect(weights(stored)).toEqual({ 'http-lb-v1': 70, 'http-lb-v2': 30 });
    await write(router, { ...state, phase: 'rolledBack' }, STABLE_TARGET);
  });
});
