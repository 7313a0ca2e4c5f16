import type { KubeObject } from '../services/platform.js';
import type { WorkloadInstance } from './mesh-types.js';
import type { ObjectStore } from './objects.js';
import { gatewayAdmits, labelsMatch, subsetLabels, type Destination } from './routing.js';
import { ClusterState, trafficPolicyFor } from './traffic-policy.js';

const ISTIO_GROUP = 'networking.istio.io';
const GATEWAY_API_GROUP = 'gateway.networking.k8s.io';

/**
 * Where a request may go: the routing objects and endpoints the sidecars read, derived from the object
 * store and the running instances and cached until either changes (Envoy's xDS view, in one place).
 */
export class ServiceDiscovery {
  /** Per cluster (service|subset): outlier ejections and connection pool, under the DestinationRule's trafficPolicy. */
  readonly clusters = new Map<string, ClusterState>();
  private readonly roundRobin = new Map<string, number>();
  private cache?: {
    vss: KubeObject[];
    httpRoutes: KubeObject[];
    drs: KubeObject[];
    gateways: Map<string, KubeObject[]>;
    endpoints: Map<string, WorkloadInstance[]>;
    ports: Map<string, number>;
  };

  constructor(
    private readonly store: ObjectStore,
    private readonly instances: ReadonlyMap<string, WorkloadInstance>,
  ) {}

  /** Forget what was derived: an object or an instance changed. */
  invalidate(): void {
    this.cache = undefined;
  }

  private view() {
    return (this.cache ??= {
      vss: this.store.listLive(ISTIO_GROUP, 'VirtualService', 'default'),
      httpRoutes: this.store.listLive(GATEWAY_API_GROUP, 'HTTPRoute', 'default'),
      drs: this.store.listLive(ISTIO_GROUP, 'DestinationRule', 'default'),
      gateways: new Map(),
      endpoints: new Map(),
      ports: new Map(),
    });
  }

  virtualServices(): KubeObject[] {
    return this.view().vss;
  }

  httpRoutes(): KubeObject[] {
    return this.view().httpRoutes;
  }

  /** Whether a Service exists with this port (any port when none is given): what makes a backendRef valid. */
  hasServicePort(service: string, port?: number): boolean {
    const svc = this.store.peek({ apiVersion: 'v1', kind: 'Service', namespace: 'default', name: service });
    if (!svc) return false;
    const ports = ((svc.spec ?? {}) as { ports?: Array<{ port: number }> }).ports ?? [];
    return port === undefined || ports.some((p) => p.port === port);
  }

  /** Gateway objects whose selector picks this ingress (selector `istio: ingressgateway`) and whose servers admit `host`. */
  gatewayNames(ingress: WorkloadInstance, host: string): string[] {
    const c = this.view();
    let gws: KubeObject[] | undefined = c.gateways.get(ingress.name);
    if (!gws) {
      gws = this.store
        .listLive(ISTIO_GROUP, 'Gateway')
        .filter((g) =>
          labelsMatch(
            ingress.labels,
            ((g.spec ?? {}) as { selector?: Record<string, string> }).selector ?? {},
          ),
        );
      c.gateways.set(ingress.name, gws);
    }
    return gws.filter((g) => gatewayAdmits(g, host)).map((g) => g.metadata.name);
  }

  servicePort(service: string): number {
    const c = this.view();
    let port = c.ports.get(service);
    if (port === undefined) c.ports.set(service, (port = this.lookupServicePort(service)));
    return port;
  }

  private lookupServicePort(service: string): number {
    const svc = this.store.peek({ apiVersion: 'v1', kind: 'Service', namespace: 'default', name: service });
    const ports = ((svc?.spec ?? {}) as { ports?: Array<{ name?: string; port: number }> }).ports ?? [];
    return (ports.find((p) => p.name === 'http') ?? ports[0])?.port ?? 9180;
  }

  /** Instances a destination (service + optional subset) resolves to, through Service selector and DestinationRule. */
  endpointsOf(dest: Destination): WorkloadInstance[] {
    const c = this.view();
    const key = `${dest.service}|${dest.subset ?? ''}`;
    let eps = c.endpoints.get(key);
    if (!eps) c.endpoints.set(key, (eps = this.lookupEndpoints(dest, c.drs)));
    return eps;
  }

  private lookupEndpoints(dest: Destination, drs: KubeObject[]): WorkloadInstance[] {
    const svc = this.store.peek({
      apiVersion: 'v1',
      kind: 'Service',
      namespace: 'default',
      name: dest.service,
    });
    const selector = ((svc?.spec ?? {}) as { selector?: Record<string, string> }).selector;
    if (!selector) return [];
    let want = selector;
    if (dest.subset) {
      const sub = subsetLabels(drs, dest.service, dest.subset);
      if (!sub) return [];
      want = { ...selector, ...sub };
    }
    const out: WorkloadInstance[] = [];
    for (const i of this.instances.values()) if (!i.gateway && labelsMatch(i.labels, want)) out.push(i);
    return out;
  }

  /** The cluster of a destination, its trafficPolicy refreshed from the DestinationRules. */
  cluster(dest: Destination): ClusterState {
    const key = `${dest.service}|${dest.subset ?? ''}`;
    let c = this.clusters.get(key);
    if (!c) this.clusters.set(key, (c = new ClusterState()));
    c.policy = trafficPolicyFor(this.view().drs, dest.service, dest.subset);
    return c;
  }

  /** Round robin over the destination's endpoints (the healthy ones, when a cluster is given). */
  pick(dest: Destination, cluster?: ClusterState): WorkloadInstance | undefined {
    const all = this.endpointsOf(dest);
    const eps = cluster ? cluster.healthy(all) : all;
    if (eps.length <= 1) return eps[0];
    const key = `${dest.service}|${dest.subset ?? ''}`;
    const n = (this.roundRobin.get(key) ?? 0) + 1;
    this.roundRobin.set(key, n);
    return eps[n % eps.length];
  }
}
