/**
 * Readiness first: no traffic moves to a candidate until its Deployment (or the sandbox workload) is
 * ready. The wait is the platform's one (`services/readiness.ts`), bounded by service.readyTimeout (default 5m);
 * running out of time is exit 4 naming what is not ready and how to look at it.
 */
import { candidateWorkloadName } from '../../canary/plan.js';
import type { KubeObject, Platform, WorkloadStatus } from '../../services/platform.js';
import { waitForWorkloads } from '../../services/readiness.js';
import type { ReleaseSpec } from '../../spec/types.js';
import { parseDurationMs } from '../../util/units.js';

export const DEFAULT_READY_TIMEOUT = '5m';

/** The candidate's Deployments: those among inline candidate manifests, else `service.candidateWorkload` or `<name>-<candidate>`. */
export function candidateWorkloads(spec: ReleaseSpec): Array<{ namespace: string; name: string }> {
  const inline = ((spec.service.candidateManifests ?? []) as unknown[]).filter(
    (m): m is KubeObject => m !== null && typeof m === 'object',
  );
  const deployments = inline
    .filter((m) => m.kind === 'Deployment')
    .map((m) => ({ namespace: m.metadata.namespace ?? spec.service.namespace, name: m.metadata.name }));
  if (deployments.length) return deployments;
  return [{ namespace: spec.service.namespace, name: candidateWorkloadName(spec) }];
}

export interface ReadinessOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
  onStatus?: (workload: string, status: WorkloadStatus) => void;
}

/** Resolves when every candidate workload is ready; exit 4 (InfrastructureError) when the bound runs out. */
export function waitUntilReady(
  platform: Platform,
  spec: ReleaseSpec,
  opts: ReadinessOptions = {},
): Promise<void> {
  return waitForWorkloads(platform, candidateWorkloads(spec), {
    timeoutMs: opts.timeoutMs ?? parseDurationMs(spec.service.readyTimeout ?? DEFAULT_READY_TIMEOUT),
    signal: opts.signal,
    onStatus: opts.onStatus,
    subject: 'the candidate',
    consequence: 'no traffic was moved',
  });
}
