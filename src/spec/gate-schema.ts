import { METRICS_SOURCES } from '../contract/index.js';
/** JSON Schema of the spec's gate: its settings and each rule kind's body (validate.ts checks the key). */
import { metricRuleSchema } from './metric-query.js';
import { closed, duration, percent, shortName, type Schema } from './schema-parts.js';

const selector = {
  route: { type: 'string', pattern: '^/', description: 'a URL path starting with /' },
  status: {
    oneOf: [
      { type: 'integer', minimum: 100, maximum: 599 },
      {
        type: 'string',
        pattern: '^([1-5][0-9][0-9]|[1-5]xx)$',
        description: 'an HTTP status such as 404 or a class such as 5xx',
      },
    ],
  },
  userAgent: { type: 'string', minLength: 1 },
};

const version = { enum: ['candidate', 'stable'] };
const alpha = { type: 'number', exclusiveMinimum: 0, maximum: 0.5 };
const alphaWeight = {
  type: 'number',
  exclusiveMinimum: 0,
  maximum: 1000,
  description: "this rule's weight in the gate.alpha budget (default 1)",
};
// An increase may exceed 100% (a p99 twice the stable one is +100%).
const increase: Schema = {
  type: 'string',
  pattern: '^[0-9]{1,4}(\\.[0-9]+)?%$',
  description: 'an increase such as 10% or 150%',
};
const rate: Schema = {
  oneOf: [percent, { type: 'number', exclusiveMinimum: 0, maximum: 0.5 }],
  description: 'a probability such as 1% or 0.01',
};
export const gateRuleSchemas: Record<string, Schema> = {
  conservation: closed({
    hops: { type: 'array', items: shortName, minItems: 1, uniqueItems: true },
    fanOut: { type: 'object', additionalProperties: { type: 'number', exclusiveMinimum: 0 } },
    tolerance: { oneOf: [{ type: 'integer', minimum: 0 }, percent] },
  }),
  split: closed({ confidence: { type: 'number', exclusiveMinimum: 0.5, exclusiveMaximum: 1 }, alphaWeight }),
  errorRate: closed(
    {
      max: percent,
      version,
      route: selector.route,
      perRoute: { type: 'boolean' },
      alpha,
      alphaWeight,
      routeMax: percent,
    },
    ['max'],
  ),
  latency: closed(
    {
      percentile: { type: 'number', exclusiveMinimum: 0, maximum: 100 },
      max: duration,
      version,
      route: selector.route,
      alpha,
      alphaWeight,
    },
    ['percentile', 'max'],
  ),
  count: closed(
    { ...selector, expect: { oneOf: [{ type: 'integer', minimum: 0 }, { enum: ['all', 'none'] }] } },
    ['expect'],
  ),
  share: closed({ ...selector, expect: percent, tolerance: percent }, ['expect', 'tolerance']),
  compareLatency: closed({
    alpha,
    alphaWeight,
    percentile: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 100 },
    maxIncrease: percent,
    detect: increase,
    route: selector.route,
    maxEffect: {
      type: 'number',
      minimum: 0,
      maximum: 1,
      description: "deprecated (Cliff's δ is no longer judged); use maxIncrease",
    },
  }),
  compareErrors: closed({
    alpha,
    alphaWeight,
    maxIncrease: percent,
    detect: percent,
    routeDetect: percent,
    route: selector.route,
    perRoute: { type: 'boolean' },
  }),
  tail: closed({
    percentiles: {
      type: 'array',
      items: { type: 'number', minimum: 50, exclusiveMaximum: 100 },
      minItems: 1,
      uniqueItems: true,
    },
    maxIncrease: percent,
    detect: increase,
    alpha,
    alphaWeight,
    route: selector.route,
  }),
  l4: closed({
    resetRate: percent,
    retransmitRate: percent,
    connectFailures: { type: 'integer', minimum: 0 },
    compare: { type: 'boolean' },
    required: { type: 'boolean' },
  }),
  metric: metricRuleSchema,
};

export const gateSchema = closed(
  {
    alpha: rate,
    beta: { ...rate, description: "the chance a regression of a rule's detect size is passed, e.g. 5%" },
    maxRoutes: { type: 'integer', minimum: 1, maximum: 1000 },
    minRouteSamples: { type: 'integer', minimum: 1 },
    requestRate: {
      type: 'string',
      pattern: '^[0-9]+(\\.[0-9]+)?/(s|m)$',
      description: 'requests per second or minute, e.g. 50/s',
    },
    minSamples: { type: 'integer', minimum: 1 },
    metrics: closed(
      {
        source: { enum: [...METRICS_SOURCES] },
        url: { type: 'string', pattern: '^https?://' },
        targets: { type: 'array', items: { type: 'string', pattern: '^https?://' } },
        scrapeInterval: duration,
      },
      ['source'],
    ),
    tracing: closed({ url: { type: 'string', pattern: '^https?://' } }, ['url']),
    traceSampling: {
      oneOf: [percent, { type: 'number', exclusiveMinimum: 0, maximum: 1 }],
      description: 'share of requests traced, e.g. 1% or 0.01',
    },
    maxWindow: duration,
    onInconclusive: {
      enum: ['fail', 'hold'],
      description:
        'after the longest window and maxInconclusive more: fail (roll back) or hold (keep the weight, stop)',
    },
    rules: {
      type: 'array',
      minItems: 1,
      // Each rule is an object with exactly one key naming its kind; validate.ts checks the key and body.
      items: { type: 'object', minProperties: 1, maxProperties: 1 },
    },
  },
  ['rules'],
);
