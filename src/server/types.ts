import type { ReleaseSpec } from '../../spec/types.js';

/**
 * The stage server's job model (contract [E]). Status strings are exactly the ones the generated webhook
 * stages list in successStatuses / terminalStatuses / canceledStatuses, so Orca needs no mapping.
 */
import type { FinalStatus, JobStatus, StageAction } from '../../contract/index.js';

export { STAGE_ACTIONS, JOB_STATUSES, type StageAction, type JobStatus, type FinalStatus } from '../../contract/index.js';

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

/** The verdict summary a job reports (the gate's Verdict, contract [C], or a subset of it). */
export interface JobVerdict {
  outcome: 'pass' | 'fail' | 'inconclusive' | 'error';
  summary: string;
  results?: Array<{ rule: string; outcome: string; observed: string; expected: string; source: string; reason: string }>;
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

export interface Job {
  id: string;
  release: string;
  action: StageAction;
  status: JobStatus;
  progress: string;
  spec: ReleaseSpec;
  params: StageParams;
  verdict?: JobVerdict;
  reports?: Record<string, string>;
  error?: string;
  createdAt: number;
  updatedAt: number;
  finishedAt?: number;
  /** Replica that runs the job and the attempt number: together the fencing token for writes. */
  owner: string;
  attempt: number;
  cancelRequested?: boolean;
}

/** The body of GET /api/v1/jobs/{id}: what Orca's statusJsonPath / progressJsonPath read. */
export function publicJob(job: Job): Record<string, unknown> {
  return {
    id: job.id,
    release: job.release,
    action: job.action,
    status: job.status,
    progress: job.progress,
    ...(job.verdict ? { verdict: job.verdict } : {}),
    ...(job.reports ? { reports: job.reports } : {}),
    ...(job.error ? { error: job.error } : {}),
    ...(job.params.execution ? { execution: job.params.execution } : {}),
    attempt: job.attempt,
    createdAt: new Date(job.createdAt).toISOString(),
    updatedAt: new Date(job.updatedAt).toISOString(),
    ...(job.finishedAt ? { finishedAt: new Date(job.finishedAt).toISOString() } : {}),
  };
}

export const isFinal = (s: JobStatus): s is FinalStatus => s !== 'RUNNING';
