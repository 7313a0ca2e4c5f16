/**
 * The platform a release runs on. `services/kubernetes` (a real cluster through the API server) and
 * `sandbox/` (the local SDC mesh) both implement it, so stages cannot tell them apart.
 * Objects are plain Kubernetes-shaped JSON (apiVersion, kind, metadata, spec).
 */
import { InfrastructureError } from '../util/errors.js';
import { sleep } from '../util/retry.js';

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    resourceVersion?: string;
    generation?: number;
    [k: string]: unknown;
  };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
  [k: string]: unknown;
}

export interface ObjectRef {
  apiVersion: string;
  kind: string;
  namespace: string;
  name: string;
}

export interface WorkloadStatus {
  ready: boolean;
  /** Human-readable reason when not ready ("2/3 replicas available", "generation 4 not observed"). */
  message: string;
  replicas?: number;
  availableReplicas?: number;
}

export type WorkloadKind = 'Deployment' | 'StatefulSet';

export interface PlatformEndpoints {
  /** Prometheus HTTP API base URL, when the platform has one. */
  prometheus?: string;
  /** Prometheus text endpoints to scrape directly (Envoy stats, the sandbox's /metrics). */
  scrapeTargets?: string[];
  /** Jaeger query API base URL. */
  jaeger?: string;
  /** URL load is sent to (the mesh ingress). */
  ingress?: string;
}

export interface Platform {
  readonly kind: 'kubernetes' | 'sandbox';
  /** Human name for messages: "sandbox at /tmp/x", "cluster context prod". */
  readonly description: string;
  /** Create or update objects (server-side apply semantics: the given fields win). */
  apply(objects: KubeObject[]): Promise<KubeObject[]>;
  /** The current object, or undefined when it does not exist. */
  get(ref: ObjectRef): Promise<KubeObject | undefined>;
  /**
   * JSON merge patch (RFC 7386). With `resourceVersion`, the patch applies only to that version and a
   * concurrent change raises ConflictError so the caller can re-read and retry.
   */
  patch(
    ref: ObjectRef,
    mergePatch: Record<string, unknown>,
    opts?: { resourceVersion?: string },
  ): Promise<KubeObject>;
  delete(ref: ObjectRef): Promise<boolean>;
  list(apiVersion: string, kind: string, namespace: string, labelSelector?: string): Promise<KubeObject[]>;
  /** Rollout status of a Deployment (default) or StatefulSet: observedGeneration, updated and available (ready) replicas. */
  workloadStatus(namespace: string, name: string, kind?: WorkloadKind): Promise<WorkloadStatus>;
  endpoints(): PlatformEndpoints;
  /**
   * Start `count` distributed load engines (JMeter's `jmeter-server`, as `clover-cd load server` runs it) for
   * one step's window and resolve once each is ready to take a plan; absent on a platform that cannot. The
   * platform decides how an engine starts; an abort of `signal` stops every engine that exists at once.
   */
  startLoadEngines?(request: LoadEngineRequest): Promise<LoadEngineSet>;
  /**
   * Follow a container's log (a cluster's pod log) line by line until the container ends or `signal` aborts;
   * absent where there are no pods.
   */
  followLog?(
    pod: { namespace: string; name: string; container: string },
    onLine: (line: string) => void,
    signal?: AbortSignal,
  ): Promise<void>;
}

export interface LoadEngineRequest {
  count: number;
  /** The release and step the engines serve: their labels, and what a later run's cleanup names. */
  release: string;
  step: number;
  /** Requests and limits for each engine, Kubernetes quantities (`cpu: "2"`, `memory: 2Gi`). */
  resources?: { cpu?: string; memory?: string };
  signal?: AbortSignal;
}

export interface LoadEngineSet {
  /** `host:port` of each engine's RMI registry, in order: what the controller's `-R` takes. */
  hosts: string[];
  /** Stop every engine and remove what records it; safe to call more than once. */
  stop(): Promise<void>;
}

/** A concurrent writer changed the object between read and patch (HTTP 409). */
export class ConflictError extends Error {
  constructor(
    readonly ref: ObjectRef,
    readonly currentResourceVersion?: string,
  ) {
    super(`conflict updating ${ref.kind} ${ref.namespace}/${ref.name}: the object changed since it was read`);
    this.name = 'ConflictError';
  }
}

export const refOf = (o: KubeObject): ObjectRef => ({
  apiVersion: o.apiVersion,
  kind: o.kind,
  namespace: o.metadata.namespace ?? 'default',
  name: o.metadata.name,
});

export const describeRef = (r: Pick<ObjectRef, 'kind' | 'namespace' | 'name'>) =>
  `${r.kind} ${r.namespace}/${r.name}`;

/**
 * Read, compute a merge patch from the fresh object, and patch it guarded by the read's resourceVersion;
 * on 409 read again and recompute, a bounded number of times. Works on any Platform.
 */
export async function modifyWithRetry(
  platform: Platform,
  ref: ObjectRef,
  compute: (current: KubeObject) => Record<string, unknown> | undefined,
  attempts = 5,
): Promise<KubeObject> {
  for (let attempt = 1; ; attempt++) {
    const current = await platform.get(ref);
    if (!current) {
      throw new InfrastructureError(
        platform.kind === 'kubernetes' ? 'Kubernetes API' : 'sandbox',
        `get ${describeRef(ref)}`,
        'not found',
        `that ${ref.kind} ${ref.name} exists in namespace ${ref.namespace}`,
      );
    }
    const patch = compute(current);
    if (!patch) return current;
    try {
      return await platform.patch(ref, patch, { resourceVersion: current.metadata.resourceVersion });
    } catch (err) {
      if (!(err instanceof ConflictError) || attempt >= attempts) {
        if (err instanceof ConflictError) {
          throw new InfrastructureError(
            platform.kind === 'kubernetes' ? 'Kubernetes API' : 'sandbox',
            `patch ${describeRef(ref)}`,
            `still conflicting after ${attempts} attempts: another writer keeps changing it`,
            'which controller (Flagger, Argo CD self-heal, another release) also writes this object',
          );
        }
        throw err;
      }
      await sleep(20 * attempt);
    }
  }
}

/** The object, or exit 4 naming it, the platform and `hint` (what to check, with a command that exists). */
export async function requireObject(platform: Platform, ref: ObjectRef, hint: string): Promise<KubeObject> {
  const found = await platform.get(ref);
  if (!found)
    throw new InfrastructureError(
      platform.kind === 'kubernetes' ? 'Kubernetes API' : 'sandbox',
      `get ${describeRef(ref)}`,
      `not found on ${platform.description}`,
      hint,
    );
  return found;
}

/** Create the objects that do not exist yet; existing ones are left as they are (they may carry live weights). */
export async function ensureObjects(platform: Platform, objects: KubeObject[]): Promise<KubeObject[]> {
  const created: KubeObject[] = [];
  for (const o of objects) {
    const ref = refOf(o);
    if (!(await platform.get(ref))) created.push(...(await platform.apply([o])));
  }
  return created;
}
