// Over 400 lines: one table of field rules per Orca stage type; splitting it would scatter the table.
/**
 * Field rules per stage type. Each check reports the field and the rule;
 * things Orca tolerates are warnings that say why they still matter.
 */
import { defaultImage, imageRegistry } from '../contract/images.js';
import {
  BOOLEAN_STAGE_FIELDS,
  CURRENT_STAGE_TYPES,
  KUBERNETES_STAGE_TYPES,
  LEGACY_STAGE_TYPES,
  RESERVED_NAMES,
} from './stage-types.js';
import { isWholeExpression } from './spel.js';
import { jsonPathProblem } from './jsonpath.js';
import type { PipelineProblem } from './types.js';
import { STAGE_ACTIONS } from '../contract/index.js';
import { MESH_PRINCIPAL_PATTERN } from '../spec/schema.js';
import { STAGE_AUTH_FIELD } from './runners.js';

export type FieldReport = (
  severity: PipelineProblem['severity'],
  field: string,
  rule: string,
  message: string,
) => void;
type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => !!v && typeof v === 'object' && !Array.isArray(v);
const isSpel = (v: unknown) => typeof v === 'string' && v.includes('${');
const nonEmpty = (v: unknown) => typeof v === 'string' && v.trim() !== '';
const show = (v: unknown) =>
  v === undefined
    ? 'no value (the field is missing)'
    : typeof v === 'string'
      ? `string "${v.length > 40 ? v.slice(0, 37) + '...' : v}"`
      : Array.isArray(v)
        ? `an array ${JSON.stringify(v).slice(0, 50)}`
        : `${v === null ? 'null' : typeof v} ${JSON.stringify(v)?.slice(0, 40)}`;

function requireString(
  s: Obj,
  field: string,
  rule: string,
  why: string,
  report: FieldReport,
  severity: PipelineProblem['severity'] = 'error',
): void {
  if (!nonEmpty(s[field]))
    report(
      severity,
      field,
      rule,
      s[field] === undefined
        ? `required: ${why}`
        : `expected a non-empty string, found ${show(s[field])}: ${why}`,
    );
}

function checkCommon(s: Obj, report: FieldReport): void {
  if (s.name === undefined)
    report(
      'warning',
      'name',
      'stage-name',
      'no name: Deck shows the type, and #stage()/#judgment() cannot find it by name',
    );
  else if (typeof s.name !== 'string')
    report('error', 'name', 'stage-name', `expected a string, found ${show(s.name)}`);
  for (const f of BOOLEAN_STAGE_FIELDS) {
    const v = s[f];
    if (v === undefined || typeof v === 'boolean') continue;
    report(
      'error',
      f,
      'boolean-field',
      `expected a JSON boolean, found ${show(v)}: Orca reads it as a boolean (a string is a cast error or silently false)`,
    );
  }
  if (s.waitForCompletion !== undefined && typeof s.waitForCompletion !== 'boolean' && s.type !== 'script') {
    report(
      'error',
      'waitForCompletion',
      'boolean-field',
      `expected a JSON boolean, found ${show(s.waitForCompletion)}`,
    );
  }
  if (s.stageTimeoutMs !== undefined && typeof s.stageTimeoutMs !== 'number' && !isSpel(s.stageTimeoutMs)) {
    report(
      'error',
      'stageTimeoutMs',
      'number-field',
      `expected a number of milliseconds, found ${show(s.stageTimeoutMs)}`,
    );
  }
  if (s.stageEnabled !== undefined) {
    const se = s.stageEnabled;
    if (!isObj(se))
      report(
        'error',
        'stageEnabled',
        'stage-enabled',
        `expected {"type":"expression","expression":"<SpEL>"}, found ${show(se)}`,
      );
    else if (se.type !== 'expression')
      report(
        'warning',
        'stageEnabled.type',
        'stage-enabled',
        `type ${show(se.type)} is not "expression": Orca treats the stage as unconditional`,
      );
    else if (!nonEmpty(se.expression))
      report(
        'warning',
        'stageEnabled.expression',
        'stage-enabled',
        'empty expression: Orca treats the stage as unconditional',
      );
  }
  if (
    s.failPipeline === false &&
    s.continuePipeline === false &&
    s.completeOtherBranchesThenFail !== true &&
    s.type !== 'manualJudgment'
  ) {
    // Legitimate ("halt this branch"), but it is the classic way a failed check ends in a green pipeline.
    report(
      'warning',
      'failPipeline',
      'fail-semantics',
      'failPipeline and continuePipeline are both false: a failure STOPs this branch and the pipeline can still end SUCCEEDED',
    );
  }
  if (Array.isArray(s.notifications) && s.notifications.length && s.sendNotifications !== true) {
    report(
      'warning',
      'sendNotifications',
      'stage-notifications',
      'stage notifications are configured but sendNotifications is not true: Echo ignores them',
    );
  }
  for (const f of ['manifestArtifactId', 'consumeArtifactId'] as const) {
    if (s[f] !== undefined && s[f] !== null && typeof s[f] !== 'string')
      report('error', f, 'artifact-id', `expected an expected-artifact id string, found ${show(s[f])}`);
  }
}

function checkKubernetes(s: Obj, report: FieldReport): void {
  if (!nonEmpty(s.account) && !nonEmpty(s.credentials))
    report(
      'error',
      'account',
      'k8s-account',
      'required: the Clouddriver Kubernetes account the stage acts on',
    );
  if (s.cloudProvider === undefined)
    report(
      'warning',
      'cloudProvider',
      'k8s-cloud-provider',
      'missing: Orca routes the operation to Clouddriver by cloudProvider; set "kubernetes"',
    );
  else if (s.cloudProvider !== 'kubernetes' && !isSpel(s.cloudProvider))
    report(
      'error',
      'cloudProvider',
      'k8s-cloud-provider',
      `expected "kubernetes", found ${show(s.cloudProvider)}`,
    );
  if (
    s.mode !== 'dynamic' &&
    s.mode !== 'label' &&
    typeof s.manifestName === 'string' &&
    !isSpel(s.manifestName) &&
    s.manifestName.trim().split(/\s+/).length !== 2
  ) {
    report(
      'error',
      'manifestName',
      'k8s-selector',
      `expected "<kind> <name>" such as "deployment http-lb", found ${show(s.manifestName)}`,
    );
  }
  if (s.mode === 'dynamic')
    for (const f of ['cluster', 'criteria'])
      if (!nonEmpty(s[f]))
        report('error', f, 'k8s-selector', 'required for a dynamic target (mode "dynamic")');
}

function checkDeployManifest(s: Obj, report: FieldReport): void {
  const source = s.source ?? (s.manifestArtifactId ? 'artifact' : 'text');
  if (s.source === undefined)
    report(
      'warning',
      'source',
      'deploy-source',
      `missing: Deck requires "text" or "artifact"; inferred "${source}"`,
    );
  if (source === 'text') {
    if (!Array.isArray(s.manifests) || s.manifests.length === 0)
      report(
        'error',
        'manifests',
        'deploy-manifests',
        `source "text" needs a non-empty manifests array, found ${show(s.manifests)}`,
      );
    else
      s.manifests.forEach((m, i) => {
        if (!isObj(m))
          report(
            'error',
            `manifests[${i}]`,
            'deploy-manifests',
            `expected a manifest object, found ${show(m)}`,
          );
      });
  } else if (source === 'artifact') {
    if (!nonEmpty(s.manifestArtifactId) && !isObj(s.manifestArtifact))
      report(
        'error',
        'manifestArtifactId',
        'deploy-artifact',
        'source "artifact" needs manifestArtifactId (an expected artifact id)',
      );
  } else if (!isSpel(source))
    report('error', 'source', 'deploy-source', `expected "text" or "artifact", found ${show(source)}`);
  const tm = s.trafficManagement;
  if (isObj(tm) && tm.enabled === true) {
    const o = isObj(tm.options) ? tm.options : {};
    if (!Array.isArray(o.services) || o.services.length === 0)
      report(
        'error',
        'trafficManagement.options.services',
        'traffic-management',
        'traffic management needs at least one "service <name>"',
      );
    if (o.strategy === 'redblack')
      report(
        'warning',
        'trafficManagement.options.strategy',
        'traffic-management',
        '"redblack" is deprecated: use "bluegreen"',
      );
    else if (o.strategy !== undefined && !['bluegreen', 'highlander', 'none'].includes(String(o.strategy)))
      report(
        'error',
        'trafficManagement.options.strategy',
        'traffic-management',
        `expected bluegreen, highlander or none, found ${show(o.strategy)}`,
      );
  }
}

function checkWebhook(s: Obj, report: FieldReport): void {
  if (s.alias === 'preconfiguredWebhook') return; // url/method come from Orca's configuration
  requireString(s, 'url', 'webhook-url', 'the URL Orca calls', report);
  if (s.method !== undefined && !/^(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS|TRACE)$/i.test(String(s.method)))
    report('error', 'method', 'webhook-method', `expected an HTTP method, found ${show(s.method)}`);
  for (const f of ['successStatuses', 'terminalStatuses', 'canceledStatuses']) {
    const v = s[f];
    if (v === undefined || v === null || typeof v === 'string') continue;
    const hint = Array.isArray(v) ? `; write "${v.join(',')}"` : '';
    report(
      'error',
      f,
      'webhook-status-strings',
      `must be a comma-separated string, found ${show(v)}: Orca splits a string on commas and cannot map a list${hint}`,
    );
  }
  for (const f of ['failFastStatusCodes', 'retryStatusCodes', 'webhookRetryStatusCodes']) {
    const v = s[f];
    if (v === undefined || v === null) continue;
    if (!Array.isArray(v) || v.some((c) => !Number.isInteger(c)))
      report(
        'error',
        f,
        'webhook-status-codes',
        `expected an array of integer HTTP status codes, found ${show(v)}`,
      );
  }
  if (s.customHeaders !== undefined && s.customHeaders !== null) {
    if (!isObj(s.customHeaders))
      report(
        'error',
        'customHeaders',
        'webhook-headers',
        `expected a map of header name to string, found ${show(s.customHeaders)}`,
      );
    else
      for (const [k, v] of Object.entries(s.customHeaders)) {
        if (typeof v !== 'string' && !(Array.isArray(v) && v.every((x) => typeof x === 'string')))
          report(
            'error',
            `customHeaders.${k}`,
            'webhook-headers',
            `expected a string (or list of strings), found ${show(v)}`,
          );
        else if ([v].flat().some((x) => /\bencrypted:/.test(String(x))))
          report(
            'error',
            `customHeaders.${k}`,
            'webhook-secret-reference',
            "a Spinnaker secret reference is resolved only in Spinnaker's configuration files: in pipeline JSON it is sent literally. Declare the header in a preconfigured webhook (clover-cd pipeline orca-config)",
          );
      }
  }
  checkStageServerAuth(s, report);
  for (const f of ['statusJsonPath', 'statusUrlJsonPath', 'progressJsonPath']) {
    const v = s[f];
    if (v === undefined || v === null || v === '') continue;
    const msg =
      typeof v === 'string'
        ? jsonPathProblem(v)
        : `expected a JsonPath string such as $.status, found ${show(v)}`;
    if (msg)
      report(
        'error',
        f,
        'webhook-json-path',
        `${msg}: Orca compiles it with Jayway JsonPath after calling the webhook, and the stage fails`,
      );
  }
  if (s.waitForCompletion === true) {
    const res = s.statusUrlResolution ?? 'getMethod';
    if (!['getMethod', 'locationHeader', 'webhookResponse'].includes(String(res)))
      report(
        'error',
        'statusUrlResolution',
        'webhook-status-url',
        `expected getMethod, locationHeader or webhookResponse, found ${show(res)}`,
      );
    if (res === 'webhookResponse' && !nonEmpty(s.statusUrlJsonPath))
      report(
        'error',
        'statusUrlJsonPath',
        'webhook-status-url',
        'statusUrlResolution "webhookResponse" needs statusUrlJsonPath: otherwise "The status URL couldn\'t be resolved" (TERMINAL)',
      );
    if (nonEmpty(s.statusJsonPath) && !nonEmpty(s.successStatuses))
      report(
        'error',
        'successStatuses',
        'webhook-success-statuses',
        'statusJsonPath is set but successStatuses is empty: a text status can never map to SUCCEEDED and the stage runs until its timeout',
      );
    if (nonEmpty(s.statusJsonPath) && !nonEmpty(s.terminalStatuses))
      report(
        'warning',
        'terminalStatuses',
        'webhook-terminal-statuses',
        'no terminalStatuses: a failed job keeps the stage RUNNING until its timeout',
      );
  }
}

const STAGE_SERVER_ACTION = new RegExp(`/api/v1/releases/[^/]+/(${STAGE_ACTIONS.join('|')})$`);

/**
 * An inline webhook to clover-cd's stage server: the server (deploy/clover-cd) refuses a call without credentials
 * with 401, which Orca treats as TERMINAL. Such a stage works only when it declares the mesh identity the server
 * trusts (STAGE_AUTH_FIELD, rendered from spinnaker.stageServer.meshAuth).
 */
function checkStageServerAuth(s: Obj, report: FieldReport): void {
  let path: string;
  try {
    path = new URL(String(s.url)).pathname;
  } catch {
    return;
  }
  if (!STAGE_SERVER_ACTION.test(path)) return;
  const headers = isObj(s.customHeaders) ? s.customHeaders : {};
  const authorization = Object.entries(headers).find(([k]) => k.toLowerCase() === 'authorization');
  if (authorization) {
    if (![authorization[1]].flat().some((x) => /\bencrypted:/.test(String(x))))
      report(
        'warning',
        `customHeaders.${authorization[0]}`,
        'webhook-secret-literal',
        "a literal Authorization header puts the stage server's token into pipeline JSON (Front50 stores it, Deck shows it): use a preconfigured webhook (clover-cd pipeline orca-config) or the mesh identity (spinnaker.stageServer.meshAuth)",
      );
    return;
  }
  const declared = s[STAGE_AUTH_FIELD];
  if (
    isObj(declared) &&
    declared.mode === 'mesh-identity' &&
    typeof declared.principal === 'string' &&
    new RegExp(MESH_PRINCIPAL_PATTERN).test(declared.principal)
  )
    return;
  report(
    'error',
    STAGE_AUTH_FIELD,
    'stage-server-auth',
    `calls the clover-cd stage server without credentials: the server refuses it (401), which Orca treats as TERMINAL. Declare the mesh identity the server trusts ({"mode": "mesh-identity", "principal": "spiffe://..."}; render the spec with spinnaker.stageServer.meshAuth and apply deploy/clover-cd/overlays/mesh-auth), or use preconfigured stages (clover-cd pipeline orca-config)`,
  );
}

function checkRunJob(s: Obj, report: FieldReport): void {
  if (s.alias !== 'runJob')
    report(
      'error',
      'alias',
      'runjob-alias',
      `runJobManifest needs "alias": "runJob", found ${show(s.alias)}: Orca has no runJobManifest builder ("No StageDefinitionBuilder implementation for runJobManifest(alias: null)")`,
    );
  if ((s.source ?? 'text') === 'text') {
    const m = s.manifest;
    if (!isObj(m))
      report(
        'error',
        'manifest',
        'runjob-manifest',
        `expected one Job manifest object, found ${show(m)}${Array.isArray(m) ? ' (Run Job only supports a single Job)' : ''}`,
      );
    else if (m.kind !== 'Job' && !isSpel(m.kind))
      report('error', 'manifest.kind', 'runjob-manifest', `expected kind "Job", found ${show(m.kind)}`);
    else {
      const containers = (m.spec as { template?: { spec?: { containers?: unknown } } } | undefined)?.template
        ?.spec?.containers;
      (Array.isArray(containers) ? containers : []).forEach((c, i) => {
        const image = isObj(c) ? c.image : undefined;
        if (typeof image === 'string' && !isSpel(image) && !imageRegistry(image)) {
          report(
            'warning',
            `manifest.spec.template.spec.containers[${i}].image`,
            'runjob-image-registry',
            `"${image}" names no registry, so the cluster pulls it from Docker Hub; clover-cd's image is ${defaultImage('clover-cd')}`,
          );
        }
      });
    }
  }
  if (s.consumeArtifactSource === 'propertyFile' && !nonEmpty(s.propertyFile))
    report(
      'error',
      'propertyFile',
      'runjob-property-file',
      'consumeArtifactSource "propertyFile" needs propertyFile = the container whose log carries SPINNAKER_PROPERTY_* lines',
    );
}

function checkJenkins(s: Obj, report: FieldReport): void {
  // Orca only notices when the stage starts (and v1 templates fill these in at plan time), so: warnings.
  requireString(
    s,
    'master',
    'jenkins-master',
    'the Igor Jenkins master name; without it the stage fails when it starts',
    report,
    'warning',
  );
  requireString(
    s,
    'job',
    'jenkins-job',
    'the Jenkins job name; without it the stage fails when it starts',
    report,
    'warning',
  );
  if (s.parameters !== undefined && s.parameters !== null) {
    if (!isObj(s.parameters))
      report(
        'error',
        'parameters',
        'jenkins-parameters',
        `expected a map of parameter name to string, found ${show(s.parameters)}`,
      );
    else
      for (const [k, v] of Object.entries(s.parameters)) {
        if (typeof v !== 'string')
          report(
            'warning',
            `parameters.${k}`,
            'jenkins-parameters',
            `expected a string, found ${show(v)}: Jenkins receives every parameter as text`,
          );
      }
  }
  if (s.propertyFile !== undefined && typeof s.propertyFile !== 'string')
    report(
      'error',
      'propertyFile',
      'jenkins-property-file',
      `expected a file name, found ${show(s.propertyFile)}`,
    );
}

function checkOther(type: string, s: Obj, report: FieldReport): void {
  switch (type) {
    case 'wait':
      if (s.waitTime === undefined)
        report('warning', 'waitTime', 'wait-time', 'no waitTime: Orca waits 0 seconds');
      else if (typeof s.waitTime !== 'number' && !isWholeExpression(String(s.waitTime))) {
        const numeric = typeof s.waitTime === 'string' && /^\d+$/.test(s.waitTime);
        report(
          numeric ? 'warning' : 'error',
          'waitTime',
          'wait-time',
          `expected a number of seconds, found ${show(s.waitTime)}${numeric ? ' (Orca parses it, but write a number)' : ''}`,
        );
      }
      break;
    case 'manualJudgment':
      if (
        s.judgmentInputs !== undefined &&
        (!Array.isArray(s.judgmentInputs) ||
          s.judgmentInputs.some((i) => !isObj(i) || typeof i.value !== 'string'))
      ) {
        report(
          'error',
          'judgmentInputs',
          'judgment-inputs',
          `expected [{"value": "..."}, ...], found ${show(s.judgmentInputs)}`,
        );
      }
      break;
    case 'pipeline':
      requireString(s, 'application', 'pipeline-stage', 'the application of the pipeline to run', report);
      requireString(
        s,
        'pipeline',
        'pipeline-stage',
        "the pipeline CONFIG ID to run (not its name; or ${#pipelineId('name')})",
        report,
      );
      break;
    case 'kayentaCanary': {
      const cc = isObj(s.canaryConfig) ? s.canaryConfig : undefined;
      if (!cc) {
        report('error', 'canaryConfig', 'kayenta', 'required');
        break;
      }
      if (!Array.isArray(cc.scopes) || cc.scopes.length === 0)
        report('error', 'canaryConfig.scopes', 'kayenta', 'must contain at least one scope');
      const hasEnd = Array.isArray(cc.scopes) && cc.scopes.some((sc) => isObj(sc) && nonEmpty(sc.endTimeIso));
      if (!cc.lifetimeDuration && !cc.lifetimeHours && !hasEnd)
        report(
          'error',
          'canaryConfig.lifetimeDuration',
          'kayenta',
          'needs lifetimeDuration (ISO-8601, e.g. PT0H30M) or a scope endTimeIso',
        );
      break;
    }
    case 'evaluateVariables':
      if (!Array.isArray(s.variables))
        report(
          'error',
          'variables',
          'evaluate-variables',
          `expected [{"key","value"}, ...], found ${show(s.variables)}`,
        );
      else
        s.variables.forEach((v, i) => {
          if (!isObj(v) || !nonEmpty(v.key))
            report('error', `variables[${i}].key`, 'evaluate-variables', 'each variable needs a key');
          else if (RESERVED_NAMES.has(String(v.key)))
            report(
              'warning',
              `variables[${i}].key`,
              'reserved-name',
              `"${v.key}" is a reserved name in Orca/Deck and breaks other stages`,
            );
        });
      break;
    case 'checkPreconditions':
      if (!Array.isArray(s.preconditions))
        report(
          'error',
          'preconditions',
          'preconditions',
          `expected an array, found ${show(s.preconditions)}`,
        );
      else
        s.preconditions.forEach((p, i) => {
          if (!isObj(p) || !nonEmpty(p.type))
            report(
              'error',
              `preconditions[${i}].type`,
              'preconditions',
              'each precondition needs a type (expression, stageStatus, clusterSize)',
            );
          else if (
            p.type === 'expression' &&
            !(
              isObj(p.context) &&
              (nonEmpty(p.context.expression) || typeof p.context.expression === 'boolean')
            )
          )
            report(
              'error',
              `preconditions[${i}].context.expression`,
              'preconditions',
              'an expression precondition needs context.expression',
            );
        });
      break;
    case 'patchManifest': {
      const body = s.patchBody;
      const strategy = isObj(s.options) ? s.options.mergeStrategy : undefined;
      if (isObj(body))
        report(
          'warning',
          'patchBody',
          'patch-body',
          'a bare object is legacy: Orca wraps it, Deck ≥1.17 writes an array',
        );
      else if (!Array.isArray(body) || body.length === 0)
        report('error', 'patchBody', 'patch-body', 'needs a non-empty patchBody array');
      else if (strategy !== 'json' && body.length > 1)
        report(
          'error',
          'patchBody',
          'patch-body',
          `only one patch object is valid with mergeStrategy "${strategy ?? 'strategic'}"`,
        );
      break;
    }
    case 'bakeManifest':
      if (!Array.isArray(s.inputArtifacts) && !isObj(s.inputArtifact))
        report('error', 'inputArtifacts', 'bake-inputs', 'needs at least one input artifact');
      if (!Array.isArray(s.expectedArtifacts) || s.expectedArtifacts.length !== 1)
        report(
          'error',
          'expectedArtifacts',
          'bake-output',
          'needs exactly one expected artifact (the baked manifest, embedded/base64)',
        );
      break;
  }
}

/** Every field rule for one stage. */
export function checkStageFields(s: Obj, report: FieldReport): void {
  const type = s.type;
  if (typeof type !== 'string' || type === '') {
    report(
      'error',
      'type',
      'stage-type',
      type === undefined
        ? 'required: Orca throws "type missing from pipeline"'
        : `expected a stage type string, found ${show(type)}`,
    );
    return;
  }
  checkCommon(s, report);
  if (LEGACY_STAGE_TYPES[type])
    report('warning', 'type', 'stage-type-legacy', `"${type}": ${LEGACY_STAGE_TYPES[type]}`);
  else if (
    (type === 'deploy' || type === 'runJob') &&
    (s.cloudProvider === 'kubernetes' ||
      (Array.isArray(s.clusters) && isObj(s.clusters[0]) && s.clusters[0].cloudProvider === 'kubernetes'))
  ) {
    report(
      'warning',
      'type',
      'stage-type-legacy',
      `"${type}" on the Kubernetes v1 provider, removed in Spinnaker 1.21: use ${type === 'deploy' ? 'deployManifest' : 'runJobManifest (alias runJob)'}`,
    );
  } else if (!CURRENT_STAGE_TYPES.has(type) && s.alias !== 'preconfiguredWebhook') {
    report(
      'warning',
      'type',
      'stage-type-unknown',
      `"${type}" is not an OSS Orca stage type: fine if it is a preconfigured webhook, custom stage or plugin of your Spinnaker, otherwise the stage fails with NoSuchStageDefinitionBuilderException`,
    );
  }
  if (KUBERNETES_STAGE_TYPES.has(type)) checkKubernetes(s, report);
  if (type === 'deployManifest') checkDeployManifest(s, report);
  else if (type === 'webhook') checkWebhook(s, report);
  else if (type === 'runJobManifest') checkRunJob(s, report);
  else if (type === 'jenkins') checkJenkins(s, report);
  else checkOther(type, s, report);
}
