/**
 * The platform a release runs on. `services/kubernetes` (a real cluster through the API server) and
 * `sandbox/` (the local SDC mesh) both implement it, so stages cannot tell them apart.
 * Objects are plain Kubernetes-shaped JSON (apiVersion, kind, metadata, spec).
 */
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
  /** Deployment rollout status: observedGeneration, updated and available replicas. */
  workloadStatus(namespace: string, name: string): Promise<WorkloadStatus>;
  endpoints(): PlatformEndpoints;
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
