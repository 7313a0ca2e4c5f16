/**
 * Pre-flight, before any traffic moves: do the series and labels the rules need exist, does the scrape
 * interval fit the window, and do both versions report telemetry? The most common reason other tools'
 * gates fail ("no values found") is caught here instead of at the first analysis.
 */
import { createJaegerClient } from '../services/jaeger.js';
import { selectMetrics, versionOfLabels, type MeshTelemetry } from '../metrics/index.js';
import type { PlatformEndpoints } from '../services/platform.js';
import type { ReleaseSpec } from '../spec/types.js';
import { ExitCode } from '../util/errors.js';
import { formatDuration, parseDurationMs } from '../util/units.js';
import { metricRuleChecks } from './metric-preflight.js';

export interface PreflightCheck {
  check: string;
  /** `hint`: worth knowing, never blocking (the exit code ignores it). */
  status: 'ok' | 'missing' | 'invalid' | 'down' | 'hint';
  detail: string;
}

export interface PreflightResult {
  ok: boolean;
  exitCode: number;
  checks: PreflightCheck[];
}

/** Window of the spec's strategy (the analysis window of one step). */
export function strategyWindowMs(spec: ReleaseSpec): number | undefined {
  const s = spec.strategy;
  const w = s.canary?.window ?? s.blueGreen?.previewWindow ?? s.abTest?.window;
  return w ? parseDurationMs(w) : undefined;
}

/**
 * Whether the tracer's sampling rate can be known: from root spans' sampler tags, else gate.traceSampling must say
 * it. Without either, conservation leaves the root spans out whenever they do not match the requests as they are.
 */
async function samplingCheck(
  jaeger: ReturnType<typeof createJaegerClient>,
  service: string,
): Promise<PreflightCheck> {
  const now = Date.now();
  let traces: Awaited<ReturnType<typeof jaeger.search>>;
  try {
    traces = await jaeger.search({ service, startMs: now - 600_000, endMs: now, limit: 20 });
  } catch (err) {
    return {
      check: 'trace sampling rate known',
      status: 'hint',
      detail: `recent traces could not be read (${message(err)}); set gate.traceSampling if the tracer samples`,
    };
  }
  const tagged = traces.some((t) =>
    t.spans.some((s) => !s.references?.length && s.tags?.some((x) => x.key === 'sampler.type')),
  );
  return tagged || !traces.length
    ? {
        check: 'trace sampling rate known',
        status: 'ok',
        detail: traces.length
          ? 'root spans carry sampler.type / sampler.param'
          : 'no recent traces to read it from',
      }
    : {
        check: 'trace sampling rate known',
        status: 'hint',
        detail:
          "root spans carry no sampler tags and gate.traceSampling is not set: if the tracer samples (Istio's default is 1%), set gate.traceSampling, or conservation leaves the root spans out",
      };
}

const message = (err: unknown) => (err instanceof Error ? err.message.split('\n')[0] : String(err));

export async function preflight(
  spec: ReleaseSpec,
  endpoints: PlatformEndpoints,
  telemetry: MeshTelemetry,
): Promise<PreflightResult> {
  const checks: PreflightCheck[] = [];
  const svc = spec.service.name;
  const { stable, candidate } = spec.service;
  const l = telemetry.labels;
  const { source, provider, problem } = selectMetrics(spec.gate, endpoints, telemetry, svc);
  const window = strategyWindowMs(spec);
  const match = { [l.reporter]: telemetry.serverReporter, [l.service]: svc };
  const series = `${telemetry.requests}{${Object.entries(match)
    .map(([k, v]) => `${k}="${v}"`)
    .join(',')}}`;
  let labelSets: Array<Record<string, string>> = [];

  if (provider) {
    try {
      const found = await provider.inspect({ series: telemetry.requests, match });
      labelSets = found.labelSets;
      checks.push({ check: `${provider.system} reachable`, status: 'ok', detail: found.detail });
      const interval = spec.gate?.metrics?.scrapeInterval
        ? parseDurationMs(spec.gate.metrics.scrapeInterval)
        : found.scrapeIntervalMs;
      if (window && interval) {
        // Four scrapes per window (flagger#1123): fewer and a rate or a counter delta rests on one or two points.
        const ok = window >= 4 * interval;
        checks.push({
          check: 'scrape interval fits the window',
          status: ok ? 'ok' : 'invalid',
          detail: `window ${formatDuration(window)} ${ok ? '≥' : '<'} 4 × scrape interval ${formatDuration(interval)}`,
        });
      }
    } catch (err) {
      checks.push({ check: `${provider.system} reachable`, status: 'down', detail: message(err) });
    }
  } else {
    checks.push({
      check: 'metric source configured',
      status: 'missing',
      detail: source ? problem! : 'no Prometheus URL or scrape targets (gate.metrics or the platform)',
    });
  }

  if (checks.every((c) => c.status !== 'down') && provider) {
    checks.push({
      check: `series ${series}`,
      status: labelSets.length ? 'ok' : 'missing',
      detail: labelSets.length
        ? `${labelSets.length} series`
        : 'absent: is the sidecar injected and is telemetry v2 on?',
    });
    if (labelSets.length) {
      for (const label of [l.code, l.version]) {
        const has = labelSets.some(
          (x) => x[label] !== undefined && (label !== l.version || x[label] !== 'unknown'),
        );
        const fallback = label === l.version && labelSets.some((x) => x[l.workload]);
        checks.push({
          check: `label ${label}`,
          status: has || fallback ? 'ok' : 'missing',
          detail: has ? 'present' : fallback ? `absent; versions read from ${l.workload}` : 'absent',
        });
      }
      const versions = new Set(labelSets.map((x) => versionOfLabels(x, svc, telemetry)));
      for (const v of [stable, candidate]) {
        checks.push({
          check: `version ${v} reports telemetry`,
          status: versions.has(v) ? 'ok' : 'missing',
          detail: versions.has(v)
            ? 'series present'
            : `no series with ${l.version}="${v}" (seen: ${[...versions].join(', ') || 'none'})`,
        });
      }
    }
  }

  if (checks.every((c) => c.status !== 'down')) {
    const url = source === 'prometheus' ? provider?.url : undefined;
    checks.push(...(await metricRuleChecks(spec, url, window ?? 60_000, telemetry)));
  }

  const jaegerUrl = spec.gate?.tracing?.url ?? endpoints.jaeger;
  if (jaegerUrl) {
    try {
      const jaeger = createJaegerClient(jaegerUrl, { attempts: 2 });
      const services = (await jaeger.services()).map((s) => s.split('.')[0]);
      checks.push({
        check: `Jaeger knows ${svc}`,
        status: services.includes(svc) ? 'ok' : 'missing',
        detail: services.includes(svc) ? jaegerUrl : `services: ${services.join(', ') || 'none'}`,
      });
      if (spec.gate?.traceSampling === undefined && services.includes(svc))
        checks.push(await samplingCheck(jaeger, svc));
    } catch (err) {
      checks.push({ check: 'Jaeger reachable', status: 'down', detail: message(err) });
    }
  }

  const has = (s: PreflightCheck['status']) => checks.some((c) => c.status === s);
  const exitCode = has('down')
    ? ExitCode.infrastructure
    : has('invalid')
      ? ExitCode.invalid
      : has('missing')
        ? ExitCode.inconclusive
        : ExitCode.ok;
  return { ok: exitCode === 0, exitCode, checks };
}
