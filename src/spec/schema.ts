import { DURATION_PATTERN } from '../util/units.js';

/**
 * JSON Schema of the release spec. Every object is closed (additionalProperties: false) so misspelt keys
 * are reported with a "did you mean". Cross-field rules (increasing weights, windows long enough for the
 * gate, exactly one strategy) live in validate.ts, where they can explain themselves in numbers.
 */
type Schema = Record<string, unknown>;

const duration: Schema = { type: 'string', pattern: DURATION_PATTERN, description: 'a duration such as 30s, 2m' };
// Percentages of requests or of traffic: 0% to 100%, so "200%" is caught here rather than never tripping.
const percent: Schema = { type: 'string', pattern: '^(100(\\.0+)?|[0-9]{1,2}(\\.[0-9]+)?)%$', description: 'a percentage from 0% to 100% such as 1%' };
const weight: Schema = { type: 'integer', minimum: 0, maximum: 100 };
// Kubernetes' limits: object names are DNS subdomains (≤ 253), namespaces and Services DNS labels (≤ 63).
const name: Schema = { type: 'string', minLength: 1, maxLength: 253, pattern: '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$', description: 'a DNS-1123 name' };
const shortName: Schema = { ...name, maxLength: 63 };
const closed = (properties: Record<string, Schema>, required: string[] = []): Schema => ({
  type: 'object',
  additionalProperties: false,
  properties,
  required,
});
const matchValue = closed({ exact: { type: 'string' }, prefix: { type: 'string' }, regex: { type: 'string' } });
const secretRef = closed({ env: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*$' }, file: { type: 'string' }, spinnaker: { type: 'string' } });
// Selectors name labels the evidence carries: a URL path, an HTTP status (or class such as 5xx), a user agent.
const selector = {
  route: { type: 'string', pattern: '^/', description: 'a URL path starting with /' },
  status: {
    oneOf: [
      { type: 'integer', minimum: 100, maximum: 599 },
      { type: 'string', pattern: '^([1-5][0-9][0-9]|[1-5]xx)$', description: 'an HTTP status such as 404 or a class such as 5xx' },
    ],
  },
  userAgent: { type: 'string', minLength: 1 },
};

export const serviceSchema = closed(
  {
    name: shortName,
    namespace: shortName,
    host: { type: 'string', minLength: 1 },
    port: { type: 'integer', minimum: 1, maximum: 65535 },
    versionLabel: { type: 'string', minLength: 1 },
    stable: { type: 'string', minLength: 1 },
    candidate: { type: 'string', minLength: 1 },
    candidateImage: { type: 'string', minLength: 1 },
    candidateManifests: { type: 'array', items: { type: 'string' }, minItems: 1 },
    candidateWorkload: name,
    readyTimeout: duration,
    virtualService: name,
    gateways: { type: 'array', items: { type: 'string' } },
  },
  ['name', 'namespace', 'port', 'stable', 'candidate'],
);

export const strategySchema = closed({
  canary: closed(
    {
      steps: { type: 'array', items: weight, minItems: 1 },
      stepWeight: { type: 'integer', minimum: 1, maximum: 100 },
      maxWeight: { type: 'integer', minimum: 1, maximum: 100 },
      window: duration,
      judgmentAt: { type: 'array', items: weight },
      maxInconclusive: { type: 'integer', minimum: 0, maximum: 10 },
    },
    ['window'],
  ),
  blueGreen: closed(
    { previewWindow: duration, judgment: { type: 'boolean' }, maxInconclusive: { type: 'integer', minimum: 0, maximum: 10 } },
    ['previewWindow'],
  ),
  abTest: closed(
    {
      match: {
        type: 'array',
        minItems: 1,
        items: closed({ headers: { type: 'object', additionalProperties: matchValue, minProperties: 1 }, cookie: matchValue }),
      },
      window: duration,
      judgment: { type: 'boolean' },
      maxInconclusive: { type: 'integer', minimum: 0, maximum: 10 },
    },
    ['match', 'window'],
  ),
  mirror: closed({ percentage: percent, window: duration }, ['window']),
});

export const loadSchema = closed(
  {
    plan: { type: ['string', 'object'] },
    engine: { enum: ['auto', 'jmeter', 'builtin'] },
    target: { type: 'string', pattern: '^https?://' },
  },
  ['plan'],
);

const version = { enum: ['candidate', 'stable'] };
const alpha = { type: 'number', exclusiveMinimum: 0, maximum: 0.5 };
const alphaWeight = { type: 'number', exclusiveMinimum: 0, maximum: 1000, description: "this rule's weight in the gate.alpha budget (default 1)" };
// An increase may exceed 100% (a p99 twice the stable one is +100%).
const increase: Schema = { type: 'string', pattern: '^[0-9]{1,4}(\\.[0-9]+)?%$', description: 'an increase such as 10% or 150%' };
const rate: Schema = { oneOf: [percent, { type: 'number', exclusiveMinimum: 0, maximum: 0.5 }], description: 'a probability such as 1% or 0.01' };
export const gateRuleSchemas: Record<string, Schema> = {
  conservation: closed({
    hops: { type: 'array', items: shortName, minItems: 1, uniqueItems: true },
    fanOut: { type: 'object', additionalProperties: { type: 'number', exclusiveMinimum: 0 } },
    tolerance: { oneOf: [{ type: 'integer', minimum: 0 }, percent] },
  }),
  split: closed({ confidence: { type: 'number', exclusiveMinimum: 0.5, exclusiveMaximum: 1 }, alphaWeight }),
  errorRate: closed({ max: percent, version, route: selector.route, perRoute: { type: 'boolean' }, alpha, alphaWeight, routeMax: percent }, ['max']),
  latency: closed({ percentile: { type: 'number', exclusiveMinimum: 0, maximum: 100 }, max: duration, version, route: selector.route, alpha, alphaWeight }, ['percentile', 'max']),
  count: closed({ ...selector, expect: { oneOf: [{ type: 'integer', minimum: 0 }, { enum: ['all', 'none'] }] } }, ['expect']),
  share: closed({ ...selector, expect: percent, tolerance: percent }, ['expect', 'tolerance']),
  compareLatency: closed({
    alpha,
    alphaWeight,
    percentile: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 100 },
    maxIncrease: percent,
    detect: increase,
    route: selector.route,
    maxEffect: { type: 'number', minimum: 0, maximum: 1, description: "deprecated (Cliff's δ is no longer judged); use maxIncrease" },
  }),
  compareErrors: closed({ alpha, alphaWeight, maxIncrease: percent, detect: percent, routeDetect: percent, route: selector.route, perRoute: { type: 'boolean' } }),
  tail: closed({
    percentiles: { type: 'array', items: { type: 'number', minimum: 50, exclusiveMaximum: 100 }, minItems: 1, uniqueItems: true },
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
};

export const gateSchema = closed(
  {
    alpha: rate,
    beta: { ...rate, description: 'the chance a regression of a rule\'s detect size is passed, e.g. 5%' },
    maxRoutes: { type: 'integer', minimum: 1, maximum: 1000 },
    minRouteSamples: { type: 'integer', minimum: 1 },
    requestRate: { type: 'string', pattern: '^[0-9]+(\\.[0-9]+)?/(s|m)$', description: 'requests per second or minute, e.g. 50/s' },
    minSamples: { type: 'integer', minimum: 1 },
    metrics: closed(
      {
        source: { enum: ['prometheus', 'scrape'] },
        url: { type: 'string', pattern: '^https?://' },
        targets: { type: 'array', items: { type: 'string', pattern: '^https?://' } },
        scrapeInterval: duration,
      },
      ['source'],
    ),
    tracing: closed({ url: { type: 'string', pattern: '^https?://' } }, ['url']),
    traceSampling: { oneOf: [percent, { type: 'number', exclusiveMinimum: 0, maximum: 1 }], description: 'share of requests traced, e.g. 1% or 0.01' },
    maxWindow: duration,
    onInconclusive: { enum: ['fail', 'hold'], description: 'after the longest window and maxInconclusive more: fail (roll back) or hold (keep the weight, stop)' },
    rules: {
      type: 'array',
      minItems: 1,
      // Each rule is an object with exactly one key naming its kind; validate.ts checks the key and body.
      items: { type: 'object', minProperties: 1, maxProperties: 1 },
    },
  },
  ['rules'],
);

const trigger: Schema = {
  type: 'object',
  required: ['type'],
  properties: { type: { enum: ['jenkins', 'docker', 'git', 'webhook', 'pipeline', 'cron'] } },
};

export const triggerSchemas: Record<string, Schema> = {
  jenkins: closed({ type: {}, master: { type: 'string', minLength: 1 }, job: { type: 'string', minLength: 1 }, propertyFile: { type: 'string' } }, ['master', 'job']),
  docker: closed({ type: {}, account: { type: 'string' }, registry: { type: 'string' }, organization: { type: 'string' }, repository: { type: 'string' }, tag: { type: 'string' } }, ['account', 'repository']),
  git: closed({ type: {}, source: { enum: ['github', 'gitlab', 'bitbucket', 'stash'] }, project: { type: 'string' }, slug: { type: 'string' }, branch: { type: 'string' } }, ['source', 'project', 'slug']),
  webhook: closed({ type: {}, source: { type: 'string', minLength: 1 }, payloadConstraints: { type: 'object', additionalProperties: { type: 'string' } } }, ['source']),
  pipeline: closed({ type: {}, application: { type: 'string' }, pipeline: { type: 'string' }, status: { type: 'array', items: { enum: ['successful', 'failed', 'canceled'] }, minItems: 1 } }, ['application', 'pipeline']),
  cron: closed({ type: {}, cronExpression: { type: 'string', minLength: 11 } }, ['cronExpression']),
};

export const spinnakerSchema = closed(
  {
    application: name,
    account: { type: 'string', minLength: 1 },
    pipelineName: { type: 'string', minLength: 1 },
    stageServer: closed({ url: { type: 'string', pattern: '^https?://' }, auth: secretRef }, ['url']),
    runner: { enum: ['webhook', 'jenkins', 'runJob'] },
    stages: { enum: ['inline', 'preconfigured'] },
    jenkins: closed({ master: { type: 'string', minLength: 1 }, job: { type: 'string', minLength: 1 } }, ['master', 'job']),
    runJob: closed({ image: { type: 'string', minLength: 1 }, namespace: shortName, serviceAccount: name }, ['image']),
    triggers: { type: 'array', items: trigger },
    notifications: {
      type: 'array',
      items: closed(
        {
          type: { enum: ['slack', 'email', 'googlechat', 'microsoftteams', 'githubStatus'] },
          address: { type: 'string', minLength: 1 },
          when: { type: 'array', items: { enum: ['pipeline.starting', 'pipeline.complete', 'pipeline.failed'] } },
        },
        ['type', 'address'],
      ),
    },
  },
  ['account', 'stageServer'],
);

export const githubSchema = closed(
  {
    repository: { type: 'string', pattern: '^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$', description: 'owner/name' },
    context: { type: 'string', minLength: 1 },
    apiUrl: { type: 'string', pattern: '^https?://' },
    token: secretRef,
  },
  ['repository'],
);

export const releaseSpecSchema: Schema = closed(
  {
    apiVersion: { const: 'clover-cd/v1' },
    kind: { const: 'Release' },
    metadata: closed({ name, labels: { type: 'object', additionalProperties: { type: 'string' } } }, ['name']),
    application: name,
    service: serviceSchema,
    strategy: strategySchema,
    load: loadSchema,
    gate: gateSchema,
    spinnaker: spinnakerSchema,
    github: githubSchema,
  },
  ['apiVersion', 'kind', 'metadata', 'application', 'service', 'strategy'],
);
