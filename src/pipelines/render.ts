/**
 * Release spec → Spinnaker pipeline config (pure). The graph is one forward chain in which every stage
 * "continues on failure" (FAILED_CONTINUE) and runs only while everything before it SUCCEEDED
 * (stageEnabled); after the chain, a rollback stage runs when promotion did not succeed and a final
 * checkPreconditions stage fails the execution (TERMINAL) in that case. See README.md "Failure paths".
 */
import type { KubeObject } from '../services/platform.js';
import { canaryWeights } from '../spec/validate.js';
import type { ReleaseSpec, TriggerSpec } from '../spec/types.js';
import { InvalidInputError } from '../util/errors.js';
import { parseDurationMs } from '../util/units.js';
import { stablePipelineId, UUID_PATTERN } from './ids.js';
import { actionStage, type ActionParams, type ReleaseAction, type StageBody } from './runners.js';
import type { Json, NotificationConfig, PipelineConfig, StageConfig, TriggerConfig } from './types.js';

export interface RenderInput {
  spec: ReleaseSpec;
  /** Candidate manifests (parsed from service.candidateManifests); derived from candidateImage when absent. */
  candidateManifests?: KubeObject[];
  /** The load plan, inlined into the spec the stages receive when the spec names it by path. */
  loadPlan?: Record<string, unknown>;
}

export interface RenderResult {
  pipeline: PipelineConfig;
  /** Things the user should know about the rendered pipeline (not errors). */
  notes: string[];
}

const MINUTE = 60_000;
const quote = (name: string) => `'${name.replace(/'/g, "''")}'`;
const succeeded = (name: string) => `#stage(${quote(name)})['status'].toString() == 'SUCCEEDED'`;
const anySucceeded = (names: string[]) => names.map(succeeded).join(' || ');

/** Appends stages with string refIds "1", "2", ... in order; the order of calls is the order of the JSON. */
class ChainBuilder {
  readonly stages: StageConfig[] = [];
  add(name: string, body: StageBody, after: string[], opts: { guard?: string; onFailure: 'continue' | 'halt'; timeoutMs?: number }): string {
    const refId = String(this.stages.length + 1);
    const { type, ...rest } = body;
    const stage: StageConfig = { refId, requisiteStageRefIds: [...after], type, name, ...rest };
    if (opts.guard) stage.stageEnabled = { type: 'expression', expression: opts.guard };
    // continue: a failure is FAILED_CONTINUE so the rollback path downstream still runs.
    stage.failPipeline = opts.onFailure === 'halt';
    stage.continuePipeline = opts.onFailure === 'continue';
    stage.completeOtherBranchesThenFail = false;
    stage.failOnFailedExpressions = true;
    if (opts.timeoutMs) {
      stage.overrideTimeout = true;
      stage.stageTimeoutMs = opts.timeoutMs;
    }
    this.stages.push(stage);
    return refId;
  }
}

/** Where the forward chain stands: the last stage and the condition under which the release goes on. */
interface Cursor {
  refId: string;
  ok: string;
}

export function candidateDeployment(spec: ReleaseSpec): KubeObject {
  const s = spec.service;
  const labels = { app: s.name, [s.versionLabel ?? 'version']: s.candidate };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: `${s.name}-${s.candidate}`, namespace: s.namespace, labels },
    spec: {
      replicas: 1,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: { containers: [{ name: s.name, image: s.candidateImage!, ports: [{ containerPort: s.port }] }] },
      },
    },
  };
}

function renderTrigger(t: TriggerSpec, application: string): TriggerConfig {
  const { type, ...rest } = t;
  const out: TriggerConfig = { type, enabled: true };
  if (t.type === 'pipeline') {
    // A UUID is a config id; anything else names a clover-cd pipeline, whose id is derived the same way.
    out.application = t.application;
    out.pipeline = UUID_PATTERN.test(t.pipeline) ? t.pipeline : stablePipelineId(t.application, t.pipeline);
    out.status = t.status ?? ['successful'];
    return out;
  }
  Object.assign(out, rest);
  if (t.type === 'cron') out.id = stablePipelineId(application, `cron:${t.cronExpression}`);
  return out;
}

export function renderPipeline(input: RenderInput): RenderResult {
  const { spec } = input;
  const sp = spec.spinnaker;
  if (!sp) throw new InvalidInputError('the release spec has no "spinnaker" section: add spinnaker.account and spinnaker.stageServer.url to render a pipeline', [{ path: 'spinnaker', message: 'required to render a Spinnaker pipeline' }]);
  const notes: string[] = [];
  const application = sp.application ?? spec.application;
  const name = sp.pipelineName ?? spec.metadata.name;
  const runner = sp.runner ?? 'webhook';
  const { stable, candidate } = spec.service;

  const payloadSpec = JSON.parse(JSON.stringify(input.loadPlan && spec.load ? { ...spec, load: { ...spec.load, plan: input.loadPlan } } : spec)) as Json;
  if (runner === 'webhook' && sp.stageServer.auth && !sp.stageServer.auth.spinnaker) {
    notes.push('stageServer.auth names only an env/file secret: the webhook stages carry no Authorization header. Set spinnaker.stageServer.auth.spinnaker to a secret reference your Spinnaker resolves, or let the stage server accept the X-Clover-Signature of a preconfigured webhook.');
  }
  if (spec.strategy.mirror) notes.push('strategy.mirror is run by `clover-cd release` and the stage server; the Spinnaker pipeline starts at the first weighted step.');

  const chain = new ChainBuilder();
  const judgmentNotifications: NotificationConfig[] = (sp.notifications ?? []).map((n) => ({ type: n.type, address: n.address, level: 'stage', when: ['manualJudgment'] }));
  const action = (stageName: string, act: ReleaseAction, params: ActionParams, after: Cursor | undefined, timeoutMs: number, onFailure: 'continue' | 'halt' = 'continue'): Cursor => {
    const refId = chain.add(stageName, actionStage(spec, payloadSpec, application, act, params), after ? [after.refId] : [], { guard: after?.ok, onFailure, timeoutMs });
    return { refId, ok: succeeded(stageName) };
  };
  const judgment = (stageName: string, instructions: string, after: Cursor): Cursor => {
    const body: StageBody = {
      type: 'manualJudgment',
      instructions,
      judgmentInputs: [{ value: 'continue' }, { value: 'rollback' }],
      propagateAuthenticationContext: false,
    };
    if (judgmentNotifications.length) Object.assign(body, { sendNotifications: true, notifications: judgmentNotifications });
    const refId = chain.add(stageName, body, [after.refId], { guard: after.ok, onFailure: 'continue' });
    return { refId, ok: `${succeeded(stageName)} && #judgment(${quote(stageName)}) == 'continue'` };
  };
  /** Load + gate for one window, repeated while the gate is inconclusive (webhook runner only). */
  const analysis = (label: string, params: ActionParams, window: string, after: Cursor): Cursor => {
    const windowMs = parseDurationMs(window);
    const timeoutMs = 3 * windowMs + 10 * MINUTE;
    if (!spec.load && !spec.gate) {
      const refId = chain.add(`Observe ${label}`, { type: 'wait', waitTime: Math.ceil(windowMs / 1000), skipWaitText: `observing ${label}` }, [after.refId], { guard: after.ok, onFailure: 'continue' });
      return { refId, ok: succeeded(`Observe ${label}`) };
    }
    let cursor = after;
    const gates: string[] = [];
    const retries = runner === 'webhook' ? (spec.strategy.canary ?? spec.strategy.blueGreen ?? spec.strategy.abTest)?.maxInconclusive ?? 0 : 0;
    for (let attempt = 0; attempt <= retries; attempt++) {
      const suffix = attempt ? ` (retry ${attempt})` : '';
      let entry = cursor;
      if (attempt) {
        const prev = quote(gates[gates.length - 1]);
        entry = { refId: cursor.refId, ok: `#stage(${prev})['status'].toString() == 'FAILED_CONTINUE' && #stage(${prev})['context']['webhook']['monitor']['body']['status'] == 'INCONCLUSIVE'` };
      }
      if (spec.load) entry = action(`Load ${label}${suffix}`, 'load', { ...params, window }, entry, timeoutMs);
      if (spec.gate) {
        entry = action(`Gate ${label}${suffix}`, 'gate', { ...params, window }, entry, timeoutMs);
        gates.push(`Gate ${label}${suffix}`);
      }
      cursor = entry;
    }
    return { refId: cursor.refId, ok: gates.length ? anySucceeded(gates) : cursor.ok };
  };
  if (runner !== 'webhook' && Object.values(spec.strategy).some((s) => (s as { maxInconclusive?: number }).maxInconclusive)) {
    notes.push(`maxInconclusive is rendered as retry stages for the webhook runner only; with runner "${runner}" an inconclusive gate rolls back.`);
  }

  // 1. the candidate workload, through Spinnaker so it shows in its cluster view
  const manifests = input.candidateManifests ?? (spec.service.candidateImage ? [candidateDeployment(spec)] : []);
  let cursor: Cursor | undefined;
  if (manifests.length) {
    const text = JSON.stringify(manifests);
    const refId = chain.add(`Deploy ${candidate}`, {
      type: 'deployManifest',
      account: sp.account,
      cloudProvider: 'kubernetes',
      moniker: { app: application },
      source: 'text',
      manifests: manifests as unknown as Json[],
      // Manifests with literal ${...} (Helm, Prometheus rules) must not be evaluated as SpEL.
      skipExpressionEvaluation: text.includes('${'),
      trafficManagement: { enabled: false, options: { enableTraffic: false, services: [], strategy: 'none' } },
    }, [], { onFailure: 'continue', timeoutMs: 15 * MINUTE });
    cursor = { refId, ok: succeeded(`Deploy ${candidate}`) };
  } else notes.push('service has neither candidateImage nor candidateManifests: the candidate must already be deployed; the pipeline starts at route preparation.');
  cursor = action(`Prepare routes for ${candidate}`, 'deploy', {}, cursor, 15 * MINUTE);

  // 2. the strategy
  if (spec.strategy.canary) {
    const c = spec.strategy.canary;
    const weights = canaryWeights(c);
    weights.forEach((weight, i) => {
      cursor = action(`Shift ${weight}% to ${candidate}`, 'traffic', { weight }, cursor, 10 * MINUTE);
      cursor = analysis(`at ${weight}%`, { weight, step: i + 1 }, c.window, cursor!);
      if (c.judgmentAt?.includes(weight)) cursor = judgment(`Continue after ${weight}%?`, `Gate passed at ${weight}% of traffic on ${candidate}. Choose "continue" to go on, "rollback" to return all traffic to ${stable}.`, cursor);
    });
  } else if (spec.strategy.blueGreen) {
    const bg = spec.strategy.blueGreen;
    cursor = analysis(`preview of ${candidate}`, { weight: 0 }, bg.previewWindow, cursor);
    if (bg.judgment) cursor = judgment(`Switch traffic to ${candidate}?`, `The preview of ${candidate} passed its gate. Choose "continue" to switch all traffic from ${stable} to ${candidate}.`, cursor);
    cursor = action(`Switch traffic to ${candidate}`, 'traffic', { weight: 100 }, cursor, 10 * MINUTE);
  } else if (spec.strategy.abTest) {
    const ab = spec.strategy.abTest;
    cursor = action(`Route matching requests to ${candidate}`, 'traffic', { step: 1 }, cursor, 10 * MINUTE);
    cursor = analysis('A/B', { step: 1 }, ab.window, cursor);
    if (ab.judgment) cursor = judgment(`Promote ${candidate}?`, `The A/B test passed its gate. Choose "continue" to send all traffic to ${candidate}.`, cursor);
  }

  // 3. promote, or roll back; then make the execution's status tell the truth
  const promote = `Promote ${candidate}`;
  cursor = action(promote, 'promote', {}, cursor, 15 * MINUTE);
  const rollbackRef = chain.add(`Roll back to ${stable}`, actionStage(spec, payloadSpec, application, 'rollback', {}), [cursor.refId], {
    guard: `#stage(${quote(promote)})['status'].toString() != 'SUCCEEDED'`,
    onFailure: 'halt',
    timeoutMs: 15 * MINUTE,
  });
  chain.add('Release verdict', {
    type: 'checkPreconditions',
    preconditions: [
      {
        type: 'expression',
        context: { expression: succeeded(promote), failureMessage: `${candidate} was not promoted: the release was rolled back to ${stable} (see the failed stage above)` },
        failPipeline: true,
      },
    ],
  }, [rollbackRef], { onFailure: 'halt' });

  const pipeline: PipelineConfig = {
    id: stablePipelineId(application, name),
    application,
    name,
    description: `${spec.metadata.name}: ${spec.service.name} ${stable} → ${candidate} (${Object.keys(spec.strategy).join(' + ')}). Generated by clover-cd from the release spec; edit the spec, not this pipeline.`,
    spelEvaluator: 'v4',
    limitConcurrent: true,
    keepWaitingPipelines: false,
    locked: { ui: true, allowUnlockUi: true, description: 'Managed by clover-cd: changes here are overwritten by the next `clover-cd pipeline save`.' },
    parameterConfig: [],
    expectedArtifacts: [],
    triggers: (sp.triggers ?? []).map((t) => renderTrigger(t, application)),
    notifications: (sp.notifications ?? []).map((n) => ({ type: n.type, address: n.address, level: 'pipeline', when: n.when ?? ['pipeline.failed'] })),
    stages: chain.stages,
  };
  return { pipeline, notes };
}

/** The bytes `pipeline render` writes: stable key order, two-space indent, trailing newline. */
export function pipelineJson(pipeline: unknown): string {
  return JSON.stringify(pipeline, null, 2) + '\n';
}
