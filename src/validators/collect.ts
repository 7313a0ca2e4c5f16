/**
 * Evidence collection for one window: metrics (the mesh telemetry through a metrics provider), traces (Jaeger, paged by
 * time), the load's own results, and Clover's visibility keys written to Redis. A source that is down is
 * recorded as down with its error (the verdict turns that into exit 4); it never stops the bundle.
 */
import { CloverError } from '../util/errors.js';
import { createJaegerClient, forEachTrace } from '../services/jaeger.js';
import type { ReleaseSpec } from '../spec/types.js';
import { gateQueries, selectMetrics, type CoveredInterval } from '../metrics/index.js';
import { gateSettings } from './sequential/looks.js';
import { metricEvidence } from './metrics.js';
import { collectMetricRules, metricRulesOf } from './metric-rule.js';
import { createTraceFolder } from './traces.js';
import type { EvidenceBundle, GateContext, LoadEvidence, LoadRunResultLike, SourceRecord } from './types.js';

export { DEFAULT_MIN_SAMPLES } from './sample-size.js';

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

function conservationHops(spec: ReleaseSpec): string[] | undefined {
  for (const r of spec.gate?.rules ?? [])
    if ('conservation' in r && r.conservation.hops) return r.conservation.hops;
  return undefined;
}

export function loadEvidence(load: LoadRunResultLike): LoadEvidence {
  const t = load.summary.total;
  const labels: LoadEvidence['labels'] = {};
  for (const [name, s] of Object.entries(load.summary.labels))
    labels[name] = {
      count: s.count,
      errors: s.errors,
      codes: { ...s.codes },
      userAgents: { ...s.userAgents },
    };
  return {
    engine: load.engine,
    runId: load.runId,
    startedAt: load.startedAt,
    endedAt: load.endedAt,
    sent: t.count,
    errors: t.errors,
    expected: load.expected,
    codes: { ...t.codes },
    userAgents: { ...t.userAgents },
    labels,
  };
}

export { increases } from '../metrics/index.js';

export async function collectEvidence(spec: ReleaseSpec, ctx: GateContext): Promise<EvidenceBundle> {
  const sources: SourceRecord[] = [];
  const bundle: EvidenceBundle = {
    kind: 'clover-cd/evidence',
    version: 1,
    createdAt: new Date().toISOString(),
    release: spec.metadata.name,
    service: {
      name: spec.service.name,
      namespace: spec.service.namespace,
      stable: spec.service.stable,
      candidate: spec.service.candidate,
    },
    window: { ...ctx.window },
    telemetry: ctx.telemetry,
    candidateWeight: ctx.candidateWeight,
    plannedSamples: ctx.plannedSamples,
    ...gateSettings(spec),
    minWindowMs: ctx.minWindowMs,
    sequence: ctx.sequence,
    requireL4: ctx.requireL4,
    sources,
    evidence: {},
  };
  const gate = spec.gate;
  // Metrics: the mesh's telemetry (which series, which labels) read from its provider (Prometheus, a scrape).
  const {
    source: metricsSource,
    provider,
    problem,
  } = selectMetrics(gate, ctx.endpoints, ctx.telemetry, spec.service.name);
  if (metricsSource) {
    const rec: SourceRecord = { name: metricsSource, url: provider?.url, status: 'ok', queries: [] };
    sources.push(rec);
    if (!provider) Object.assign(rec, { status: 'not-configured', error: problem });
    else if (
      metricsSource === 'scrape' &&
      !ctx.metricsWindow?.baseline &&
      !ctx.metricsWindow?.increase &&
      !ctx.metricsWindow?.problem
    ) {
      rec.queries.push({
        query: 'snapshot at window start',
        at: Date.now(),
        ok: false,
        result: 'no snapshot was taken at window start; a direct scrape can only measure a window it watched',
      });
    } else {
      try {
        let interval: CoveredInterval | undefined;
        const inc = await provider.increases(
          { ...ctx.metricsWindow, start: ctx.window.start },
          ctx.window.end,
          gateQueries(spec.service.name, ctx.telemetry),
          { log: rec.queries, onNote: ctx.onNote, onInterval: (i) => (interval = i) },
        );
        const evidence = metricEvidence(metricsSource, inc, spec.service.name, ctx.telemetry, {
          loadRunId: ctx.load?.runId,
        });
        if (interval)
          evidence.interval = {
            start: Math.round(interval.start),
            end: Math.round(interval.end),
            uncertaintyMs: +interval.uncertaintyMs.toFixed(1),
          };
        bundle.evidence.metrics =
          provider.scrapeIntervalMs !== undefined
            ? { ...evidence, scrapeIntervalMs: provider.scrapeIntervalMs }
            : evidence;
        // Metric rules read the same Prometheus at the window's end, once it has scraped past it (above).
        if (metricsSource === 'prometheus' && metricRulesOf(spec).length)
          bundle.evidence.metricRules = await collectMetricRules(
            spec,
            provider.url,
            ctx.window.end,
            ctx.window.end - ctx.window.start,
            ctx.telemetry,
            rec.queries,
          );
      } catch (err) {
        Object.assign(rec, { status: 'down', error: message(err) });
      }
    }
  }

  const jaegerUrl = gate?.tracing?.url ?? ctx.endpoints.jaeger;
  let folder: ReturnType<typeof createTraceFolder> | undefined;
  let tracingServices: string[] = [];
  if (jaegerUrl) {
    const rec: SourceRecord = { name: 'jaeger', url: jaegerUrl, status: 'ok', queries: [] };
    sources.push(rec);
    const hops = conservationHops(spec);
    try {
      const jaeger = createJaegerClient(jaegerUrl, { log: rec.queries });
      tracingServices = await jaeger.services();
      // The same interval as the metric counts: the instants their snapshots were actually taken.
      const covered = bundle.evidence.metrics?.interval;
      const span =
        covered && covered.end > covered.start ? { start: covered.start, end: covered.end } : ctx.window;
      folder = createTraceFolder({
        service: spec.service.name,
        versions: [spec.service.stable, spec.service.candidate],
        window: span,
        hops,
        loadRunId: ctx.load?.runId,
      });
      // Query the first hop (the root of every request) so lost requests still show as root spans.
      const root = hops?.[0] ?? spec.service.name;
      const stats = await forEachTrace(jaeger, { service: root, startMs: span.start, endMs: span.end }, (t) =>
        folder!.add(t),
      );
      bundle.evidence.traces = folder.evidence();
      if (stats.incomplete) bundle.evidence.traces.incomplete = stats.incomplete;
    } catch (err) {
      Object.assign(rec, { status: 'down', error: message(err) });
      folder = undefined;
    }
  }

  if (ctx.load) {
    sources.push({
      name: 'load',
      status: 'ok',
      queries: [
        {
          query: `load results (${ctx.load.engine})`,
          at: ctx.load.endedAt,
          ok: true,
          result: `${ctx.load.summary.total.count} requests`,
        },
      ],
    });
    bundle.evidence.load = loadEvidence(ctx.load);
  }

  if ((spec.gate?.rules ?? []).some((r) => 'l4' in r)) {
    const rec: SourceRecord = { name: 'clovisor', url: ctx.clovisorUrl, status: 'ok', queries: [] };
    sources.push(rec);
    try {
      const versions = [spec.service.stable, spec.service.candidate];
      // Loaded only for an l4 rule (and Redis below only with a Redis URL): a gate pod spends ~20% less time loading modules.
      const { collectL4Evidence } = await import('../clovisor/index.js');
      bundle.evidence.l4 = await collectL4Evidence(ctx.window, versions, {
        url: ctx.clovisorUrl,
        service: spec.service.name,
      });
      rec.queries.push({
        query: `L4 sessions of ${versions.join(', ')}`,
        at: Date.now(),
        ok: true,
        result: bundle.evidence.l4.complete ? 'complete' : 'events lost',
      });
    } catch (err) {
      // No tracer (no privilege, no eBPF, not started) is missing L4 evidence, not a broken gate: the l4
      // rule then decides from `required` whether that blocks.
      Object.assign(rec, { status: 'not-configured', error: message(err) });
    }
  }

  if (ctx.redisUrl && folder) {
    const rec: SourceRecord = { name: 'redis', url: ctx.redisUrl, status: 'ok', queries: [] };
    sources.push(rec);
    try {
      const { openVisibilityStore } = await import('../services/redis.js');
      const store = await openVisibilityStore(ctx.redisUrl);
      try {
        const metricCount = Object.values(bundle.evidence.metrics?.hops ?? {}).reduce(
          (s, h) => s + Object.keys(h).length,
          0,
        );
        await store.write(folder.visibility(tracingServices, metricCount));
        rec.queries.push({
          query: "write Clover's visibility keys",
          at: Date.now(),
          ok: true,
          result: 'written',
        });
      } finally {
        await store.close();
      }
    } catch (err) {
      Object.assign(rec, { status: 'down', error: err instanceof CloverError ? err.message : message(err) });
    }
  }
  return bundle;
}
