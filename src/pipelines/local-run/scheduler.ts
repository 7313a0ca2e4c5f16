import type { KubeObject, Platform } from '../../services/platform.js';
import { sleep } from '../../util/retry.js';
import { evaluateCondition, resolveExpressions, type SpelContext } from './spel.js';
import { jenkinsAction, runJobAction } from './handlers/action-job.js';
import { bindArtifacts, prepareTrigger, requiredArtifacts } from './artifacts.js';
import { expandPreconfigured } from './preconfigured.js';
import { runWebhookStage, type WebhookStage } from './webhook.js';
import type { PreconfiguredWebhook } from '../preconfigured.js';
import type { TriggerEvent } from './trigger-events.js';

/**
 * Executes a Spinnaker pipeline config locally with Orca's semantics (reference §2.1-2.3): stages start
 * when every requisite is SUCCEEDED / FAILED_CONTINUE / SKIPPED, independent branches run in parallel,
 * stageEnabled false or unevaluable means SKIPPED, a failure becomes FAILED_CONTINUE / TERMINAL / STOPPED
 * per the stage's failPipeline / continuePipeline, a TERMINAL stage cancels the rest. Stage types it
 * cannot run end TERMINAL and are listed in `unsupported`: never skipped silently.
 */
export type StageStatus = 'NOT_STARTED' | 'RUNNING' | 'SUCCEEDED' | 'FAILED_CONTINUE' | 'TERMINAL' | 'STOPPED' | 'SKIPPED' | 'CANCELED';
export type ExecutionStatus = 'SUCCEEDED' | 'TERMINAL' | 'CANCELED';

export interface StageRun {
  refId: string;
  name: string;
  type: string;
  status: StageStatus;
  message?: string;
  startTime?: number;
  endTime?: number;
  context: Record<string, unknown>;
  outputs: Record<string, unknown>;
}

export interface LocalExecution {
  id: string;
  name: string;
  application: string;
  status: ExecutionStatus;
  stages: StageRun[];
  /** Stage types this runner cannot execute (those stages ended TERMINAL). */
  unsupported: string[];
  /** The trigger as the stages saw it: parameters with defaults, artifacts, resolvedExpectedArtifacts. */
  trigger: Record<string, unknown>;
}

export type RunEvent =
  | { type: 'stage-start'; stage: StageRun }
  | { type: 'stage-progress'; stage: StageRun; message: string }
  | { type: 'stage-end'; stage: StageRun };

export interface JudgmentRequest {
  stage: string;
  instructions?: string;
  inputs: string[];
}

/** One release action as a CI job or Kubernetes Job runs it (`clover-cd stage <action>`), for jenkins / runJob stages. */
export interface ActionRequest {
  action: string;
  spec: unknown;
  weight?: number;
  step?: number;
  window?: string;
  /** The pipeline execution the action belongs to (EXECUTION_ID / CLOVER_CD_EXECUTION_ID). */
  executionId?: string;
  /** A Run Job's container command line (command then args) and environment as written, for a host that runs it as the pod would. */
  command?: { argv: string[]; env: Record<string, string> };
}
export interface ActionResult {
  /** Job status of the stage server (SUCCEEDED, FAILED, INCONCLUSIVE, ERROR, CANCELED). */
  status: string;
  message: string;
  /** What `--properties` / SPINNAKER_PROPERTY_ lines carry: become stage outputs. */
  properties: Record<string, string>;
}

export interface ExecuteOptions {
  platform: Platform;
  /** Runs the action of a jenkins / runJobManifest stage (the command their job would run). */
  runAction?: (req: ActionRequest, signal: AbortSignal, onProgress: (m: string) => void) => Promise<ActionResult>;
  /**
   * Webhook URLs whose path starts with /api/v1/ go to this origin (the local stage server). A stage sends only the
   * headers it (or Orca's configuration) has, as Orca does; `throughMesh` adds what the mesh between Orca and the
   * server adds (the sidecar's x-forwarded-client-cert), when the run stands for a meshed deployment.
   */
  stageServer?: { origin: string; throughMesh?: (headers: Record<string, string | string[]>) => Record<string, string | string[]> };
  /** Answer manual judgments with "continue" (or the first input). */
  autoApprove?: boolean;
  /** Fixed answers by stage name (tests, the demo). */
  judgments?: Record<string, string>;
  /** Ask a person (TTY prompt). */
  judge?: (r: JudgmentRequest) => Promise<string>;
  signal?: AbortSignal;
  pollIntervalMs?: number;
  readyTimeoutMs?: number;
  /** The event (manual by default; `{type: 'docker', tag}`, webhook, jenkins, ... as Echo fires it); parameters and artifacts bound at start. */
  trigger?: TriggerEvent;
  /** Orca's `webhook.preconfigured` entries by type, for stages with alias preconfiguredWebhook. */
  preconfiguredWebhooks?: Map<string, PreconfiguredWebhook>;
  onEvent?: (e: RunEvent) => void;
  executionId?: string;
}

interface StageConfig {
  refId: string;
  requisiteStageRefIds?: string[];
  type: string;
  name?: string;
  stageEnabled?: { type?: string; expression?: string };
  failPipeline?: boolean;
  continuePipeline?: boolean;
  completeOtherBranchesThenFail?: boolean;
  failOnFailedExpressions?: boolean;
  skipExpressionEvaluation?: boolean;
  [k: string]: unknown;
}

const DONE_OK: StageStatus[] = ['SUCCEEDED', 'FAILED_CONTINUE', 'SKIPPED'];
export const LOCAL_STAGE_TYPES = ['webhook', 'jenkins', 'runJobManifest', 'wait', 'manualJudgment', 'checkPreconditions', 'deployManifest', 'patchManifest', 'evaluateVariables'];

class StageFailure extends Error {
  constructor(
    message: string,
    readonly status?: StageStatus,
  ) {
    super(message);
  }
}

const KINDS: Record<string, { apiVersion: string; kind: string }> = Object.fromEntries(
  [
    ['apps/v1', 'Deployment'],
    ['apps/v1', 'ReplicaSet'],
    ['apps/v1', 'StatefulSet'],
    ['apps/v1', 'DaemonSet'],
    ['v1', 'Service'],
    ['v1', 'ConfigMap'],
    ['v1', 'Secret'],
    ['networking.istio.io/v1beta1', 'VirtualService'],
    ['networking.istio.io/v1beta1', 'DestinationRule'],
    ['networking.istio.io/v1beta1', 'Gateway'],
  ].map(([apiVersion, kind]) => [kind.toLowerCase(), { apiVersion, kind }]),
);

export async function executePipeline(pipeline: Record<string, unknown>, opts: ExecuteOptions): Promise<LocalExecution> {
  const configs = (pipeline.stages as StageConfig[] | undefined) ?? [];
  const runs = new Map<string, StageRun>();
  for (const c of configs) {
    const { refId, requisiteStageRefIds: _r, type, name, ...context } = c;
    runs.set(refId, { refId, name: name ?? type, type, status: 'NOT_STARTED', context, outputs: {} });
  }
  const execution = {
    id: opts.executionId ?? `local-${Date.now().toString(36)}`,
    name: String(pipeline.name ?? ''),
    application: String(pipeline.application ?? ''),
  };
  // Echo/Orca at start: parameter defaults, the docker event's artifact, expected artifacts bound (exit 2 if not).
  const { trigger, bound } = prepareTrigger(pipeline, opts.trigger, (t) => ({ vars: { trigger: t, parameters: t.parameters ?? {}, execution: { ...execution, trigger: t } }, stage: () => undefined, stageByRefId: () => undefined, judgment: () => undefined }));
  const unsupported = new Set<string>();
  const halt = new AbortController();
  const onOuterAbort = () => halt.abort(new Error('execution canceled'));
  opts.signal?.addEventListener('abort', onOuterAbort, { once: true });
  let canceled = false;

  const view = (r: StageRun) => ({ id: r.refId, refId: r.refId, name: r.name, type: r.type, status: r.status, context: r.context, outputs: r.outputs });
  const spel = (): SpelContext => {
    const outputs: Record<string, unknown> = {};
    for (const r of runs.values()) if (r.status !== 'NOT_STARTED' && r.status !== 'RUNNING') Object.assign(outputs, r.outputs);
    return {
      vars: { ...outputs, execution: { ...execution, trigger }, trigger, parameters: (trigger.parameters as object) ?? {} },
      stage: (n) => {
        const r = [...runs.values()].find((s) => s.name === n || s.refId === n);
        return r ? view(r) : undefined;
      },
      stageByRefId: (id) => (runs.has(id) ? view(runs.get(id)!) : undefined),
      judgment: (n) => {
        const r = [...runs.values()].find((s) => s.name === n && s.type === 'manualJudgment');
        return r?.context.judgmentInput as string | undefined;
      },
    };
  };

  const failureStatus = (c: StageConfig): StageStatus => (c.continuePipeline ? 'FAILED_CONTINUE' : c.failPipeline === false ? 'STOPPED' : 'TERMINAL');

  async function runStage(c: StageConfig, r: StageRun): Promise<void> {
    r.status = 'RUNNING';
    r.startTime = Date.now();
    opts.onEvent?.({ type: 'stage-start', stage: r });
    const finish = (status: StageStatus, message?: string) => {
      r.status = status;
      r.message = message;
      r.endTime = Date.now();
      opts.onEvent?.({ type: 'stage-end', stage: r });
    };
    const se = c.stageEnabled;
    if (se && se.type === 'expression' && se.expression) {
      let enabled: boolean;
      try {
        enabled = evaluateCondition(se.expression, spel());
      } catch (err) {
        return finish('SKIPPED', `stageEnabled could not be evaluated (${(err as Error).message}): skipped, as Orca does`);
      }
      if (!enabled) return finish('SKIPPED', 'stageEnabled is false');
    }
    try {
      const failures: string[] = [];
      const { skipExpressionEvaluation, ...ctx } = r.context;
      const resolved = skipExpressionEvaluation ? { ...r.context } : resolveExpressions(ctx, spel(), failures);
      if (failures.length && c.failOnFailedExpressions) throw new StageFailure(`expressions failed: ${failures.join('; ')}`);
      const message = await dispatch(c.type, resolved as Record<string, unknown>, r);
      finish('SUCCEEDED', message);
    } catch (err) {
      if (halt.signal.aborted && !(err instanceof StageFailure && err.status)) return finish('CANCELED', 'canceled');
      const status = err instanceof StageFailure && err.status ? err.status : failureStatus(c);
      finish(status, (err as Error).message);
    }
  }

  async function dispatch(type: string, ctx: Record<string, unknown>, r: StageRun): Promise<string | undefined> {
    const signal = halt.signal;
    switch (type) {
      case 'webhook':
        return runWebhook({ ...(ctx as unknown as WebhookStage) }, r, signal);
      case 'jenkins':
      case 'runJobManifest': {
        const req = type === 'jenkins' ? jenkinsAction(ctx) : runJobAction(ctx);
        if (!req || !opts.runAction) {
          unsupported.add(type);
          throw new StageFailure(`this ${type} stage does not run a clover-cd action, so it cannot run locally: it was not run`, 'TERMINAL');
        }
        const res = await opts.runAction(req, signal, (m) => opts.onEvent?.({ type: 'stage-progress', stage: r, message: m }));
        Object.assign(r.outputs, res.properties);
        if (type === 'jenkins') {
          const result = { SUCCEEDED: 'SUCCESS', INCONCLUSIVE: 'UNSTABLE', CANCELED: 'ABORTED' }[res.status] ?? 'FAILURE';
          Object.assign(r.context, { buildInfo: { result, number: 1, building: false, url: 'local' }, buildNumber: 1, propertyFileContents: res.properties });
          if (result === 'SUCCESS' || (result === 'UNSTABLE' && ctx.markUnstableAsSuccessful === true)) return `${result}: ${res.message}`;
          throw new StageFailure(`build ${result}: ${res.message}`, result === 'ABORTED' ? 'CANCELED' : undefined);
        }
        Object.assign(r.context, { jobStatus: { status: res.status }, propertyFileContents: res.properties });
        if (res.status === 'SUCCEEDED') return res.message;
        throw new StageFailure(`job ended ${res.status}: ${res.message}`, res.status === 'CANCELED' ? 'CANCELED' : undefined);
      }
      case 'wait': {
        const s = Number(ctx.waitTime ?? 30);
        if (!Number.isFinite(s) || s < 0) throw new StageFailure(`waitTime must be a number of seconds, got ${JSON.stringify(ctx.waitTime)}`);
        await sleep(s * 1000, signal);
        return `waited ${s}s`;
      }
      case 'manualJudgment': {
        const inputs = ((ctx.judgmentInputs as Array<{ value: string }> | undefined) ?? []).map((i) => i.value);
        let choice = opts.judgments?.[r.name];
        if (choice === undefined && opts.autoApprove) choice = inputs.includes('continue') ? 'continue' : (inputs[0] ?? 'continue');
        if (choice === undefined && opts.judge) choice = await opts.judge({ stage: r.name, instructions: ctx.instructions as string | undefined, inputs });
        if (choice === undefined) throw new StageFailure(`manual judgment "${r.name}" needs an answer: run on a terminal, or pass --auto-approve`);
        if (choice === 'stop') {
          r.context.judgmentStatus = 'stop';
          throw new StageFailure(`judgment "${r.name}": stop`);
        }
        if (inputs.length && !inputs.includes(choice)) throw new StageFailure(`judgment "${r.name}": "${choice}" is not one of ${inputs.join(', ')}`);
        Object.assign(r.context, { judgmentStatus: 'continue', judgmentInput: choice });
        return `judgment: ${choice}`;
      }
      case 'checkPreconditions': {
        for (const pc of (ctx.preconditions as Array<{ type: string; context?: Record<string, unknown>; failPipeline?: boolean }> | undefined) ?? []) {
          const failStatus: StageStatus = pc.failPipeline === false ? 'STOPPED' : 'TERMINAL';
          if (pc.type === 'expression') {
            let ok: boolean;
            try {
              ok = evaluateCondition(String(pc.context?.expression ?? ''), spel());
            } catch (err) {
              throw new StageFailure(`precondition expression failed: ${(err as Error).message}`, failStatus);
            }
            if (!ok) throw new StageFailure(String(pc.context?.failureMessage ?? `precondition "${pc.context?.expression}" is false`), failStatus);
          } else if (pc.type === 'stageStatus') {
            const s = spel().stage(String(pc.context?.stageName));
            if (s?.status !== pc.context?.stageStatus) throw new StageFailure(`stage "${pc.context?.stageName}" is ${s?.status ?? 'missing'}, expected ${pc.context?.stageStatus}`, failStatus);
          } else {
            unsupported.add(`checkPreconditions/${pc.type}`);
            throw new StageFailure(`precondition type "${pc.type}" cannot run locally (supported: expression, stageStatus)`, 'TERMINAL');
          }
        }
        return 'preconditions hold';
      }
      case 'deployManifest': {
        if ((ctx.source ?? 'text') !== 'text') {
          unsupported.add(`deployManifest/source=${ctx.source}`);
          throw new StageFailure(`deployManifest with source "${ctx.source}" cannot run locally (only "text")`, 'TERMINAL');
        }
        // Clouddriver binds the required artifacts (the trigger's image) into the manifests.
        const { manifests, bound: used } = bindArtifacts((ctx.manifests as KubeObject[] | undefined) ?? [], requiredArtifacts(ctx, bound));
        r.context['outputs.boundArtifacts'] = used;
        const ns = ctx.namespaceOverride as string | undefined;
        const applied = await opts.platform.apply(manifests.map((m) => (ns ? { ...m, metadata: { ...m.metadata, namespace: ns } } : m)));
        const names: Record<string, string[]> = {};
        for (const m of applied) (names[m.metadata.namespace ?? 'default'] ??= []).push(`${m.kind.toLowerCase()} ${m.metadata.name}`);
        r.context['outputs.manifestNamesByNamespace'] = names;
        for (const m of applied.filter((x) => x.kind === 'Deployment')) await waitReady(m.metadata.namespace ?? 'default', m.metadata.name, signal);
        return `applied ${applied.length} manifest(s)${used.length ? ` (bound ${used.map((a) => a.reference).join(', ')})` : ''}; deployments ready`;
      }
      case 'patchManifest': {
        const strategy = (ctx.options as { mergeStrategy?: string } | undefined)?.mergeStrategy ?? 'strategic';
        if (strategy === 'json') {
          unsupported.add('patchManifest/json');
          throw new StageFailure('patchManifest with mergeStrategy "json" cannot run locally (merge and strategic only)', 'TERMINAL');
        }
        const [kindWord, name] = String(ctx.manifestName ?? '').split(/\s+/);
        const k = KINDS[kindWord?.toLowerCase() ?? ''];
        if (!k || !name) throw new StageFailure(`manifestName "${ctx.manifestName}" must be "<kind> <name>" of a known kind (${Object.values(KINDS).map((x) => x.kind).join(', ')})`, 'TERMINAL');
        const body = Array.isArray(ctx.patchBody) ? ctx.patchBody : [ctx.patchBody];
        for (const patch of body) await opts.platform.patch({ ...k, namespace: String(ctx.location ?? 'default'), name }, patch as Record<string, unknown>);
        return `patched ${ctx.manifestName} (${strategy === 'strategic' ? 'as a JSON merge patch' : strategy})`;
      }
      case 'evaluateVariables': {
        for (const v of (ctx.variables as Array<{ key: string; value: unknown }> | undefined) ?? []) r.outputs[v.key] = v.value;
        return `${Object.keys(r.outputs).length} variable(s)`;
      }
      default: {
        const entry = ctx.alias === 'preconfiguredWebhook' ? opts.preconfiguredWebhooks?.get(type) : undefined;
        if (entry) {
          // Orca's PreconfiguredWebhookStage: the configured call, with this stage's parameterValues.
          const { stage, failures } = expandPreconfigured(ctx, entry, spel());
          if (failures.length) throw new StageFailure(`expressions failed: ${failures.join('; ')}`);
          return runWebhook(stage, r, signal);
        }
        if (ctx.alias === 'preconfiguredWebhook') {
          unsupported.add(type);
          throw new StageFailure(`preconfigured webhook type "${type}" is not in Orca's configuration of this run: pass the orca-local.yml of \`clover-cd pipeline orca-config\` (--orca-config)`, 'TERMINAL');
        }
        unsupported.add(type);
        throw new StageFailure(`stage type "${type}" cannot run locally (supported: ${LOCAL_STAGE_TYPES.join(', ')}): it was not run`, 'TERMINAL');
      }
    }
  }

  /** Orca's webhook stage; URLs of the stage server's API go to the local one, with the stage's own headers only. */
  async function runWebhook(stage: WebhookStage, r: StageRun, signal: AbortSignal): Promise<string> {
    const server = opts.stageServer;
    if (server) {
      const local = (u?: string) => {
        if (!u) return u;
        const url = new URL(u);
        return url.pathname.startsWith('/api/v1/') ? `${server.origin}${url.pathname}${url.search}` : u;
      };
      const toServer = new URL(stage.url).pathname.startsWith('/api/v1/');
      stage.url = local(stage.url)!;
      stage.cancelEndpoint = local(stage.cancelEndpoint);
      if (toServer && server.throughMesh) stage.customHeaders = server.throughMesh(stage.customHeaders ?? {});
    }
    const res = await runWebhookStage(stage, { signal, pollIntervalMs: opts.pollIntervalMs, onProgress: (m) => opts.onEvent?.({ type: 'stage-progress', stage: r, message: m }) });
    Object.assign(r.context, res.context);
    if (res.status === 'SUCCEEDED') return res.message;
    // The task ended TERMINAL (or CANCELED); the stage then takes its failure status, as Orca's RunTaskHandler does.
    throw new StageFailure(res.status === 'TERMINAL' ? `task TERMINAL: ${res.message}` : res.message, res.status === 'CANCELED' ? 'CANCELED' : undefined);
  }

  async function waitReady(namespace: string, name: string, signal: AbortSignal): Promise<void> {
    const deadline = Date.now() + (opts.readyTimeoutMs ?? 120_000);
    for (;;) {
      const s = await opts.platform.workloadStatus(namespace, name);
      if (s.ready) return;
      if (Date.now() > deadline) throw new StageFailure(`deployment ${namespace}/${name} not ready: ${s.message}`);
      await sleep(200, signal);
    }
  }

  const inflight = new Map<string, Promise<void>>();
  const ready = (c: StageConfig) =>
    runs.get(c.refId)!.status === 'NOT_STARTED' && (c.requisiteStageRefIds ?? []).every((id) => runs.has(id) && DONE_OK.includes(runs.get(id)!.status));
  for (;;) {
    if (!halt.signal.aborted) {
      for (const c of configs) {
        if (inflight.has(c.refId) || !ready(c)) continue;
        const p = runStage(c, runs.get(c.refId)!).then(() => {
          inflight.delete(c.refId);
          const st = runs.get(c.refId)!.status;
          if (st === 'TERMINAL' || st === 'CANCELED') halt.abort(new Error(`stage ${c.refId} ended ${st}`));
        });
        inflight.set(c.refId, p);
      }
    }
    if (inflight.size === 0) break;
    await Promise.race(inflight.values());
  }
  opts.signal?.removeEventListener('abort', onOuterAbort);
  canceled = Boolean(opts.signal?.aborted);
  const stages = [...runs.values()];
  const any = (s: StageStatus) => stages.some((x) => x.status === s);
  const stoppedFail = configs.some((c) => runs.get(c.refId)!.status === 'STOPPED' && c.completeOtherBranchesThenFail);
  const status: ExecutionStatus = canceled || (any('CANCELED') && !any('TERMINAL')) ? 'CANCELED' : any('TERMINAL') || stoppedFail ? 'TERMINAL' : 'SUCCEEDED';
  return { ...execution, status, stages, unsupported: [...unsupported], trigger };
}
