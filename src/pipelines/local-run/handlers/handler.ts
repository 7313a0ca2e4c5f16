/**
 * What every stage type's handler implements, and what it is given: the stage as it runs, its context with the
 * expressions evaluated, the host's options, the execution's cancel signal and SpEL scope, the artifacts bound at
 * start. A handler resolves with the stage's success message or throws: a `StageFailure` (with Orca's status when it
 * is not the stage's own failure status), an `UnsupportedStage` for what this runner cannot run (TERMINAL, listed in
 * the execution's `unsupported`, never skipped silently), or any other error (the stage's failure status).
 */
import type { Artifact } from '../../artifact-match.js';
import type { SpelContext } from '../spel.js';
import type { ExecuteOptions, StageRun, StageStatus } from '../types.js';

export interface StageTask {
  /** The stage as it runs: handlers add what Orca writes into its context and outputs. */
  stage: StageRun;
  /** The stage's context with its expressions evaluated. */
  ctx: Record<string, unknown>;
  options: ExecuteOptions;
  /** Aborted when the execution halts (a TERMINAL stage) or is canceled. */
  signal: AbortSignal;
  /** The execution as SpEL sees it now. */
  scope(): SpelContext;
  /** Expected artifact id → the artifact bound to it at start. */
  artifacts: Map<string, Artifact>;
  /** A line of progress for the host (a `stage-progress` event). */
  progress(message: string): void;
}

export interface StageHandler {
  /** The stage type it runs, as the pipeline JSON names it. */
  readonly type: string;
  run(task: StageTask): Promise<string | undefined>;
}

export class StageFailure extends Error {
  constructor(
    message: string,
    readonly status?: StageStatus,
  ) {
    super(message);
  }
}

/** A stage (or a feature of one) this runner cannot execute: the stage ends TERMINAL and `feature` is reported. */
export class UnsupportedStage extends StageFailure {
  constructor(
    readonly feature: string,
    message: string,
  ) {
    super(message, 'TERMINAL');
  }
}
