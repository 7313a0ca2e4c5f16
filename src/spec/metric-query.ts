/**
 * The `metric` gate rule's query side: PromQL templates with the release's variables (Handlebars in strict
 * mode, so an unknown variable is an error rather than an empty string), named templates in the spec's
 * top-level `metrics:` section, and the checks `spec validate` runs on them: every template renders with
 * the spec's values and parses with Prometheus' own PromQL grammar (@prometheus-io/lezer-promql).
 */
import { parser as promqlParser } from '@prometheus-io/lezer-promql';
import type { InputProblem } from '../util/errors.js';
import { handlebars } from '../util/lazy-packages.js';
import { didYouMean } from '../util/suggest.js';
import { parseDurationMs } from '../util/units.js';
import { closed, shortName, type Schema } from './schema-parts.js';
import type { MetricRuleBody, MetricTemplate, ReleaseSpec } from './types.js';

/** The variables a query template may use (README "Metric rules"). */
export const METRIC_VARIABLES = [
  'service',
  'namespace',
  'version',
  'subset',
  'stable',
  'candidate',
  'window',
  'windowSeconds',
  'selector',
  'stableSelector',
  'candidateSelector',
] as const;
export type MetricVariables = Record<(typeof METRIC_VARIABLES)[number], string | number>;

const query: Schema = {
  type: 'string',
  minLength: 1,
  maxLength: 8192,
  description: 'a PromQL query template such as sum(increase(x_total{version="{{version}}"}[{{window}}]))',
};
const finite: Schema = { type: 'number' };

export const metricTemplatesSchema: Schema = {
  type: 'object',
  propertyNames: shortName,
  additionalProperties: closed({ query, samples: query }, ['query']),
  description: 'named query templates a metric rule refers to with template: <name>',
};

export const metricRuleSchema: Schema = closed({
  name: shortName,
  query,
  template: shortName,
  samples: query,
  minSamples: { type: 'number', minimum: 0 },
  max: finite,
  min: finite,
  compare: closed({
    ratio: { type: 'number', minimum: 1, description: 'candidate / stable at most this (1.2: 20% more)' },
    difference: { type: 'number', minimum: 0, description: 'candidate − stable at most this' },
    direction: {
      enum: ['increase', 'decrease'],
      description: 'which way is worse (default increase: a higher candidate value fails)',
    },
  }),
});

/** A string value as it may stand inside a PromQL double-quoted string. */
export function promqlString(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** The Prometheus duration of a window: whole seconds rounded up (a range covering the window), in minutes or hours when exact. */
export function promDuration(ms: number): string {
  const s = Math.max(1, Math.ceil(ms / 1000));
  return s % 3600 === 0 ? `${s / 3600}h` : s % 60 === 0 ? `${s / 60}m` : `${s}s`;
}

const compiled = new Map<string, HandlebarsTemplateDelegate>();

/** Render a query template; throws the Handlebars error (a syntax error, or an unknown variable) as is. */
export function renderMetricQuery(template: string, vars: MetricVariables): string {
  let t = compiled.get(template);
  if (!t) {
    t = handlebars().compile(template, { strict: true, noEscape: true });
    compiled.set(template, t);
  }
  return t(vars).trim();
}

/** The query (and sample-count query) a metric rule runs: its own, or its template's. */
export interface ResolvedMetricRule {
  name: string;
  query: string;
  samples?: string;
  /** Where the query was written, for messages (`metrics.checkout-failures.query`). */
  queryPath: string;
  samplesPath?: string;
}

/** The name a metric rule's evidence is kept under: its name, else its template's. */
export const metricRuleName = (body: MetricRuleBody): string => body.name ?? body.template ?? 'metric';

export function resolveMetricRule(
  templates: Record<string, MetricTemplate> | undefined,
  body: MetricRuleBody,
  path: string,
): ResolvedMetricRule | undefined {
  const t = body.template !== undefined ? templates?.[body.template] : undefined;
  const query = body.query ?? t?.query;
  if (query === undefined) return undefined;
  const samples = body.samples ?? t?.samples;
  const from = (field: 'query' | 'samples') =>
    body[field] !== undefined ? `${path}.${field}` : `metrics.${body.template}.${field}`;
  return {
    name: metricRuleName(body),
    query,
    samples,
    queryPath: from('query'),
    samplesPath: samples === undefined ? undefined : from('samples'),
  };
}

// What the grammar expected where it stopped, by the node the error sits in.
const EXPECTED: Record<string, string> = {
  FunctionCallBody: "an argument, ',' or ')' closing the call",
  GroupingLabels: "a label name, ',' or ')' closing the label list",
  LabelMatchers: "a label matcher such as version=\"v2\", ',' or '}'",
  BinaryExpr: 'an expression after the operator',
  MatrixSelector: "a duration such as 5m and ']'",
  SubqueryExpr: "a duration such as 5m:1m and ']'",
  ParenExpr: "')'",
};

/**
 * Where a PromQL query stops parsing (1-based line and column) and what was expected there, or undefined.
 * `what` names the query in the message ("the rendered query").
 */
export function promqlSyntaxProblem(q: string, what = 'the query'): string | undefined {
  let at: { from: number; parent: string } | undefined;
  promqlParser.parse(q).iterate({
    enter(n) {
      if (at || !n.type.isError) return at ? false : undefined;
      at = { from: n.from, parent: n.node.parent?.name ?? 'PromQL' };
      return false;
    },
  });
  if (!at) return undefined;
  const before = q.slice(0, at.from);
  const line = before.split('\n').length;
  const column = at.from - before.lastIndexOf('\n');
  const rest = q.slice(at.from).trimStart();
  const found = rest ? `"${rest.slice(0, 12)}${rest.length > 12 ? '…' : ''}"` : 'the end of the query';
  const fn = /([A-Za-z_][A-Za-z0-9_]*)\s*$/.exec(before)?.[1];
  const expected =
    fn && rest.startsWith('(') && at.parent !== 'FunctionCallBody'
      ? `a known PromQL function, found "${fn}("`
      : `${EXPECTED[at.parent] ?? 'a PromQL expression'}, found ${found}`;
  return `PromQL syntax error at ${line > 1 ? `line ${line}, ` : ''}column ${column} of ${what}: expected ${expected} (${what}: ${q})`;
}

/** Values that stand in for a window's at validate: the spec's own, and its strategy's window. */
function placeholderVariables(spec: ReleaseSpec): MetricVariables {
  const s = spec.strategy;
  const w = s.canary?.window ?? s.blueGreen?.previewWindow ?? s.abTest?.window ?? '60s';
  const ms = parseDurationMs(w);
  const sel = (v: string) => `version="${promqlString(v)}"`;
  const { name, namespace, stable, candidate } = spec.service;
  return {
    service: promqlString(name),
    namespace: promqlString(namespace),
    version: promqlString(candidate),
    subset: promqlString(candidate),
    stable: promqlString(stable),
    candidate: promqlString(candidate),
    window: promDuration(ms),
    windowSeconds: Math.round(ms / 1000),
    selector: sel(candidate),
    stableSelector: sel(stable),
    candidateSelector: sel(candidate),
  };
}

/** Why a template cannot be used: it does not render (syntax, unknown variable) or the PromQL does not parse. */
function templateProblem(template: string, vars: MetricVariables): string | undefined {
  let rendered: string;
  try {
    rendered = renderMetricQuery(template, vars);
  } catch (err) {
    const msg = (err instanceof Error ? err.message : String(err)).replace(/\s+/g, ' ');
    const unknown = /^"([^"]+)" not defined/.exec(msg)?.[1];
    if (unknown) {
      const hint = didYouMean(unknown, METRIC_VARIABLES);
      return `unknown variable "${unknown}"${hint ? ` (did you mean "${hint}"?)` : ''}; variables are: ${METRIC_VARIABLES.join(', ')}`;
    }
    return `the template does not render: ${msg}`;
  }
  return promqlSyntaxProblem(rendered, 'the rendered query');
}

/**
 * Problems of the spec's metric rules and templates: a template that is not defined, a rule with neither a
 * query nor a template (or both), two rules of one name (their evidence is kept by name), a query that does
 * not render or parse. Called once the spec passed its schema.
 */
export function metricRuleProblems(spec: ReleaseSpec, file?: string): InputProblem[] {
  const problems: InputProblem[] = [];
  const vars = placeholderVariables(spec);
  const templates = spec.metrics ?? {};
  const check = (template: string, path: string) => {
    const message = templateProblem(template, vars);
    if (message) problems.push({ file, path, message });
  };
  for (const [name, t] of Object.entries(templates)) {
    check(t.query, `metrics.${name}.query`);
    if (t.samples !== undefined) check(t.samples, `metrics.${name}.samples`);
  }
  const names = new Map<string, number>();
  (spec.gate?.rules ?? []).forEach((rule, i) => {
    if (!('metric' in rule)) return;
    const body = rule.metric;
    const path = `gate.rules[${i}].metric`;
    if ((body.query === undefined) === (body.template === undefined))
      problems.push({
        file,
        path,
        message: 'give either "query" (a PromQL template) or "template" (a name from metrics:), not both',
      });
    if (body.template !== undefined && !templates[body.template]) {
      const known = Object.keys(templates);
      const hint = didYouMean(body.template, known);
      problems.push({
        file,
        path: `${path}.template`,
        message: `unknown template "${body.template}"${hint ? ` (did you mean "${hint}"?)` : ''}; ${known.length ? `templates are: ${known.join(', ')}` : 'the spec has no metrics: section'}`,
      });
    }
    if (body.max === undefined && body.min === undefined && body.compare === undefined)
      problems.push({ file, path, message: 'give what the value is judged against: max, min or compare' });
    if (body.compare && body.compare.ratio === undefined && body.compare.difference === undefined)
      problems.push({ file, path: `${path}.compare`, message: 'give ratio (e.g. 1.2) or difference' });
    if (body.min !== undefined && body.max !== undefined && body.min > body.max)
      problems.push({ file, path: `${path}.min`, message: `min ${body.min} is above max ${body.max}` });
    const name = metricRuleName(body);
    if (names.has(name))
      problems.push({
        file,
        path: `${path}.name`,
        message: `gate.rules[${names.get(name)}] is already named "${name}": give each metric rule its own name (its evidence is kept by name)`,
      });
    names.set(name, i);
    if (spec.gate?.metrics?.source === 'scrape')
      problems.push({
        file,
        path,
        message:
          'a metric rule runs its query on Prometheus, and gate.metrics.source is scrape: set gate.metrics.source: prometheus (with url) or remove the rule',
      });
    const resolved = resolveMetricRule(templates, body, path);
    if (body.minSamples !== undefined && resolved && resolved.samples === undefined)
      problems.push({
        file,
        path: `${path}.minSamples`,
        message:
          "minSamples needs a samples query (the rule's or its template's) counting what the value rests on",
      });
    if (body.query !== undefined) check(body.query, `${path}.query`);
    if (body.samples !== undefined) check(body.samples, `${path}.samples`);
  });
  return problems;
}
