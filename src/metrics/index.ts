/**
 * Metrics providers by source, and the mesh telemetry they are read with. A second backend is a file
 * implementing `MetricsProvider`, one registration in PROVIDERS and its name in `contract`'s METRICS_SOURCES
 * (the spec's gate.metrics.source enum).
 */
import { METRICS_SOURCES, type MetricsSource } from '../contract/index.js';
import type { PlatformEndpoints } from '../services/platform.js';
import type { ReleaseSpec } from '../spec/types.js';
import { parseDurationMs } from '../util/units.js';
import { prometheusProvider } from './prometheus.js';
import { scrapeProvider } from './scrape.js';
import { versionOfLabels, type MeshTelemetry } from './telemetry.js';
import type { CounterQuery, MetricsProvider, MetricsWindow } from './types.js';

export { ISTIO_TELEMETRY, seriesSelector, versionOfLabels, type MeshTelemetry } from './telemetry.js';
export { increases } from './prometheus.js';
export type {
  CounterIncrease,
  CounterQuery,
  CoveredInterval,
  MetricsProvider,
  MetricsWindow,
} from './types.js';

type Gate = ReleaseSpec['gate'];

interface ProviderRegistration {
  /** Whether the platform offers this source (the first that does is the default, in METRICS_SOURCES order). */
  offered: (endpoints: PlatformEndpoints) => boolean;
  make: (
    gate: Gate,
    endpoints: PlatformEndpoints,
    t: MeshTelemetry,
    service: string,
  ) => MetricsProvider | undefined;
  /** Why `make` gave nothing: what to set. */
  missing: string;
}

const PROVIDERS: Record<MetricsSource, ProviderRegistration> = {
  prometheus: {
    offered: (endpoints) => !!endpoints.prometheus,
    make: (gate, endpoints) => {
      const url = gate?.metrics?.url ?? endpoints.prometheus;
      return url
        ? prometheusProvider(url, {
            scrapeIntervalMs: gate?.metrics?.scrapeInterval
              ? parseDurationMs(gate.metrics.scrapeInterval)
              : undefined,
          })
        : undefined;
    },
    missing: 'no Prometheus URL (gate.metrics.url or the platform)',
  },
  scrape: {
    offered: (endpoints) => !!endpoints.scrapeTargets?.length,
    make: (gate, endpoints, t, service) => {
      const targets = gate?.metrics?.targets ?? endpoints.scrapeTargets ?? [];
      return targets.length ? scrapeProvider(targets, gateQueries(service, t)) : undefined;
    },
    missing: 'no endpoints to scrape (gate.metrics.targets or the platform)',
  },
};

/** Where a release's metric evidence comes from: the one place the source is chosen. */
export interface MetricsSelection {
  /** undefined: neither the spec nor the platform names a source. */
  source?: MetricsSource;
  /** undefined with a source: the source has nothing to read from (`problem` says what to set). */
  provider?: MetricsProvider;
  problem?: string;
}

/**
 * The metrics source of a spec on a platform — gate.metrics.source, else the first the platform offers
 * (Prometheus, then a direct scrape of its endpoints) — and its provider, reading the mesh's telemetry of the
 * gated `service` (a direct scrape keeps only what `gateQueries` of it read).
 */
export function selectMetrics(
  gate: Gate,
  endpoints: PlatformEndpoints,
  telemetry: MeshTelemetry,
  service: string,
): MetricsSelection {
  const source = gate?.metrics?.source ?? METRICS_SOURCES.find((s) => PROVIDERS[s].offered(endpoints));
  if (!source) return {};
  const provider = PROVIDERS[source].make(gate, endpoints, telemetry, service);
  return provider ? { source, provider } : { source, problem: PROVIDERS[source].missing };
}

/**
 * The counters the gate's metric evidence is made of, as queries of a mesh's telemetry: requests at every
 * hop by version, code, load run and route; the gated service's duration histogram by version and route;
 * the duration sums and counts per service (mean latency per hop).
 */
export function gateQueries(service: string, t: MeshTelemetry): CounterQuery[] {
  const l = t.labels;
  const server = { [l.reporter]: t.serverReporter };
  return [
    { series: t.requests, match: server, by: [l.service, l.workload, l.version, l.code, l.load, l.route] },
    {
      series: t.duration.bucket,
      match: { ...server, [l.service]: service },
      by: [l.service, l.workload, l.version, l.route, 'le'],
    },
    { series: t.duration.sum, match: server, by: [l.service] },
    { series: t.duration.count, match: server, by: [l.service] },
  ];
}

/**
 * Requests per version at `service` over a window, from server-side reports. `settle: false` reads what
 * the backend has now (a window still open), instead of waiting for a scrape past `end`.
 */
export async function requestsByVersion(
  provider: MetricsProvider,
  w: MetricsWindow,
  end: number,
  service: string,
  t: MeshTelemetry,
  opts: { settle?: boolean } = {},
): Promise<Record<string, number>> {
  const l = t.labels;
  const inc = await provider.increases(
    w,
    end,
    [
      {
        series: t.requests,
        match: { [l.reporter]: t.serverReporter, [l.service]: service },
        by: [l.service, l.workload, l.version],
      },
    ],
    { settle: opts.settle },
  );
  const out: Record<string, number> = {};
  for (const s of inc) {
    const v = versionOfLabels(s.labels, service, t);
    out[v] = (out[v] ?? 0) + Math.round(s.value);
  }
  return out;
}
