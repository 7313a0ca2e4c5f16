/**
 * What every rule shares: formatting, where a rule's data comes from (metrics first, then traces), why
 * there is none (a source down → error; nothing in the window → inconclusive), and the sample minimum.
 */
import { seriesSelector, type MeshTelemetry } from '../metrics/index.js';
import type { GateRule } from '../spec/types.js';
import { serverSeries, telemetryOfBundle } from './metrics.js';
import { fromHistogram, fromSamples, MIN_TAIL_OBSERVATIONS, type Distribution } from './quantiles.js';
import { DEFAULT_MAX_ROUTES } from './budget.js';
import { histogramTotal } from './stats.js';
import type { EvidenceBundle, Histogram, Outcome, RuleResult, SourceName, VersionCounts } from './types.js';

export type Body<K extends string> = Extract<GateRule, Record<K, unknown>>[K &
  keyof Extract<GateRule, Record<K, unknown>>];

export const pct = (x: number, digits = 2) => (Number.isFinite(x) ? `${+(x * 100).toFixed(digits)}%` : 'n/a');
export const ms = (x: number) => (Number.isFinite(x) ? `${+x.toFixed(1)}ms` : 'n/a');
export const pv = (p: number) => (p < 1e-6 ? '< 1e-6' : p.toPrecision(2));
/** A significance level as a person reads it: 0.0016666 → 0.0017. */
export const pa = (a: number) => String(+a.toPrecision(2));

/** A rule result with everything but the rule text, before it is labelled. */
export type Partial = Omit<RuleResult, 'rule'>;

/** Where a rule's data came from, or why there is none. */
export type Lookup<T> =
  { ok: true; value: T; source: string } | { ok: false; outcome: Outcome; source: string; reason: string };

export const empty: VersionCounts = { requests: 0, errors: 0, codes: {} };

export function sourceDown(b: EvidenceBundle, name: SourceName) {
  return b.sources.find((s) => s.name === name && s.status === 'down');
}

export function noData<T>(b: EvidenceBundle, series: string): Lookup<T> {
  const down = (['prometheus', 'scrape', 'jaeger'] as SourceName[])
    .map((n) => sourceDown(b, n))
    .find(Boolean);
  if (down)
    return {
      ok: false,
      outcome: 'error',
      source: down.name,
      reason: `${down.name} is down: ${down.error ?? 'unreachable'}`,
    };
  const any = b.evidence.metrics?.source ?? (b.evidence.traces ? 'jaeger' : 'none');
  return {
    ok: false,
    outcome: 'inconclusive',
    source: any,
    reason: `no data in the window: expected series ${series}`,
  };
}

const routeHint = (t: MeshTelemetry) =>
  `per-route evidence needs the ${t.labels.route} metric label (Istio Telemetry tagOverrides, see validators/README.md) or spans of the service with http.url`;

/** Per-version request counts at the gated service (or one route of it): metrics first (Istio's own counts), then traces. */
export function versionCounts(b: EvidenceBundle, route?: string): Lookup<Record<string, VersionCounts>> {
  const m = b.evidence.metrics;
  const t = b.evidence.traces;
  const svc = b.service.name;
  const tm = telemetryOfBundle(b);
  if (route !== undefined) {
    const routeSeries = serverSeries(tm, tm.requests, { service: svc, route });
    if (m?.routes?.[route]) return { ok: true, value: m.routes[route], source: `${m.source} ${routeSeries}` };
    if (t?.routes?.[route])
      return { ok: true, value: t.routes[route], source: `jaeger spans of ${svc} at ${route}` };
    if (m?.routes || t?.routes)
      return {
        ok: true,
        value: {},
        source: m?.routes ? `${m.source} ${tm.labels.route}="${route}"` : `jaeger spans at ${route}`,
      };
    const nd = noData<Record<string, VersionCounts>>(b, routeSeries);
    return nd.ok || nd.outcome === 'error'
      ? nd
      : { ...nd, reason: `no evidence for route ${route}: ${routeHint(tm)}` };
  }
  const hop = m?.hops[svc];
  const series = serverSeries(tm, tm.requests, { service: svc });
  if (m && hop) return { ok: true, value: hop, source: `${m.source} ${series}` };
  if (t && Object.keys(t.versions).length)
    return { ok: true, value: t.versions, source: `jaeger spans of ${svc}` };
  return noData(b, `${series} by ${tm.labels.version}`);
}

/** Routes with evidence at the gated service, each with per-version counts. */
export function routeCounts(
  b: EvidenceBundle,
): { routes: Record<string, Record<string, VersionCounts>>; source: string } | undefined {
  const m = b.evidence.metrics;
  if (m?.routes && Object.keys(m.routes).length)
    return {
      routes: m.routes,
      source: `${m.source} ${telemetryOfBundle(b).requests} by ${telemetryOfBundle(b).labels.route}`,
    };
  const t = b.evidence.traces;
  if (t?.routes && Object.keys(t.routes).length)
    return { routes: t.routes, source: `jaeger spans of ${b.service.name} by http.url path` };
  return undefined;
}

/**
 * The routes a perRoute rule judges: the largest first (by the version's requests, then by name), at most
 * bundle.maxRoutes when the bundle carries a budget (each route has a fixed slot of it), all of them before.
 */
export function judgedRoutes<T extends { requests: number }>(
  b: EvidenceBundle,
  routes: Record<string, Record<string, T>>,
  version: string,
): Array<[string, Record<string, T>]> {
  const sorted = Object.entries(routes).sort(
    ([ra, a], [rb, c]) =>
      (c[version]?.requests ?? 0) - (a[version]?.requests ?? 0) || (ra < rb ? -1 : ra > rb ? 1 : 0),
  );
  return b.alpha === undefined ? sorted : sorted.slice(0, b.maxRoutes ?? DEFAULT_MAX_ROUTES);
}

/**
 * Too few samples? `planned`: the candidate must also reach the count its step was sized for
 * (bundle.plannedSamples), so a short window never passes a comparison on luck.
 */
export function minSamplesShort(
  b: EvidenceBundle,
  counts: Record<string, number>,
  planned = true,
): string | undefined {
  const need = (v: string) =>
    planned && v === b.service.candidate ? Math.max(b.minSamples, b.plannedSamples ?? 0) : b.minSamples;
  const short = Object.entries(counts).filter(([v, n]) => n < need(v));
  if (!short.length) return undefined;
  return `too few samples: ${short.map(([v, n]) => `${v} has ${n}${need(v) > b.minSamples ? ` of the ${need(v)} planned` : ''}`).join(', ')} (minSamples ${b.minSamples})`;
}

export interface LatencyData {
  dist: Distribution;
  histogram?: Histogram;
  samples?: number[];
}

/** Enough samples to estimate quantile q (and the gate's minimum)? */
export function enoughFor(b: EvidenceBundle, n: number, q: number): boolean {
  return n >= Math.max(b.minSamples, MIN_TAIL_OBSERVATIONS / Math.min(q, 1 - q));
}

/**
 * Latency of a version: Istio's histogram if present, else trace span durations; per route from the
 * route-labelled histogram. (Comparisons prefer span durations when both versions have enough: latencyPair.)
 */
export function latencyOf(b: EvidenceBundle, version: string, route?: string): Lookup<LatencyData> {
  const m = b.evidence.metrics;
  const tm = telemetryOfBundle(b);
  const service = b.service.name;
  if (route !== undefined) {
    const h = m?.routeLatency?.[route]?.[version];
    if (h && histogramTotal(h) > 0)
      return {
        ok: true,
        value: { dist: fromHistogram(h), histogram: h },
        source: `${m!.source} ${seriesSelector(tm.duration.family, { [tm.labels.route]: route })}`,
      };
    return noData(b, serverSeries(tm, tm.duration.bucket, { service, version, route }));
  }
  const h = m?.latency[version];
  if (h && histogramTotal(h) > 0)
    return {
      ok: true,
      value: { dist: fromHistogram(h), histogram: h },
      source: `${m!.source} ${tm.duration.family}`,
    };
  const s = b.evidence.traces?.durations[version];
  if (s && s.length)
    return { ok: true, value: { dist: fromSamples(s), samples: s }, source: 'jaeger span durations' };
  return noData(b, serverSeries(tm, tm.duration.bucket, { service, version }));
}

/** Baseline and candidate latency from the same source: span durations when both have enough for q, else latencyOf. */
export function latencyPair(
  b: EvidenceBundle,
  q: number,
  route?: string,
): Lookup<{ stable: LatencyData; candidate: LatencyData }> {
  const { stable, candidate } = b.service;
  const t = b.evidence.traces?.durations;
  if (
    route === undefined &&
    t?.[stable] &&
    t[candidate] &&
    enoughFor(b, t[stable].length, q) &&
    enoughFor(b, t[candidate].length, q)
  ) {
    return {
      ok: true,
      value: {
        stable: { dist: fromSamples(t[stable]), samples: t[stable] },
        candidate: { dist: fromSamples(t[candidate]), samples: t[candidate] },
      },
      source: 'jaeger span durations',
    };
  }
  const ls = latencyOf(b, stable, route);
  if (!ls.ok) return ls;
  const lc = latencyOf(b, candidate, route);
  if (!lc.ok) return lc;
  return { ok: true, value: { stable: ls.value, candidate: lc.value }, source: ls.source };
}
