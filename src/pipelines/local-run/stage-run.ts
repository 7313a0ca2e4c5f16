/**
 * One stage from start to end, as Orca runs it: `stageEnabled` false or unevaluable → SKIPPED; the context's
 * expressions evaluated (unless `skipExpressionEvaluation`; a failed one fails the stage with
 * `failOnFailedExpressions`); the stage type's handler; a failure becomes FAILED_CONTINUE (`continuePipeline`),
 * STOPPED (`failPipeline: false`) or TERMINAL, unless the handler names Orca's status for it; a stage the
 * execution's halt interrupted is CANCELED.
 */
import type { Artifact } from '../artifact-match.js';
import { handlerFor, StageFailure, UnsupportedStage, type StageTask } from './handlers/index.js';
import { evaluateCondition, resolveExpressions, type SpelContext } from './spel.js';
import type { ExecuteOptions, StageConfig, StageRun, StageStatus } from './types.js';

/** What every stage of one execution shares. */
export interface StageEnvironment {
  options: ExecuteOptions;
  /** Aborted when the execution halts or is canceled. */
  signal: AbortSignal;
  scope(): SpelContext;
  artifacts: Map<string, Artifact>;
  /** Called with what a stage could not run (the execution's `unsupported`). */
  unsupported(feature: string): void;
}

const failureStatus = (c: StageConfig): StageStatus =>
  c.continuePipeline ? 'FAILED_CONTINUE' : c.failPipeline === false ? 'STOPPED' : 'TERMINAL';

/** Why the stage is skipped (its `stageEnabled` expression), or undefined when it runs. */
function skipReason(c: StageConfig, scope: () => SpelContext): string | undefined {
  const se = c.stageEnabled;
  if (!se || se.type !== 'expression' || !se.expression) return undefined;
  try {
    return evaluateCondition(se.expression, scope()) ? undefined : 'stageEnabled is false';
  } catch (err) {
    return `stageEnabled could not be evaluated (${(err as Error).message}): skipped, as Orca does`;
  }
}

async function perform(c: StageConfig, r: StageRun, env: StageEnvironment): Promise<string | undefined> {
  const failures: string[] = [];
  const { skipExpressionEvaluation, ...unresolved } = r.context;
  const ctx = (
    skipExpressionEvaluation ? { ...r.context } : resolveExpressions(unresolved, env.scope(), failures)
  ) as Record<string, unknown>;
  if (failures.length && c.failOnFailedExpressions)
    throw new StageFailure(`expressions failed: ${failures.join('; ')}`);
  const task: StageTask = {
    stage: r,
    ctx,
    options: env.options,
    signal: env.signal,
    scope: env.scope,
    artifacts: env.artifacts,
    progress: (message) => env.options.onEvent?.({ type: 'stage-progress', stage: r, message }),
  };
  return handlerFor(r.type, ctx).run(task);
}

export async function runStage(c: StageConfig, r: StageRun, env: StageEnvironment): Promise<void> {
  const onEvent = env.options.onEvent;
  r.status = 'RUNNING';
  r.startTime = Date.now();
  onEvent?.({ type: 'stage-start', stage: r });
  const finish = (status: StageStatus, message?: string) => {
    r.status = status;
    r.message = message;
    r.endTime = Date.now();
    onEvent?.({ type: 'stage-end', stage: r });
  };
  const skipped = skipReason(c, env.scope);
  if (skipped) return finish('SKIPPED', skipped);
  try {
    finish('SUCCEEDED', await perform(c, r, env));
  } catch (err) {
    if (err instanceof UnsupportedStage) env.unsupported(err.feature);
    const named = err instanceof StageFailure ? err.status : undefined;
    if (env.signal.aborted && !named) return finish('CANCELED', 'canceled');
    finish(named ?? failureStatus(c), (err as Error).message);
  }
}
