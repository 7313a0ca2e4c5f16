import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type {
  KubeObject,
  LoadEngineRequest,
  LoadEngineSet,
  ObjectRef,
  Platform,
  PlatformEndpoints,
  WorkloadStatus,
} from '../services/platform.js';
import { InvalidInputError, type InputProblem } from '../util/errors.js';
import { httpRouteProblems } from './httproute.js';
import { startLocalEngines } from './load-engines.js';
import type { ObjectStore } from './objects.js';

/**
 * The Platform interface over the sandbox's object store: the same calls the Kubernetes adapter answers,
 * so stages cannot tell a sandbox from a cluster. Deployments start and stop workloads (see controller).
 */
const ISTIO_VERSIONS = [
  'networking.istio.io/v1alpha3',
  'networking.istio.io/v1beta1',
  'networking.istio.io/v1',
];

export function checkObjects(objects: KubeObject[], file?: string): void {
  const problems: InputProblem[] = [];
  objects.forEach((o, i) => {
    const at = (path: string, message: string) =>
      problems.push({
        file,
        path: `[${i}]${path}`,
        message,
        subject: `${o?.kind ?? '?'} ${o?.metadata?.name ?? ''}`.trim(),
      });
    if (!o || typeof o !== 'object') return at('', 'expected a Kubernetes object');
    if (typeof o.apiVersion !== 'string')
      at('.apiVersion', 'expected a string such as networking.istio.io/v1beta1');
    if (typeof o.kind !== 'string') at('.kind', 'expected a string such as VirtualService');
    if (!o.metadata || typeof o.metadata.name !== 'string' || !o.metadata.name)
      at('.metadata.name', 'expected a non-empty name');
    if (o.apiVersion?.startsWith('networking.istio.io/') && !ISTIO_VERSIONS.includes(o.apiVersion)) {
      at('.apiVersion', `expected one of ${ISTIO_VERSIONS.join(', ')}, found "${o.apiVersion}"`);
    }
    if (o.kind === 'HTTPRoute') for (const [path, message] of httpRouteProblems(o)) at(path, message);
    if (o.kind === 'VirtualService') {
      const http =
        (
          (o.spec ?? {}) as {
            http?: Array<{ route?: Array<{ weight?: number; destination?: { host?: string } }> }>;
          }
        ).http ?? [];
      http.forEach((r, j) => {
        const route = r.route ?? [];
        route.forEach((d, k) => {
          if (!d.destination?.host) at(`.spec.http[${j}].route[${k}].destination.host`, 'expected a host');
          if (d.weight !== undefined && (!Number.isInteger(d.weight) || d.weight < 0 || d.weight > 100)) {
            at(
              `.spec.http[${j}].route[${k}].weight`,
              `expected an integer 0..100, found ${JSON.stringify(d.weight)}`,
            );
          }
        });
        const total = route.reduce((s, d) => s + (d.weight ?? 0), 0);
        if (route.length > 1 && total !== 100)
          at(`.spec.http[${j}].route`, `weights must add up to 100, found ${total}`);
      });
    }
  });
  if (problems.length)
    throw new InvalidInputError(`${problems.length} invalid object(s)${file ? ` in ${file}` : ''}`, problems);
}

export class SandboxPlatform implements Platform {
  readonly kind = 'sandbox' as const;
  constructor(
    private readonly store: ObjectStore,
    readonly description: string,
    private readonly ready: (namespace: string, name: string) => boolean,
    private readonly urls: () => PlatformEndpoints,
    /** Where the load engines are recorded while they run (load-engines.ts). */
    private readonly stateDir = join(tmpdir(), 'clover-cd-load-engines'),
  ) {}

  async apply(objects: KubeObject[]): Promise<KubeObject[]> {
    checkObjects(objects);
    return this.store.apply(objects);
  }
  async get(ref: ObjectRef): Promise<KubeObject | undefined> {
    return this.store.get(ref);
  }
  async patch(
    ref: ObjectRef,
    mergePatch: Record<string, unknown>,
    opts?: { resourceVersion?: string },
  ): Promise<KubeObject> {
    const current = this.store.get(ref);
    if (!current)
      throw new InvalidInputError(`${ref.kind} ${ref.namespace}/${ref.name} does not exist in the sandbox`);
    const result = this.store.patch(ref, mergePatch, opts?.resourceVersion);
    try {
      checkObjects([result]);
    } catch (err) {
      this.store.apply([current]); // put the previous spec back: a rejected patch changes nothing
      throw err;
    }
    return result;
  }
  async delete(ref: ObjectRef): Promise<boolean> {
    return this.store.delete(ref);
  }
  async list(
    apiVersion: string,
    kind: string,
    namespace: string,
    labelSelector?: string,
  ): Promise<KubeObject[]> {
    return this.store.list(apiVersion, kind, namespace, labelSelector);
  }
  async workloadStatus(namespace: string, name: string): Promise<WorkloadStatus> {
    const d = this.store.get({ apiVersion: 'apps/v1', kind: 'Deployment', namespace, name });
    if (!d)
      return {
        ready: false,
        message: `Deployment ${namespace}/${name} not found`,
        replicas: 0,
        availableReplicas: 0,
      };
    const replicas = Number((d.spec as { replicas?: number })?.replicas ?? 1);
    if (replicas === 0)
      return { ready: true, message: 'scaled to 0 replicas', replicas: 0, availableReplicas: 0 };
    const up = this.ready(namespace, name);
    return {
      ready: up,
      message: up
        ? `${replicas}/${replicas} replicas available`
        : `0/${replicas} replicas available (starting)`,
      replicas,
      availableReplicas: up ? replicas : 0,
    };
  }
  endpoints(): PlatformEndpoints {
    return this.urls();
  }
  startLoadEngines(request: LoadEngineRequest): Promise<LoadEngineSet> {
    return startLocalEngines(this.stateDir, request);
  }
}
