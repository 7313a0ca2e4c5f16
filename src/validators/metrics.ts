/**
 * Istio's standard metrics (istio_requests_total, istio_request_duration_milliseconds) reduced to the
 * gate's metric evidence: per hop and version request counts by code, and the gated service's latency
 * histogram per version. Input is counter increases over the window, from Prometheus or a direct scrape.
 */
import type { Histogram, MetricEvidence, VersionCounts } from './types.js';

export const REQUESTS = 'istio_requests_total';
export const DURATION_BUCKET = 'istio_request_duration_milliseconds_bucket';

export interface CounterIncrease {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** destination_version, or the version suffix of destination_workload ("http-lb-v2" → "v2"). */
export function versionOfLabels(labels: Record<string, string>, service: string): string {
  const v = labels.destination_version;
  if (v && v !== 'unknown') return v;
  const w = labels.destination_workload ?? '';
  return w.startsWith(`${service}-`) ? w.slice(service.length + 1) : w || 'unknown';
}

export function metricEvidence(source: 'prometheus' | 'scrape', increases: CounterIncrease[], service: string): MetricEvidence {
  const hops: Record<string, Record<string, VersionCounts>> = {};
  const buckets: Record<string, Map<number, number>> = {};
  let sawRequests = false;
  let sawBuckets = false;
  for (const s of increases) {
    if (s.labels.reporter && s.labels.reporter !== 'destination') continue;
    const svc = s.labels.destination_service_name ?? '';
    if (s.name === REQUESTS) {
      sawRequests = true;
      if (!svc) continue;
      const v = versionOfLabels(s.labels, svc);
      const c = ((hops[svc] ??= {})[v] ??= { requests: 0, errors: 0, codes: {} });
      const n = Math.round(s.value);
      const code = s.labels.response_code ?? '0';
      c.requests += n;
      c.codes[code] = (c.codes[code] ?? 0) + n;
      if (Number(code) >= 500 || code === '0') c.errors += n;
    } else if (s.name === DURATION_BUCKET && (!svc || svc === service)) {
      sawBuckets = true;
      const v = versionOfLabels(s.labels, service);
      const le = s.labels.le === '+Inf' ? Infinity : Number(s.labels.le);
      const m = (buckets[v] ??= new Map());
      m.set(le, (m.get(le) ?? 0) + s.value);
    }
  }
  // Drop versions that saw nothing in the window: a series that exists but did not move is not evidence.
  for (const svc of Object.keys(hops)) {
    for (const v of Object.keys(hops[svc])) if (hops[svc][v].requests === 0) delete hops[svc][v];
    if (!Object.keys(hops[svc]).length) delete hops[svc];
  }
  const latency: Record<string, Histogram> = {};
  for (const [v, m] of Object.entries(buckets)) {
    const le = [...m.keys()].sort((a, b) => a - b);
    const h = { le, counts: le.map((x) => Math.round(m.get(x)!)) };
    if (h.counts[h.counts.length - 1] > 0) latency[v] = h;
  }
  const missing: string[] = [];
  if (!sawRequests) missing.push(`${REQUESTS}{reporter="destination"}`);
  if (!sawBuckets) missing.push(`${DURATION_BUCKET}{reporter="destination",destination_service_name="${service}"}`);
  return { source, hops, latency, missing };
}
