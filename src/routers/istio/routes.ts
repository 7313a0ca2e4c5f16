/**
 * Istio objects for a release, and the JSON merge patches that move its traffic. Pure: the current
 * VirtualService in, the patch out. Only the managed route (the one that sends the service's traffic to
 * the stable/candidate subsets) has its weights changed, and only the match route clover-cd adds is ever
 * added or removed; other writers' routes and fields are carried over as they are. A JSON merge patch
 * replaces arrays whole, so every patch is computed from a fresh read and sent with that read's
 * resourceVersion: a concurrent writer makes it fail with 409 instead of being overwritten.
 */
import type { KubeObject } from '../../services/platform.js';
import type { HttpMatchValue, ReleaseSpec } from '../../spec/types.js';
import { InvalidInputError } from '../../util/errors.js';
import {
  PREVIEW_HEADER,
  routingOf,
  type ReleasePlan,
  type ServiceRouting,
  type TrafficTarget,
} from '../../canary/plan.js';
import { ANNOTATION_PREFIX } from '../state.js';

export const ISTIO_NETWORKING = 'networking.istio.io/v1beta1';
/**
 * Written by earlier versions on the first change of a release (the routes as they were) and restored on
 * rollback — which, after a promotion, restored 100% on the candidate. Rollback now always computes
 * "100% stable" from the current routes; the annotation is only removed when found.
 */
export const LEGACY_ORIGINAL_ROUTES = `${ANNOTATION_PREFIX}original-http`;

type Json = Record<string, unknown>;
export interface HttpRouteDestination {
  destination: { host: string; subset?: string; port?: { number: number } };
  weight?: number;
  [k: string]: unknown;
}
export interface HttpRoute {
  name?: string;
  match?: Array<Json & { headers?: Record<string, HttpMatchValue> }>;
  route?: HttpRouteDestination[];
  mirror?: { host: string; subset?: string; port?: { number: number } };
  mirrorPercentage?: { value: number };
  [k: string]: unknown;
}

/** Istio's objects for a service: the VirtualService that holds its routes, the DestinationRule of its subsets. */
export const istioObjectNames = (spec: ReleaseSpec) => ({
  virtualService: spec.service.virtualService ?? spec.service.name,
  destinationRule: spec.service.name,
});

export const vsRef = (spec: ReleaseSpec) => ({
  apiVersion: ISTIO_NETWORKING,
  kind: 'VirtualService',
  namespace: spec.service.namespace,
  name: istioObjectNames(spec).virtualService,
});

const destination = (r: ServiceRouting, subset: string, port?: number) => ({
  host: r.host,
  subset,
  ...(port ? { port: { number: port } } : {}),
});

/** The DestinationRule: one subset per version, selected by the version label. */
export function renderDestinationRule(spec: ReleaseSpec): KubeObject {
  const r = routingOf(spec);
  return {
    apiVersion: ISTIO_NETWORKING,
    kind: 'DestinationRule',
    metadata: {
      name: istioObjectNames(spec).destinationRule,
      namespace: r.namespace,
      labels: { 'app.kubernetes.io/managed-by': 'clover-cd' },
    },
    spec: {
      host: r.host,
      subsets: [r.stable, r.candidate].map((v) => ({ name: v, labels: { [r.versionLabel]: v } })),
    },
  };
}

/** The VirtualService a release starts from: one managed route, 100% stable. */
export function renderVirtualService(spec: ReleaseSpec): KubeObject {
  const r = routingOf(spec);
  return {
    apiVersion: ISTIO_NETWORKING,
    kind: 'VirtualService',
    metadata: {
      name: istioObjectNames(spec).virtualService,
      namespace: r.namespace,
      labels: { 'app.kubernetes.io/managed-by': 'clover-cd' },
    },
    spec: {
      hosts: [r.host],
      ...(spec.service.gateways ? { gateways: spec.service.gateways } : {}),
      http: [
        {
          name: 'primary',
          route: [
            { destination: destination(r, r.stable, r.port), weight: 100 },
            { destination: destination(r, r.candidate, r.port), weight: 0 },
          ],
        },
      ],
    },
  };
}

const sameHost = (a: string, r: ServiceRouting): boolean => {
  const short = (h: string) => h.replace(/\.svc\.cluster\.local$/, '').split('.');
  const [name, ns] = short(a);
  const [want, wantNs] = short(r.host);
  return name === want && (ns ?? r.namespace) === (wantNs ?? r.namespace);
};

/** Name of the route clover-cd adds for an A/B test or a blue/green preview. */
export const matchRouteName = (release: string) => `clover-cd-${release}`;

const isOurs = (route: HttpRoute, release: string) => route.name === matchRouteName(release);

export function httpRoutes(vs: KubeObject): HttpRoute[] {
  return ((vs.spec?.http as HttpRoute[] | undefined) ?? []).map((r) => structuredClone(r));
}

/**
 * Index of the managed route: among the routes (not ours) that send the host to the stable or candidate
 * subset, the one that carries both subsets, else the first without a match (the default route), else the
 * first. Another writer's header-match route to v1 placed before it is therefore never taken for it.
 */
export function managedRouteIndex(vs: KubeObject, plan: ReleasePlan): number {
  const r = plan.routing;
  const routes = httpRoutes(vs);
  const toService = (route: HttpRoute, subset?: string) =>
    (route.route ?? []).some(
      (d) =>
        sameHost(d.destination?.host ?? '', r) &&
        (subset
          ? d.destination.subset === subset
          : d.destination.subset === r.stable || d.destination.subset === r.candidate),
    );
  const candidates = routes
    .map((route, i) => ({ route, i }))
    .filter(({ route }) => !isOurs(route, plan.release) && toService(route));
  const pick =
    candidates.find(({ route }) => toService(route, r.stable) && toService(route, r.candidate)) ??
    candidates.find(({ route }) => !route.match?.length) ??
    candidates[0];
  const i = pick ? pick.i : -1;
  if (i < 0) {
    throw new InvalidInputError(
      `VirtualService ${vs.metadata.namespace ?? r.namespace}/${vs.metadata.name} has no HTTP route to ${r.host} subset ${r.stable} or ${r.candidate}; clover-cd manages the weights of such a route`,
      [
        {
          path: 'service.virtualService',
          message: `expected a route with destination {host: ${r.host}, subset: ${r.stable}}`,
          subject: `VirtualService ${vs.metadata.name}`,
        },
      ],
    );
  }
  return i;
}

function abMatches(plan: ReleasePlan, base: HttpRoute): HttpRoute['match'] {
  const conditions =
    plan.strategy === 'abTest'
      ? plan.match.map((m) => ({ ...(m.headers ?? {}), ...(m.cookie ? { cookie: m.cookie } : {}) }))
      : [{ [PREVIEW_HEADER]: { exact: 'true' } }];
  const bases = base.match?.length ? base.match : [{}];
  // Every A/B condition combined (AND) with every condition of the managed route: the candidate only
  // sees requests the managed route would have carried.
  return bases.flatMap((b) =>
    conditions.map((headers) => ({ ...b, headers: { ...(b.headers ?? {}), ...headers } })),
  );
}

/** The `spec.http` the VirtualService should have for a target, computed from its current routes. */
export function routesForTarget(vs: KubeObject, plan: ReleasePlan, t: TrafficTarget): HttpRoute[] {
  const r = plan.routing;
  const routes = httpRoutes(vs).filter((route) => !isOurs(route, plan.release));
  const i = managedRouteIndex({ ...vs, spec: { ...vs.spec, http: routes } }, plan);
  const managed = routes[i];
  const existing = managed.route ?? [];
  const port =
    existing.find((d) => d.destination?.subset === r.stable)?.destination.port?.number ??
    existing[0]?.destination?.port?.number;
  const template = (subset: string) =>
    existing.find((d) => d.destination?.subset === subset) ?? { destination: destination(r, subset, port) };
  const stable = {
    ...template(r.stable),
    destination: {
      ...template(r.stable).destination,
      host: template(r.stable).destination.host ?? r.host,
      subset: r.stable,
    },
  };
  const candidate = {
    ...template(r.candidate),
    destination: { ...destination(r, r.candidate, port), host: stable.destination.host },
  };
  const weighted: HttpRoute = {
    ...managed,
    route: [
      { ...stable, weight: 100 - t.weight },
      { ...candidate, weight: t.weight },
    ],
  };
  delete weighted.mirror;
  delete weighted.mirrorPercentage;
  if (t.mirrorPercent) {
    weighted.mirror = { ...candidate.destination };
    weighted.mirrorPercentage = { value: t.mirrorPercent };
  }
  const out = [...routes];
  out[i] = weighted;
  if (t.matchRoute) {
    const { name: _name, match: _match, route: _route, mirror: _m, mirrorPercentage: _mp, ...rest } = managed;
    out.splice(i, 0, {
      ...rest,
      name: matchRouteName(plan.release),
      match: abMatches(plan, managed),
      route: [{ ...candidate, weight: 100 }],
    });
  }
  return out;
}

/** Candidate weight and match/mirror state currently on the VirtualService. */
export function observeTarget(vs: KubeObject, plan: ReleasePlan): TrafficTarget & { stableWeight: number } {
  const routes = httpRoutes(vs);
  const managed = routes[managedRouteIndex(vs, plan)];
  const weightOf = (subset: string) =>
    (managed.route ?? [])
      .filter((d) => d.destination?.subset === subset)
      .reduce((a, d) => a + (d.weight ?? ((managed.route ?? []).length === 1 ? 100 : 0)), 0);
  return {
    weight: weightOf(plan.routing.candidate),
    stableWeight: weightOf(plan.routing.stable),
    mirrorPercent: managed.mirror ? (managed.mirrorPercentage?.value ?? 100) : undefined,
    matchRoute: routes.some((route) => isOurs(route, plan.release)),
  };
}

/**
 * Merge patch that sets a target — a step's, 100% stable (rollback) or 100% candidate (promotion) — computed
 * from the current VirtualService; the shared router adds the release state's annotations to the same write.
 */
export function targetPatch(vs: KubeObject, plan: ReleasePlan, t: TrafficTarget): Json {
  const legacy = vs.metadata.annotations?.[LEGACY_ORIGINAL_ROUTES] !== undefined;
  return {
    ...(legacy ? { metadata: { annotations: { [LEGACY_ORIGINAL_ROUTES]: null } } } : {}),
    spec: { http: routesForTarget(vs, plan, t) },
  };
}
