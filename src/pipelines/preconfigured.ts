// Over 400 lines: Orca's preconfigured webhook and Run Job stages are one fragment, rendered together.
/**
 * Orca's own way to add stages (test/conformance/orca-webhook.json and orca-preconfigured-job.json hold the fields Orca binds): preconfigured webhook stages (`webhook.preconfigured` in
 * orca-local.yml) appear in Deck's stage picker with a form, and keep their headers — the secret — in Orca's
 * configuration, where Spinnaker resolves `encrypted:` references at start; a preconfigured Kubernetes Run Job
 * (`job.preconfigured.kubernetes`) does the same for `clover-cd stage <action>`. `orcaConfig` builds that
 * fragment; `preconfiguredStage` is the pipeline stage that uses one (type + alias + parameterValues only).
 * Pure: data in, data out.
 */
import {
  ACTION_DESCRIPTIONS,
  STAGE_ACTIONS,
  STAGE_SERVER_POLLING,
  type StageAction,
} from '../contract/index.js';
import { defaultImage } from '../contract/images.js';
import type { ReleaseSpec } from '../spec/types.js';
import { InvalidInputError } from '../util/errors.js';
import {
  DEFAULT_SECRET_ENGINE,
  SECRET_ENGINES,
  secretReferenceProblem,
  type SecretEngine,
} from './secret-refs.js';

export const PRECONFIGURED_ALIAS = 'preconfiguredWebhook';
export const DEFAULT_STAGE_SERVER = 'http://clover-cd.clover-system:8080';
export const RUN_JOB_TYPE = 'cloverCdStageJob';

const LABELS: Record<StageAction, string> = {
  deploy: 'prepare release',
  traffic: 'shift traffic',
  load: 'run load',
  gate: 'gate',
  promote: 'promote',
  rollback: 'roll back',
};

/** Actions that act on one plan step (the stage passes `step`); the others act on the whole release. */
export const STEP_ACTIONS: ReadonlySet<StageAction> = new Set(['traffic', 'load', 'gate']);

/** `cloverCd<Action>`: the stage type of an action's preconfigured webhook. */
export const preconfiguredType = (action: StageAction): string =>
  `cloverCd${action[0].toUpperCase()}${action.slice(1)}`;
export const actionOfType = (type: string): StageAction | undefined =>
  STAGE_ACTIONS.find((a) => preconfiguredType(a) === type);

/** The pipeline stage of a preconfigured webhook: no URL, no headers; Deck shows parameterValues in its form. */
export function preconfiguredStage(
  release: string,
  spec: unknown,
  action: StageAction,
  step?: number,
): Record<string, unknown> & { type: string } {
  const parameterValues: Record<string, string> = { release, spec: JSON.stringify(spec) };
  if (step !== undefined) parameterValues.step = String(step);
  return { type: preconfiguredType(action), alias: PRECONFIGURED_ALIAS, parameterValues };
}

export interface OrcaConfigOptions {
  /** Stage server base URL (default: the specs' spinnaker.stageServer.url, else the in-cluster Service). */
  stageServer?: string;
  /** Secret reference for the Authorization header, e.g. "encrypted:k8s!n:clover-cd!k:authorization". */
  authSecret?: string;
  /** The secret engine that resolves it: the Operator's k8s (default) or one of kork's (Halyard or the Operator). */
  secrets?: SecretEngine;
  /** Run Job: Clouddriver account, namespace, image, service account. */
  account?: string;
  namespace?: string;
  image?: string;
  serviceAccount?: string;
}

export interface OrcaConfig {
  config: {
    webhook: { preconfigured: Record<string, unknown>[] };
    job: { preconfigured: { kubernetes: Record<string, unknown>[] } };
  };
  notes: string[];
  /** The engine the references are written for (what the fragment's header names). */
  engine: SecretEngine;
}

/**
 * A label map as Spring binds it into Orca's V1Job: keys in brackets, or Spring drops their '/' (and every other
 * character but letters, digits, '-' and '.'), so `app.kubernetes.io/name` would arrive as `app.kubernetes.ioname`.
 */
const springMapKeys = (labels: Record<string, string>) =>
  Object.fromEntries(Object.entries(labels).map(([k, v]) => [`[${k}]`, v]));

/** The one value the specs agree on (or the option); exit 2 when they disagree. */
function agreed(
  specs: ReleaseSpec[],
  pick: (s: ReleaseSpec) => string | undefined,
  option: string | undefined,
  path: string,
): string | undefined {
  if (option !== undefined) return option;
  const values = [...new Set(specs.map(pick).filter((v): v is string => v !== undefined))];
  if (values.length > 1) {
    throw new InvalidInputError(
      `the specs disagree on ${path} (${values.join(', ')}): one Orca configuration serves one stage server; pass the value as an option`,
      [{ path, message: `expected one value, found ${values.length}` }],
    );
  }
  return values[0];
}

const param = (name: string, label: string, description: string, extra: Record<string, unknown> = {}) => ({
  name,
  label,
  description,
  type: 'string',
  ...extra,
});

/** The orca-local.yml fragment: one preconfigured webhook per action, and a preconfigured Run Job. */
export function orcaConfig(specs: ReleaseSpec[], opts: OrcaConfigOptions = {}): OrcaConfig {
  const notes: string[] = [];
  const server = (
    agreed(specs, (s) => s.spinnaker?.stageServer.url, opts.stageServer, 'spinnaker.stageServer.url') ??
    DEFAULT_STAGE_SERVER
  ).replace(/\/+$/, '');
  if (!/^https?:\/\//.test(server))
    throw new InvalidInputError(`--stage-server must be an http(s) URL, got "${server}"`);
  const engine = opts.secrets ?? DEFAULT_SECRET_ENGINE;
  const secretPath = opts.authSecret !== undefined ? '--auth-secret' : 'spinnaker.stageServer.auth.spinnaker';
  const secret = agreed(
    specs,
    (s) => s.spinnaker?.stageServer.auth?.spinnaker,
    opts.authSecret,
    'spinnaker.stageServer.auth.spinnaker',
  );
  const mesh = agreed(
    specs,
    (s) => s.spinnaker?.stageServer.meshAuth?.principal,
    undefined,
    'spinnaker.stageServer.meshAuth.principal',
  );
  const headers: Record<string, string[]> = { 'Content-Type': ['application/json'] };
  if (secret) {
    const problem = secretReferenceProblem(secret, engine);
    if (problem) {
      throw new InvalidInputError(
        `${secretPath}: ${problem}. The Authorization header takes a Spinnaker secret reference whose secret holds the whole header value ("Bearer <token>"); a plain value would be a secret in a configuration file`,
        [
          {
            path: secretPath,
            message: `expected a reference ${SECRET_ENGINES[engine].tool} resolves, e.g. ${SECRET_ENGINES[engine].example}`,
          },
        ],
      );
    }
    // Kork (or the Operator) replaces a value that IS a reference; the secret it names holds "Bearer <token>".
    headers.Authorization = [secret];
  } else if (mesh) {
    notes.push(
      `no secret reference: the stages send no Authorization header, and the stage server knows Orca by its mesh identity ${mesh} (deploy/clover-cd/overlays/mesh-auth, serve --trust-mesh-principal).`,
    );
  } else {
    throw new InvalidInputError(
      "no secret reference for the Authorization header: the stage server, as deploy/clover-cd ships it, refuses a call without credentials (401, TERMINAL in Orca). Give --auth-secret (or spinnaker.stageServer.auth.spinnaker in the spec), or state spinnaker.stageServer.meshAuth when the server trusts Orca's mesh identity",
      [
        {
          path: 'spinnaker.stageServer.auth.spinnaker',
          message: `expected a secret reference such as ${SECRET_ENGINES[engine].example}`,
        },
      ],
    );
  }

  const release = "${parameterValues['release']}";
  const webhooks = STAGE_ACTIONS.map((action) => {
    const withStep = STEP_ACTIONS.has(action);
    // The payload is JSON text with SpEL: the spec parameter is JSON, the step a number.
    const payload = `{"spec": \${parameterValues['spec']},${withStep ? ` "step": \${parameterValues['step']},` : ''} "execution": {"id": "\${execution['id']}", "pipeline": "\${execution['name']}"}}`;
    const parameters = [
      param('release', 'Release', 'metadata.name of the release spec: the release this stage acts on'),
      ...(withStep
        ? [
            param(
              'step',
              'Plan step',
              "1-based step of the release plan (`clover-cd release status` lists them); the step's weight, window and retries come from the plan",
              { defaultValue: '1' },
            ),
          ]
        : []),
      param(
        'spec',
        'Release spec (JSON)',
        'the release spec as JSON with its files inlined, as `clover-cd pipeline render` writes it; no secrets',
      ),
    ];
    return {
      label: `clover-cd: ${LABELS[action]}`,
      type: preconfiguredType(action),
      enabled: true,
      description: `clover-cd ${action}: ${ACTION_DESCRIPTIONS[action]}`,
      method: 'POST',
      url: `${server}/api/v1/releases/${release}/${action}`,
      customHeaders: headers,
      payload,
      failFastStatusCodes: [],
      ...STAGE_SERVER_POLLING,
      // Deck shows an unchecked "Signal cancellation" box for an entry without it (and clears the cancel fields).
      signalCancellation: true,
      cancelEndpoint: `${server}/api/v1/releases/${release}/cancel`,
      cancelMethod: 'POST',
      cancelPayload: '{}',
      parameters,
    };
  });

  // The Run Job: `clover-cd stage <action>` in a Kubernetes Job; outputs from SPINNAKER_PROPERTY_ lines.
  const sp = specs.find((s) => s.spinnaker)?.spinnaker;
  const account = opts.account ?? sp?.account;
  const namespace = opts.namespace ?? sp?.runJob?.namespace ?? 'clover-system';
  const image = opts.image ?? sp?.runJob?.image ?? defaultImage('clover-cd');
  const serviceAccount = opts.serviceAccount ?? sp?.runJob?.serviceAccount ?? 'clover-cd';
  if (!account)
    notes.push(
      'no Kubernetes account (spinnaker.account or --account): set "account" and "credentials" of the Run Job before using it.',
    );
  const env = (name: string) =>
    `manifest.spec.template.spec.containers[0].env[${['CLOVER_CD_ACTION', 'CLOVER_CD_STEP', 'CLOVER_CD_SPEC', 'CLOVER_CD_EXECUTION_ID'].indexOf(name)}].value`;
  const job = {
    label: 'clover-cd: release action (Kubernetes Job)',
    type: RUN_JOB_TYPE,
    description: `clover-cd stage <action> in a Kubernetes Job: ${STAGE_ACTIONS.join(', ')}; stage outputs CLOVER_CD_STATUS, CLOVER_CD_VERDICT, ...`,
    cloudProvider: 'kubernetes',
    account: account ?? 'REPLACE-ME',
    credentials: account ?? 'REPLACE-ME',
    waitForCompletion: true,
    propertyFile: 'clover-cd',
    parameters: [
      {
        name: 'action',
        label: 'Action',
        description: STAGE_ACTIONS.join(' | '),
        mapping: env('CLOVER_CD_ACTION'),
        defaultValue: 'gate',
      },
      {
        name: 'step',
        label: 'Plan step',
        description: '1-based plan step for traffic, load and gate; empty for the others',
        mapping: env('CLOVER_CD_STEP'),
        defaultValue: '',
      },
      {
        name: 'spec',
        label: 'Release spec (JSON)',
        description: 'the release spec as JSON, as `clover-cd pipeline render` writes it',
        mapping: env('CLOVER_CD_SPEC'),
        defaultValue: '',
      },
      {
        name: 'executionId',
        label: 'Execution id',
        description: 'the pipeline execution the action belongs to',
        mapping: env('CLOVER_CD_EXECUTION_ID'),
        defaultValue: "${execution['id']}",
      },
    ],
    manifest: {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: {
        generateName: 'clover-cd-stage-',
        namespace,
        labels: springMapKeys({ 'app.kubernetes.io/name': 'clover-cd' }),
      },
      spec: {
        backoffLimit: 0,
        ttlSecondsAfterFinished: 86400,
        template: {
          metadata: { labels: springMapKeys({ 'app.kubernetes.io/name': 'clover-cd' }) },
          spec: {
            restartPolicy: 'Never',
            serviceAccountName: serviceAccount,
            containers: [
              {
                name: 'clover-cd',
                image,
                // Exec form, no shell (the images have none): the kubelet replaces $(VAR) with the container's
                // env, which the stage's parameters fill in; an empty step means none. Never "${": Spring
                // (config) and Orca (SpEL) would both read it as theirs.
                command: ['clover-cd'],
                args: [
                  'stage',
                  '$(CLOVER_CD_ACTION)',
                  '--step',
                  '$(CLOVER_CD_STEP)',
                  '--spec-env',
                  'CLOVER_CD_SPEC',
                  '--property-format',
                  'spinnaker',
                ],
                env: [
                  { name: 'CLOVER_CD_ACTION', value: 'gate' },
                  { name: 'CLOVER_CD_STEP', value: '' },
                  { name: 'CLOVER_CD_SPEC', value: '' },
                  { name: 'CLOVER_CD_EXECUTION_ID', value: '' },
                ],
              },
            ],
          },
        },
      },
    },
  };
  return {
    config: { webhook: { preconfigured: webhooks }, job: { preconfigured: { kubernetes: [job] } } },
    notes,
    engine,
  };
}

/** One preconfigured webhook as Orca's configuration declares it (the fields a local run reads). */
export interface PreconfiguredWebhook {
  type: string;
  label?: string;
  url: string;
  method?: string;
  customHeaders?: Record<string, string | string[]>;
  payload?: unknown;
  parameters?: Array<{ name: string; defaultValue?: string }>;
  [k: string]: unknown;
}

/**
 * The fields Spring binds from a `webhook.preconfigured` entry into Orca's PreconfiguredWebhook
 * (test/conformance/orca-webhook.json); any other key never reaches the stage.
 */
export const PRECONFIGURED_WEBHOOK_FIELDS = [
  'enabled',
  'label',
  'description',
  'type',
  'parameters',
  'url',
  'customHeaders',
  'parameterValues',
  'parameterData',
  'method',
  'payload',
  'failFastStatusCodes',
  'waitForCompletion',
  'statusUrlResolution',
  'statusUrlJsonPath',
  'statusJsonPath',
  'progressJsonPath',
  'successStatuses',
  'canceledStatuses',
  'terminalStatuses',
  'permissions',
  'signalCancellation',
  'cancelEndpoint',
  'cancelMethod',
  'cancelPayload',
] as const;

/** A map key as Spring binds it: "[k]" keeps k; otherwise every character but letters, digits, '-' and '.' is dropped. */
export const springMapKey = (key: string): string =>
  /^\[.*\]$/s.test(key) ? key.slice(1, -1) : key.replace(/[^A-Za-z0-9.-]/g, '');

/**
 * The `webhook.preconfigured` entries of a parsed orca-local.yml as Orca binds them, by type: only the fields Spring
 * binds, header names as Spring binds map keys; disabled entries left out. Exit 2 for a malformed one; `dropped`
 * receives the keys Orca would never see.
 */
export function preconfiguredWebhooks(
  doc: unknown,
  file = 'orca-local.yml',
  dropped?: (path: string) => void,
): Map<string, PreconfiguredWebhook> {
  const list = (doc as { webhook?: { preconfigured?: unknown } } | null)?.webhook?.preconfigured;
  if (!Array.isArray(list))
    throw new InvalidInputError(
      `${file}: no webhook.preconfigured list (expected what \`clover-cd pipeline orca-config\` prints)`,
      [{ file, path: 'webhook.preconfigured', message: 'expected a list' }],
    );
  const out = new Map<string, PreconfiguredWebhook>();
  const bound = new Set<string>(PRECONFIGURED_WEBHOOK_FIELDS);
  list.forEach((w, i) => {
    const e = w as PreconfiguredWebhook;
    if (!e || typeof e.type !== 'string' || typeof e.url !== 'string')
      throw new InvalidInputError(`${file}: webhook.preconfigured[${i}] needs type and url`, [
        { file, path: `webhook.preconfigured[${i}]`, message: 'expected type and url' },
      ]);
    const entry = Object.fromEntries(
      Object.entries(e).filter(([k]) => bound.has(k) || void dropped?.(`webhook.preconfigured[${i}].${k}`)),
    ) as PreconfiguredWebhook;
    if (e.customHeaders && typeof e.customHeaders === 'object')
      entry.customHeaders = Object.fromEntries(
        Object.entries(e.customHeaders).map(([k, v]) => [springMapKey(k), v]),
      );
    if (entry.enabled !== false) out.set(entry.type, entry);
  });
  return out;
}
