/**
 * The `metric` rule: a user's PromQL query, rendered with the window's variables, run as an instant query at
 * the window's end (once per version when it is compared with the stable one), kept in the bundle as sent with
 * what came back, and judged from the bundle alone (so `gate --replay` needs no Prometheus). A fixed threshold
 * is not a statistical test: it is decided once, on the window the decision closed, and spends no alpha.
 * No data is never a pass: no series, NaN, or fewer samples than minSamples is inconclusive, saying why.
 */
import type { MeshTelemetry } from '../metrics/index.js';
import {
  createPrometheusClient,
  PrometheusQueryError,
  type PrometheusClient,
  type PromSample,
} from '../services/prometheus.js';
import type { QueryLog } from '../services/query-log.js';
import {
  metricRuleName,
  promDuration,
  promqlString,
  renderMetricQuery,
  resolveMetricRule,
  type MetricVariables,
} from '../spec/metric-query.js';
import type { MetricRuleBody, ReleaseSpec } from '../spec/types.js';
import type { Body, Partial } from './rules-common.js';
import type { EvidenceBundle, MetricQueryResult, MetricRuleEvidence } from './types.js';

/** The variables of one version's query over a window (strings escaped for a PromQL "…" string). */
export function metricVariables(
  spec: ReleaseSpec,
  version: string,
  windowMs: number,
  t: MeshTelemetry,
): MetricVariables {
  const { name, namespace, stable, candidate } = spec.service;
  const selector = (v: string) =>
    `${t.labels.service}="${promqlString(name)}",${t.labels.version}="${promqlString(v)}"`;
  return {
    service: promqlString(name),
    namespace: promqlString(namespace),
    version: promqlString(version),
    subset: promqlString(version),
    stable: promqlString(stable),
    candidate: promqlString(candidate),
    window: promDuration(windowMs),
    windowSeconds: Math.max(1, Math.ceil(windowMs / 1000)),
    selector: selector(version),
    stableSelector: selector(stable),
    candidateSelector: selector(candidate),
  };
}

/** One value from an instant result: several series are an error naming the query, none (or NaN) no data. */
export function singleValue(query: string, samples: PromSample[]): MetricQueryResult {
  if (samples.length > 1) {
    const shown = samples
      .slice(0, 3)
      .map((s) => JSON.stringify(s.labels))
      .join(', ');
    return {
      query,
      value: null,
      series: samples.length,
      error: `the query returned ${samples.length} series (${shown}${samples.length > 3 ? ', …' : ''}); a metric rule judges one value: aggregate them, e.g. sum(…) or max(…)`,
    };
  }
  const v = samples[0]?.value;
  if (v === undefined) return { query, value: null, series: 0 };
  // JSON keeps no NaN or Infinity: such a value is kept as text, so a replay judges what the gate judged.
  if (!Number.isFinite(v))
    return { query, value: null, series: 1, raw: Number.isNaN(v) ? 'NaN' : v > 0 ? '+Inf' : '-Inf' };
  return { query, value: v, series: 1 };
}

export const metricRulesOf = (spec: Pick<ReleaseSpec, 'gate'>) =>
  (spec.gate?.rules ?? [])
    .map((rule, index) => ({ rule, index }))
    .filter((r): r is { rule: { metric: MetricRuleBody }; index: number } => 'metric' in r.rule);

/** The versions a rule's query runs for: the candidate, and the stable one when the rule compares them. */
const versionsOf = (spec: ReleaseSpec, body: MetricRuleBody) =>
  body.compare ? [spec.service.candidate, spec.service.stable] : [spec.service.candidate];

/** The queries one metric rule sends, per version (rendered); throws when a template does not render. */
export function renderedQueries(
  spec: ReleaseSpec,
  body: MetricRuleBody,
  windowMs: number,
  telemetry: MeshTelemetry,
): Array<{ version: string; value: string; samples?: string }> {
  const resolved = resolveMetricRule(spec.metrics, body, 'metric');
  if (!resolved) throw new Error(`template "${body.template}" is not defined under metrics:`);
  return versionsOf(spec, body).map((version) => {
    const vars = metricVariables(spec, version, windowMs, telemetry);
    const samples = resolved.samples === undefined ? undefined : renderMetricQuery(resolved.samples, vars);
    return { version, value: renderMetricQuery(resolved.query, vars), samples };
  });
}

/** An instant query's one value; a query Prometheus refuses is kept with its message, a Prometheus down throws. */
export async function runMetricQuery(
  prom: PrometheusClient,
  query: string,
  at: number,
): Promise<MetricQueryResult> {
  try {
    return singleValue(query, await prom.instant(query, at));
  } catch (err) {
    if (err instanceof PrometheusQueryError) return { query, value: null, series: 0, error: err.message };
    throw err;
  }
}

/**
 * Run every metric rule's queries at `at` over a window of `windowMs` against Prometheus. A Prometheus that
 * cannot be reached throws (the caller records the source as down).
 */
export async function collectMetricRules(
  spec: ReleaseSpec,
  prometheusUrl: string,
  at: number,
  windowMs: number,
  telemetry: MeshTelemetry,
  log?: QueryLog,
): Promise<Record<string, MetricRuleEvidence>> {
  const prom = createPrometheusClient(prometheusUrl, { log });
  const out: Record<string, MetricRuleEvidence> = {};
  for (const { rule } of metricRulesOf(spec)) {
    const ev: MetricRuleEvidence = { at, window: promDuration(windowMs), versions: {} };
    out[metricRuleName(rule.metric)] = ev;
    let queries: ReturnType<typeof renderedQueries>;
    try {
      queries = renderedQueries(spec, rule.metric, windowMs, telemetry);
    } catch (err) {
      ev.error = `the query does not render: ${err instanceof Error ? err.message : String(err)}`;
      continue;
    }
    for (const q of queries) {
      const value = await runMetricQuery(prom, q.value, at);
      ev.versions[q.version] =
        q.samples === undefined ? { value } : { value, samples: await runMetricQuery(prom, q.samples, at) };
    }
  }
  return out;
}

const num = (x: number) => String(+x.toPrecision(6));

function expectation(r: MetricRuleBody, stable: string): string {
  const parts: string[] = [];
  if (r.min !== undefined && r.max !== undefined) parts.push(`in [${r.min}, ${r.max}]`);
  else if (r.max !== undefined) parts.push(`≤ ${r.max}`);
  else if (r.min !== undefined) parts.push(`≥ ${r.min}`);
  const c = r.compare;
  if (c) {
    const up = (c.direction ?? 'increase') === 'increase';
    if (c.ratio !== undefined) parts.push(up ? `≤ ${stable} × ${c.ratio}` : `≥ ${stable} / ${c.ratio}`);
    if (c.difference !== undefined)
      parts.push(up ? `≤ ${stable} + ${c.difference}` : `≥ ${stable} − ${c.difference}`);
  }
  if (r.minSamples !== undefined) parts.push(`on ≥ ${r.minSamples} samples`);
  return parts.join(', ');
}

/** Why a version's value cannot be judged (an error, no data, too few samples), or undefined. */
function unusable(
  version: string,
  got: MetricRuleEvidence['versions'][string] | undefined,
  r: MetricRuleBody,
  ev: MetricRuleEvidence,
): Pick<Partial, 'outcome' | 'reason'> | undefined {
  if (!got) return { outcome: 'inconclusive', reason: `no value was recorded for ${version}` };
  for (const q of [got.value, got.samples]) if (q?.error) return { outcome: 'error', reason: q.error };
  const when = `at ${new Date(ev.at).toISOString()} (window ${ev.window})`;
  if (got.value.value === null)
    return {
      outcome: 'inconclusive',
      reason: `no data for ${version}: ${got.value.raw ?? 'no series'} from ${got.value.query} ${when}`,
    };
  if (r.minSamples !== undefined) {
    const n = got.samples?.value ?? null;
    if (n === null || n < r.minSamples)
      return {
        outcome: 'inconclusive',
        reason: `too few samples for ${version}: ${n === null ? 'no series' : num(n)} < minSamples ${r.minSamples} (${got.samples?.query ?? 'no samples query'} ${when})`,
      };
  }
  return undefined;
}

/** Judge a metric rule from the values its bundle recorded. */
export function metric(b: EvidenceBundle, r: Body<'metric'>): Partial {
  const { candidate, stable } = b.service;
  const expected = expectation(r, stable);
  const name = metricRuleName(r);
  const ev = b.evidence.metricRules?.[name];
  const source = 'prometheus';
  if (!ev) {
    const down = b.sources.find((s) => s.name === 'prometheus' && s.status !== 'ok');
    const from = b.evidence.metrics?.source ?? b.sources.find((s) => s.name === 'scrape')?.name;
    const reason = down
      ? `prometheus is ${down.status}: ${down.error ?? 'unreachable'}`
      : from && from !== 'prometheus'
        ? `a metric rule runs its query on Prometheus; this window's metrics came from ${from} (set gate.metrics.source: prometheus and gate.metrics.url)`
        : `no values were recorded for "${name}" (no Prometheus was configured: gate.metrics.url or the platform's)`;
    return { outcome: 'error', observed: 'n/a', expected, source, reason };
  }
  const c = ev.versions[candidate];
  const query = c?.value.query ?? '';
  const details = { evaluatedAt: ev.at, window: ev.window, versions: ev.versions };
  if (ev.error) return { outcome: 'error', observed: 'n/a', expected, source, reason: ev.error, details };
  const bad =
    unusable(candidate, c, r, ev) ?? (r.compare ? unusable(stable, ev.versions[stable], r, ev) : undefined);
  if (bad) return { ...bad, observed: 'n/a', expected, source: `${source} ${query}`, details };
  const value = c!.value.value!;
  const base = r.compare ? ev.versions[stable]!.value.value! : undefined;
  const failures: string[] = [];
  if (r.max !== undefined && value > r.max) failures.push(`${num(value)} is above max ${r.max}`);
  if (r.min !== undefined && value < r.min) failures.push(`${num(value)} is below min ${r.min}`);
  if (r.compare && base !== undefined) {
    const up = (r.compare.direction ?? 'increase') === 'increase';
    const { ratio, difference } = r.compare;
    if (ratio !== undefined && (up ? value > base * ratio : value * ratio < base))
      failures.push(
        `${num(value)} is ${up ? 'above' : 'below'} ${stable}'s ${num(base)} ${up ? '×' : '/'} ${ratio} (ratio ${base ? num(value / base) : '∞'})`,
      );
    if (difference !== undefined && (up ? value - base > difference : base - value > difference))
      failures.push(
        `${num(value)} differs from ${stable}'s ${num(base)} by ${num(value - base)} (allowed ${up ? '+' : '−'}${difference})`,
      );
  }
  const observed =
    base === undefined
      ? `${candidate} ${num(value)}`
      : `${candidate} ${num(value)}, ${stable} ${num(base)}${base ? ` (ratio ${num(value / base)})` : ''}`;
  return {
    outcome: failures.length ? 'fail' : 'pass',
    observed,
    expected,
    source: `${source} ${query} @ ${new Date(ev.at).toISOString()}`,
    reason: failures.length
      ? `${name}: ${failures.join('; ')}`
      : `${name} within its bounds (a threshold decided at the window's end; no share of gate.alpha)`,
    details,
  };
}
