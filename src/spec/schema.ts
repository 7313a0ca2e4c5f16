import { MESHES } from '../contract/index.js';
import { gateSchema } from './gate-schema.js';
import { metricTemplatesSchema } from './metric-query.js';
import { closed, duration, name, percent, shortName, weight, type Schema } from './schema-parts.js';

export { gateRuleSchemas, gateSchema } from './gate-schema.js';

/**
 * JSON Schema of the release spec. Every object is closed (additionalProperties: false) so misspelt keys
 * are reported with a "did you mean". Cross-field rules (increasing weights, windows long enough for the
 * gate, exactly one strategy) live in validate.ts, where they can explain themselves in numbers.
 */
const matchValue = closed({
  exact: { type: 'string' },
  prefix: { type: 'string' },
  regex: { type: 'string' },
});
/** A SPIFFE id of a Kubernetes service account, as Istio issues it (the URI SAN of the workload certificate). */
export const MESH_PRINCIPAL_PATTERN =
  '^spiffe://[^/]+/ns/[a-z0-9]([-a-z0-9]*[a-z0-9])?/sa/[a-z0-9]([-.a-z0-9]*[a-z0-9])?$';
const secretRef = closed({
  env: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*$' },
  file: { type: 'string' },
  spinnaker: { type: 'string' },
});
// Selectors name labels the evidence carries: a URL path, an HTTP status (or class such as 5xx), a user agent.
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
    mesh: { enum: [...MESHES], description: `the mesh that routes the service: ${MESHES.join(', ')}` },
    httpRoute: name,
    backends: closed({ stable: name, candidate: name }),
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
    {
      previewWindow: duration,
      judgment: { type: 'boolean' },
      maxInconclusive: { type: 'integer', minimum: 0, maximum: 10 },
    },
    ['previewWindow'],
  ),
  abTest: closed(
    {
      match: {
        type: 'array',
        minItems: 1,
        items: closed({
          headers: { type: 'object', additionalProperties: matchValue, minProperties: 1 },
          cookie: matchValue,
        }),
      },
      window: duration,
      judgment: { type: 'boolean' },
      maxInconclusive: { type: 'integer', minimum: 0, maximum: 10 },
    },
    ['match', 'window'],
  ),
  mirror: closed({ percentage: percent, window: duration }, ['window']),
});

// A Kubernetes resource quantity: 500m, 2, 1.5, 512Mi, 2Gi.
const quantity: Schema = {
  type: 'string',
  pattern: '^[0-9]+(\\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$',
  description: 'a Kubernetes quantity such as 500m, 2 or 2Gi',
};

export const loadSchema = closed(
  {
    plan: { type: ['string', 'object'] },
    engine: { enum: ['auto', 'jmeter', 'builtin'] },
    target: { type: 'string', pattern: '^https?://' },
    // Distributed JMeter engines the platform starts for each window; 0 (the default) sends from this process.
    engines: { type: 'integer', minimum: 0, maximum: 50 },
    resources: closed({ cpu: quantity, memory: quantity }),
  },
  ['plan'],
);

const trigger: Schema = {
  type: 'object',
  required: ['type'],
  properties: { type: { enum: ['jenkins', 'docker', 'git', 'webhook', 'pipeline', 'cron'] } },
};

export const triggerSchemas: Record<string, Schema> = {
  jenkins: closed(
    {
      type: {},
      master: { type: 'string', minLength: 1 },
      job: { type: 'string', minLength: 1 },
      propertyFile: { type: 'string' },
    },
    ['master', 'job'],
  ),
  docker: closed(
    {
      type: {},
      account: { type: 'string' },
      registry: { type: 'string' },
      organization: { type: 'string' },
      repository: { type: 'string' },
      tag: { type: 'string' },
    },
    ['account', 'repository'],
  ),
  git: closed(
    {
      type: {},
      source: { enum: ['github', 'gitlab', 'bitbucket', 'stash'] },
      project: { type: 'string' },
      slug: { type: 'string' },
      branch: { type: 'string' },
    },
    ['source', 'project', 'slug'],
  ),
  webhook: closed(
    {
      type: {},
      source: { type: 'string', minLength: 1 },
      payloadConstraints: { type: 'object', additionalProperties: { type: 'string' } },
    },
    ['source'],
  ),
  pipeline: closed(
    {
      type: {},
      application: { type: 'string' },
      pipeline: { type: 'string' },
      status: { type: 'array', items: { enum: ['successful', 'failed', 'canceled'] }, minItems: 1 },
    },
    ['application', 'pipeline'],
  ),
  cron: closed({ type: {}, cronExpression: { type: 'string', minLength: 11 } }, ['cronExpression']),
};

export const spinnakerSchema = closed(
  {
    application: name,
    account: { type: 'string', minLength: 1 },
    pipelineName: { type: 'string', minLength: 1 },
    stageServer: closed(
      {
        url: { type: 'string', pattern: '^https?://' },
        auth: secretRef,
        meshAuth: closed(
          {
            principal: {
              type: 'string',
              pattern: MESH_PRINCIPAL_PATTERN,
              description:
                "Orca's workload identity: spiffe://<trust domain>/ns/<namespace>/sa/<service account>",
            },
          },
          ['principal'],
        ),
      },
      ['url'],
    ),
    runner: { enum: ['webhook', 'jenkins', 'runJob'] },
    stages: { enum: ['inline', 'preconfigured'] },
    jenkins: closed({ master: { type: 'string', minLength: 1 }, job: { type: 'string', minLength: 1 } }, [
      'master',
      'job',
    ]),
    runJob: closed(
      { image: { type: 'string', minLength: 1 }, namespace: shortName, serviceAccount: name },
      [],
    ),
    triggers: { type: 'array', items: trigger },
    notifications: {
      type: 'array',
      items: closed(
        {
          type: { enum: ['slack', 'email', 'googlechat', 'microsoftteams', 'githubStatus'] },
          address: { type: 'string', minLength: 1 },
          when: {
            type: 'array',
            items: { enum: ['pipeline.starting', 'pipeline.complete', 'pipeline.failed'] },
          },
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
    metadata: closed({ name, labels: { type: 'object', additionalProperties: { type: 'string' } } }, [
      'name',
    ]),
    application: name,
    service: serviceSchema,
    strategy: strategySchema,
    load: loadSchema,
    gate: gateSchema,
    metrics: metricTemplatesSchema,
    spinnaker: spinnakerSchema,
    github: githubSchema,
  },
  ['apiVersion', 'kind', 'metadata', 'application', 'service', 'strategy'],
);
