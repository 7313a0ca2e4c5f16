/**
 * A mesh's request metrics (Istio's istio_requests_total, istio_request_duration_milliseconds, as its
 * telemetry description names them) reduced to the gate's metric evidence: per hop and version request counts
 * by code, and the gated service's latency histogram per version. Input is counter increases over the window,
 * from Prometheus or a direct scrape.
 */
import {
  ISTIO_TELEMETRY,
  seriesSelector,
  versionOfLabels,
  type CounterIncrease,
  type MeshTelemetry,
} from '../metrics/index.js';
import type { MetricsSource } from '../contract/index.js';
import type { EvidenceBundle, Histogram, MetricEvidence, VersionCounts } from './types.js';

export { versionOfLabels, type CounterIncrease };

/** What the bundle's telemetry called things; bundles written before it was recorded read Istio's series. */
export const telemetryOfBundle = (b: Pick<EvidenceBundle, 'telemetry'>): MeshTelemetry =>
  b.telemetry ?? ISTIO_TELEMETRY;

/** A series of the telemetry as messages name it: server-side reports, with the labels given. */
export function serverSeries(
  t: MeshTelemetry,
  series: string,
  labels: Partial<Record<keyof MeshTelemetry['labels'], string>> = {},
): string {
  const match: Record<string, string> = { [t.labels.reporter]: t.serverReporter };
  for (const [k, v] of Object.entries(labels)) match[t.labels[k as keyof MeshTelemetry['labels']]] = v!;
  return seriesSelector(series, match);
}

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
 * Counter increases → metric evidence, read with the mesh's telemetry `t`. With `loadRunId`, series whose load
 * label (Istio: clover_cd_load) is the run id are also counted apart (the load's own requests); series with a
 * route label (Istio: request_path) give the gated service per route.
 */
export function metricEvidence(
  source: MetricsSource,
  increases: CounterIncrease[],
  service: string,
  t: MeshTelemetry,
  opts: { loadRunId?: string } = {},
): MetricEvidence {
  const l = t.labels;
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
    if (s.labels[l.reporter] && s.labels[l.reporter] !== t.serverReporter) continue;
    const svc = s.labels[l.service] ?? '';
    const route = s.labels[l.route];
    const hasRoute = route !== undefined && route !== '' && route !== 'unknown';
    if (s.name === t.requests) {
      sawRequests = true;
      if (!svc) continue;
      const v = versionOfLabels(s.labels, svc, t);
      const n = Math.round(s.value);
      const code = s.labels[l.code] ?? '0';
      addCount((hops[svc] ??= {}), v, code, n);
      if (s.labels[l.load] !== undefined && s.labels[l.load] !== '') sawLoadLabel = true;
      if (opts.loadRunId && s.labels[l.load] === opts.loadRunId) addCount((tagged[svc] ??= {}), v, code, n);
      if (svc === service && hasRoute) addCount((routes[route] ??= {}), v, code, n);
    } else if (s.name === t.duration.bucket && (!svc || svc === service)) {
      sawBuckets = true;
      const v = versionOfLabels(s.labels, service, t);
      const le = s.labels.le === '+Inf' ? Infinity : Number(s.labels.le);
      const m = (buckets[v] ??= new Map());
      m.set(le, (m.get(le) ?? 0) + s.value);
      if (hasRoute) {
        const rm = ((routeBuckets[route] ??= {})[v] ??= new Map());
        rm.set(le, (rm.get(le) ?? 0) + s.value);
      }
    } else if ((s.name === t.duration.sum || s.name === t.duration.count) && svc) {
      const into = s.name === t.duration.sum ? durSum : durCount;
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
  if (!sawRequests) missing.push(serverSeries(t, t.requests));
  if (!sawBuckets) missing.push(serverSeries(t, t.duration.bucket, { service }));
  const ev: MetricEvidence = { source, hops, latency, missing };
  // Only when the label exists: without it the rule says the load cannot be told apart, rather than "0 tagged".
  if (opts.loadRunId && sawLoadLabel) ev.tagged = tagged;
  if (Object.keys(routes).length) ev.routes = routes;
  if (Object.keys(routeLatency).length) ev.routeLatency = routeLatency;
  if (Object.keys(hopLatencyMs).length) ev.hopLatencyMs = hopLatencyMs;
  return ev;
}
