/**
 * Evidence collection for one window: metrics (Prometheus or a direct scrape), traces (Jaeger, paged by
 * time), the load's own results, and Clover's visibility keys written to Redis. A source that is down is
 * recorded as down with its error (the verdict turns that into exit 4); it never stops the bundle.
 */
import { collectL4Evidence } from '../clovisor/index.js';
import { CloverError } from '../util/errors.js';
import { createJaegerClient, forEachTrace } from '../services/jaeger.js';
import { createPrometheusClient } from '../services/prometheus.js';
import type { QueryLog } from '../services/query-log.js';
import { openVisibilityStore } from '../services/redis.js';
import { counterDeltas, scrapeTargets } from '../services/scrape.js';
import { sleep } from '../util/retry.js';
import { parseDurationMs, parsePercent } from '../util/units.js';
import type { ReleaseSpec } from '../spec/types.js';
import { DURATION_BUCKET, DURATION_COUNT, DURATION_SUM, LOAD_LABEL, REQUESTS, ROUTE_LABEL, metricEvidence, type CounterIncrease } from './metrics.js';
import { DEFAULT_MIN_SAMPLES } from './sample-size.js';
import { createTraceFolder } from './traces.js';
import type { EvidenceBundle, GateContext, LoadEvidence, LoadRunResultLike, MetricEvidence, SourceRecord } from './types.js';

export { DEFAULT_MIN_SAMPLES } from './sample-size.js';

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

function conservationHops(spec: ReleaseSpec): string[] | undefined {
  for (const r of spec.gate?.rules ?? []) if ('conservation' in r && r.conservation.hops) return r.conservation.hops;
  return undefined;
}

export function loadEvidence(load: LoadRunResultLike): LoadEvidence {
  const t = load.summary.total;
  const labels: LoadEvidence['labels'] = {};
  for (const [name, s] of Object.entries(load.summary.labels)) labels[name] = { count: s.count, errors: s.errors, codes: { ...s.codes }, userAgents: { ...s.userAgents } };
  return { engine: load.engine, runId: load.runId, startedAt: load.startedAt, endedAt: load.endedAt, sent: t.count, errors: t.errors, expected: load.expected, codes: { ...t.codes }, userAgents: { ...t.userAgents }, labels };
}

/** Counter increases between two instant queries: a series absent at start began in the window. */
export function increases(start: Array<{ labels: Record<string, string>; value: number }>, end: Array<{ labels: Record<string, string>; value: number }>, name: string): CounterIncrease[] {
  const key = (l: Record<string, string>) => JSON.stringify(Object.keys(l).sort().map((k) => [k, l[k]]));
  const before = new Map(start.map((s) => [key(s.labels), s.value]));
  return end.map((s) => {
    const b = before.get(key(s.labels)) ?? 0;
    return { name, labels: s.labels, value: s.value >= b ? s.value - b : s.value };
  });
}

async function prometheusEvidence(url: string, spec: ReleaseSpec, ctx: GateContext, log: QueryLog): Promise<MetricEvidence> {
  const prom = createPrometheusClient(url, { log });
  const scrapeMs = spec.gate?.metrics?.scrapeInterval ? parseDurationMs(spec.gate.metrics.scrapeInterval) : 15_000;
  // The end values must come from a scrape after the window closed, or its last requests are missed.
  const endEval = ctx.window.end + scrapeMs;
  const wait = endEval + 250 - Date.now();
  if (wait > 0) {
    ctx.onNote?.(`waiting ${Math.ceil(wait / 1000)}s for Prometheus to scrape past the window end`);
    await sleep(Math.min(wait, 3 * scrapeMs));
  }
  const at = Math.min(Date.now(), endEval);
  const svc = spec.service.name;
  // clover_cd_load and request_path exist when the cluster has the Telemetry resource (deploy/sdc/telemetry.yaml);
  // without them these sums are the same as before.
  const reqQ = `sum by (destination_service_name, destination_workload, destination_version, response_code, ${LOAD_LABEL}, ${ROUTE_LABEL}) (${REQUESTS}{reporter="destination"})`;
  const durQ = `sum by (destination_workload, destination_version, ${ROUTE_LABEL}, le) (${DURATION_BUCKET}{reporter="destination",destination_service_name="${svc}"})`;
  const sumQ = `sum by (destination_service_name) (${DURATION_SUM}{reporter="destination"})`;
  const countQ = `sum by (destination_service_name) (${DURATION_COUNT}{reporter="destination"})`;
  const inc: CounterIncrease[] = [];
  for (const [q, name] of [[reqQ, REQUESTS], [durQ, DURATION_BUCKET], [sumQ, DURATION_SUM], [countQ, DURATION_COUNT]] as const) {
    const found = increases(await prom.instant(q, ctx.window.start), await prom.instant(q, at), name);
    inc.push(...(name === DURATION_BUCKET ? found.map((s) => ({ ...s, labels: { ...s.labels, destination_service_name: svc } })) : found));
  }
  return { ...metricEvidence('prometheus', inc, svc, { loadRunId: ctx.load?.runId }), scrapeIntervalMs: scrapeMs };
}

export async function collectEvidence(spec: ReleaseSpec, ctx: GateContext): Promise<EvidenceBundle> {
  const sources: SourceRecord[] = [];
  const bundle: EvidenceBundle = {
    kind: 'clover-cd/evidence',
    version: 1,
    createdAt: new Date().toISOString(),
    release: spec.metadata.name,
    service: { name: spec.service.name, namespace: spec.service.namespace, stable: spec.service.stable, candidate: spec.service.candidate },
    window: { ...ctx.window },
    candidateWeight: ctx.candidateWeight,
    minSamples: spec.gate?.minSamples ?? DEFAULT_MIN_SAMPLES,
    plannedSamples: ctx.plannedSamples,
    traceSampling: spec.gate?.traceSampling === undefined ? undefined : parsePercent(spec.gate.traceSampling),
    rules: spec.gate?.rules ?? [],
    requireL4: ctx.requireL4,
    sources,
    evidence: {},
  };
  const gate = spec.gate;
  const metricsSource = gate?.metrics?.source ?? (ctx.endpoints.prometheus ? 'prometheus' : ctx.endpoints.scrapeTargets?.length ? 'scrape' : undefined);

  if (metricsSource === 'prometheus') {
    const url = gate?.metrics?.url ?? ctx.endpoints.prometheus;
    const rec: SourceRecord = { name: 'prometheus', url, status: 'ok', queries: [] };
    sources.push(rec);
    if (!url) Object.assign(rec, { status: 'not-configured', error: 'no Prometheus URL (gate.metrics.url or the platform)' });
    else
      try {
        bundle.evidence.metrics = await prometheusEvidence(url, spec, ctx, rec.queries);
      } catch (err) {
        Object.assign(rec, { status: 'down', error: message(err) });
      }
  } else if (metricsSource === 'scrape') {
    const targets = gate?.metrics?.targets ?? ctx.endpoints.scrapeTargets ?? [];
    const rec: SourceRecord = { name: 'scrape', url: targets.join(' '), status: 'ok', queries: [] };
    sources.push(rec);
    if (!ctx.scrapeBaseline) {
      rec.queries.push({ query: 'snapshot at window start', at: Date.now(), ok: false, result: 'no snapshot was taken at window start; a direct scrape can only measure a window it watched' });
    } else {
      try {
        const keep = (n: string) => n === REQUESTS || n === 'istio_request_duration_milliseconds';
        const after = await scrapeTargets(targets, { keep, log: rec.queries });
        bundle.evidence.metrics = metricEvidence('scrape', counterDeltas(ctx.scrapeBaseline, after), spec.service.name, { loadRunId: ctx.load?.runId });
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
      folder = createTraceFolder({ service: spec.service.name, versions: [spec.service.stable, spec.service.candidate], window: ctx.window, hops, loadRunId: ctx.load?.runId });
      // Query the first hop (the root of every request) so lost requests still show as root spans.
      const root = hops?.[0] ?? spec.service.name;
      await forEachTrace(jaeger, { service: root, startMs: ctx.window.start, endMs: ctx.window.end }, (t) => folder!.add(t));
      bundle.evidence.traces = folder.evidence();
    } catch (err) {
      Object.assign(rec, { status: 'down', error: message(err) });
      folder = undefined;
    }
  }

  if (ctx.load) {
    sources.push({ name: 'load', status: 'ok', queries: [{ query: `load results (${ctx.load.engine})`, at: ctx.load.endedAt, ok: true, result: `${ctx.load.summary.total.count} requests` }] });
    bundle.evidence.load = loadEvidence(ctx.load);
  }

  if ((spec.gate?.rules ?? []).some((r) => 'l4' in r)) {
    const rec: SourceRecord = { name: 'clovisor', url: ctx.clovisorUrl, status: 'ok', queries: [] };
    sources.push(rec);
    try {
      const versions = [spec.service.stable, spec.service.candidate];
      bundle.evidence.l4 = await collectL4Evidence(ctx.window, versions, { url: ctx.clovisorUrl, service: spec.service.name });
      rec.queries.push({ query: `L4 sessions of ${versions.join(', ')}`, at: Date.now(), ok: true, result: bundle.evidence.l4.complete ? 'complete' : 'events lost' });
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
      const store = await openVisibilityStore(ctx.redisUrl);
      try {
        const metricCount = Object.values(bundle.evidence.metrics?.hops ?? {}).reduce((s, h) => s + Object.keys(h).length, 0);
        await store.write(folder.visibility(tracingServices, metricCount));
        rec.queries.push({ query: "write Clover's visibility keys", at: Date.now(), ok: true, result: 'written' });
      } finally {
        await store.close();
      }
    } catch (err) {
      Object.assign(rec, { status: 'down', error: err instanceof CloverError ? err.message : message(err) });
    }
  }
  return bundle;
}
