/**
 * Pre-flight of metric rules: each rule's query run once against the real Prometheus over the strategy's
 * window, so a series that does not exist, a query Prometheus refuses (its HTTP 400 message) or one that
 * returns several series is reported per rule before any traffic moves.
 */
import { createPrometheusClient } from '../services/prometheus.js';
import type { MeshTelemetry } from '../metrics/index.js';
import type { ReleaseSpec } from '../spec/types.js';
import { metricRulesOf, renderedQueries, runMetricQuery } from './metric-rule.js';

/** The shape of a preflight check (preflight.ts), declared here so neither file imports the other's types. */
interface Check {
  check: string;
  status: 'ok' | 'missing' | 'invalid' | 'down';
  detail: string;
}

const message = (err: unknown) => (err instanceof Error ? err.message.split('\n')[0] : String(err));

/** One check per metric rule (and version it reads); `prometheusUrl` undefined when the source is not Prometheus. */
export async function metricRuleChecks(
  spec: ReleaseSpec,
  prometheusUrl: string | undefined,
  windowMs: number,
  telemetry: MeshTelemetry,
): Promise<Check[]> {
  const rules = metricRulesOf(spec);
  if (!rules.length) return [];
  if (!prometheusUrl)
    return [
      {
        check: 'metric rules have a Prometheus',
        status: 'invalid',
        detail: `${rules.length} metric rule(s) run their queries on Prometheus, and the metrics source is not Prometheus: set gate.metrics.source: prometheus and gate.metrics.url`,
      },
    ];
  const prom = createPrometheusClient(prometheusUrl, { attempts: 2 });
  const checks: Check[] = [];
  const now = Date.now();
  for (const { rule, index } of rules) {
    const name = `gate.rules[${index}].metric (${rule.metric.name ?? rule.metric.template})`;
    let queries: ReturnType<typeof renderedQueries>;
    try {
      queries = renderedQueries(spec, rule.metric, windowMs, telemetry);
    } catch (err) {
      checks.push({ check: name, status: 'invalid', detail: message(err) });
      continue;
    }
    for (const q of queries.flatMap((x) => [
      { version: x.version, query: x.value, what: 'value' },
      ...(x.samples === undefined ? [] : [{ version: x.version, query: x.samples, what: 'samples' }]),
    ])) {
      const check = `${name} ${q.what} of ${q.version}`;
      try {
        const r = await runMetricQuery(prom, q.query, now);
        checks.push(
          r.error
            ? { check, status: 'invalid', detail: `${r.error} (query: ${r.query})` }
            : r.series === 0
              ? {
                  check,
                  status: 'missing',
                  detail: `no series: ${r.query} (is the metric exported and scraped, with these labels?)`,
                }
              : { check, status: 'ok', detail: `${r.raw ?? r.value} from ${r.query}` },
        );
      } catch (err) {
        return [...checks, { check, status: 'down', detail: message(err) }];
      }
    }
  }
  return checks;
}
