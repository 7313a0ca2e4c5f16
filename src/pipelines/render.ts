// Over 400 lines: the pipeline render (the stages' payload, the chain builder, a helper per stage kind and plan step), kept together to read in the order the stages run.
/**
 * Release spec → Spinnaker pipeline config (pure). The graph is one forward chain in which every stage
 * "continues on failure" (FAILED_CONTINUE) and runs only while everything before it SUCCEEDED
 * (stageEnabled); after the chain, a rollback stage runs when promotion did not succeed and a final
 * checkPreconditions stage fails the execution (TERMINAL) in that case. See README.md "Failure paths".
 */
import type { KubeObject } from '../services/platform.js';
import {
  candidateWorkloadName,
  planRelease,
  PREVIEW_HEADER,
  rulesForStep,
  type PlanStep,
} from '../canary/plan.js';
import type { ReleaseSpec, TriggerSpec } from '../spec/types.js';
import { InvalidInputError } from '../util/errors.js';
import { imageBinding, type ImageBinding } from './artifacts.js';
import { stablePipelineId, UUID_PATTERN } from './ids.js';
import { actionStage, type ActionParams, type ReleaseAction, type StageBody } from './runners.js';
import type { Json, NotificationConfig, PipelineConfig, StageConfig, TriggerConfig } from './types.js';

export interface RenderInput {
  spec: ReleaseSpec;
  /** Candidate manifests (parsed from service.candidateManifests); derived from candidateImage when absent. */
  candidateManifests?: KubeObject[];
  /** The load plan, inlined into the spec the stages receive when the spec names it by path. */
  loadPlan?: Record<string, unknown>;
  /** The spec's file, for the messages of refusals. */
  file?: string;
}

export interface RenderResult {
  pipeline: PipelineConfig;
  /** Things the user should know about the rendered pipeline (not errors). */
  notes: string[];
}

const MINUTE = 60_000;
export const INLINE_WEBHOOK_REFUSED =
  'inline webhook stages cannot carry a secret (Spinnaker resolves secret references only in its configuration files), and the stage server, as deploy/clover-cd ships it, refuses a call without credentials (401, TERMINAL in Orca): state how the server knows Orca — spinnaker.stageServer.meshAuth (Orca\'s mesh identity, deploy/clover-cd/overlays/mesh-auth), or spinnaker.stages: preconfigured (the secret header in orca-local.yml, `clover-cd pipeline orca-config`), or runner jenkins / runJob (README "Spinnaker stages and secrets")';
const quote = (name: string) => `'${name.replace(/'/g, "''")}'`;
const succeeded = (name: string) => `#stage(${quote(name)})['status'].toString() == 'SUCCEEDED'`;

/** Appends stages with string refIds "1", "2", ... in order; the order of calls is the order of the JSON. */
class ChainBuilder {
  readonly stages: StageConfig[] = [];
  add(
    name: string,
    body: StageBody,
    after: string[],
    opts: { guard?: string; onFailure: 'continue' | 'halt'; timeoutMs?: number },
  ): string {
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

/** A window as the stage server and `clover-cd stage --window` read it. */
const durationText = (ms: number) => (ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`);

/** The payload spec for the mirror window's gate (mirror-judgeable rules only), or undefined when none is left. */
export function mirrorGateSpec(spec: ReleaseSpec, payloadSpec: Json): Json | undefined {
  const rules = rulesForStep(spec.gate?.rules ?? [], { kind: 'mirror' });
  if (!rules.length) return undefined;
  const p = payloadSpec as { gate: Record<string, Json> };
  return {
    ...(payloadSpec as Record<string, Json>),
    gate: { ...p.gate, rules: JSON.parse(JSON.stringify(rules)) as Json },
  };
}

/** The candidate Deployment; `image` replaces candidateImage (the bare name an artifact binds to). */
export function candidateDeployment(spec: ReleaseSpec, image?: string): KubeObject {
  const s = spec.service;
  const labels = { app: s.name, [s.versionLabel ?? 'version']: s.candidate };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: candidateWorkloadName(spec), namespace: s.namespace, labels },
    spec: {
      replicas: 1,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          containers: [
            { name: s.name, image: image ?? s.candidateImage!, ports: [{ containerPort: s.port }] },
          ],
        },
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

/** The spec the stages receive, and the notes and refusals about how the stage server knows its caller. */
function stagePayload(input: RenderInput, notes: string[]): Json {
  const { spec } = input;
  const sp = spec.spinnaker!;
  const runner = sp.runner ?? 'webhook';
  // What the stages receive: the spec with the files it names inlined (the load plan; the candidate manifests
  // as Kubernetes objects in place of their paths), so a remote stage server or CI job needs no checkout.
  const payload: Record<string, unknown> = { ...spec };
  if (input.loadPlan && spec.load) payload.load = { ...spec.load, plan: input.loadPlan };
  if (input.candidateManifests && spec.service.candidateManifests)
    payload.service = { ...spec.service, candidateManifests: input.candidateManifests };
  const payloadSpec = JSON.parse(JSON.stringify(payload)) as Json;
  // Secret references belong to Spinnaker's configuration (orca-config), never to pipeline JSON.
  const payloadObj = payloadSpec as {
    spinnaker?: { stageServer?: { auth?: Record<string, unknown> } };
    github?: { token?: Record<string, unknown> };
  };
  delete payloadObj.spinnaker?.stageServer?.auth?.spinnaker;
  delete payloadObj.github?.token?.spinnaker;
  if (runner === 'webhook' && sp.stages !== 'preconfigured') {
    // An inline webhook stage cannot carry a secret, and the shipped server (deploy/clover-cd) refuses a caller
    // without credentials: 401, which Orca treats as TERMINAL. Only the mesh identity can vouch for Orca here.
    if (!sp.stageServer.meshAuth)
      throw new InvalidInputError(`${input.file ? `${input.file}: ` : ''}${INLINE_WEBHOOK_REFUSED}`, [
        {
          file: input.file,
          path: 'spinnaker.stageServer.meshAuth',
          message:
            'required for inline webhook stages (or spinnaker.stages: preconfigured, or runner jenkins / runJob)',
        },
      ]);
    notes.push(
      `inline webhook stages: the stage server must trust ${sp.stageServer.meshAuth.principal} (deploy/clover-cd/overlays/mesh-auth: sidecar, mutual TLS, an AuthorizationPolicy admitting only it; serve --trust-mesh-principal), and Orca must run with an Istio sidecar under that service account.`,
    );
  }
  if (sp.stages === 'preconfigured')
    notes.push(
      'preconfigured stages: Orca needs the webhook types of `clover-cd pipeline orca-config` in orca-local.yml (the stage server URL and secret header live there).',
    );
  return payloadSpec;
}

/**
 * The stages of one pipeline, appended in the order they run: each helper takes the cursor the release stands
 * at and returns the one after the stages it added.
 */
class StageWriter {
  readonly chain = new ChainBuilder();
  private readonly judgmentNotifications: NotificationConfig[];

  constructor(
    private readonly spec: ReleaseSpec,
    private readonly application: string,
    private readonly payloadSpec: Json,
    private readonly mirrorSpec: Json | undefined,
    private readonly maxInconclusive: number,
  ) {
    this.judgmentNotifications = (spec.spinnaker!.notifications ?? []).map((n) => ({
      type: n.type,
      address: n.address,
      level: 'stage',
      when: ['manualJudgment'],
    }));
  }

  action(
    stageName: string,
    act: ReleaseAction,
    params: ActionParams,
    after: Cursor | undefined,
    timeoutMs: number,
    onFailure: 'continue' | 'halt' = 'continue',
    body: Json = this.payloadSpec,
  ): Cursor {
    const refId = this.chain.add(
      stageName,
      actionStage(this.spec, body, this.application, act, params),
      after ? [after.refId] : [],
      { guard: after?.ok, onFailure, timeoutMs },
    );
    return { refId, ok: succeeded(stageName) };
  }

  judgment(stageName: string, instructions: string, after: Cursor): Cursor {
    const body: StageBody = {
      type: 'manualJudgment',
      instructions,
      judgmentInputs: [{ value: 'continue' }, { value: 'rollback' }],
      propagateAuthenticationContext: false,
    };
    if (this.judgmentNotifications.length)
      Object.assign(body, { sendNotifications: true, notifications: this.judgmentNotifications });
    const refId = this.chain.add(stageName, body, [after.refId], { guard: after.ok, onFailure: 'continue' });
    return { refId, ok: `${succeeded(stageName)} && #judgment(${quote(stageName)}) == 'continue'` };
  }

  /**
   * Load + gate for one window. An inconclusive window is analysed again inside the gate action, up to the
   * strategy's maxInconclusive (the engine owns that loop), so the pipeline shows exactly the stages that run.
   */
  analysis(
    label: string,
    params: ActionParams,
    windowMs: number,
    after: Cursor,
    gateSpec: Json = this.payloadSpec,
  ): Cursor {
    const { spec } = this;
    const timeoutMs = (this.maxInconclusive + 1) * (3 * windowMs) + 10 * MINUTE;
    if (!spec.load && !spec.gate) {
      const refId = this.chain.add(
        `Observe ${label}`,
        { type: 'wait', waitTime: Math.ceil(windowMs / 1000), skipWaitText: `observing ${label}` },
        [after.refId],
        { guard: after.ok, onFailure: 'continue' },
      );
      return { refId, ok: succeeded(`Observe ${label}`) };
    }
    let cursor = after;
    if (spec.load) cursor = this.action(`Load ${label}`, 'load', params, cursor, 3 * windowMs + 10 * MINUTE);
    if (spec.gate)
      cursor = this.action(`Gate ${label}`, 'gate', params, cursor, timeoutMs, 'continue', gateSpec);
    return cursor;
  }

  /**
   * The candidate workload, through Spinnaker so it shows in its cluster view; a failed deploy stops the
   * pipeline there (nothing was shifted, so there is nothing to roll back). Then the routes are prepared.
   */
  deployCandidate(manifests: KubeObject[], binding: ImageBinding | undefined, notes: string[]): Cursor {
    const sp = this.spec.spinnaker!;
    const { candidate } = this.spec.service;
    let cursor: Cursor | undefined;
    if (manifests.length) {
      const text = JSON.stringify(manifests);
      const refId = this.chain.add(
        `Deploy ${candidate}`,
        {
          type: 'deployManifest',
          account: sp.account,
          cloudProvider: 'kubernetes',
          moniker: { app: this.application },
          source: 'text',
          manifests: manifests as unknown as Json[],
          // Manifests with literal ${...} (Helm, Prometheus rules) must not be evaluated as SpEL.
          skipExpressionEvaluation: text.includes('${'),
          trafficManagement: {
            enabled: false,
            options: { enableTraffic: false, services: [], strategy: 'none' },
          },
          ...(binding ? { requiredArtifactIds: [binding.expectedArtifact.id as string] } : {}),
        },
        [],
        { onFailure: 'halt', timeoutMs: 15 * MINUTE },
      );
      cursor = { refId, ok: succeeded(`Deploy ${candidate}`) };
    } else
      notes.push(
        'service has neither candidateImage nor candidateManifests: the candidate must already be deployed; the pipeline starts at route preparation.',
      );
    return this.action(`Prepare routes for ${candidate}`, 'deploy', {}, cursor, 15 * MINUTE);
  }

  /**
   * One plan step: its traffic action, its analysis window, its judgment — in the order the state machine
   * (canary/machine.ts) runs them. `step` is the 1-based index `traffic set --step` and the stage server use.
   */
  step(s: PlanStep, after: Cursor): Cursor {
    const { spec, mirrorSpec } = this;
    const { stable, candidate } = spec.service;
    const step = s.index + 1;
    let c = after;
    switch (s.kind) {
      case 'mirror': {
        c = this.action(`Mirror ${s.mirrorPercent}% to ${candidate}`, 'traffic', { step }, c, 10 * MINUTE);
        const label = `of mirrored copies on ${candidate}`;
        if (spec.gate && mirrorSpec) return this.analysis(label, { step }, s.windowMs, c, mirrorSpec);
        if (spec.load) c = this.action(`Load ${label}`, 'load', { step }, c, 3 * s.windowMs + 10 * MINUTE);
        else if (!spec.gate) return this.analysis(label, { step }, s.windowMs, c);
        // No rule can judge the copies: a person looks at them (their answers never reach a client).
        return this.judgment(
          `Continue after mirroring to ${candidate}?`,
          `${s.mirrorPercent}% of ${stable}'s requests were copied to ${candidate} for ${durationText(s.windowMs)}; compare ${candidate}'s error rate and latency in the mesh metrics. Choose "continue" to start shifting traffic, "rollback" to stop the release.`,
          c,
        );
      }
      case 'weight':
        c = this.action(`Shift ${s.weight}% to ${candidate}`, 'traffic', { step }, c, 10 * MINUTE);
        c = this.analysis(`at ${s.weight}%`, { step }, s.windowMs, c);
        if (s.judgment)
          c = this.judgment(
            `Continue after ${s.weight}%?`,
            `Gate passed at ${s.weight}% of traffic on ${candidate}. Choose "continue" to go on, "rollback" to return all traffic to ${stable}.`,
            c,
          );
        return c;
      case 'preview':
        // The candidate is reachable only with the preview header; nothing is analysed before the switch.
        c = this.action(`Preview ${candidate}`, 'traffic', { step }, c, 10 * MINUTE);
        if (s.judgment)
          c = this.judgment(
            `Switch traffic to ${candidate}?`,
            `${candidate} is deployed and reachable with the header "${PREVIEW_HEADER}: true" (all other traffic stays on ${stable}). Choose "continue" to switch all traffic to ${candidate}; its gate runs after the switch and a failure switches straight back.`,
            c,
          );
        return c;
      case 'switch':
        c = this.action(`Switch traffic to ${candidate}`, 'traffic', { step }, c, 10 * MINUTE);
        c = this.analysis(`after the switch to ${candidate}`, { step }, s.windowMs, c);
        if (s.judgment)
          c = this.judgment(
            `Keep ${candidate}?`,
            `Gate passed with all traffic on ${candidate}. Choose "continue" to promote, "rollback" to switch back to ${stable}.`,
            c,
          );
        return c;
      case 'match':
        c = this.action(`Route matching requests to ${candidate}`, 'traffic', { step }, c, 10 * MINUTE);
        c = this.analysis('A/B', { step }, s.windowMs, c);
        if (s.judgment)
          c = this.judgment(
            `Promote ${candidate}?`,
            `The A/B test passed its gate. Choose "continue" to send all traffic to ${candidate}.`,
            c,
          );
        return c;
    }
  }

  /** Promote, or roll back; then make the execution's status tell the truth. */
  promoteOrRollBack(after: Cursor): void {
    const { stable, candidate } = this.spec.service;
    const promote = `Promote ${candidate}`;
    const cursor = this.action(promote, 'promote', {}, after, 15 * MINUTE);
    const rollbackRef = this.chain.add(
      `Roll back to ${stable}`,
      actionStage(this.spec, this.payloadSpec, this.application, 'rollback', {}),
      [cursor.refId],
      {
        guard: `#stage(${quote(promote)})['status'].toString() != 'SUCCEEDED'`,
        onFailure: 'halt',
        timeoutMs: 15 * MINUTE,
      },
    );
    this.chain.add(
      'Release verdict',
      {
        type: 'checkPreconditions',
        preconditions: [
          {
            type: 'expression',
            context: {
              expression: succeeded(promote),
              failureMessage: `${candidate} was not promoted: the release was rolled back to ${stable} (see the failed stage above)`,
            },
            failPipeline: true,
          },
        ],
      },
      [rollbackRef],
      { onFailure: 'halt' },
    );
  }
}

export function renderPipeline(input: RenderInput): RenderResult {
  const { spec } = input;
  const sp = spec.spinnaker;
  if (!sp)
    throw new InvalidInputError(
      'the release spec has no "spinnaker" section: add spinnaker.account and spinnaker.stageServer.url to render a pipeline',
      [{ path: 'spinnaker', message: 'required to render a Spinnaker pipeline' }],
    );
  const notes: string[] = [];
  const application = sp.application ?? spec.application;
  const name = sp.pipelineName ?? spec.metadata.name;
  const payloadSpec = stagePayload(input, notes);
  // The canary module's plan, refused (exit 2) like `clover-cd release` refuses it when a step cannot reach
  // the gate's minimum samples at the load's volume.
  const loadPlan =
    input.loadPlan ?? (spec.load && typeof spec.load.plan === 'object' ? spec.load.plan : undefined);
  const plan = planRelease(spec, { loadPlan });
  const mirrorSpec = mirrorGateSpec(spec, payloadSpec);
  if (plan.steps.some((s) => s.kind === 'mirror') && spec.gate && !mirrorSpec) {
    notes.push(
      'strategy.mirror: none of the gate rules can judge mirrored copies (only errorRate, latency, compareErrors and l4 can), so the mirror window ends in a manual judgment.',
    );
  }
  const writer = new StageWriter(spec, application, payloadSpec, mirrorSpec, plan.maxInconclusive);

  // 1. the candidate workload and its routes.
  // The candidate image as an expected artifact: each trigger deploys its own tag, a manual start the `tag` parameter.
  const binding = input.candidateManifests ? undefined : imageBinding(spec);
  notes.push(...(binding?.notes ?? []));
  const manifests =
    input.candidateManifests ??
    (spec.service.candidateImage ? [candidateDeployment(spec, binding?.name)] : []);
  let cursor = writer.deployCandidate(manifests, binding, notes);
  // 2. the strategy: one block per step of the canary module's plan (the plan `clover-cd release` runs), so
  // the pipeline and the CLI cannot drift apart.
  for (const step of plan.steps) cursor = writer.step(step, cursor);
  // 3. promote, or roll back; then the verdict.
  writer.promoteOrRollBack(cursor);

  const pipeline: PipelineConfig = {
    id: stablePipelineId(application, name),
    application,
    name,
    description: `${spec.metadata.name}: ${spec.service.name} ${spec.service.stable} → ${spec.service.candidate} (${Object.keys(spec.strategy).join(' + ')}). Generated by clover-cd from the release spec; edit the spec, not this pipeline.`,
    spelEvaluator: 'v4',
    limitConcurrent: true,
    keepWaitingPipelines: false,
    locked: {
      ui: true,
      allowUnlockUi: true,
      description:
        'Managed by clover-cd: changes here are overwritten by the next `clover-cd pipeline save`.',
    },
    parameterConfig: binding ? [binding.parameter] : [],
    expectedArtifacts: binding ? [binding.expectedArtifact] : [],
    triggers: (sp.triggers ?? []).map((t, i) => ({
      ...renderTrigger(t, application),
      ...(binding?.triggers.includes(i)
        ? { expectedArtifactIds: [binding.expectedArtifact.id as string] }
        : {}),
    })),
    notifications: (sp.notifications ?? []).map((n) => ({
      type: n.type,
      address: n.address,
      level: 'pipeline',
      when: n.when ?? ['pipeline.failed'],
    })),
    stages: writer.chain.stages,
  };
  return { pipeline, notes };
}

/** The bytes `pipeline render` writes: stable key order, two-space indent, trailing newline. */
export function pipelineJson(pipeline: unknown): string {
  return JSON.stringify(pipeline, null, 2) + '\n';
}
