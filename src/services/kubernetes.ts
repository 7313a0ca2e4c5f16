// Over 400 lines: the one Kubernetes adapter: each verb the engine calls, with its timeout, retries and error wording.
/**
 * The Platform on a real cluster, through the Kubernetes API server with @kubernetes/client-node.
 * Custom resources (VirtualService, DestinationRule) are changed with JSON merge patch — strategic merge
 * patch is refused for them by the API server — and a patch carrying `metadata.resourceVersion` fails
 * with 409 when someone else wrote first (`modifyWithRetry` re-reads and recomputes). Every failure names
 * the verb and the object; credentials never appear in messages.
 */
import { existsSync } from 'node:fs';
import { Writable } from 'node:stream';
import {
  ApiException,
  CoreV1Api,
  KubeConfig,
  KubernetesObjectApi,
  Log,
  PatchStrategy,
  Watch,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { InfrastructureError, InvalidInputError } from '../util/errors.js';
import { recordWrite } from '../util/changes.js';
import { redact, registerSecret } from '../util/redact.js';
import { sleep, withRetry } from '../util/retry.js';
import {
  ConflictError,
  describeRef,
  type KubeObject,
  type ObjectRef,
  type Platform,
  type PlatformEndpoints,
  type WorkloadKind,
  type WorkloadStatus,
} from './platform.js';

const SYSTEM = 'Kubernetes API';
export const FIELD_MANAGER = 'clover-cd';

export interface KubernetesOptions {
  /** Path to a kubeconfig file; default $KUBECONFIG, then ~/.kube/config, then the in-cluster service account. */
  kubeconfig?: string;
  /** Use the pod's service account (KUBERNETES_SERVICE_HOST + /var/run/secrets/kubernetes.io/serviceaccount). */
  inCluster?: boolean;
  /** Root under which the service-account files are read in-cluster (default "/"; tests point it elsewhere). */
  inClusterRoot?: string;
  context?: string;
  /** Per-request time limit (default 15 s). */
  timeoutMs?: number;
  /** Attempts for transport errors and 5xx/429 answers (default 3). */
  attempts?: number;
  /** Where the gate reads evidence and where load is sent, for this cluster. */
  endpoints?: PlatformEndpoints;
}

/** A KubeConfig from the options: explicit file, in-cluster, or the default search ($KUBECONFIG, ~/.kube/config, in-cluster). */
export function loadKubeConfig(opts: KubernetesOptions = {}): KubeConfig {
  const kc = new KubeConfig();
  try {
    if (opts.inCluster) {
      const root = opts.inClusterRoot ?? '';
      const tokenFile = `${root}/var/run/secrets/kubernetes.io/serviceaccount/token`;
      if (!process.env.KUBERNETES_SERVICE_HOST || !existsSync(tokenFile)) {
        throw new Error(
          `not running in a pod: KUBERNETES_SERVICE_HOST ${process.env.KUBERNETES_SERVICE_HOST ? 'is set' : 'is not set'}, ${tokenFile} ${existsSync(tokenFile) ? 'exists' : 'is missing'}`,
        );
      }
      kc.loadFromCluster(root || undefined);
    } else if (opts.kubeconfig) kc.loadFromFile(opts.kubeconfig);
    else kc.loadFromDefault();
  } catch (err) {
    throw new InvalidInputError(
      `cannot load the kubeconfig${opts.kubeconfig ? ` ${opts.kubeconfig}` : ''}: ${redact((err as Error).message)}`,
    );
  }
  if (opts.context) {
    const names = kc.getContexts().map((c) => c.name);
    if (!names.includes(opts.context)) {
      throw new InvalidInputError(
        `kubeconfig has no context "${opts.context}"; contexts: ${names.join(', ') || '(none)'}`,
      );
    }
    kc.setCurrentContext(opts.context);
  }
  for (const u of kc.getUsers()) {
    registerSecret(u.token);
    registerSecret(u.password);
    registerSecret(u.keyData);
  }
  if (!kc.getCurrentCluster())
    throw new InvalidInputError('the kubeconfig names no cluster for its current context');
  return kc;
}

export interface ContextInfo {
  name: string;
  cluster: string;
  namespace?: string;
  current: boolean;
}

export function listContexts(kc: KubeConfig): ContextInfo[] {
  const current = kc.getCurrentContext();
  return kc
    .getContexts()
    .map((c) => ({ name: c.name, cluster: c.cluster, namespace: c.namespace, current: c.name === current }));
}

function statusMessage(err: ApiException<unknown>): string {
  const body = err.body as { message?: string } | string | undefined;
  const msg = typeof body === 'string' ? (safeJson(body)?.message ?? body) : body?.message;
  return `HTTP ${err.code}${msg ? `: ${msg}` : ''}`;
}

function safeJson(s: string): { message?: string } | undefined {
  try {
    return JSON.parse(s) as { message?: string };
  } catch {
    return undefined;
  }
}

const isTransient = (err: unknown): boolean =>
  err instanceof ApiException
    ? err.code >= 500 || err.code === 429
    : !(err instanceof ConflictError) && !(err instanceof InvalidInputError);

/** Deserialised typed objects (Dates, classes) back to the plain JSON the rest of clover-cd uses. */
const plain = <T>(o: unknown): T => JSON.parse(JSON.stringify(o)) as T;

/**
 * A 404 for the type, not the object: API discovery has no such group/version/kind (a CRD that is not
 * installed). The API server's Status for a missing object names it in `details.name`; the one for an
 * unknown path does not.
 */
function servesNoSuchType(err: ApiException<unknown>): boolean {
  let body: unknown = err.body;
  if (typeof body === 'string') {
    try {
      body = JSON.parse(body);
    } catch {
      return true; // "404 page not found": not an object's Status
    }
  }
  const details = (body as { details?: { name?: string } } | undefined)?.details;
  return !details?.name;
}

export class KubernetesPlatform implements Platform {
  readonly kind = 'kubernetes' as const;
  readonly description: string;
  private readonly objects: KubernetesObjectApi;
  private readonly timeoutMs: number;
  private readonly attempts: number;
  private readonly server: string;

  constructor(
    readonly kubeConfig: KubeConfig,
    private readonly opts: KubernetesOptions = {},
  ) {
    this.objects = KubernetesObjectApi.makeApiClient(kubeConfig);
    this.timeoutMs = opts.timeoutMs ?? 15_000;
    this.attempts = opts.attempts ?? 3;
    this.server = kubeConfig.getCurrentCluster()?.server ?? '(no server)';
    this.description = `cluster context ${kubeConfig.getCurrentContext()} (${this.server})`;
  }

  /**
   * One API call with a time limit and bounded retries. `expected` statuses are answers the caller handles
   * (404 on get, 409 on a guarded patch); anything else becomes an InfrastructureError naming verb and object.
   */
  private async call<T>(
    verb: string,
    what: string,
    fn: () => Promise<T>,
    expected: number[] = [],
  ): Promise<T> {
    try {
      return await withRetry(() => withTimeout(fn(), this.timeoutMs, `${verb} ${what}`), {
        attempts: this.attempts,
        baseDelayMs: 200,
        retryable: (e) => !(e instanceof ApiException && expected.includes(e.code)) && isTransient(e),
      });
    } catch (err) {
      if (err instanceof ApiException && expected.includes(err.code)) throw err;
      if (err instanceof ApiException) {
        const hint =
          err.code === 401 || err.code === 403
            ? `that the credentials of context ${this.kubeConfig.getCurrentContext()} may ${verb} ${what.split(' ')[0]} (RBAC)`
            : err.code === 404
              ? `that the resource type is installed (for Istio objects: the networking.istio.io CRDs)`
              : `the object and the API server's answer`;
        throw new InfrastructureError(SYSTEM, `${verb} ${what}`, redact(statusMessage(err)), hint);
      }
      const message = (err as Error).message ?? String(err);
      // The client resolves a kind through API discovery first: an uninstalled CRD ends there, not with a 404.
      const kind = /Unrecognized API version and kind: (\S+) (\S+)/.exec(message);
      if (kind) {
        throw new InfrastructureError(
          SYSTEM,
          `${verb} ${what}`,
          `the API server does not serve ${kind[2]} (${kind[1]}): its CustomResourceDefinition is not installed`,
          `kubectl get crd | grep ${kind[1].split('/')[0]} (for Istio objects: install Istio's base chart, which holds the networking.istio.io CRDs)`,
        );
      }
      throw new InfrastructureError(
        SYSTEM,
        `${verb} ${what}`,
        redact(message),
        `that the API server ${this.server} is reachable (kubectl --context ${this.kubeConfig.getCurrentContext()} version)`,
      );
    }
  }

  private header(ref: ObjectRef): {
    apiVersion: string;
    kind: string;
    metadata: { name: string; namespace: string };
  } {
    return {
      apiVersion: ref.apiVersion,
      kind: ref.kind,
      metadata: { name: ref.name, namespace: ref.namespace },
    };
  }

  async get(ref: ObjectRef): Promise<KubeObject | undefined> {
    try {
      return plain<KubeObject>(
        await this.call('get', describeRef(ref), () => this.objects.read(this.header(ref)), [404]),
      );
    } catch (err) {
      if (err instanceof ApiException && err.code === 404 && !servesNoSuchType(err)) return undefined;
      if (err instanceof ApiException && err.code === 404) {
        throw new InfrastructureError(
          SYSTEM,
          `get ${describeRef(ref)}`,
          `the API server does not serve ${ref.kind} (${ref.apiVersion}): its CustomResourceDefinition is not installed`,
          `kubectl get crd | grep ${ref.apiVersion.split('/')[0]} (for Istio objects: install Istio's base chart, which holds the networking.istio.io CRDs)`,
        );
      }
      throw err;
    }
  }

  /** Server-side apply (content type application/apply-patch+yaml, fieldManager clover-cd, force). */
  async apply(objects: KubeObject[]): Promise<KubeObject[]> {
    const out: KubeObject[] = [];
    for (const o of objects) {
      const ref = { ...o.metadata, namespace: o.metadata.namespace ?? 'default', kind: o.kind };
      const body = { ...o, metadata: { ...o.metadata, namespace: ref.namespace } } as KubernetesObject;
      out.push(
        plain<KubeObject>(
          await this.call('apply', describeRef(ref), () =>
            this.objects.patch(
              body,
              undefined,
              undefined,
              FIELD_MANAGER,
              true,
              PatchStrategy.ServerSideApply,
            ),
          ),
        ),
      );
      recordWrite('applied', ref);
    }
    return out;
  }

  async patch(
    ref: ObjectRef,
    mergePatch: Record<string, unknown>,
    opts: { resourceVersion?: string } = {},
  ): Promise<KubeObject> {
    const meta = (mergePatch.metadata ?? {}) as Record<string, unknown>;
    const body = {
      ...mergePatch,
      apiVersion: ref.apiVersion,
      kind: ref.kind,
      metadata: {
        ...meta,
        name: ref.name,
        namespace: ref.namespace,
        ...(opts.resourceVersion ? { resourceVersion: opts.resourceVersion } : {}),
      },
    } as KubernetesObject;
    try {
      const patched = plain<KubeObject>(
        await this.call(
          'patch',
          describeRef(ref),
          () =>
            this.objects.patch(
              body,
              undefined,
              undefined,
              FIELD_MANAGER,
              undefined,
              PatchStrategy.MergePatch,
            ),
          [409],
        ),
      );
      recordWrite('patched', ref);
      return patched;
    } catch (err) {
      if (err instanceof ApiException && err.code === 409) throw new ConflictError(ref);
      throw err;
    }
  }

  async delete(ref: ObjectRef): Promise<boolean> {
    try {
      // Background: a Job's pods go with it (its API default orphans them); other kinds default to it anyway.
      await this.call(
        'delete',
        describeRef(ref),
        () => this.objects.delete(this.header(ref), undefined, undefined, undefined, undefined, 'Background'),
        [404],
      );
      recordWrite('deleted', ref);
      return true;
    } catch (err) {
      if (err instanceof ApiException && err.code === 404) return false;
      throw err;
    }
  }

  async list(
    apiVersion: string,
    kind: string,
    namespace: string,
    labelSelector?: string,
  ): Promise<KubeObject[]> {
    const res = await this.call(
      `list`,
      `${kind} in ${namespace}${labelSelector ? ` (${labelSelector})` : ''}`,
      () =>
        this.objects.list(
          apiVersion,
          kind,
          namespace,
          undefined,
          undefined,
          undefined,
          undefined,
          labelSelector,
        ),
    );
    return plain<{ items: KubeObject[] }>(res).items.map((i) => ({
      ...i,
      apiVersion: i.apiVersion ?? apiVersion,
      kind: i.kind ?? kind,
    }));
  }

  async namespaces(): Promise<string[]> {
    const core = this.kubeConfig.makeApiClient(CoreV1Api);
    const res = await this.call('list', 'namespaces', () => core.listNamespace());
    return res.items.map((n) => n.metadata?.name ?? '').filter(Boolean);
  }

  async workloadStatus(
    namespace: string,
    name: string,
    kind: WorkloadKind = 'Deployment',
  ): Promise<WorkloadStatus> {
    const d = await this.get({ apiVersion: 'apps/v1', kind, namespace, name });
    if (!d) return { ready: false, message: `${kind} ${namespace}/${name} not found` };
    // A StatefulSet (1.20) counts ready replicas where a Deployment counts available ones.
    if (kind === 'StatefulSet') {
      const st = (d.status ?? {}) as { readyReplicas?: number };
      return deploymentStatus({ ...d, status: { ...d.status, availableReplicas: st.readyReplicas ?? 0 } });
    }
    return deploymentStatus(d);
  }

  /** The container's log through the API server (`pods/log`, follow), line by line, until it ends or `signal` aborts. */
  async followLog(
    pod: { namespace: string; name: string; container: string },
    onLine: (line: string) => void,
    signal?: AbortSignal,
  ): Promise<void> {
    const what = `pods/log ${pod.namespace}/${pod.name} (container ${pod.container})`;
    let partial = '';
    let settle: (err?: Error) => void = () => undefined;
    const ended = new Promise<void>((resolve, reject) => (settle = (err) => (err ? reject(err) : resolve())));
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        const lines = (partial + chunk.toString('utf8')).split('\n');
        partial = lines.pop() ?? '';
        lines.forEach(onLine);
        done();
      },
      final(done) {
        if (partial) onLine(partial);
        partial = '';
        settle();
        done();
      },
    });
    sink.on('error', (err) => settle(err));
    const req = await this.call('get', what, () =>
      new Log(this.kubeConfig).log(pod.namespace, pod.name, pod.container, sink, { follow: true }),
    );
    const onAbort = () => {
      req.abort();
      settle();
    };
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await ended;
    } catch (err) {
      throw new InfrastructureError(
        SYSTEM,
        `get ${what}`,
        redact((err as Error).message),
        `kubectl -n ${pod.namespace} logs ${pod.name} -c ${pod.container}`,
      );
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /**
   * Wait until a Deployment's rollout is complete (as `kubectl rollout status`): a watch from the read's
   * resourceVersion, so no change between read and watch is missed; fails on ProgressDeadlineExceeded.
   */
  async waitForRollout(
    namespace: string,
    name: string,
    timeoutMs: number,
    onStatus?: (s: WorkloadStatus) => void,
  ): Promise<WorkloadStatus> {
    const what = `Deployment ${namespace}/${name}`;
    const deadline = Date.now() + timeoutMs;
    let last: WorkloadStatus = { ready: false, message: 'not read yet' };
    while (Date.now() < deadline) {
      const d = await this.get({ apiVersion: 'apps/v1', kind: 'Deployment', namespace, name });
      if (!d)
        throw new InfrastructureError(
          SYSTEM,
          `rollout status ${what}`,
          'not found',
          `that the Deployment exists in namespace ${namespace}`,
        );
      last = deploymentStatus(d);
      onStatus?.(last);
      if (last.ready) return last;
      checkDeadline(d, what);
      const result = await this.watchUntil(
        namespace,
        name,
        d.metadata.resourceVersion,
        deadline - Date.now(),
        (obj) => {
          last = deploymentStatus(obj);
          onStatus?.(last);
          checkDeadline(obj, what);
          return last.ready;
        },
      );
      if (result === 'ready') return last;
      // The watch ended (server timeout, 410 Gone): read again and watch from the fresh resourceVersion.
      if (result === 'ended') await sleep(100);
    }
    throw new InfrastructureError(
      SYSTEM,
      `rollout status ${what}`,
      `not complete after ${Math.round(timeoutMs / 1000)}s: ${last.message}`,
      `kubectl -n ${namespace} describe deployment ${name}`,
    );
  }

  private watchUntil(
    namespace: string,
    name: string,
    resourceVersion: string | undefined,
    ms: number,
    check: (o: KubeObject) => boolean,
  ): Promise<'ready' | 'ended'> {
    return new Promise((resolve, reject) => {
      let controller: AbortController | undefined;
      let settled = false;
      const finish = (fn: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        controller?.abort();
        fn();
      };
      const timer = setTimeout(() => finish(() => resolve('ended')), Math.max(0, ms));
      new Watch(this.kubeConfig)
        .watch(
          `/apis/apps/v1/namespaces/${namespace}/deployments`,
          {
            fieldSelector: `metadata.name=${name}`,
            resourceVersion,
            allowWatchBookmarks: true,
            timeoutSeconds: Math.max(1, Math.ceil(ms / 1000)),
          },
          (type, obj) => {
            if (type !== 'ADDED' && type !== 'MODIFIED') return;
            try {
              if (check(plain<KubeObject>(obj))) finish(() => resolve('ready'));
            } catch (err) {
              finish(() => reject(err));
            }
          },
          () => finish(() => resolve('ended')),
        )
        .then((c) => {
          controller = c;
          if (settled) c.abort();
        })
        .catch(() => finish(() => resolve('ended')));
    });
  }

  endpoints(): PlatformEndpoints {
    return { ...this.opts.endpoints };
  }
}

function checkDeadline(d: KubeObject, what: string): void {
  const conds = (d.status?.conditions as Array<{ type: string; reason?: string; message?: string }>) ?? [];
  const stuck = conds.find((c) => c.type === 'Progressing' && c.reason === 'ProgressDeadlineExceeded');
  if (stuck)
    throw new InfrastructureError(
      SYSTEM,
      `rollout status ${what}`,
      `progress deadline exceeded: ${stuck.message ?? ''}`.trim(),
      `kubectl describe deployment ${d.metadata.name}; the new pods are not becoming available`,
    );
}

/** Rollout status of a Deployment object, with the same rules as `kubectl rollout status`. */
export function deploymentStatus(d: KubeObject): WorkloadStatus {
  const spec = (d.spec ?? {}) as { replicas?: number };
  const st = (d.status ?? {}) as {
    observedGeneration?: number;
    replicas?: number;
    updatedReplicas?: number;
    availableReplicas?: number;
  };
  const want = spec.replicas ?? 1;
  const base = { replicas: want, availableReplicas: st.availableReplicas ?? 0 };
  if ((st.observedGeneration ?? 0) < (d.metadata.generation ?? 0)) {
    return {
      ...base,
      ready: false,
      message: `waiting for the rollout to be observed (generation ${d.metadata.generation}, observed ${st.observedGeneration ?? 0})`,
    };
  }
  const updated = st.updatedReplicas ?? 0;
  if (updated < want) return { ...base, ready: false, message: `${updated} of ${want} replicas updated` };
  if ((st.replicas ?? 0) > updated)
    return {
      ...base,
      ready: false,
      message: `${(st.replicas ?? 0) - updated} old replicas pending termination`,
    };
  if ((st.availableReplicas ?? 0) < updated)
    return {
      ...base,
      ready: false,
      message: `${st.availableReplicas ?? 0} of ${updated} updated replicas available`,
    };
  return { ...base, ready: true, message: `${want}/${want} replicas updated and available` };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<T>((_, reject) => {
      t = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    }),
  ]);
}

export function createKubernetesPlatform(opts: KubernetesOptions = {}): KubernetesPlatform {
  return new KubernetesPlatform(loadKubeConfig(opts), opts);
}
