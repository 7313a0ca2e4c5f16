import type { ReleaseSpec } from '../spec/types.js';

/**
 * The stage server's job model. Status strings are exactly the ones the generated webhook
 * stages list in successStatuses / terminalStatuses / canceledStatuses, so Orca needs no mapping.
 */
import type { FinalStatus, JobStatus, StageAction } from '../contract/index.js';
import type { JobVerdict, StageParams } from '../stages/action-types.js';

export {
  STAGE_ACTIONS,
  JOB_STATUSES,
  type StageAction,
  type JobStatus,
  type FinalStatus,
} from '../contract/index.js';

export {
  JobStopped,
  type JobVerdict,
  type StageFunction,
  type StageOutcome,
  type StageParams,
  type StageRegistry,
} from '../stages/action-types.js';

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
