/**
 * Istio's standard metrics (istio_requests_total, istio_request_duration_milliseconds) reduced to the
 * gate's metric evidence: per hop and version request counts by code, and the gated service's latency
 * histogram per version. Input is counter increases over the window, from Prometheus or a direct scrape.
 */
import { ISTIO_TELEMETRY, versionOfLabels, type CounterIncrease } from '../metrics/index.js';
import type { MetricsSource } from '../contract/index.js';
import type { Histogram, MetricEvidence, VersionCounts } from './types.js';

// The names come from the mesh's telemetry description (metrics/telemetry.ts).
export const REQUESTS = ISTIO_TELEMETRY.requests;
export const DURATION_BUCKET = ISTIO_TELEMETRY.duration.bucket;
export const DURATION_SUM = ISTIO_TELEMETRY.duration.sum;
export const DURATION_COUNT = ISTIO_TELEMETRY.duration.count;
/** Custom dimensions (Istio Telemetry tagOverrides, deploy/sdc/telemetry.yaml): the load's run id and the route. */
export const LOAD_LABEL = ISTIO_TELEMETRY.labels.load;
export const ROUTE_LABEL = ISTIO_TELEMETRY.labels.route;
export { versionOfLabels, type CounterIncrease };

const addCount = (to: Record<string, VersionCounts>, v: string, code: string, n: number) => {
  const c = (to[v] ??= { requests: 0, errors: 0, codes: {} });
  c.requests += n;
  c.codes[code] = (c.codes[code] ?? 0) + n;
  if (Number(code) >= 500 || code === '0') c.errors += n;
};

function toHistogram(m: Map<number, number>): Histogram | undefined {
  const le = [...m.keys()].sort((a, b) => a - b);
  const h = { le, counts: le.map((x) => Math.round(m.get(x)!)) };
  return h.counts[h.counts.length - 1] > 0 ? h : undefined;
}

/** Drop versions (and then hops) that saw nothing in the window: a series that did not move is not evidence. */
function prune(byHop: Record<string, Record<string, VersionCounts>>): void {
  for (const k of Object.keys(byHop)) {
    for (const v of Object.keys(byHop[k])) if (byHop[k][v].requests === 0) delete byHop[k][v];
    if (!Object.keys(byHop[k]).length) delete byHop[k];
  }
}

/**
 * Counter increases → metric evidence. With `loadRunId`, series labelled clover_cd_load="<run id>" are also
 * counted apart (the load's own requests); series with request_path give the gated service per route.
 */
export function metricEvidence(
  source: MetricsSource,
  increases: CounterIncrease[],
  service: string,
  opts: { loadRunId?: string } = {},
): MetricEvidence {
  const hops: Record<string, Record<string, VersionCounts>> = {};
  const tagged: Record<string, Record<string, VersionCounts>> = {};
  const routes: Record<string, Record<string, VersionCounts>> = {};
  const buckets: Record<string, Map<number, number>> = {};
  const routeBuckets: Record<string, Record<string, Map<number, number>>> = {};
  const durSum: Record<string, number> = {};
  const durCount: Record<string, number> = {};
  let sawRequests = false;
  let sawBuckets = false;
  let sawLoadLabel = false;
  for (const s of increases) {
    if (s.labels.reporter && s.labels.reporter !== 'destination') continue;
    const svc = s.labels.destination_service_name ?? '';
    const route = s.labels[ROUTE_LABEL];
    const hasRoute = route !== undefined && route !== '' && route !== 'unknown';
    if (s.name === REQUESTS) {
      sawRequests = true;
      if (!svc) continue;
      const v = versionOfLabels(s.labels, svc);
      const n = Math.round(s.value);
      const code = s.labels.response_code ?? '0';
      addCount((hops[svc] ??= {}), v, code, n);
      if (s.labels[LOAD_LABEL] !== undefined && s.labels[LOAD_LABEL] !== '') sawLoadLabel = true;
      if (opts.loadRunId && s.labels[LOAD_LABEL] === opts.loadRunId)
        addCount((tagged[svc] ??= {}), v, code, n);
      if (svc === service && hasRoute) addCount((routes[route] ??= {}), v, code, n);
    } else if (s.name === DURATION_BUCKET && (!svc || svc === service)) {
      sawBuckets = true;
      const v = versionOfLabels(s.labels, service);
      const le = s.labels.le === '+Inf' ? Infinity : Number(s.labels.le);
      const m = (buckets[v] ??= new Map());
      m.set(le, (m.get(le) ?? 0) + s.value);
      if (hasRoute) {
        const rm = ((routeBuckets[route] ??= {})[v] ??= new Map());
        rm.set(le, (rm.get(le) ?? 0) + s.value);
      }
    } else if ((s.name === DURATION_SUM || s.name === DURATION_COUNT) && svc) {
      const into = s.name === DURATION_SUM ? durSum : durCount;
      into[svc] = (into[svc] ?? 0) + s.value;
    }
  }
  prune(hops);
  prune(routes);
  const latency: Record<string, Histogram> = {};
  for (const [v, m] of Object.entries(buckets)) {
    const h = toHistogram(m);
    if (h) latency[v] = h;
  }
  const routeLatency: Record<string, Record<string, Histogram>> = {};
  for (const [route, byVersion] of Object.entries(routeBuckets)) {
    for (const [v, m] of Object.entries(byVersion)) {
      const h = toHistogram(m);
      if (h) (routeLatency[route] ??= {})[v] = h;
    }
  }
  const hopLatencyMs: Record<string, number> = {};
  for (const [svc, n] of Object.entries(durCount)) if (n > 0) hopLatencyMs[svc] = durSum[svc] / n;
  const missing: string[] = [];
  if (!sawRequests) missing.push(`${REQUESTS}{reporter="destination"}`);
  if (!sawBuckets)
    missing.push(`${DURATION_BUCKET}{reporter="destination",destination_service_name="${service}"}`);
  const ev: MetricEvidence = { source, hops, latency, missing };
  // Only when the label exists: without it the rule says the load cannot be told apart, rather than "0 tagged".
  if (opts.loadRunId && sawLoadLabel) ev.tagged = tagged;
  if (Object.keys(routes).length) ev.routes = routes;
  if (Object.keys(routeLatency).length) ev.routeLatency = routeLatency;
  if (Object.keys(hopLatencyMs).length) ev.hopLatencyMs = hopLatencyMs;
  return ev;
}
