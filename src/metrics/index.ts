/**
 * Metrics providers by source, and the mesh telemetry they are read with. A second backend is a file
 * implementing `MetricsProvider` plus one line in PROVIDERS.
 */
import type { PlatformEndpoints } from '../services/platform.js';
import type { ReleaseSpec } from '../spec/types.js';
import { parseDurationMs } from '../util/units.js';
import { prometheusProvider } from './prometheus.js';
import { scrapeProvider } from './scrape.js';
import { ISTIO_TELEMETRY, versionOfLabels, type MeshTelemetry } from './telemetry.js';
import type { CounterQuery, MetricsProvider, MetricsWindow } from './types.js';

export { ISTIO_TELEMETRY, versionOfLabels, type MeshTelemetry } from './telemetry.js';
export { increases } from './prometheus.js';
export type {
  CounterIncrease,
  CounterQuery,
  CoveredInterval,
  MetricsProvider,
  MetricsWindow,
} from './types.js';

type Gate = ReleaseSpec['gate'];
const PROVIDERS: Record<
  string,
  (gate: Gate, endpoints: PlatformEndpoints, t: MeshTelemetry) => MetricsProvider | undefined
> = {
  prometheus: (gate, endpoints) => {
    const url = gate?.metrics?.url ?? endpoints.prometheus;
    return url
      ? prometheusProvider(url, {
          scrapeIntervalMs: gate?.metrics?.scrapeInterval
            ? parseDurationMs(gate.metrics.scrapeInterval)
            : undefined,
        })
      : undefined;
  },
  scrape: (gate, endpoints, t) => {
    const targets = gate?.metrics?.targets ?? endpoints.scrapeTargets ?? [];
    return targets.length ? scrapeProvider(targets, [t.requests, t.duration.family]) : undefined;
  },
};

/** The source a spec and platform give: gate.metrics.source, else Prometheus when the platform has one, else a scrape. */
export function metricsSourceOf(gate: Gate, endpoints: PlatformEndpoints): string | undefined {
  return (
    gate?.metrics?.source ??
    (endpoints.prometheus ? 'prometheus' : endpoints.scrapeTargets?.length ? 'scrape' : undefined)
  );
}

/** The provider for a spec on a platform, or undefined when nothing is configured to read metrics from. */
export function metricsProviderFor(
  gate: Gate,
  endpoints: PlatformEndpoints,
  telemetry: MeshTelemetry = ISTIO_TELEMETRY,
): MetricsProvider | undefined {
  const source = metricsSourceOf(gate, endpoints);
  return source ? PROVIDERS[source]?.(gate, endpoints, telemetry) : undefined;
}

/**
 * The counters the gate's metric evidence is made of, as queries of a mesh's telemetry: requests at every
 * hop by version, code, load run and route; the gated service's duration histogram by version and route;
 * the duration sums and counts per service (mean latency per hop).
 */
export function gateQueries(service: string, t: MeshTelemetry = ISTIO_TELEMETRY): CounterQuery[] {
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
  opts: { settle?: boolean; telemetry?: MeshTelemetry } = {},
): Promise<Record<string, number>> {
  const t = opts.telemetry ?? ISTIO_TELEMETRY;
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
