import type { FinalStatus, StageAction } from '../contract/index.js';
import type { ReleaseSpec } from '../spec/types.js';
import type { InputProblem } from '../util/errors.js';

/**
 * What every host of a release action agrees on: the parameters a request carries, the outcome an action
 * reports, and the action function the stage server's jobs, `clover-cd stage` and the local pipeline runner call.
 */
/**
 * The reason a running job's signal is aborted with. A cancel (Orca's cancel, a mass cancel) is an
 * interrupt: the stage rolls the release back. A shutdown or a lost lease hands the job over to the replica
 * that takes it: nothing is undone.
 */
export class JobStopped extends Error {
  constructor(readonly why: 'cancel' | 'lease-lost' | 'shutdown') {
    super(`job ${why === 'cancel' ? 'canceled' : `stopped (${why})`}`);
    this.name = 'JobStopped';
  }
  get handedOver(): boolean {
    return this.why !== 'cancel';
  }
}

/** What the webhook payload may carry besides the spec. */
export interface StageParams {
  weight?: number;
  step?: number;
  window?: string;
  execution?: { id: string; pipeline: string };
}

/** The verdict summary a job reports (the gate's Verdict, or a subset of it). */
export interface JobVerdict {
  outcome: 'pass' | 'fail' | 'inconclusive' | 'error';
  summary: string;
  results?: Array<{
    rule: string;
    outcome: string;
    observed: string;
    expected: string;
    source: string;
    reason: string;
  }>;
}

export interface StageOutcome {
  status: FinalStatus;
  verdict?: JobVerdict;
  /** Links or paths to reports (evidence bundle, JUnit, JMeter report), by name. */
  reports?: Record<string, string>;
  /** One line for the progress field when the stage ends. */
  message?: string;
}

/** A stage function: what a job runs. It must stop promptly (leaving traffic safe) when `signal` aborts. */
export type StageFunction = (
  spec: ReleaseSpec,
  params: StageParams,
  signal: AbortSignal,
  progress: (message: string) => void,
  ctx: { jobId: string; attempt: number },
) => Promise<StageOutcome>;

export type StageRegistry = Partial<Record<StageAction, StageFunction>>;

/** Checks a start request against the platform before a job exists (problems → HTTP 400, nothing started). */
export type StageAdmission = (
  action: StageAction,
  spec: ReleaseSpec,
  params: StageParams,
) => Promise<InputProblem[]>;
