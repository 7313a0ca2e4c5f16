/**
 * Readiness first: no traffic moves to a candidate until its Deployment (or the sandbox workload) is
 * ready. The wait is bounded (service.readyTimeout, default 5m) and ends on the workload's status, never
 * on a fixed sleep; running out of time is exit 4 naming what is not ready and how to look at it.
 */
import { candidateWorkloadName } from '../../canary/plan.js';
import type { KubeObject, Platform, WorkloadStatus } from '../../services/platform.js';
import type { ReleaseSpec } from '../../spec/types.js';
import { InfrastructureError } from '../../util/errors.js';
import { sleep } from '../../util/retry.js';
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
export async function waitUntilReady(
  platform: Platform,
  spec: ReleaseSpec,
  opts: ReadinessOptions = {},
): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? parseDurationMs(spec.service.readyTimeout ?? DEFAULT_READY_TIMEOUT);
  const deadline = Date.now() + timeoutMs;
  for (const w of candidateWorkloads(spec)) {
    const what = `Deployment ${w.namespace}/${w.name}`;
    let delay = 200;
    let last: WorkloadStatus | undefined;
    let waited = false;
    for (;;) {
      last = await platform.workloadStatus(w.namespace, w.name);
      // Said only while waiting (and once when it is over): a ready candidate costs one read and no line.
      if (!last.ready || waited) opts.onStatus?.(what, last);
      if (last.ready) break;
      waited = true;
      const left = deadline - Date.now();
      if (left <= 0) {
        const system = platform.kind === 'kubernetes' ? 'Kubernetes API' : 'sandbox';
        const hint =
          platform.kind === 'kubernetes'
            ? `kubectl -n ${w.namespace} rollout status deployment/${w.name}`
            : `clover-cd sandbox status (is ${w.name} among the workloads?)`;
        throw new InfrastructureError(
          system,
          `rollout status ${what}`,
          `the candidate is not ready after ${Math.round(timeoutMs / 1000)}s: ${last.message}; no traffic was moved`,
          hint,
        );
      }
      await sleep(Math.min(delay, left), opts.signal);
      delay = Math.min(delay * 2, 2000);
    }
  }
}
