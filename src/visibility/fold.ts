/**
 * What one collection cycle adds to Clover's visibility figures: the traces whose first span started in
 * [from, to), folded span by span as Clover's Spark jobs counted them (per span: URL, user agent, node id,
 * status code, status+URL, node+URL, operation, upstream cluster; per service: inbound span durations).
 * Pure: data in, deltas out; the collector writes the deltas to Redis.
 */
import { tagValue, type JaegerTrace } from '../services/jaeger.js';

export interface Durations {
  n: number;
  /** milliseconds */
  sum: number;
  min: number;
  max: number;
}

export interface VisibilityDelta {
  traces: number;
  spans: number;
  urls: Map<string, number>;
  userAgents: Map<string, number>;
  nodeIds: Map<string, number>;
  statusCodes: Set<string>;
  /** "<status_code>, <http_url>" */
  statusUrl: Map<string, number>;
  /** "<node_id>, <http_url>" */
  nodeUrl: Map<string, number>;
  operations: Set<string>;
  upstreamClusters: Set<string>;
  /** Per service (short, dashed name): durations of its inbound spans. */
  durations: Map<string, Durations>;
}

export function emptyDelta(): VisibilityDelta {
  return {
    traces: 0,
    spans: 0,
    urls: new Map(),
    userAgents: new Map(),
    nodeIds: new Map(),
    statusCodes: new Set(),
    statusUrl: new Map(),
    nodeUrl: new Map(),
    operations: new Set(),
    upstreamClusters: new Set(),
    durations: new Map(),
  };
}

const bump = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);

/** The trace's start: its earliest span (the root, when the trace is whole). */
export const traceStartUs = (t: JaegerTrace): number =>
  t.spans.reduce((m, s) => Math.min(m, s.startTime), Infinity);

/**
 * Fold one trace into `d` when it started in [fromMs, toMs) and was not folded yet (`seen`, by trace id);
 * returns whether it was counted.
 */
export function foldTrace(
  d: VisibilityDelta,
  t: JaegerTrace,
  fromMs: number,
  toMs: number,
  seen: Set<string>,
): boolean {
  const start = traceStartUs(t) / 1000;
  if (!(start >= fromMs && start < toMs) || seen.has(t.traceID)) return false;
  seen.add(t.traceID);
  d.traces++;
  for (const span of t.spans) {
    d.spans++;
    const url = tagValue(span, 'http.url');
    const ua = tagValue(span, 'user_agent');
    const node = tagValue(span, 'node_id');
    const status = tagValue(span, 'http.status_code');
    const cluster = tagValue(span, 'upstream_cluster') ?? 'none';
    if (url !== undefined) bump(d.urls, url);
    if (ua !== undefined) bump(d.userAgents, ua);
    if (node !== undefined) bump(d.nodeIds, node);
    if (status !== undefined) d.statusCodes.add(status);
    if (status !== undefined && url !== undefined) bump(d.statusUrl, `${status}, ${url}`);
    if (node !== undefined && url !== undefined) bump(d.nodeUrl, `${node}, ${url}`);
    d.operations.add(span.operationName);
    d.upstreamClusters.add(cluster);
    // Clover: avg/min/max of the service's spans whose upstream cluster is inbound (the server side of a hop).
    const service = (t.processes?.[span.processID ?? '']?.serviceName ?? '').split('.')[0];
    if (service && cluster.includes('inbound')) {
      const ms = span.duration / 1000;
      const r = d.durations.get(service);
      if (r) {
        r.n++;
        r.sum += ms;
        r.min = Math.min(r.min, ms);
        r.max = Math.max(r.max, ms);
      } else d.durations.set(service, { n: 1, sum: ms, min: ms, max: ms });
    }
  }
  return true;
}

/** Running durations merged with a cycle's. */
export function mergeDurations(a: Durations | undefined, b: Durations): Durations {
  if (!a || a.n === 0) return { ...b };
  return { n: a.n + b.n, sum: a.sum + b.sum, min: Math.min(a.min, b.min), max: Math.max(a.max, b.max) };
}
