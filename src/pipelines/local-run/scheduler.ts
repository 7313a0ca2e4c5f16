/**
 * Executes a Spinnaker pipeline config locally with Orca's semantics (the rules `../README.md` "Failure paths"
 * relies on): a stage starts when every requisite is SUCCEEDED / FAILED_CONTINUE / SKIPPED, independent branches
 * run in parallel, a TERMINAL or CANCELED stage halts the execution (running stages are canceled, no new one
 * starts), and the execution ends as Orca computes it. One stage's run is `stage-run.ts`; what each stage type
 * does is its handler (`handlers/`).
 */
import { prepareTrigger } from './artifacts.js';
import type { SpelContext } from './spel.js';
import { runStage, type StageEnvironment } from './stage-run.js';
import type {
  ExecuteOptions,
  ExecutionStatus,
  LocalExecution,
  StageConfig,
  StageRun,
  StageStatus,
} from './types.js';

const DONE_OK: StageStatus[] = ['SUCCEEDED', 'FAILED_CONTINUE', 'SKIPPED'];

type ExecutionId = Pick<LocalExecution, 'id' | 'name' | 'application'>;

/** A stage as SpEL's `#stage(...)` sees it. */
const view = (r: StageRun) => ({
  id: r.refId,
  refId: r.refId,
  name: r.name,
  type: r.type,
  status: r.status,
  context: r.context,
  outputs: r.outputs,
});

/** The execution as SpEL sees it: the finished stages' outputs, execution, trigger and parameters, stages by name. */
function executionScope(
  runs: Map<string, StageRun>,
  execution: ExecutionId,
  trigger: Record<string, unknown>,
): SpelContext {
  const outputs: Record<string, unknown> = {};
  for (const r of runs.values())
    if (r.status !== 'NOT_STARTED' && r.status !== 'RUNNING') Object.assign(outputs, r.outputs);
  const parameters = (trigger.parameters as object) ?? {};
  return {
    vars: { ...outputs, execution: { ...execution, trigger }, trigger, parameters },
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
}

/** The scope of the trigger's own expressions, before any stage exists. */
const triggerScope = (execution: ExecutionId, trigger: Record<string, unknown>): SpelContext => ({
  vars: { trigger, parameters: trigger.parameters ?? {}, execution: { ...execution, trigger } },
  stage: () => undefined,
  stageByRefId: () => undefined,
  judgment: () => undefined,
});

function stageRuns(configs: StageConfig[]): Map<string, StageRun> {
  const runs = new Map<string, StageRun>();
  for (const c of configs) {
    const { refId, requisiteStageRefIds: _r, type, name, ...context } = c;
    runs.set(refId, { refId, name: name ?? type, type, status: 'NOT_STARTED', context, outputs: {} });
  }
  return runs;
}

/** Orca's execution status: canceled, else TERMINAL (a TERMINAL stage, or a STOPPED one with completeOtherBranchesThenFail), else SUCCEEDED. */
function executionStatus(
  configs: StageConfig[],
  runs: Map<string, StageRun>,
  canceled: boolean,
): ExecutionStatus {
  const any = (s: StageStatus) => [...runs.values()].some((x) => x.status === s);
  const stoppedFail = configs.some(
    (c) => runs.get(c.refId)!.status === 'STOPPED' && c.completeOtherBranchesThenFail,
  );
  if (canceled || (any('CANCELED') && !any('TERMINAL'))) return 'CANCELED';
  return any('TERMINAL') || stoppedFail ? 'TERMINAL' : 'SUCCEEDED';
}

/** Starts every stage whose requisites are done, until none runs; a TERMINAL or CANCELED stage halts the rest. */
async function schedule(
  configs: StageConfig[],
  runs: Map<string, StageRun>,
  halt: AbortController,
  env: StageEnvironment,
): Promise<void> {
  const inflight = new Map<string, Promise<void>>();
  const startable = (c: StageConfig) =>
    runs.get(c.refId)!.status === 'NOT_STARTED' &&
    (c.requisiteStageRefIds ?? []).every((id) => runs.has(id) && DONE_OK.includes(runs.get(id)!.status));
  for (;;) {
    if (!halt.signal.aborted) {
      for (const c of configs) {
        if (inflight.has(c.refId) || !startable(c)) continue;
        const p = runStage(c, runs.get(c.refId)!, env).then(() => {
          inflight.delete(c.refId);
          const st = runs.get(c.refId)!.status;
          if (st === 'TERMINAL' || st === 'CANCELED') halt.abort(new Error(`stage ${c.refId} ended ${st}`));
        });
        inflight.set(c.refId, p);
      }
    }
    if (inflight.size === 0) return;
    await Promise.race(inflight.values());
  }
}

export async function executePipeline(
  pipeline: Record<string, unknown>,
  opts: ExecuteOptions,
): Promise<LocalExecution> {
  const configs = (pipeline.stages as StageConfig[] | undefined) ?? [];
  const runs = stageRuns(configs);
  const execution: ExecutionId = {
    id: opts.executionId ?? `local-${Date.now().toString(36)}`,
    name: String(pipeline.name ?? ''),
    application: String(pipeline.application ?? ''),
  };
  // Echo/Orca at start: parameter defaults, the docker event's artifact, expected artifacts bound (exit 2 if not).
  const { trigger, bound } = prepareTrigger(pipeline, opts.trigger, (t) => triggerScope(execution, t));
  const unsupported = new Set<string>();
  const halt = new AbortController();
  const onOuterAbort = () => halt.abort(new Error('execution canceled'));
  opts.signal?.addEventListener('abort', onOuterAbort, { once: true });
  const env: StageEnvironment = {
    options: opts,
    signal: halt.signal,
    scope: () => executionScope(runs, execution, trigger),
    artifacts: bound,
    unsupported: (feature) => unsupported.add(feature),
  };
  await schedule(configs, runs, halt, env);
  opts.signal?.removeEventListener('abort', onOuterAbort);
  const status = executionStatus(configs, runs, Boolean(opts.signal?.aborted));
  return { ...execution, status, stages: [...runs.values()], unsupported: [...unsupported], trigger };
}
