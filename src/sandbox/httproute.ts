import type { KubeObject } from '../services/platform.js';
import { fullRegex, requestHeader, shortHost, type RequestView, type RouteDecision } from './routing.js';

/**
 * Gateway API HTTP routing for mesh traffic (`gateway.networking.k8s.io/v1` HTTPRoute whose parentRefs name a
 * Service, the GAMMA binding), as a pure function of the routes and the request. Precedence across the
 * matches of every route attached to the service follows the HTTPRoute spec: an exact path, then the longest
 * path prefix, then a method, then the most header matches, then the most query matches; ties go to the oldest
 * route, then to namespace/name, then to rule order. Weighted backendRefs (weight default 1), an invalid
 * backendRef answering 500 for its share, RequestHeaderModifier and RequestMirror filters, `timeouts.request`.
 * Not modelled: routes attached to Gateways (the ingress keeps Istio's Gateway + VirtualService), redirects,
 * URL rewrites, response header filters.
 */
type ValueMatch = { type?: string; name: string; value: string };
interface Match {
  path?: { type?: string; value?: string };
  headers?: ValueMatch[];
  queryParams?: ValueMatch[];
  method?: string;
}
interface BackendRef {
  group?: string;
  kind?: string;
  name?: string;
  namespace?: string;
  port?: number;
  weight?: number;
  filters?: Filter[];
}
interface HeaderModifier {
  set?: Array<{ name: string; value: string }>;
  add?: Array<{ name: string; value: string }>;
  remove?: string[];
}
interface Filter {
  type?: string;
  requestHeaderModifier?: HeaderModifier;
  requestMirror?: {
    backendRef?: BackendRef;
    percent?: number;
    fraction?: { numerator: number; denominator?: number };
  };
}
interface Rule {
  name?: string;
  matches?: Match[];
  filters?: Filter[];
  backendRefs?: BackendRef[];
  timeouts?: { request?: string };
}

/** A backendRef the data plane can send to: a Service that exists and has the port. */
export type BackendCheck = (ref: { name: string; port?: number }) => boolean;

/** A decision whose backend is invalid: the request is answered 500 for that backend's share, as the spec says. */
export type HttpRouteDecision = RouteDecision & { invalidBackend?: string };

const DEFAULT_MATCH: Match = { path: { type: 'PathPrefix', value: '/' } };

/** Whether a parentRef binds the route to the mesh traffic of `service` (kind Service in the core group). */
function attachedTo(route: KubeObject, service: string): boolean {
  const parents = ((route.spec ?? {}) as { parentRefs?: BackendRef[] }).parentRefs ?? [];
  return parents.some(
    (p) =>
      ['', 'core'].includes(p.group ?? 'gateway.networking.k8s.io') &&
      p.kind === 'Service' &&
      shortHost(p.name ?? '') === service,
  );
}

/** Path match: Exact, PathPrefix (whole path elements, a trailing slash ignored) or a full RegularExpression. */
function matchesPath(m: Match['path'], path: string): boolean {
  const type = m?.type ?? 'PathPrefix';
  const value = m?.value ?? '/';
  if (type === 'Exact') return path === value;
  if (type === 'RegularExpression') return fullRegex(value).test(path);
  const prefix = value.replace(/\/+$/, '');
  return prefix === '' || path === prefix || path.startsWith(`${prefix}/`);
}

const matchesValue = (m: ValueMatch, v: string | null | undefined) =>
  v !== undefined &&
  v !== null &&
  (m.type === 'RegularExpression' ? fullRegex(m.value).test(v) : v === m.value);

export function matchesRoute(match: Match, req: RequestView): boolean {
  const q = req.path.indexOf('?');
  const path = q < 0 ? req.path : req.path.slice(0, q);
  if (!matchesPath(match.path, path)) return false;
  if (match.method && match.method !== req.method) return false;
  for (const h of match.headers ?? []) if (!matchesValue(h, requestHeader(req.headers, h.name))) return false;
  if (match.queryParams?.length) {
    const params = new URLSearchParams(q < 0 ? '' : req.path.slice(q + 1));
    for (const p of match.queryParams) if (!matchesValue(p, params.get(p.name))) return false;
  }
  return true;
}

interface Candidate {
  route: KubeObject;
  rule: Rule;
  ruleIndex: number;
  match: Match;
}

/** The spec's precedence as a sort: negative when `a` wins. */
function precedence(a: Candidate, b: Candidate): number {
  const exact = (c: Candidate) => ((c.match.path?.type ?? 'PathPrefix') === 'Exact' ? 1 : 0);
  const prefixLength = (c: Candidate) =>
    (c.match.path?.type ?? 'PathPrefix') === 'PathPrefix' ? (c.match.path?.value ?? '/').length : 0;
  const keys: Array<(c: Candidate) => number> = [
    exact,
    prefixLength,
    (c) => (c.match.method ? 1 : 0),
    (c) => c.match.headers?.length ?? 0,
    (c) => c.match.queryParams?.length ?? 0,
  ];
  for (const k of keys) if (k(a) !== k(b)) return k(b) - k(a);
  const age = String(a.route.metadata.creationTimestamp ?? '').localeCompare(
    String(b.route.metadata.creationTimestamp ?? ''),
  );
  if (age) return age;
  const id = (c: Candidate) => `${c.route.metadata.namespace}/${c.route.metadata.name}`;
  return id(a).localeCompare(id(b)) || a.ruleIndex - b.ruleIndex;
}

const ordered = new WeakMap<KubeObject[], Map<string, Candidate[]>>();

/** Every match of every route attached to `service`, in precedence order (cached per routes list). */
function candidatesFor(routes: KubeObject[], service: string): Candidate[] {
  let byService = ordered.get(routes);
  if (!byService) ordered.set(routes, (byService = new Map()));
  let list = byService.get(service);
  if (!list) {
    list = routes
      .filter((r) => attachedTo(r, service))
      .flatMap((route) =>
        (((route.spec ?? {}) as { rules?: Rule[] }).rules ?? []).flatMap((rule, ruleIndex) =>
          (rule.matches?.length ? rule.matches : [DEFAULT_MATCH]).map((match) => ({
            route,
            rule,
            ruleIndex,
            match,
          })),
        ),
      )
      .sort(precedence);
    byService.set(service, list);
  }
  return list;
}

/** Whether any HTTPRoute is attached to the service: then it, not a VirtualService, routes the service's traffic. */
export const hasHttpRoutes = (routes: KubeObject[], service: string): boolean =>
  routes.some((r) => attachedTo(r, service));

/** Gateway API durations: up to four `<n><h|m|s|ms>` parts ("1m30s"); "0s" means no timeout. */
function durationMs(d: string | undefined): number | undefined {
  let ms = 0;
  for (const [, n, unit] of (d ?? '').matchAll(/(\d+)(ms|h|m|s)/g))
    ms += Number(n) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[unit as 'ms' | 's' | 'm' | 'h'];
  return ms > 0 ? ms : undefined;
}

function pickBackend(refs: BackendRef[], random: () => number): BackendRef | undefined {
  const total = refs.reduce((s, b) => s + (b.weight ?? 1), 0);
  if (total <= 0) return undefined;
  let x = random() * total;
  for (const b of refs) {
    x -= b.weight ?? 1;
    if (x < 0) return b;
  }
  return refs[refs.length - 1];
}

/** A backendRef names a core Service the data plane knows, on a port it has. */
const validBackend = (b: BackendRef, check: BackendCheck) =>
  (b.group ?? '') === '' &&
  (b.kind ?? 'Service') === 'Service' &&
  !!b.name &&
  check({ name: b.name, port: b.port });

/** Request headers after RequestHeaderModifier filters: set overwrites, add appends, remove drops. */
function modifyHeaders(filters: Filter[], req: RequestView, decision: RouteDecision): void {
  for (const f of filters) {
    const m = f.type === 'RequestHeaderModifier' ? f.requestHeaderModifier : undefined;
    if (!m) continue;
    const set = (decision.setHeaders ??= {});
    for (const h of m.set ?? []) set[h.name.toLowerCase()] = h.value;
    for (const h of m.add ?? []) {
      const name = h.name.toLowerCase();
      const current = set[name] ?? requestHeader(req.headers, name);
      set[name] = current === undefined ? h.value : `${current},${h.value}`;
    }
    if (m.remove?.length) (decision.removeHeaders ??= []).push(...m.remove.map((n) => n.toLowerCase()));
  }
}

/** Route a request to `service` through its HTTPRoutes; undefined when none is attached or none matches. */
export function routeHttpRoutes(
  routes: KubeObject[],
  service: string,
  req: RequestView,
  opts: { random: () => number; backendExists: BackendCheck },
): HttpRouteDecision | undefined {
  const hit = candidatesFor(routes, service).find((c) => matchesRoute(c.match, req));
  if (!hit) return undefined;
  const { rule, route } = hit;
  const routeName = `${route.metadata.name}/${rule.name ?? hit.ruleIndex}`;
  const backend = pickBackend(rule.backendRefs ?? [], opts.random);
  const decision: HttpRouteDecision = {
    destination: { service: backend?.name ?? service, port: backend?.port },
    routeName,
  };
  if (!backend || !validBackend(backend, opts.backendExists))
    decision.invalidBackend = backend
      ? `backendRef ${backend.kind ?? 'Service'} ${backend.name}${backend.port ? `:${backend.port}` : ''} does not resolve`
      : `rule ${routeName} has no backendRef with a weight`;
  modifyHeaders([...(rule.filters ?? []), ...(backend?.filters ?? [])], req, decision);
  const mirror = (rule.filters ?? []).find((f) => f.type === 'RequestMirror')?.requestMirror;
  if (mirror?.backendRef?.name)
    decision.mirror = {
      destination: { service: mirror.backendRef.name, port: mirror.backendRef.port },
      fraction:
        mirror.percent !== undefined
          ? mirror.percent / 100
          : mirror.fraction
            ? mirror.fraction.numerator / (mirror.fraction.denominator ?? 100)
            : 1,
    };
  const timeout = durationMs(rule.timeouts?.request);
  if (timeout) decision.timeoutMs = timeout;
  return decision;
}

const GATEWAY_API_VERSIONS = ['gateway.networking.k8s.io/v1', 'gateway.networking.k8s.io/v1beta1'];

/**
 * What the HTTPRoute schema (Gateway API v1.6.1 standard CRD) refuses, as [field path, expectation]: an
 * unknown version, more than 16 rules or backendRefs, a weight outside 0..1,000,000, a Service backendRef
 * without a port, a mirror percent outside 0..100.
 */
export function httpRouteProblems(o: KubeObject): Array<[string, string]> {
  const problems: Array<[string, string]> = [];
  if (!GATEWAY_API_VERSIONS.includes(o.apiVersion))
    problems.push([
      '.apiVersion',
      `expected one of ${GATEWAY_API_VERSIONS.join(', ')}, found "${o.apiVersion}"`,
    ]);
  const rules = ((o.spec ?? {}) as { rules?: Rule[] }).rules ?? [];
  if (rules.length > 16) problems.push(['.spec.rules', `expected at most 16 rules, found ${rules.length}`]);
  const checkRef = (b: BackendRef, at: string) => {
    if (!b.name) problems.push([`${at}.name`, 'expected the name of a Service']);
    if ((b.kind ?? 'Service') === 'Service' && (b.group ?? '') === '' && b.port === undefined)
      problems.push([`${at}.port`, 'expected a port: a Service backendRef needs one']);
  };
  rules.forEach((r, j) => {
    const refs = r.backendRefs ?? [];
    if (refs.length > 16)
      problems.push([`.spec.rules[${j}].backendRefs`, `expected at most 16, found ${refs.length}`]);
    refs.forEach((b, k) => {
      const at = `.spec.rules[${j}].backendRefs[${k}]`;
      checkRef(b, at);
      if (b.weight !== undefined && (!Number.isInteger(b.weight) || b.weight < 0 || b.weight > 1_000_000))
        problems.push([`${at}.weight`, `expected an integer 0..1000000, found ${JSON.stringify(b.weight)}`]);
    });
    (r.filters ?? []).forEach((f, k) => {
      const m = f.type === 'RequestMirror' ? f.requestMirror : undefined;
      if (!m) return;
      const at = `.spec.rules[${j}].filters[${k}].requestMirror`;
      if (!m.backendRef) problems.push([`${at}.backendRef`, 'expected the backend that gets the copies']);
      else checkRef(m.backendRef, `${at}.backendRef`);
      if (m.percent !== undefined && (!Number.isInteger(m.percent) || m.percent < 0 || m.percent > 100))
        problems.push([`${at}.percent`, `expected an integer 0..100, found ${JSON.stringify(m.percent)}`]);
    });
  });
  return problems;
}
