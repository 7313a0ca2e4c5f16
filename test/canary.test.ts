import { describe, it, expect } from '@jest/globals';
import { fileURLToPath } from 'node:url';
import { loadSpec } from '../src/spec/load.js';
import type { GateRule, ReleaseSpec } from '../src/spec/types.js';
import {
  buildPlan,
  rulesForStep,
  planRelease,
  initialState,
  transition,
  nextAction,
  exitCodeOf,
  type ReleaseEvent,
  type ReleasePlan,
  type ReleaseState,
  PROMOTED_TARGET,
  STABLE_TARGET,
} from '../src/canary/index.js';
import {
  renderVirtualService,
  renderDestinationRule,
  targetPatch,
  observeTarget,
  LEGACY_ORIGINAL_ROUTES,
  matchRouteName,
  routesForTarget,
} from '../src/routers/istio/routes.js';
import { withState } from '../src/routers/router.js';
import { InvalidInputError } from '../src/util/errors.js';
import type { KubeObject } from '../src/services/platform.js';

const example = (f: string) => loadSpec(fileURLToPath(new URL(`../examples/${f}`, import.meta.url))).spec;
const canary = example('sdc-canary.yaml');
const blueGreen = example('sdc-bluegreen.yaml');
const ab = example('sdc-ab.yaml');
const now = new Date('2026-01-01T00:00:00Z');

function run(
  plan: ReleasePlan,
  verdicts: Array<'pass' | 'fail' | 'inconclusive'>,
  approve = true,
): { state: ReleaseState; actions: string[] } {
  let s = initialState(plan, 'v2', now);
  const actions: string[] = [];
  for (let guard = 0; guard < 50; guard++) {
    const a = nextAction(plan, s);
    actions.push(a.kind + ('step' in a ? a.step : ''));
    let e: ReleaseEvent;
    if (a.kind === 'done') return { state: s, actions };
    if (a.kind === 'shift') e = { type: 'shifted', weight: plan.steps[a.step].weight };
    else if (a.kind === 'analyze') e = { type: 'verdict', outcome: verdicts.shift() ?? 'pass', summary: 'x' };
    else if (a.kind === 'awaitJudgment') e = approve ? { type: 'approve' } : { type: 'reject' };
    else if (a.kind === 'advance') e = { type: 'approve' };
    else if (a.kind === 'promote') e = { type: 'promoted' };
    else e = { type: 'rolledBack' };
    s = transition(plan, s, e, now);
  }
  throw new Error('no end');
}

describe('release plan', () => {
  it('canary steps come from the spec weights, with windows and judgments', () => {
    const p = buildPlan(canary);
    expect(p.steps.map((s) => [s.kind, s.weight, s.windowMs])).toEqual([
      ['weight', 10, 10_000],
      ['weight', 50, 10_000],
    ]);
    expect(p.maxInconclusive).toBe(1);
    const linear = buildPlan({
      ...canary,
      strategy: { canary: { stepWeight: 20, maxWeight: 60, window: '30s', judgmentAt: [40] } },
    });
    expect(linear.steps.map((s) => [s.weight, s.judgment])).toEqual([
      [20, false],
      [40, true],
      [60, false],
    ]);
  });

  it('blue/green previews behind a match route, then switches 0 → 100', () => {
    const p = buildPlan(blueGreen);
    expect(p.steps.map((s) => [s.kind, s.weight, s.matchRoute, s.judgment])).toEqual([
      ['preview', 0, true, true],
      ['switch', 100, false, false],
    ]);
  });

  it('a mirror phase comes first', () => {
    const p = buildPlan({
      ...canary,
      strategy: { ...canary.strategy, mirror: { percentage: '50%', window: '20s' } },
    });
    expect(p.steps[0]).toMatchObject({ kind: 'mirror', weight: 0, mirrorPercent: 50, windowMs: 20_000 });
    expect(p.steps.length).toBe(3);
  });

  it('refuses a plan whose first step cannot reach minSamples, with the numbers', () => {
    const load = {
      load_spec: { num_threads: 5, loops: 10 },
      url_list: [{ url: 'http://a/' }, { url: 'http://a/b' }],
    };
    // 100 requests per window: 10% is 10 < 50, 50% is 50.
    let err: InvalidInputError | undefined;
    try {
      planRelease(canary, { loadPlan: load, file: 'spec.yaml' });
    } catch (e) {
      err = e as InvalidInputError;
    }
    expect(err).toBeInstanceOf(InvalidInputError);
    expect(err!.exitCode).toBe(2);
    expect(err!.problems).toHaveLength(1);
    expect(err!.problems[0].path).toBe('strategy.canary.steps[0]');
    expect(err!.problems[0].message).toContain(
      'the candidate would get 10 requests but gate.minSamples is 50',
    );
    expect(err!.problems[0].message).toContain('10% of the 100 requests');
    // Enough load: accepted.
    expect(
      planRelease(canary, { loadPlan: { ...load, load_spec: { num_threads: 5, loops: 100 } } }).steps,
    ).toHaveLength(2);
    // Open-ended plan at a known rate: 20 req/s x 10 s x 10% = 20 < 50.
    expect(() =>
      planRelease(canary, {
        loadPlan: { load_spec: { num_threads: 4, loops: -1 }, url_list: [{ url: 'x' }] },
        loadRatePerS: 20,
      }),
    ).toThrow(/would get 20 requests/);
  });

  it('A/B sample planning counts the requests the header match selects', () => {
    const load = {
      load_spec: { num_threads: 10, loops: 10 },
      url_list: [
        { url: 'x', 'user-agent': 'chrome' },
        { url: 'y', 'user-agent': 'safari' },
      ],
    };
    expect(() => planRelease(ab, { loadPlan: load })).not.toThrow(); // 100 of 200 match ".*chrome.*"
    const none = { ...load, url_list: [{ url: 'y', 'user-agent': 'safari' }] };
    expect(() => planRelease(ab, { loadPlan: none })).toThrow(
      /would get 0 requests but gate.minSamples is 50/,
    );
  });
});

describe('release state machine', () => {
  const plan = buildPlan(canary);
  it('pass at every step promotes', () => {
    const r = run(plan, ['pass', 'pass']);
    expect(r.actions).toEqual(['shift0', 'analyze0', 'shift1', 'analyze1', 'promote', 'done']);
    expect(r.state.phase).toBe('promoted');
    expect(exitCodeOf(r.state)).toBe(0);
  });
  it('fail at the first step rolls back with exit 1', () => {
    const r = run(plan, ['fail']);
    expect(r.actions).toEqual(['shift0', 'analyze0', 'rollback', 'done']);
    expect(r.state).toMatchObject({ phase: 'rolledBack', cause: 'fail', weight: 0 });
    expect(exitCodeOf(r.state)).toBe(1);
  });
  it('inconclusive holds and retries within maxInconclusive, then rolls back with exit 3', () => {
    expect(run(plan, ['inconclusive', 'pass', 'pass']).state.phase).toBe('promoted');
    const r = run(plan, ['inconclusive', 'inconclusive']);
    expect(r.actions).toEqual(['shift0', 'analyze0', 'analyze0', 'rollback', 'done']);
    expect(exitCodeOf(r.state)).toBe(3);
  });
  it('blue/green waits for judgment at preview; rejection rolls back', () => {
    const bg = buildPlan(blueGreen);
    expect(run(bg, ['pass']).actions).toEqual([
      'shift0',
      'awaitJudgment0',
      'shift1',
      'analyze1',
      'promote',
      'done',
    ]);
    const rejected = run(bg, [], false);
    expect(rejected.state).toMatchObject({ phase: 'rolledBack', cause: 'rejected' });
  });
  it('replayed events after a crash do not change a finished state, and abort rolls back', () => {
    const done = run(plan, ['pass', 'pass']).state;
    expect(transition(plan, done, { type: 'verdict', outcome: 'fail', summary: '' }, now)).toBe(done);
    expect(transition(plan, done, { type: 'abort' }, now)).toBe(done);
    let s = transition(plan, initialState(plan, 'v2', now), { type: 'shifted', weight: 10 }, now);
    s = transition(plan, s, { type: 'abort' }, now);
    expect(nextAction(plan, s)).toEqual({ kind: 'rollback' });
    expect(exitCodeOf(transition(plan, s, { type: 'rolledBack' }, now))).toBe(130);
  });
});

describe('the analysis window kept with the release state', () => {
  const plan = buildPlan(canary);
  const window = (step: number) => ({
    step,
    start: 1,
    end: 2,
    loadRunId: 'run-1',
    plannedSamples: 50,
    observedSamples: 60,
    evidence: { load: { engine: 'builtin' } },
  });
  const atStep1 = () => transition(plan, initialState(plan, 'v2', now), { type: 'shifted', weight: 10 }, now);
  it('is kept for the shifted step only, until that step has a verdict (judged once)', () => {
    const s = transition(plan, atStep1(), { type: 'windowClosed', window: window(0) }, now);
    expect(s.window).toEqual(window(0));
    // A window of another step, or before the shift, is not this release's current window.
    expect(
      transition(plan, atStep1(), { type: 'windowClosed', window: window(1) }, now).window,
    ).toBeUndefined();
    expect(
      transition(plan, initialState(plan, 'v2', now), { type: 'windowClosed', window: window(0) }, now)
        .window,
    ).toBeUndefined();
    const again = transition(plan, s, { type: 'verdict', outcome: 'inconclusive', summary: '' }, now);
    expect(again).toMatchObject({ phase: 'progressing', step: 0 });
    expect(again.window).toBeUndefined();
    expect(
      transition(plan, s, { type: 'verdict', outcome: 'pass', summary: '' }, now).window,
    ).toBeUndefined();
  });
  it('is dropped when the release rolls back or is set by hand', () => {
    const s = transition(plan, atStep1(), { type: 'windowClosed', window: window(0) }, now);
    expect(transition(plan, s, { type: 'abort' }, now).window).toBeUndefined();
    expect(transition(plan, s, { type: 'setByHand', weight: 30, step: 0 }, now).window).toBeUndefined();
  });
});

describe('Istio objects and patches', () => {
  const plan = buildPlan(canary);
  const vsWith = (http: unknown[], annotations: Record<string, string> = {}): KubeObject => ({
    apiVersion: 'networking.istio.io/v1beta1',
    kind: 'VirtualService',
    metadata: { name: 'http-lb', namespace: 'default', resourceVersion: '7', annotations },
    spec: { hosts: ['http-lb'], http },
  });
  const original = [
    { name: 'admin', match: [{ uri: { prefix: '/admin' } }], route: [{ destination: { host: 'admin' } }] },
    {
      name: 'lb',
      timeout: '5s',
      route: [
        { destination: { host: 'http-lb.default.svc.cluster.local', subset: 'v1', port: { number: 9180 } } },
      ],
    },
  ];

  it('renders a DestinationRule with a subset per version and a 100% stable VirtualService', () => {
    expect(renderDestinationRule(canary).spec).toEqual({
      host: 'http-lb',
      subsets: [
        { name: 'v1', labels: { version: 'v1' } },
        { name: 'v2', labels: { version: 'v2' } },
      ],
    });
    const vs = renderVirtualService(canary);
    expect(observeTarget(vs, plan)).toMatchObject({ weight: 0, stableWeight: 100, matchRoute: false });
  });

  it('a weight patch changes only the managed route; rollback is 100% stable from the current routes, whatever was saved', () => {
    const vs = vsWith(original);
    const patch = withState(targetPatch(vs, plan, { weight: 10, matchRoute: false }), { x: 'y' }) as {
      metadata: { annotations: Record<string, string | null> };
      spec: { http: unknown[] };
    };
    expect(patch.metadata.annotations).toEqual({ x: 'y' });
    expect(patch.spec.http).toEqual([
      original[0],
      {
        name: 'lb',
        timeout: '5s',
        route: [
          {
            destination: { host: 'http-lb.default.svc.cluster.local', subset: 'v1', port: { number: 9180 } },
            weight: 90,
          },
          {
            destination: { host: 'http-lb.default.svc.cluster.local', subset: 'v2', port: { number: 9180 } },
            weight: 10,
          },
        ],
      },
    ]);
    // After a promotion an older version saved "100% v2" as the original routes: rollback still lands on v1,
    // removes the stale annotation, and keeps a route another writer added meanwhile.
    const promoted = (
      targetPatch(vsWith(patch.spec.http), plan, PROMOTED_TARGET) as {
        spec: { http: Array<Record<string, unknown>> };
      }
    ).spec.http;
    const otherWriter = {
      name: 'canary-debug',
      match: [{ headers: { 'x-debug': { exact: '1' } } }],
      route: [{ destination: { host: 'debug' } }],
    };
    const current = vsWith([otherWriter, ...promoted], {
      [LEGACY_ORIGINAL_ROUTES]: JSON.stringify(promoted),
    });
    const back = targetPatch(current, plan, STABLE_TARGET) as {
      metadata: { annotations: Record<string, string | null> };
      spec: { http: Array<{ name?: string }> };
    };
    expect(back.metadata.annotations[LEGACY_ORIGINAL_ROUTES]).toBeNull();
    // The shared router writes the state in the same patch, without dropping the mesh's own annotation changes.
    expect(
      (withState(back, { 'clover-cd.io/phase': 'rolledBack' }).metadata as { annotations: object })
        .annotations,
    ).toEqual({ [LEGACY_ORIGINAL_ROUTES]: null, 'clover-cd.io/phase': 'rolledBack' });
    expect(back.spec.http.map((r) => r.name)).toEqual(['canary-debug', 'admin', 'lb']);
    expect(observeTarget(vsWith(back.spec.http), plan)).toMatchObject({
      weight: 0,
      stableWeight: 100,
      matchRoute: false,
    });
  });

  it('A/B prepends a match route to the candidate and removes it on promote', () => {
    const abPlan = buildPlan(ab);
    const http = routesForTarget(vsWith(original), abPlan, { weight: 0, matchRoute: true });
    expect(http.map((r) => r.name)).toEqual(['admin', matchRouteName('http-lb-ab'), 'lb']);
    expect(http[1].match).toEqual([
      { headers: { 'user-agent': { regex: '.*chrome.*' } } },
      { headers: { cookie: { regex: '^(.*?;)?(beta=true)(;.*)?$' } } },
    ]);
    expect(http[1].route).toEqual([
      {
        destination: { host: 'http-lb.default.svc.cluster.local', subset: 'v2', port: { number: 9180 } },
        weight: 100,
      },
    ]);
    expect(http[2].route!.map((d) => d.weight)).toEqual([100, 0]);
    const promoted = (targetPatch(vsWith(http), abPlan, PROMOTED_TARGET) as { spec: { http: typeof http } })
      .spec.http;
    expect(promoted.map((r) => r.name)).toEqual(['admin', 'lb']);
    expect(promoted[1].route!.map((d) => [d.destination.subset, d.weight])).toEqual([
      ['v1', 0],
      ['v2', 100],
    ]);
  });

  it('mirroring copies a share of traffic to the candidate at weight 0', () => {
    const http = routesForTarget(vsWith(original), plan, { weight: 0, mirrorPercent: 50, matchRoute: false });
    expect(http[1].mirror).toEqual({
      host: 'http-lb.default.svc.cluster.local',
      subset: 'v2',
      port: { number: 9180 },
    });
    expect(http[1].mirrorPercentage).toEqual({ value: 50 });
    expect(routesForTarget(vsWith(http), plan, { weight: 10, matchRoute: false })[1].mirror).toBeUndefined();
  });

  it('a VirtualService without a route to the service is refused with exit 2 naming the object', () => {
    expect(() => targetPatch(vsWith([original[0]]), plan, { weight: 10, matchRoute: false })).toThrow(
      /VirtualService default\/http-lb has no HTTP route to http-lb subset v1/,
    );
  });
});

export type { ReleaseSpec };

describe('gate rules per step', () => {
  it('judges a mirror window only with rules that can judge copies', () => {
    const rules: GateRule[] = [
      { conservation: { hops: ['http-lb'] } },
      { split: {} },
      { errorRate: { max: '1%' } },
      { compareLatency: { alpha: 0.01 } },
      { latency: { percentile: 95, max: '250ms' } },
    ];
    expect(rulesForStep(rules, { kind: 'mirror' }).map((r) => Object.keys(r)[0])).toEqual([
      'errorRate',
      'latency',
    ]);
    expect(rulesForStep(rules, { kind: 'weight' })).toBe(rules);
  });
});
