/**
 * A step's load on a cluster: the objects `clover-cd load render --kubernetes --release <r> --step <n>` shows
 * (the plan's ConfigMap, which owns the rest, a headless Service and StatefulSet of engines, and the
 * controller Job), created for the window and deleted at its end, at an abort and by the next run when a
 * killed one left them. The Job is created only once every engine is ready (the candidate's readiness wait,
 * for a StatefulSet), and the controller's results come back on its pod log (`load run --stream-results`)
 * into a local JTL, read by the same parser as a local run.
 */
import { join } from 'node:path';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import {
  effectivePlan,
  kubernetesObjects,
  LOAD_RELEASE_LABEL,
  loadObjectsName,
  newRunId,
  resultOfRun,
  StreamedJtl,
  withLoadTag,
  type KubeDocument,
  type LoadPlan,
  type LoadProgress,
  type LoadRunResult,
} from '../jmeter/index.js';
import { refOf, type KubeObject, type ObjectRef, type Platform } from '../services/platform.js';
import { waitForWorkloads } from '../services/readiness.js';
import type { ReleaseSpec } from '../spec/types.js';
import { InfrastructureError, InterruptedError } from '../util/errors.js';
import { sleep } from '../util/retry.js';
import { parseDurationMs } from '../util/units.js';
import { DEFAULT_READY_TIMEOUT } from './engine/readiness.js';

export interface ClusterLoadOptions {
  step: number;
  engines: number;
  durationS?: number;
  target?: string;
  /** The local JTL the streamed results are written to (default: a fresh temporary file). */
  resultsFile?: string;
  signal?: AbortSignal;
  onProgress?: (p: LoadProgress) => void;
}

const MANAGED = 'app.kubernetes.io/managed-by=clover-cd';
const CONTROLLER_CONTAINER = 'jmeter';

/** The names of one step's objects, owner first, as `kubernetesObjects` orders them. */
const refsOf = (objects: KubeDocument[]): ObjectRef[] => objects.map((o) => refOf(o as KubeObject));

/** Delete one step's objects: the owner first (a cluster's garbage collector then removes the rest), then each. */
async function deleteObjects(platform: Platform, refs: ObjectRef[]): Promise<void> {
  for (const ref of refs) await platform.delete(ref);
}

/** The objects of `release` that runs no longer alive left in `namespace` (every set found by its owner). */
export async function removeLeftLoad(
  platform: Platform,
  namespace: string,
  release: string,
): Promise<string[]> {
  const owners = await platform.list(
    'v1',
    'ConfigMap',
    namespace,
    `${MANAGED},${LOAD_RELEASE_LABEL}=${release}`,
  );
  const removed: string[] = [];
  for (const owner of owners) {
    const name = owner.metadata.labels?.['app.kubernetes.io/name'];
    if (!name) continue;
    await deleteObjects(platform, [
      refOf(owner),
      { apiVersion: 'batch/v1', kind: 'Job', namespace, name: `${name}-controller` },
      { apiVersion: 'apps/v1', kind: 'StatefulSet', namespace, name: `${name}-engine` },
      { apiVersion: 'v1', kind: 'Service', namespace, name: `${name}-engine` },
    ]);
    removed.push(name);
  }
  return removed;
}

/** The controller's pod once it runs (or has ended), bounded; exit 4 naming the Job when it never does. */
async function controllerPod(
  platform: Platform,
  namespace: string,
  job: string,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<KubeObject> {
  const deadline = Date.now() + timeoutMs;
  let delay = 200;
  let last = 'no pod yet';
  for (;;) {
    const pods = await platform.list('v1', 'Pod', namespace, `job-name=${job}`);
    const pod = pods.find((p) => ['Running', 'Succeeded', 'Failed'].includes(String(p.status?.phase)));
    if (pod) return pod;
    if (pods.length) last = `pod ${pods[0].metadata.name} is ${String(pods[0].status?.phase ?? 'Pending')}`;
    if (Date.now() >= deadline)
      throw new InfrastructureError(
        'Kubernetes API',
        `Job ${namespace}/${job}`,
        `the load controller did not start within ${Math.round(timeoutMs / 1000)}s (${last}); no load was sent`,
        `kubectl -n ${namespace} describe job ${job}`,
      );
    await sleep(Math.min(delay, deadline - Date.now()), signal);
    delay = Math.min(delay * 2, 2000);
  }
}

/**
 * Run `plan` through `engines` engines on the cluster for one window. An abort deletes every object at once,
 * whatever the run is waiting for (engines not ready, the Job not scheduled, the log being read): deleting
 * the StatefulSet and the Job stops their pods, so no engine sends after it.
 */
export async function runClusterLoad(
  platform: Platform,
  spec: ReleaseSpec,
  plan: LoadPlan,
  o: ClusterLoadOptions,
): Promise<LoadRunResult> {
  if (!platform.followLog)
    throw new InfrastructureError(platform.description, 'pods/log', 'this platform cannot read a pod log');
  const namespace = spec.service.namespace;
  const release = spec.metadata.name;
  const runId = newRunId();
  const signal = o.signal ?? new AbortController().signal;
  const readyMs = parseDurationMs(spec.service.readyTimeout ?? DEFAULT_READY_TIMEOUT);
  const objects = kubernetesObjects(spec.load!.plan as string | object, {
    namespace,
    engines: o.engines,
    release,
    step: o.step,
    runId,
    target: o.target,
    durationS: o.durationS,
    resources: spec.load?.resources,
  });
  const [owner, ...owned] = objects;
  const name = loadObjectsName(release, o.step);
  const jtl = o.resultsFile ?? join(mkdtempSync(join(tmpdir(), 'clover-cd-load-')), 'results.jtl');
  const results = new StreamedJtl(jtl);
  const deleteAll = () => deleteObjects(platform, refsOf(objects));
  const interrupted = () =>
    new InterruptedError(`interrupted while step ${o.step + 1}'s load engines started`);
  const startedAt = Date.now();
  // The controller's own lines (not results), for an error that says why it sent none.
  const said: string[] = [];
  const jobName = `${name}-controller`;
  try {
    await removeLeftLoad(platform, namespace, release);
    if (signal.aborted) throw interrupted();
    const [created] = await platform.apply([owner as KubeObject]);
    const ownerReferences = [
      { apiVersion: 'v1', kind: 'ConfigMap', name: owner.metadata.name, uid: created.metadata.uid },
    ];
    const withOwner = (d: KubeDocument) =>
      ({ ...d, metadata: { ...d.metadata, ownerReferences } }) as KubeObject;
    const job = owned.find((d) => d.kind === 'Job')!;
    await platform.apply(owned.filter((d) => d !== job).map(withOwner));
    if (signal.aborted) throw interrupted();
    await waitForWorkloads(platform, [{ namespace, name: `${name}-engine`, kind: 'StatefulSet' }], {
      timeoutMs: readyMs,
      signal,
      subject: 'the load engines',
      consequence: 'no load was sent',
    });
    await platform.apply([withOwner(job)]);
    const pod = await controllerPod(platform, namespace, job.metadata.name, readyMs, signal);
    await platform.followLog(
      { namespace, name: pod.metadata.name, container: CONTROLLER_CONTAINER },
      (line) => {
        if (!results.line(line)) {
          if (line.trim() && said.push(line.trim()) > 8) said.shift();
        } else
          o.onProgress?.({
            sent: results.rows,
            errors: results.errors,
            elapsedS: (Date.now() - startedAt) / 1000,
          });
      },
      signal,
    );
  } catch (err) {
    if (signal.aborted && !(err instanceof InterruptedError)) throw interrupted();
    throw err;
  } finally {
    results.close();
    await deleteAll();
  }
  if (!results.rows && !signal.aborted)
    throw new InfrastructureError(
      'Kubernetes API',
      `Job ${namespace}/${jobName}`,
      `the load controller ended without results${said.length ? `:\n    ${said.join('\n    ')}` : ''}`,
      `kubectl -n ${namespace} logs job/${jobName} (it is deleted with the window: run the step again to watch it)`,
    );
  const engineHosts = Array.from({ length: o.engines }, (_, i) => `${name}-engine-${i}`);
  const p = withLoadTag(effectivePlan(plan, { target: o.target, durationS: o.durationS }), runId);
  return (
    await resultOfRun(p, {
      engine: 'jmeter',
      runId,
      jtl,
      startedAt,
      endedAt: Date.now(),
      interrupted: signal.aborted,
      engineHosts,
    })
  ).result;
}
