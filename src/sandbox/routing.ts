import type { KubeObject } from '../services/platform.js';
import { parseDurationMs } from '../util/units.js';

/**
 * Istio HTTP routing semantics (networking.istio.io v1alpha3 / v1beta1 / v1 VirtualService and
 * DestinationRule), as a pure function of the objects and the request. The mesh calls `routeRequest` for
 * each outbound request; nothing here does I/O.
 */
export interface RequestView {
  path: string; // path + query, as on the wire
  method: string;
  headers: Record<string, string | string[] | undefined>;
}

export interface Destination {
  /** Short service name (http-lb), whatever form the VirtualService used (http-lb.default.svc.cluster.local). */
  service: string;
  subset?: string;
  port?: number;
}

export interface RouteDecision {
  destination: Destination;
  mirror?: { destination: Destination; fraction: number };
  delay?: { ms: number; fraction: number };
  abort?: { status: number; fraction: number };
  timeoutMs?: number;
  retries?: { attempts: number; perTryTimeoutMs?: number; retryOn: string[] };
  /** Headers the route adds or removes on the request (headers.request.set/add/remove). */
  setHeaders?: Record<string, string>;
  removeHeaders?: string[];
  rewriteUri?: string;
  matchedPrefix?: string;
  /** `<VirtualService name>/<route name or index>`, or undefined when no VirtualService applied. */
  routeName?: string;
}

type StringMatch = { exact?: string; prefix?: string; regex?: string };
type HttpMatch = {
  uri?: StringMatch;
  headers?: Record<string, StringMatch>;
  method?: StringMatch;
  queryParams?: Record<string, StringMatch>;
  ignoreUriCase?: boolean;
  withoutHeaders?: Record<string, StringMatch>;
};
type RouteDestination = {
  destination?: { host?: string; subset?: string; port?: { number?: number } };
  weight?: number;
};
type Percent = { value?: number } | undefined;
type HttpRoute = {
  name?: string;
  match?: HttpMatch[];
  route?: RouteDestination[];
  mirror?: { host?: string; subset?: string; port?: { number?: number } };
  mirrorPercentage?: Percent;
  mirrorPercent?: number;
  mirrors?: Array<{ destination?: { host?: string; subset?: string }; percentage?: Percent }>;
  fault?: {
    delay?: { fixedDelay?: string; percentage?: Percent; percent?: number };
    abort?: { httpStatus?: number; percentage?: Percent; percent?: number };
  };
  timeout?: string;
  retries?: { attempts?: number; perTryTimeout?: string; retryOn?: string };
  headers?: { request?: { set?: Record<string, string>; add?: Record<string, string>; remove?: string[] } };
  rewrite?: { uri?: string };
};

const regexCache = new Map<string, RegExp>();
export function fullRegex(re: string): RegExp {
  let r = regexCache.get(re);
  if (!r) {
    // Istio regexes are RE2 and must match the whole value.
    r = new RegExp(`^(?:${re})$`);
    if (regexCache.size > 1000) regexCache.clear();
    regexCache.set(re, r);
  }
  return r;
}

function matchString(m: StringMatch, value: string | undefined, ignoreCase = false): boolean {
  if (value === undefined) return false;
  const v = ignoreCase ? value.toLowerCase() : value;
  if (m.exact !== undefined) return v === (ignoreCase ? m.exact.toLowerCase() : m.exact);
  if (m.prefix !== undefined) return v.startsWith(ignoreCase ? m.prefix.toLowerCase() : m.prefix);
  if (m.regex !== undefined) return fullRegex(m.regex).test(value);
  return true; // an empty match object matches any present value
}

/** A request header by name (case-insensitive), repeated values joined with commas. */
export const requestHeader = (h: RequestView['headers'], name: string): string | undefined => {
  const v = h[name.toLowerCase()];
  return Array.isArray(v) ? v.join(',') : v;
};

export function matchesHttp(match: HttpMatch, req: RequestView): boolean {
  const q = req.path.indexOf('?');
  const path = q < 0 ? req.path : req.path.slice(0, q);
  if (match.uri && !matchString(match.uri, path, match.ignoreUriCase)) return false;
  if (match.method && !matchString(match.method, req.method)) return false;
  for (const [name, m] of Object.entries(match.headers ?? {}))
    if (!matchString(m, requestHeader(req.headers, name))) return false;
  for (const [name, m] of Object.entries(match.withoutHeaders ?? {})) {
    const v = requestHeader(req.headers, name);
    if (v !== undefined && matchString(m, v)) return false;
  }
  if (match.queryParams) {
    const params = new URLSearchParams(q < 0 ? '' : req.path.slice(q + 1));
    for (const [name, m] of Object.entries(match.queryParams))
      if (!matchString(m, params.get(name) ?? undefined)) return false;
  }
  return true;
}

/** `http-lb`, `http-lb.default`, `http-lb.default.svc.cluster.local` → `http-lb` (sandbox services live in one namespace each). */
export function shortHost(host: string): string {
  const i = host.indexOf('.');
  return i < 0 ? host : host.slice(0, i);
}

/**
 * A VirtualService host in Kubernetes service form (`http-lb`, `http-lb.default`, `…svc`, `…svc.cluster.local`)
 * names a mesh service by its short name; anything else (`www.sdc.com`, `*.sdc.com`) is a domain, matched
 * against the request's Host as Istio does: exact, or a `*.` wildcard suffix, or `*`.
 */
export function isServiceHost(host: string): boolean {
  const parts = host.split('.');
  return (
    parts.length === 1 ||
    (parts.length === 2 && parts[1] === 'default') ||
    host.endsWith('.svc') ||
    host.endsWith('.svc.cluster.local')
  );
}

/**
 * How specifically `vsHost` matches the requested host (a short service name in the mesh, the Host header at
 * a gateway): -1 no match; 0 `*`; 1 + suffix length for a `*.` wildcard; 10,000 + length for an exact name.
 * Istio builds one virtual host per domain, so a request uses only the VirtualServices of its most specific host.
 */
export function hostSpecificity(vsHost: string, requested: string): number {
  const want = requested.toLowerCase();
  const h = vsHost.slice(vsHost.lastIndexOf('/') + 1).toLowerCase();
  if (h === '*') return 0;
  if (h.startsWith('*.')) return !isServiceHost(want) && want.endsWith(h.slice(1)) ? 1 + h.length : -1;
  if (isServiceHost(h))
    return isServiceHost(want) && shortHost(h) === shortHost(want) ? 10_000 + h.length : -1;
  return h === want ? 10_000 + h.length : -1;
}

/** Whether a Gateway's servers admit a request for `host` (hosts `*`, `ns/*`, exact names, `*.` suffixes). */
export function gatewayAdmits(gateway: KubeObject, host: string): boolean {
  const servers = ((gateway.spec ?? {}) as { servers?: Array<{ hosts?: string[] }> }).servers ?? [];
  return servers.some((s) => (s.hosts ?? []).some((h) => hostSpecificity(h, host) >= 0));
}

const fraction = (p: Percent, legacy?: number, dflt = 1): number =>
  p?.value !== undefined ? p.value / 100 : legacy !== undefined ? legacy / 100 : dflt;

const toDestination = (d: { host?: string; subset?: string; port?: { number?: number } }): Destination => ({
  service: shortHost(d.host ?? ''),
  subset: d.subset,
  port: d.port?.number,
});

/**
 * VirtualServices that apply to `service` for traffic from one of `gateways` (undefined = sidecars,
 * i.e. the reserved gateway "mesh"), of the most specific matching host only. Oldest first, as Istio merges
 * multiple VirtualServices for one host.
 */
export function applicableVirtualServices(
  vss: KubeObject[],
  service: string,
  gateways?: string[],
): KubeObject[] {
  const from = gateways ?? ['mesh'];
  let best = -1;
  const scored: Array<[KubeObject, number]> = [];
  for (const vs of vss) {
    const spec = (vs.spec ?? {}) as { hosts?: string[]; gateways?: string[] };
    // A gateway may be named `<ns>/<name>`; sandbox gateways all live in one namespace.
    const gws = spec.gateways?.length ? spec.gateways.map((g) => g.slice(g.lastIndexOf('/') + 1)) : ['mesh'];
    if (!gws.some((g) => from.includes(g))) continue;
    const score = Math.max(-1, ...(spec.hosts ?? []).map((h) => hostSpecificity(h, service)));
    if (score < 0) continue;
    scored.push([vs, score]);
    best = Math.max(best, score);
  }
  return scored
    .filter(([, score]) => score === best)
    .map(([vs]) => vs)
    .sort((a, b) =>
      String(a.metadata.creationTimestamp ?? '').localeCompare(String(b.metadata.creationTimestamp ?? '')),
    );
}

/** Pick the first matching http route; undefined when no VirtualService routes this request. */
export function routeRequest(
  vss: KubeObject[],
  service: string,
  req: RequestView,
  opts: { gateways?: string[]; random?: () => number } = {},
): RouteDecision | undefined {
  const random = opts.random ?? Math.random;
  for (const vs of applicableVirtualServices(vss, service, opts.gateways)) {
    const routes = ((vs.spec ?? {}) as { http?: HttpRoute[] }).http ?? [];
    for (let i = 0; i < routes.length; i++) {
      const r = routes[i];
      const matched = !r.match?.length ? {} : r.match.find((m) => matchesHttp(m, req));
      if (!matched) continue;
      const dests = r.route ?? [];
      if (!dests.length) continue;
      const decision: RouteDecision = {
        destination: toDestination(pickWeighted(dests, random).destination ?? {}),
        routeName: `${vs.metadata.name}/${r.name ?? i}`,
      };
      const mirror = r.mirror ?? r.mirrors?.[0]?.destination;
      if (mirror?.host) {
        decision.mirror = {
          destination: toDestination(mirror),
          fraction: r.mirror
            ? fraction(r.mirrorPercentage, r.mirrorPercent)
            : fraction(r.mirrors?.[0]?.percentage),
        };
      }
      if (r.fault?.delay?.fixedDelay) {
        decision.delay = {
          ms: parseDurationMs(r.fault.delay.fixedDelay),
          fraction: fraction(r.fault.delay.percentage, r.fault.delay.percent),
        };
      }
      if (r.fault?.abort?.httpStatus) {
        decision.abort = {
          status: r.fault.abort.httpStatus,
          fraction: fraction(r.fault.abort.percentage, r.fault.abort.percent),
        };
      }
      if (r.timeout) decision.timeoutMs = parseDurationMs(r.timeout);
      if (r.retries && (r.retries.attempts ?? 0) > 0) {
        decision.retries = {
          attempts: r.retries.attempts ?? 0,
          perTryTimeoutMs: r.retries.perTryTimeout ? parseDurationMs(r.retries.perTryTimeout) : undefined,
          retryOn: (
            r.retries.retryOn ?? 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes'
          ).split(','),
        };
      }
      const set = { ...r.headers?.request?.add, ...r.headers?.request?.set };
      if (Object.keys(set).length) decision.setHeaders = set;
      if (r.headers?.request?.remove?.length) decision.removeHeaders = r.headers.request.remove;
      if (r.rewrite?.uri !== undefined) {
        decision.rewriteUri = r.rewrite.uri;
        decision.matchedPrefix = (matched as HttpMatch).uri?.prefix;
      }
      return decision;
    }
  }
  return undefined;
}

function pickWeighted(dests: RouteDestination[], random: () => number): RouteDestination {
  if (dests.length === 1) return dests[0];
  // Istio: weights must sum to 100; a missing weight on a single destination means 100.
  const total = dests.reduce((s, d) => s + (d.weight ?? 0), 0);
  if (total <= 0) return dests[0];
  let x = random() * total;
  for (const d of dests) {
    x -= d.weight ?? 0;
    if (x < 0) return d;
  }
  return dests[dests.length - 1];
}

/** Labels a DestinationRule subset selects, merged over the Service selector; undefined when the subset is unknown. */
export function subsetLabels(
  drs: KubeObject[],
  service: string,
  subset: string,
): Record<string, string> | undefined {
  for (const dr of drs) {
    const spec = (dr.spec ?? {}) as {
      host?: string;
      subsets?: Array<{ name: string; labels?: Record<string, string> }>;
    };
    if (!spec.host || shortHost(spec.host) !== service) continue;
    const s = spec.subsets?.find((x) => x.name === subset);
    if (s) return s.labels ?? {};
  }
  return undefined;
}

export const labelsMatch = (
  labels: Record<string, string> | undefined,
  want: Record<string, string>,
): boolean => Object.entries(want).every(([k, v]) => labels?.[k] === v);
