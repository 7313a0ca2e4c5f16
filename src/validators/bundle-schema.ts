/**
 * JSON Schema of the evidence bundle, checked when a bundle is read back (`gate --replay`), so a damaged or
 * hand-edited bundle is exit 2 naming the field instead of a TypeError or a verdict on nonsense. Objects stay
 * open (unknown keys are allowed) so bundles written by newer or older clover-cd still replay; every field
 * the rules read is typed and bounded. Rule bodies are checked against the release spec's rule schemas.
 */
import { METRICS_SOURCES } from '../contract/index.js';
import type { MeshTelemetry } from '../metrics/index.js';
import { gateRuleSchemas } from '../spec/schema.js';
import type { InputProblem } from '../util/errors.js';
import { joinPath, validateAgainst } from '../util/schema.js';
import { OTHER_SOURCES } from './types.js';

type Schema = Record<string, unknown>;

const count: Schema = { type: 'integer', minimum: 0 };
const text: Schema = { type: 'string' };
const map = (values: Schema): Schema => ({ type: 'object', additionalProperties: values });
const obj = (properties: Record<string, Schema>, required: string[] = []): Schema => ({
  type: 'object',
  properties,
  required,
});
const epochMs: Schema = {
  type: 'number',
  minimum: 0,
  maximum: 8.64e15,
  description: 'a time in epoch milliseconds',
};

const name: Schema = { type: 'string', minLength: 1 };
// Every label the rules read from a bundle's telemetry description.
const TELEMETRY_LABELS = [
  'service',
  'version',
  'workload',
  'code',
  'reporter',
  'load',
  'route',
] as const satisfies ReadonlyArray<keyof MeshTelemetry['labels']>;

const versionCounts = obj({ requests: count, errors: count, codes: map(count) }, ['requests', 'errors']);
const histogram = obj(
  {
    // Infinity (the +Inf bucket) is written as null by JSON.stringify.
    le: { type: 'array', items: { type: ['number', 'null'] } },
    counts: { type: 'array', items: { type: 'number', minimum: 0 } },
  },
  ['le', 'counts'],
);
const lookCounts = obj({ requests: count, errors: count }, ['requests', 'errors']);
const look = obj(
  {
    at: epochMs,
    versions: map(lookCounts),
    routes: map(map(lookCounts)),
    latency: map(histogram),
    routeLatency: map(map(histogram)),
  },
  ['at', 'versions'],
);
const queryResult = obj(
  { query: text, value: { type: ['number', 'null'] }, series: count, raw: text, error: text },
  ['query', 'value'],
);
const metricRule = obj(
  {
    at: epochMs,
    window: text,
    versions: map(obj({ value: queryResult, samples: queryResult }, ['value'])),
    error: text,
  },
  ['at', 'versions'],
);
const probability: Schema = { type: 'number', exclusiveMinimum: 0, maximum: 0.5 };
const labelCounts = obj({ count, errors: count, codes: map(count), userAgents: map(count) }, [
  'count',
  'errors',
]);

export const bundleSchema: Schema = obj(
  {
    kind: { const: 'clover-cd/evidence' },
    version: { const: 1 },
    createdAt: text,
    release: { type: 'string', minLength: 1 },
    service: obj(
      {
        name: { type: 'string', minLength: 1 },
        namespace: text,
        stable: { type: 'string', minLength: 1 },
        candidate: { type: 'string', minLength: 1 },
      },
      ['name', 'stable', 'candidate'],
    ),
    window: obj({ start: epochMs, end: epochMs }, ['start', 'end']),
    telemetry: obj(
      {
        mesh: name,
        requests: name,
        duration: obj({ family: name, bucket: name, sum: name, count: name }, [
          'family',
          'bucket',
          'sum',
          'count',
        ]),
        labels: obj(Object.fromEntries(TELEMETRY_LABELS.map((k) => [k, name])), [...TELEMETRY_LABELS]),
        serverReporter: name,
      },
      ['mesh', 'requests', 'duration', 'labels', 'serverReporter'],
    ),
    candidateWeight: { type: 'number', minimum: 0, maximum: 100 },
    minSamples: { type: 'integer', minimum: 1 },
    alpha: probability,
    beta: probability,
    alphaShare: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
    alphaNote: { type: 'string', maxLength: 1000 },
    maxRoutes: { type: 'integer', minimum: 1 },
    minRouteSamples: { type: 'integer', minimum: 1 },
    minWindowMs: { type: 'number', minimum: 0 },
    sequence: { type: 'array', items: look },
    rules: {
      type: 'array',
      minItems: 1,
      items: { type: 'object', minProperties: 1, maxProperties: 1 },
      description: 'the gate rules the bundle is judged by (at least one)',
    },
    requireL4: { type: 'boolean' },
    sources: {
      type: 'array',
      items: obj(
        {
          name: { enum: [...METRICS_SOURCES, ...OTHER_SOURCES] },
          url: text,
          status: { enum: ['ok', 'down', 'not-configured'] },
          error: text,
          queries: {
            type: 'array',
            items: obj({ query: text, at: epochMs, ok: { type: 'boolean' }, result: text }),
          },
        },
        ['name', 'status'],
      ),
    },
    evidence: obj({
      metrics: obj(
        {
          source: { enum: [...METRICS_SOURCES] },
          hops: map(map(versionCounts)),
          latency: map(histogram),
          missing: { type: 'array', items: text },
        },
        ['source', 'hops', 'latency'],
      ),
      traces: obj(
        {
          traces: count,
          spans: count,
          rootSpans: count,
          rootMeanMs: { type: 'number', minimum: 0 },
          requests: {
            type: 'array',
            items: obj({ url: text, status: text, userAgent: text, count }, ['count']),
          },
          versions: map(versionCounts),
          durations: map({ type: 'array', items: { type: 'number', minimum: 0 } }),
          hops: map(count),
        },
        ['rootSpans', 'versions', 'durations', 'hops'],
      ),
      load: obj(
        {
          engine: text,
          sent: count,
          errors: count,
          expected: count,
          codes: map(count),
          userAgents: map(count),
          labels: map(labelCounts),
        },
        ['sent', 'errors'],
      ),
      l4: obj(
        {
          source: { const: 'clovisor' },
          window: obj({ start: epochMs, end: epochMs }, ['start', 'end']),
          versions: map(
            obj(
              {
                connections: count,
                resetConnections: count,
                retransmits: count,
                segmentsOut: count,
                connectFailures: count,
              },
              ['connections'],
            ),
          ),
          complete: { type: 'boolean' },
        },
        ['versions'],
      ),
      metricRules: map(metricRule),
    }),
    verdict: obj(
      {
        outcome: { enum: ['pass', 'fail', 'inconclusive', 'error'] },
        summary: text,
        results: { type: 'array', items: { type: 'object' } },
      },
      ['outcome'],
    ),
  },
  ['kind', 'version', 'release', 'service', 'window', 'minSamples', 'rules', 'sources', 'evidence'],
);

const iso = (ms: number) =>
  Number.isFinite(new Date(ms).getTime()) ? new Date(ms).toISOString() : String(ms);

/** Every problem of a parsed bundle: the schema, each rule's body, and a window that ends after it starts. */
export function bundleProblems(doc: unknown, file?: string): InputProblem[] {
  const problems = validateAgainst(bundleSchema, doc, file);
  const b = doc as { window?: { start?: unknown; end?: unknown }; rules?: unknown };
  const w = b && typeof b === 'object' ? b.window : undefined;
  if (w && typeof w.start === 'number' && typeof w.end === 'number' && w.end <= w.start) {
    problems.push({
      file,
      path: 'window.end',
      message: `expected a window end after its start (${iso(w.start)}), found ${iso(w.end)}`,
    });
  }
  if (b && typeof b === 'object' && Array.isArray(b.rules)) {
    // A bundle that cannot be judged is invalid input, not an inconclusive release: the split rule needs the weight.
    const split = b.rules.findIndex((r) => r && typeof r === 'object' && 'split' in r);
    if (split >= 0 && (b as { candidateWeight?: unknown }).candidateWeight === undefined) {
      problems.push({
        file,
        path: 'candidateWeight',
        message: `required field is missing: rules[${split}] (split) compares the observed split with the configured candidate weight (gate --weight when the bundle was written)`,
      });
    }
    b.rules.forEach((rule, i) => {
      if (!rule || typeof rule !== 'object' || Array.isArray(rule) || Object.keys(rule).length !== 1) return; // reported by the schema
      const [kind] = Object.keys(rule);
      const schema = gateRuleSchemas[kind];
      const path = joinPath(`rules[${i}]`, kind);
      if (!schema)
        problems.push({
          file,
          path,
          message: `unknown rule "${kind}"; expected one of ${Object.keys(gateRuleSchemas).join(', ')}`,
        });
      else
        problems.push(...validateAgainst(schema, (rule as Record<string, unknown>)[kind] ?? {}, file, path));
    });
  }
  return problems;
}
