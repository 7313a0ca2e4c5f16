/**
 * `checkPreconditions`: each precondition in order — `expression` (SpEL, true to pass; unevaluable fails) and
 * `stageStatus` (a stage's status equals the one given). A failing one ends the stage TERMINAL, or STOPPED with
 * its `failPipeline: false`. Other precondition types are not run here (TERMINAL, reported as unsupported).
 */
import type { SpelContext } from '../spel.js';
import { evaluateCondition } from '../spel.js';
import type { StageStatus } from '../types.js';
import { StageFailure, UnsupportedStage, type StageHandler } from './handler.js';

interface Precondition {
  type: string;
  context?: Record<string, unknown>;
  failPipeline?: boolean;
}

function check(pc: Precondition, scope: SpelContext): void {
  const failStatus: StageStatus = pc.failPipeline === false ? 'STOPPED' : 'TERMINAL';
  if (pc.type === 'expression') {
    let ok: boolean;
    try {
      ok = evaluateCondition(String(pc.context?.expression ?? ''), scope);
    } catch (err) {
      throw new StageFailure(`precondition expression failed: ${(err as Error).message}`, failStatus);
    }
    const otherwise = `precondition "${pc.context?.expression}" is false`;
    if (!ok) throw new StageFailure(String(pc.context?.failureMessage ?? otherwise), failStatus);
  } else if (pc.type === 'stageStatus') {
    const s = scope.stage(String(pc.context?.stageName));
    if (s?.status !== pc.context?.stageStatus) {
      const is = s?.status ?? 'missing';
      throw new StageFailure(
        `stage "${pc.context?.stageName}" is ${is}, expected ${pc.context?.stageStatus}`,
        failStatus,
      );
    }
  } else {
    throw new UnsupportedStage(
      `checkPreconditions/${pc.type}`,
      `precondition type "${pc.type}" cannot run locally (supported: expression, stageStatus)`,
    );
  }
}

export const checkPreconditions: StageHandler = {
  type: 'checkPreconditions',
  async run({ ctx, scope }) {
    for (const pc of (ctx.preconditions as Precondition[] | undefined) ?? []) check(pc, scope());
    return 'preconditions hold';
  },
};
