import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { KubeObject } from '../services/platform.js';
import { createAgent } from './http-hop.js';
import { ServiceDiscovery } from './mesh-discovery.js';
import { FaultTable } from './mesh-faults.js';
import { inboundSidecar } from './mesh-inbound.js';
import { outboundSidecar } from './mesh-outbound.js';
import { EMPTY, type SidecarContext, type TraceContext } from './mesh-sidecar.js';
import type {
  AppRequest,
  AppResponse,
  Fault,
  HopTransport,
  InboundRequest,
  InboundResult,
  WorkloadInstance,
} from './mesh-types.js';
import type { ObjectStore } from './objects.js';
import type { MeshTelemetry } from './telemetry.js';
import type { TraceStore } from './traces.js';
import type { ClusterState } from './traffic-policy.js';

/**
 * The local mesh: every workload instance listens on its own loopback port with its sidecar in front
 * (inbound: faults, telemetry, one span per hop — mesh-inbound.ts); outbound calls resolve the destination
 * through the VirtualServices and DestinationRules in the object store, exactly as Envoy would
 * (mesh-outbound.ts, mesh-discovery.ts). This class owns the instances' lifecycle and the fault knobs.
 */
export type {
  Fault,
  AppRequest,
  AppResponse,
  Outbound,
  AppHandler,
  WorkloadInstance,
  InboundRequest,
  InboundResult,
  HopTransport,
} from './mesh-types.js';

export class Mesh implements SidecarContext {
  readonly instances = new Map<string, WorkloadInstance>();
  readonly agent = createAgent();
  readonly discovery: ServiceDiscovery;
  private readonly faults = new FaultTable();
  readonly random: () => number;
  readonly transport: HopTransport;
  private readonly unwatch: () => void;
  /** Default per-try deadline when a route sets no timeout (Envoy's default route timeout is 15 s). */
  defaultTimeoutMs = 15_000;
  /** Share of new traces kept (Istio's meshConfig.defaultConfig.tracing.sampling, as a fraction; Istio's default is 1%). */
  traceSampling = 1;

  constructor(
    readonly store: ObjectStore,
    readonly telemetry: MeshTelemetry,
    readonly traces: TraceStore,
    opts: { random?: () => number; transport?: HopTransport; traceSampling?: number } = {},
  ) {
    this.random = opts.random ?? Math.random;
    this.traceSampling = opts.traceSampling ?? 1;
    this.transport = opts.transport ?? 'inprocess';
    this.discovery = new ServiceDiscovery(store, this.instances);
    this.unwatch = store.watch(() => this.discovery.invalidate());
  }

  /** Per cluster (service|subset): outlier ejections and connection pool state. */
  get clusters(): Map<string, ClusterState> {
    return this.discovery.clusters;
  }

  async start(
    w: Omit<WorkloadInstance, 'port' | 'server' | 'nodeId'> & { port?: number },
  ): Promise<WorkloadInstance> {
    const inst: WorkloadInstance = {
      ...w,
      port: w.port ?? 0,
      nodeId: `${w.gateway ? 'router' : 'sidecar'}~${w.host}~${w.name}-${randomBytes(3).toString('hex')}.${w.namespace}~${w.namespace}.svc.cluster.local`,
    };
    if (!inst.remote) {
      const server = createServer({ keepAlive: true, keepAliveTimeout: 30_000 }, (req, res) =>
        this.inbound(inst, req, res),
      );
      server.keepAliveTimeout = 30_000;
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(inst.port, inst.host, () => resolve());
      });
      inst.port = (server.address() as AddressInfo).port;
      inst.server = server;
    }
    inst.fault = this.faults.for(inst);
    this.instances.set(inst.name, inst);
    this.discovery.invalidate();
    return inst;
  }

  async stopInstance(name: string): Promise<void> {
    const inst = this.instances.get(name);
    if (!inst) return;
    this.instances.delete(name);
    this.discovery.invalidate();
    await closeServer(inst.server);
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.instances.keys()].map((n) => this.stopInstance(n)));
    this.unwatch();
    this.agent.destroy();
  }

  /** Fault knobs for a workload (app or Deployment name), optionally one version only; null clears them. */
  setFault(workload: string, version: string | undefined, fault: Fault | null): number {
    return this.faults.set(workload, version, fault, this.instances.values());
  }

  faultList(): Array<{ workload: string; version?: string; fault: Fault }> {
    return this.faults.list();
  }

  handleInbound(inst: WorkloadInstance, req: InboundRequest): Promise<InboundResult> {
    return inboundSidecar(this, inst, req);
  }

  outbound(
    from: WorkloadInstance,
    ctx: TraceContext,
    service: string,
    req: AppRequest,
  ): Promise<AppResponse> {
    return outboundSidecar(this, from, ctx, service, req);
  }

  servicePort(service: string): number {
    return this.discovery.servicePort(service);
  }

  /** The socket transport: an HTTP request on the instance's port, answered by `handleInbound`. */
  private inbound(inst: WorkloadInstance, req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = chunks.length === 0 ? EMPTY : chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
      this.handleInbound(inst, {
        method: req.method ?? 'GET',
        path: req.url ?? '/',
        headers: req.headers,
        body,
      }).then(
        (r) => {
          // A TCP RST on the wire, as a crashing workload produces; the caller's sidecar reports 503 UC.
          if (r.reset) req.socket.resetAndDestroy();
          else if (!res.headersSent && !res.destroyed) res.writeHead(r.status, r.headers).end(r.body);
        },
        (err) => {
          if (!res.headersSent) res.writeHead(500).end(String(err));
        },
      );
    });
  }
}

export function closeServer(server: Server | undefined): Promise<void> {
  if (!server) return Promise.resolve();
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

export type { KubeObject };
