/**
 * Istio objects for a release, and the JSON merge patches that move its traffic. Pure: the current
 * VirtualService in, the patch out. Only the managed route (the one that sends the service's traffic to
 * the stable/candidate subsets) has its weights changed; other routes are carried over as they are. A JSON
 * merge patch replaces arrays whole, so every patch is computed from a fresh read and sent with that
 * read's resourceVersion: a concurrent writer makes it fail with 409 instead of being overwritten.
 */
import type { KubeObject } from '../services/platform.js';
import type { HttpMatchValue, ReleaseSpec } from '../spec/types.js';
import { InvalidInputError } from '../util/errors.js';
import { routingOf, type PlanStep, type ReleasePlan, type ServiceRouting } from './plan.js';

export const ISTIO_NETWORKING = 'networking.istio.io/v1beta1';
export const ANNOTATION_PREFIX = 'clover-cd.io/';
/** The VirtualService's `spec.http` as it was before the release touched it, restored on rollback. */
export const ORIGINAL_ROUTES = `${ANNOTATION_PREFIX}original-http`;
/** Header that reaches the candidate during a blue/green preview. */
export const PREVIEW_HEADER = 'x-clover-cd-preview';

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

/** Traffic a step asks for on the VirtualService. */
export interface TrafficTarget {
  /** Candidate share (%) of the managed route. */
  weight: number;
  mirrorPercent?: number;
  /** The A/B (or blue/green preview) match route is in place. */
  matchRoute: boolean;
}

export const targetOfStep = (s: PlanStep): TrafficTarget => ({ weight: s.weight, mirrorPercent: s.mirrorPercent, matchRoute: s.matchRoute });

export const vsRef = (r: ServiceRouting) => ({ apiVersion: ISTIO_NETWORKING, kind: 'VirtualService', namespace: r.namespace, name: r.virtualService });
export const drRef = (r: ServiceRouting) => ({ apiVersion: ISTIO_NETWORKING, kind: 'DestinationRule', namespace: r.namespace, name: r.destinationRule });

const destination = (r: ServiceRouting, subset: string, port?: number) => ({ host: r.host, subset, ...(port ? { port: { number: port } } : {}) });

/** The DestinationRule: one subset per version, selected by the version label. */
export function renderDestinationRule(spec: ReleaseSpec): KubeObject {
  const r = routingOf(spec);
  return {
    apiVersion: ISTIO_NETWORKING,
    kind: 'DestinationRule',
    metadata: { name: r.destinationRule, namespace: r.namespace, labels: { 'app.kubernetes.io/managed-by': 'clover-cd' } },
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
    metadata: { name: r.virtualService, namespace: r.namespace, labels: { 'app.kubernetes.io/managed-by': 'clover-cd' } },
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

/** Index of the managed route: the first route of ours-excluded routes sending the host to stable or candidate. */
export function managedRouteIndex(vs: KubeObject, plan: ReleasePlan): number {
  const r = plan.routing;
  const routes = httpRoutes(vs);
  const i = routes.findIndex(
    (route) =>
      !isOurs(route, plan.release) &&
      (route.route ?? []).some((d) => sameHost(d.destination?.host ?? '', r) && (d.destination.subset === r.stable || d.destination.subset === r.candidate)),
  );
  if (i < 0) {
    throw new InvalidInputError(
      `VirtualService ${r.namespace}/${r.virtualService} has no HTTP route to ${r.host} subset ${r.stable} or ${r.candidate}; clover-cd manages the weights of such a route`,
      [{ path: 'service.virtualService', message: `expected a route with destination {host: ${r.host}, subset: ${r.stable}}`, subject: `VirtualService ${r.virtualService}` }],
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
  return bases.flatMap((b) => conditions.map((headers) => ({ ...b, headers: { ...(b.headers ?? {}), ...headers } })));
}

/** The `spec.http` the VirtualService should have for a target, computed from its current routes. */
export function routesForTarget(vs: KubeObject, plan: ReleasePlan, t: TrafficTarget): HttpRoute[] {
  const r = plan.routing;
  const routes = httpRoutes(vs).filter((route) => !isOurs(route, plan.release));
  const i = managedRouteIndex({ ...vs, spec: { ...vs.spec, http: routes } }, plan);
  const managed = routes[i];
  const existing = managed.route ?? [];
  const port = existing.find((d) => d.destination?.subset === r.stable)?.destination.port?.number ?? existing[0]?.destination?.port?.number;
  const template = (subset: string) => existing.find((d) => d.destination?.subset === subset) ?? { destination: destination(r, subset, port) };
  const stable = { ...template(r.stable), destination: { ...template(r.stable).destination, host: template(r.stable).destination.host ?? r.host, subset: r.stable } };
  const candidate = { ...template(r.candidate), destination: { ...destination(r, r.candidate, port), host: stable.destination.host } };
  const weighted: HttpRoute = { ...managed, route: [{ ...stable, weight: 100 - t.weight }, { ...candidate, weight: t.weight }] };
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
    out.splice(i, 0, { ...rest, name: matchRouteName(plan.release), match: abMatches(plan, managed), route: [{ ...candidate, weight: 100 }] });
  }
  return out;
}

/** Candidate weight and match/mirror state currently on the VirtualService. */
export function observeTarget(vs: KubeObject, plan: ReleasePlan): TrafficTarget & { stableWeight: number } {
  const routes = httpRoutes(vs);
  const managed = routes[managedRouteIndex(vs, plan)];
  const weightOf = (subset: string) =>
    (managed.route ?? []).filter((d) => d.destination?.subset === subset).reduce((a, d) => a + (d.weight ?? ((managed.route ?? []).length === 1 ? 100 : 0)), 0);
  return {
    weight: weightOf(plan.routing.candidate),
    stableWeight: weightOf(plan.routing.stable),
    mirrorPercent: managed.mirror ? (managed.mirrorPercentage?.value ?? 100) : undefined,
    matchRoute: routes.some((route) => isOurs(route, plan.release)),
  };
}

/** Merge patch that sets a target; the first change of a release keeps the original routes in an annotation. */
export function trafficPatch(vs: KubeObject, plan: ReleasePlan, t: TrafficTarget, annotations: Record<string, string | null> = {}): Json {
  const keepOriginal = vs.metadata.annotations?.[ORIGINAL_ROUTES] === undefined ? { [ORIGINAL_ROUTES]: JSON.stringify(vs.spec?.http ?? []) } : {};
  return { metadata: { annotations: { ...keepOriginal, ...annotations } }, spec: { http: routesForTarget(vs, plan, t) } };
}

/** Merge patch that restores the routes kept before the release (or 100% stable when none were kept). */
export function rollbackPatch(vs: KubeObject, plan: ReleasePlan, annotations: Record<string, string | null> = {}): Json {
  const kept = vs.metadata.annotations?.[ORIGINAL_ROUTES];
  const http = kept ? (JSON.parse(kept) as HttpRoute[]) : routesForTarget(vs, plan, { weight: 0, matchRoute: false });
  return { metadata: { annotations: { [ORIGINAL_ROUTES]: null, ...annotations } }, spec: { http } };
}

/** Merge patch that sends 100% to the candidate and removes the match and mirror routes. */
export function promotePatch(vs: KubeObject, plan: ReleasePlan, annotations: Record<string, string | null> = {}): Json {
  return { metadata: { annotations: { [ORIGINAL_ROUTES]: null, ...annotations } }, spec: { http: routesForTarget(vs, plan, { weight: 100, matchRoute: false }) } };
}

