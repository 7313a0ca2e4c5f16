/**
 * The one readiness wait: Deployments are ready when the platform says so (`deploymentStatus`, the rules of
 * `kubectl rollout status`, or the sandbox's own workload status). The wait is bounded, reads again with a
 * backoff (200 ms doubling to 2 s) and never sleeps a fixed time; running out of time is exit 4 naming the
 * Deployment, what it still says and how to look at it. The release engine waits for its candidate with it,
 * and the local pipeline runner for the Deployments a deployManifest stage applied.
 */
import { InfrastructureError } from '../util/errors.js';
import { sleep } from '../util/retry.js';
import type { Platform, WorkloadKind, WorkloadStatus } from './platform.js';

export interface Workload {
  namespace: string;
  name: string;
  /** Default Deployment. */
  kind?: WorkloadKind;
}

export interface WorkloadWaitOptions {
  timeoutMs: number;
  signal?: AbortSignal;
  /** Each status read while waiting (and the ready one that ends a wait); a workload ready at once says nothing. */
  onStatus?: (workload: string, status: WorkloadStatus) => void;
  /** What the workloads are, in the timeout message ("the candidate"); default "the Deployment". */
  subject?: string;
  /** What did not happen because of the timeout ("no traffic was moved"), appended to the message. */
  consequence?: string;
}

/** Resolves when every workload is ready; exit 4 (InfrastructureError) when the one bound for all of them runs out. */
export async function waitForWorkloads(
  platform: Platform,
  workloads: Workload[],
  opts: WorkloadWaitOptions,
): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  for (const w of workloads) await waitForWorkload(platform, w, deadline, opts);
}

async function waitForWorkload(
  platform: Platform,
  w: Workload,
  deadline: number,
  opts: WorkloadWaitOptions,
): Promise<void> {
  const what = `${w.kind ?? 'Deployment'} ${w.namespace}/${w.name}`;
  let delay = 200;
  let waited = false;
  for (;;) {
    const last = await platform.workloadStatus(w.namespace, w.name, w.kind);
    // Said only while waiting (and once when it is over): a ready workload costs one read and no line.
    if (!last.ready || waited) opts.onStatus?.(what, last);
    if (last.ready) return;
    waited = true;
    const left = deadline - Date.now();
    if (left <= 0) throw notReady(platform, w, last, opts);
    await sleep(Math.min(delay, left), opts.signal);
    delay = Math.min(delay * 2, 2000);
  }
}

function notReady(
  platform: Platform,
  w: Workload,
  last: WorkloadStatus,
  opts: WorkloadWaitOptions,
): InfrastructureError {
  const kubernetes = platform.kind === 'kubernetes';
  const system = kubernetes ? 'Kubernetes API' : 'sandbox';
  const hint = kubernetes
    ? `kubectl -n ${w.namespace} rollout status ${(w.kind ?? 'Deployment').toLowerCase()}/${w.name}`
    : `clover-cd sandbox status (is ${w.name} among the workloads?)`;
  const seconds = Math.round(opts.timeoutMs / 1000);
  const message = `${opts.subject ?? 'the Deployment'} is not ready after ${seconds}s: ${last.message}${opts.consequence ? `; ${opts.consequence}` : ''}`;
  return new InfrastructureError(
    system,
    `rollout status ${w.kind ?? 'Deployment'} ${w.namespace}/${w.name}`,
    message,
    hint,
  );
}
