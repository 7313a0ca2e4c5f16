/**
 * Folds Jaeger traces, one at a time, into the gate's trace evidence and Clover's visibility figures.
 * Only aggregates are kept (counts per distinct value, durations of the gated service), never traces.
 */
import type { JaegerSpan, JaegerTrace } from '../services/jaeger.js';
import { tagValue } from '../services/jaeger.js';
import type { VisibilityData } from '../services/redis.js';
import type { TraceEvidence, VersionCounts } from './types.js';

const bump = (m: Record<string, number>, k: string, n = 1) => (m[k] = (m[k] ?? 0) + n);

/** "http-lb.default.svc.cluster.local" and "http-lb.default" name the service http-lb. */
export const serviceOf = (name: string) => name.split('.')[0];

export interface TraceFolder {
  add(trace: JaegerTrace): void;
  evidence(): TraceEvidence;
  visibility(tracingServices: string[], metricCount: number): VisibilityData;
}

/**
 * `service`/versions: the gated service and its versions; a span belongs to a version when its node_id
 * names the workload `<service>-<version>` (Istio's sidecar id) or it carries a `version` tag.
 */
export function createTraceFolder(opts: {
  service: string;
  versions: string[];
  window: { start: number; end: number };
  hops?: string[];
  loadRunId?: string;
}): TraceFolder {
  const ev: TraceEvidence = {
    traces: 0,
    spans: 0,
    rootSpans: 0,
    requests: [],
    versions: {},
    durations: {},
    hops: {},
  };
  const requests = new Map<string, { url: string; status: string; userAgent: string; count: number }>();
  const vis = {
    urls: {} as Record<string, number>,
    userAgents: {} as Record<string, number>,
    nodeIds: {} as Record<string, number>,
    statusCodes: {} as Record<string, number>,
    statusUrl: {} as Record<string, number>,
    nodeUrl: {} as Record<string, number>,
    ops: new Set<string>(),
    clusters: new Set<string>(),
    rt: {} as Record<string, { min: number; sum: number; max: number; n: number }>,
  };
  const versionPatterns = opts.versions.map(
    (v) => [v, new RegExp(`(^|[~/.])${escape(opts.service)}-${escape(v)}([-.~]|$)`)] as const,
  );
  const startUs = opts.window.start * 1000;
  const endUs = opts.window.end * 1000;
  const hopNames = new Set([...(opts.hops ?? []), opts.service]);
  let sawLoadTag = false;
  let taggedRoots = 0;
  let rootMs = 0;
  const routes: Record<string, Record<string, VersionCounts>> = {};

  const versionOf = (span: JaegerSpan, node: string | undefined) => {
    const tagged = tagValue(span, 'version');
    if (tagged && opts.versions.includes(tagged)) return tagged;
    if (node) for (const [v, re] of versionPatterns) if (re.test(node)) return v;
    return undefined;
  };

  return {
    add(trace) {
      const root = trace.spans.find(
        (s) => !s.references?.some((r) => r.refType === 'CHILD_OF' || r.refType === 'FOLLOWS_FROM'),
      );
      // A trace belongs to the window its root request started in.
      if (root && (root.startTime < startUs || root.startTime >= endUs)) return;
      ev.traces++;
      for (const span of trace.spans) {
        ev.spans++;
        const svc = serviceOf(trace.processes?.[span.processID ?? '']?.serviceName ?? '');
        const node = tagValue(span, 'node_id');
        const url = tagValue(span, 'http.url');
        const status = tagValue(span, 'http.status_code');
        const ua = tagValue(span, 'user_agent');
        const cluster = tagValue(span, 'upstream_cluster') ?? 'none';
        const durMs = span.duration / 1000;
        // Clover's visibility figures are per span.
        if (url !== undefined) bump(vis.urls, url);
        if (ua !== undefined) bump(vis.userAgents, ua);
        if (node !== undefined) bump(vis.nodeIds, node);
        if (status !== undefined) bump(vis.statusCodes, status);
        if (status !== undefined && url !== undefined) bump(vis.statusUrl, `${status}, ${url}`);
        if (node !== undefined && url !== undefined) bump(vis.nodeUrl, `${node}, ${url}`);
        vis.ops.add(span.operationName);
        vis.clusters.add(cluster);
        const inbound = cluster === 'none' || cluster.includes('inbound');
        if (svc && inbound) {
          const r = (vis.rt[svc] ??= { min: Infinity, sum: 0, max: -Infinity, n: 0 });
          r.min = Math.min(r.min, durMs);
          r.max = Math.max(r.max, durMs);
          r.sum += durMs;
          r.n++;
        }
        if (svc && hopNames.has(svc) && inbound) bump(ev.hops, svc);
        if (svc === opts.service && inbound) {
          const v = versionOf(span, node);
          if (v) {
            const c: VersionCounts = (ev.versions[v] ??= { requests: 0, errors: 0, codes: {} });
            c.requests++;
            const code = status ?? (tagValue(span, 'error') === 'true' ? '500' : '0');
            bump(c.codes, code);
            if (Number(code) >= 500 || code === '0') c.errors++;
            (ev.durations[v] ??= []).push(durMs);
            if (url !== undefined) {
              const r: VersionCounts = ((routes[pathOf(url)] ??= {})[v] ??= {
                requests: 0,
                errors: 0,
                codes: {},
              });
              r.requests++;
              bump(r.codes, code);
              if (Number(code) >= 500 || code === '0') r.errors++;
            }
          }
        }
        if (span === root) {
          ev.rootSpans++;
          rootMs += durMs;
          const tag = tagValue(span, 'clover_cd_load');
          if (tag !== undefined) sawLoadTag = true;
          if (opts.loadRunId && tag === opts.loadRunId) taggedRoots++;
          const samplerType = tagValue(span, 'sampler.type');
          if (samplerType !== undefined && !ev.sampling)
            ev.sampling = { type: samplerType, param: Number(tagValue(span, 'sampler.param') ?? NaN) };
          const key = `${url ?? ''}\u0000${status ?? ''}\u0000${ua ?? ''}`;
          const g = requests.get(key);
          if (g) g.count++;
          else requests.set(key, { url: url ?? '', status: status ?? '', userAgent: ua ?? '', count: 1 });
        }
      }
    },
    evidence() {
      const out: TraceEvidence = {
        ...ev,
        requests: [...requests.values()].sort((a, b) => b.count - a.count),
      };
      if (Object.keys(routes).length) out.routes = routes;
      if (ev.rootSpans) out.rootMeanMs = +(rootMs / ev.rootSpans).toFixed(3);
      // Only when spans carry the tag at all (Istio tracing custom_tags): otherwise 0 would read as "all lost".
      if (opts.loadRunId && sawLoadTag) out.taggedRootSpans = taggedRoots;
      return out;
    },
    visibility(tracingServices, metricCount) {
      const responseTimes: VisibilityData['responseTimes'] = {};
      for (const [svc, r] of Object.entries(vis.rt))
        responseTimes[svc] = { min: r.min, avg: r.sum / r.n, max: r.max };
      return {
        traceCount: ev.traces,
        spanCount: ev.spans,
        metricCount,
        services: [...new Set([...hopNames, ...Object.keys(vis.rt)])].sort(),
        tracingServices,
        responseTimes,
        urls: vis.urls,
        userAgents: vis.userAgents,
        nodeIds: vis.nodeIds,
        statusCodes: vis.statusCodes,
        statusUrl: vis.statusUrl,
        nodeUrl: vis.nodeUrl,
        operationNames: [...vis.ops].sort(),
        upstreamClusters: [...vis.clusters].sort(),
      };
    },
  };
}

function pathOf(url: string): string {
  try {
    return new URL(url).pathname;
  } catch {
    const q = url.indexOf('?');
    return q < 0 ? url : url.slice(0, q);
  }
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
