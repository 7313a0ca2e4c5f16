import type { InputProblem } from '../util/errors.js';
import { joinPath, validateAgainst } from '../util/schema.js';
import { DURATION_PATTERN } from '../util/units.js';
import { durationRangeProblem, urlProblem } from './limits.js';

/**
 * Schema of a load plan in Clover's jmeter_testplan.yaml form (load_spec + url_list), accepted unchanged,
 * plus Taurus-like extensions (headers, body, think time, throughput, timeouts, assertions, criteria).
 * The jmeter module owns this file; the release spec validates inline plans against it. Objects are closed
 * so a misspelt key gets a "did you mean".
 */
type Schema = Record<string, unknown>;

const duration: Schema = {
  oneOf: [
    { type: 'string', pattern: DURATION_PATTERN, description: 'a duration such as 500ms, 2s' },
    { type: 'number', minimum: 0, maximum: 86_400_000, description: 'milliseconds' },
  ],
};
const headers: Schema = { type: 'object', additionalProperties: { type: ['string', 'number'] } };
const statusPattern = {
  type: 'string',
  pattern: '^[1-5]([0-9]{2}|xx|[0-9]x)$',
  description: 'a status such as 200, 2xx or 30x',
};
const closed = (properties: Record<string, Schema>, required: string[] = []): Schema => ({
  type: 'object',
  additionalProperties: false,
  properties,
  required,
});

export const assertionSchema = closed({
  /** Accepted response codes; anything else is a failed sample. */
  status: {
    oneOf: [
      { type: 'integer', minimum: 100, maximum: 599 },
      statusPattern,
      {
        type: 'array',
        minItems: 1,
        items: { oneOf: [{ type: 'integer', minimum: 100, maximum: 599 }, statusPattern] },
      },
    ],
  },
  /** Substrings the response body must contain. */
  contains: {
    oneOf: [
      { type: 'string', minLength: 1 },
      { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } },
    ],
  },
  /** Slowest acceptable response. */
  max_time: duration,
});

export const cloverPlanSchema: Schema = closed(
  {
    load_spec: closed(
      {
        num_threads: { type: 'integer', minimum: 1, maximum: 100_000 },
        /** Iterations of the url_list per thread; 0 and -1 loop until `duration` ends. */
        loops: { type: 'integer', minimum: -1, maximum: 1_000_000_000 },
        /** Whole seconds: JMeter reads ThreadGroup.ramp_time and ThreadGroup.duration as integers. */
        ramp_time: { type: 'integer', minimum: 0, maximum: 86_400, description: 'whole seconds' },
        /** Hard cut-off in seconds (JMeter's scheduler duration). */
        duration: { type: 'integer', minimum: 0, maximum: 604_800, description: 'whole seconds' },
        throughput: {
          type: 'number',
          exclusiveMinimum: 0,
          maximum: 1_000_000,
          description: 'target requests per second, all threads together',
        },
        think_time: duration,
        timeout: duration,
        headers,
      },
      ['num_threads'],
    ),
    url_list: {
      type: 'array',
      minItems: 1,
      items: closed(
        {
          name: { type: 'string', minLength: 1 },
          url: {
            type: 'string',
            minLength: 1,
            pattern: '^(https?://)?[^\\s/:?#]+(:\\d+)?([/?#]\\S*)?$',
            description: 'a URL such as http://host:port/path?query',
          },
          method: { enum: ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS'] },
          'user-agent': { type: 'string' },
          headers,
          body: { oneOf: [{ type: 'string' }, { type: 'object' }, { type: 'array' }] },
          think_time: duration,
          timeout: duration,
          assert: assertionSchema,
        },
        // Clover's /jmeter/gen reads name (the sample label) for every URL; method and user-agent have defaults here.
        ['name', 'url'],
      ),
    },
    /** Pass/fail criteria, Taurus-like: "p95 > 250ms", "error-rate > 1% for 10s", "count(url1) != expected". */
    criteria: { type: 'array', items: { type: 'string', minLength: 3 } },
  },
  ['load_spec', 'url_list'],
);

const DAY_MS = 86_400_000;

/**
 * Every problem of a plan document: the schema, then what a pattern cannot say (a port above 65535, a
 * duration of 0 or of years). `base` prefixes paths when the plan is inline in a release spec.
 */
export function planDocumentProblems(doc: unknown, file?: string, base = ''): InputProblem[] {
  const problems = validateAgainst(cloverPlanSchema, doc, file, base);
  if (problems.length) return problems;
  const plan = doc as { load_spec: Record<string, unknown>; url_list: Array<Record<string, unknown>> };
  const at = (path: string) => (base ? joinPath(base, path) : path);
  const durations: Array<[string, unknown]> = [
    ['load_spec.think_time', plan.load_spec.think_time],
    ['load_spec.timeout', plan.load_spec.timeout],
  ];
  plan.url_list.forEach((r, i) => {
    const msg = urlProblem(r.url, true);
    if (msg) problems.push({ file, path: at(`url_list[${i}].url`), message: msg });
    durations.push([`url_list[${i}].think_time`, r.think_time], [`url_list[${i}].timeout`, r.timeout]);
    const a = r.assert as Record<string, unknown> | undefined;
    if (a) durations.push([`url_list[${i}].assert.max_time`, a.max_time]);
  });
  for (const [path, v] of durations) {
    // Think time may be 0; every other duration must be positive. Numbers (ms) are bounded by the schema.
    if (typeof v !== 'string' || (path.endsWith('think_time') && /^0+(\.0+)?(ms|s|m|h)$/.test(v))) continue;
    const msg = durationRangeProblem(v, DAY_MS);
    if (msg) problems.push({ file, path: at(path), message: msg });
  }
  return problems;
}
