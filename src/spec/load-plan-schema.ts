import { DURATION_PATTERN } from '../util/units.js';

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
    { type: 'number', minimum: 0, description: 'milliseconds' },
  ],
};
const headers: Schema = { type: 'object', additionalProperties: { type: ['string', 'number'] } };
const statusPattern = { type: 'string', pattern: '^[1-5]([0-9]{2}|xx|[0-9]x)$', description: 'a status such as 200, 2xx or 30x' };
const closed = (properties: Record<string, Schema>, required: string[] = []): Schema => ({
  type: 'object',
  additionalProperties: false,
  properties,
  required,
});

export const assertionSchema = closed({
  /** Accepted response codes; anything else is a failed sample. */
  status: { oneOf: [{ type: 'integer', minimum: 100, maximum: 599 }, statusPattern, { type: 'array', minItems: 1, items: { oneOf: [{ type: 'integer', minimum: 100, maximum: 599 }, statusPattern] } }] },
  /** Substrings the response body must contain. */
  contains: { oneOf: [{ type: 'string', minLength: 1 }, { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } }] },
  /** Slowest acceptable response. */
  max_time: duration,
});

export const cloverPlanSchema: Schema = closed(
  {
    load_spec: closed(
      {
        num_threads: { type: 'integer', minimum: 1 },
        /** Iterations of the url_list per thread; 0 and -1 loop until `duration` ends. */
        loops: { type: 'integer', minimum: -1 },
        ramp_time: { type: 'number', minimum: 0 },
        /** Hard cut-off in seconds (JMeter's scheduler duration). */
        duration: { type: 'number', minimum: 0 },
        throughput: { type: 'number', exclusiveMinimum: 0, description: 'target requests per second, all threads together' },
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
          url: { type: 'string', minLength: 1, pattern: '^(https?://)?[^\\s/:?#]+(:\\d+)?([/?#]\\S*)?$', description: 'a URL such as http://host:port/path?query' },
          method: { enum: ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS'] },
          'user-agent': { type: 'string' },
          headers,
          body: { oneOf: [{ type: 'string' }, { type: 'object' }, { type: 'array' }] },
          think_time: duration,
          timeout: duration,
          assert: assertionSchema,
        },
        ['url'],
      ),
    },
    /** Pass/fail criteria, Taurus-like: "p95 > 250ms", "error-rate > 1% for 10s", "count(url1) != expected". */
    criteria: { type: 'array', items: { type: 'string', minLength: 3 } },
  },
  ['load_spec', 'url_list'],
);
