/**
 * Gateway API objects for a release (`gateway.networking.k8s.io/v1` HTTPRoute) and the JSON merge patches that
 * move its traffic. Pure: the current HTTPRoute in, the patch out.
 *
 * The Gateway API has no subsets: each version is a Service of its own (`service.backends`, default
 * `<name>-<version>`, as Flagger's `<svc>-primary` / `<svc>-canary`), and the weights of the managed rule's
 * backendRefs split the traffic between them. Weights are relative integers (0..1,000,000); clover-cd writes the
 * step's percentages (25% → stable 75, candidate 25). Only the managed rule's backendRefs, the candidate's
 * RequestMirror filter on it and clover-cd's own match rule (`name: clover-cd-<release>`) are ever changed; other
 * rules, filters, parentRefs, hostnames and timeouts are carried over as they are. A JSON merge patch replaces
 * `spec.rules` whole, so it is computed from a fresh read and sent with that read's resourceVersion.
 */
import { PREVIEW_HEADER, type ReleasePlan, type TrafficTarget } from '../../canary/plan.js';
import type { KubeObject } from '../../services/platform.js';
import type { HttpMatchValue, ReleaseSpec } from '../../spec/types.js';
import { InvalidInputError } from '../../util/errors.js';
import type { ObservedRoutes } from '../types.js';

export const GATEWAY_API = 'gateway.networking.k8s.io/v1';
/** The largest backendRef weight the HTTPRoute schema admits. */
export const MAX_BACKEND_WEIGHT = 1_000_000;

type Json = Record<string, unknown>;
export interface BackendRef {
  group?: string;
  kind?: string;
  name: string;
  namespace?: string;
  port?: number;
  weight?: number;
  [k: string]: unknown;
}
export interface HeaderMatch {
  type?: 'Exact' | 'RegularExpression';
  name: string;
  value: string;
}
export interface RouteMatch {
  path?: { type?: string; value?: string };
  headers?: HeaderMatch[];
  queryParams?: HeaderMatch[];
  method?: string;
  [k: string]: unknown;
}
export interface RouteFilter {
  type: string;
  requestMirror?: {
    backendRef: BackendRef;
    percent?: number;
    fraction?: { numerator: number; denominator?: number };
  };
  [k: string]: unknown;
}
export interface RouteRule {
  name?: string;
  matches?: RouteMatch[];
  filters?: RouteFilter[];
  backendRefs?: BackendRef[];
  [k: string]: unknown;
}

/** The objects a release on the Gateway API uses: the HTTPRoute and the Service of each version. */
export function gatewayApiNames(spec: ReleaseSpec) {
  const s = spec.service;
  return {
    httpRoute: s.httpRoute ?? s.name,
    stable: s.backends?.stable ?? `${s.name}-${s.stable}`,
    candidate: s.backends?.candidate ?? `${s.name}-${s.candidate}`,
  };
}
export type GatewayApiNames = ReturnType<typeof gatewayApiNames>;

export const httpRouteRef = (spec: ReleaseSpec) => ({
  apiVersion: GATEWAY_API,
  kind: 'HTTPRoute',
  namespace: spec.service.namespace,
  name: gatewayApiNames(spec).httpRoute,
});

/** Name of the rule clover-cd adds for an A/B test or a blue/green preview. */
export const matchRuleName = (release: string) => `clover-cd-${release}`;

/** Whether a backendRef (or a mirror's) names the Service `name` in the route's namespace. */
export function refersTo(ref: Partial<BackendRef> | undefined, name: string, namespace: string): boolean {
  return (
    !!ref &&
    (ref.group ?? '') === '' &&
    (ref.kind ?? 'Service') === 'Service' &&
    ref.name === name &&
    (ref.namespace ?? namespace) === namespace
  );
}

/**
 * The Service of one version, created when missing (never changed when present): it selects the service's pods
 * (`app: <name>`) of that version (`service.versionLabel`), Istio's labelling convention. A team whose pods are
 * labelled otherwise creates its own Services under the names `service.backends` gives.
 */
export function renderBackendServices(spec: ReleaseSpec): KubeObject[] {
  const s = spec.service;
  const names = gatewayApiNames(spec);
  return [
    [names.stable, s.stable],
    [names.candidate, s.candidate],
  ].map(([name, version]) => ({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name,
      namespace: s.namespace,
      labels: { app: s.name, 'app.kubernetes.io/managed-by': 'clover-cd' },
    },
    spec: {
      selector: { app: s.name, [s.versionLabel ?? 'version']: version },
      // protocol written out: a server-side apply refuses a port without it (the list is keyed by port and protocol).
      ports: [{ name: 'http', port: s.port, targetPort: s.port, protocol: 'TCP' }],
    },
  }));
}

export function httpRouteRules(route: KubeObject): RouteRule[] {
  return ((route.spec?.rules as RouteRule[] | undefined) ?? []).map((r) => structuredClone(r));
}

const isOurs = (rule: RouteRule, release: string) => rule.name === matchRuleName(release);

/** A rule every request reaches: no matches, or (as the API server defaults it) a path prefix "/" alone. */
const catchesAll = (rule: RouteRule): boolean =>
  !rule.matches?.length ||
  rule.matches.some(
    (m) =>
      (m.path?.type ?? 'PathPrefix') === 'PathPrefix' &&
      (m.path?.value ?? '/') === '/' &&
      !m.headers?.length &&
      !m.queryParams?.length &&
      !m.method,
  );

/**
 * Index of the managed rule: among the rules (not ours) whose backendRefs name the stable or candidate Service,
 * the one that names both, else the first that every request reaches, else the first. Exit 2 naming
 * `service.backends.stable` when no rule names either.
 */
export function managedRuleIndex(route: KubeObject, plan: ReleasePlan, names: GatewayApiNames): number {
  const ns = route.metadata.namespace ?? plan.routing.namespace;
  const toBackend = (rule: RouteRule, name: string) =>
    (rule.backendRefs ?? []).some((b) => refersTo(b, name, ns));
  const candidates = httpRouteRules(route)
    .map((rule, i) => ({ rule, i }))
    .filter(
      ({ rule }) =>
        !isOurs(rule, plan.release) && (toBackend(rule, names.stable) || toBackend(rule, names.candidate)),
    );
  const pick =
    candidates.find(({ rule }) => toBackend(rule, names.stable) && toBackend(rule, names.candidate)) ??
    candidates.find(({ rule }) => catchesAll(rule)) ??
    candidates[0];
  if (!pick)
    throw new InvalidInputError(
      `HTTPRoute ${ns}/${route.metadata.name} has no rule with a backendRef to Service ${names.stable} (the stable version ${plan.routing.stable}); clover-cd manages the weights of such a rule`,
      [
        {
          path: 'service.backends.stable',
          message: `expected a rule of HTTPRoute ${route.metadata.name} with backendRefs: [{name: ${names.stable}, port: ${plan.routing.port}}] (default name <service.name>-<service.stable>)`,
          subject: `HTTPRoute ${route.metadata.name}`,
        },
      ],
    );
  return pick.i;
}

const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A spec match value as a header match: exact stays exact, a prefix becomes a (full-match) regular expression. */
export function headerMatch(name: string, v: HttpMatchValue): HeaderMatch {
  if (v.exact !== undefined) return { type: 'Exact', name, value: v.exact };
  if (v.prefix !== undefined) return { type: 'RegularExpression', name, value: `${escapeRegex(v.prefix)}.*` };
  return { type: 'RegularExpression', name, value: v.regex ?? '.*' };
}

function abMatches(plan: ReleasePlan, base: RouteRule): RouteMatch[] {
  const conditions: HeaderMatch[][] =
    plan.strategy === 'abTest'
      ? plan.match.map((m) => [
          ...Object.entries(m.headers ?? {}).map(([name, v]) => headerMatch(name, v)),
          ...(m.cookie ? [headerMatch('Cookie', m.cookie)] : []),
        ])
      : [[{ type: 'Exact', name: PREVIEW_HEADER, value: 'true' }]];
  const bases: RouteMatch[] = base.matches?.length
    ? base.matches
    : [{ path: { type: 'PathPrefix', value: '/' } }];
  // Every A/B condition combined (AND) with every match of the managed rule: the candidate only sees requests
  // the managed rule would have carried. Header names are a map key in a match, compared case-insensitively.
  return bases.flatMap((b) =>
    conditions.map((headers) => {
      const own = new Set(headers.map((h) => h.name.toLowerCase()));
      return {
        ...b,
        headers: [...(b.headers ?? []).filter((h) => !own.has(h.name.toLowerCase())), ...headers],
      };
    }),
  );
}

const isCandidateMirror = (f: RouteFilter, names: GatewayApiNames, ns: string) =>
  f.type === 'RequestMirror' && refersTo(f.requestMirror?.backendRef, names.candidate, ns);

/** A share in percent as a mirror's `percent` (an integer), or as a `fraction` when it has decimals. */
function mirrorShare(p: number): Pick<NonNullable<RouteFilter['requestMirror']>, 'percent' | 'fraction'> {
  const share = Math.min(100, Math.max(0, p));
  return Number.isInteger(share)
    ? { percent: share }
    : { fraction: { numerator: Math.round(share * 10_000), denominator: 1_000_000 } };
}

/** A percentage as a backendRef weight, inside the schema's range whatever the caller passed. */
const backendWeight = (percent: number) => Math.min(MAX_BACKEND_WEIGHT, Math.max(0, Math.round(percent)));

/** The `spec.rules` the HTTPRoute should have for a target, computed from its current rules. */
export function rulesForTarget(
  route: KubeObject,
  plan: ReleasePlan,
  names: GatewayApiNames,
  t: TrafficTarget,
): RouteRule[] {
  const ns = route.metadata.namespace ?? plan.routing.namespace;
  const rules = httpRouteRules(route).filter((rule) => !isOurs(rule, plan.release));
  const i = managedRuleIndex({ ...route, spec: { ...route.spec, rules } }, plan, names);
  const managed = rules[i];
  const existing = managed.backendRefs ?? [];
  const stableRef = existing.find((b) => refersTo(b, names.stable, ns)) ?? { name: names.stable };
  const port = stableRef.port ?? existing[0]?.port ?? plan.routing.port;
  const candidateRef = existing.find((b) => refersTo(b, names.candidate, ns)) ?? {
    name: names.candidate,
    port,
  };
  const weight = Math.min(100, Math.max(0, t.weight));
  const filters = (managed.filters ?? []).filter((f) => !isCandidateMirror(f, names, ns));
  if (t.mirrorPercent)
    filters.push({
      type: 'RequestMirror',
      requestMirror: { backendRef: { name: names.candidate, port }, ...mirrorShare(t.mirrorPercent) },
    });
  const { filters: _own, ...unfiltered } = managed;
  const weighted: RouteRule = {
    ...unfiltered,
    // Absent stays absent: an empty list is only left where the user wrote one.
    ...(filters.length || managed.filters?.length === 0 ? { filters } : {}),
    backendRefs: [
      { ...stableRef, port, weight: backendWeight(100 - weight) },
      { ...candidateRef, port: candidateRef.port ?? port, weight: backendWeight(weight) },
    ],
  };
  const out = [...rules];
  out[i] = weighted;
  if (t.matchRoute) {
    const { name: _name, matches: _matches, backendRefs: _refs, filters: _filters, ...rest } = managed;
    const own = (managed.filters ?? []).filter((f) => !isCandidateMirror(f, names, ns));
    out.splice(i, 0, {
      ...rest,
      name: matchRuleName(plan.release),
      matches: abMatches(plan, managed),
      ...(own.length ? { filters: own } : {}),
      backendRefs: [{ ...candidateRef, port: candidateRef.port ?? port, weight: 1 }],
    });
  }
  return out;
}

/** Weights (as percentages of the managed rule's backendRefs) and match/mirror state on the HTTPRoute. */
export function observeRules(route: KubeObject, plan: ReleasePlan, names: GatewayApiNames): ObservedRoutes {
  const ns = route.metadata.namespace ?? plan.routing.namespace;
  const rules = httpRouteRules(route);
  const managed = rules[managedRuleIndex(route, plan, names)];
  const refs = managed.backendRefs ?? [];
  // A backendRef's weight defaults to 1; the share of a backend is its weight over the rule's total.
  const total = refs.reduce((a, b) => a + (b.weight ?? 1), 0);
  const shareOf = (name: string) =>
    total > 0
      ? Math.round(
          (100 * refs.filter((b) => refersTo(b, name, ns)).reduce((a, b) => a + (b.weight ?? 1), 0)) / total,
        )
      : 0;
  const mirror = (managed.filters ?? []).find((f) => isCandidateMirror(f, names, ns))?.requestMirror;
  return {
    weight: shareOf(names.candidate),
    stableWeight: shareOf(names.stable),
    mirrorPercent: mirror
      ? (mirror.percent ??
        (mirror.fraction ? (100 * mirror.fraction.numerator) / (mirror.fraction.denominator ?? 100) : 100))
      : undefined,
    matchRoute: rules.some((rule) => isOurs(rule, plan.release)),
  };
}

/** Merge patch that sets a target (a step's, rollback's 100% stable, promotion's 100% candidate) from the current route. */
export function rulesPatch(
  route: KubeObject,
  plan: ReleasePlan,
  names: GatewayApiNames,
  t: TrafficTarget,
): Json {
  return { spec: { rules: rulesForTarget(route, plan, names, t) } };
}
