import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import type { Mesh as MeshName } from '../contract/index.js';
import type { KubeObject, Platform } from '../services/platform.js';
import { InfrastructureError } from '../util/errors.js';
import { redact } from '../util/redact.js';
import { withRetry } from '../util/retry.js';
import { sdcManifests } from './manifests.js';
import { IdsEngine } from './ids.js';
import { handleJaeger } from './jaeger.js';
import { closeServer, Mesh, type Fault, type HopTransport, type WorkloadInstance } from './mesh.js';
import { NetnsLayout } from './netns.js';
import { ObjectStore } from './objects.js';
import { SandboxPlatform } from './platform.js';
import { MeshTelemetry } from './telemetry.js';
import { TraceStore } from './traces.js';
import {
  handlerFor,
  initialState,
  kindOf,
  podLabels,
  recordAlert,
  type AppState,
  type ProxyState,
} from './workloads.js';

/** The running sandbox's parts, shared by the admin API, the gRPC control server and startSandbox. */
export interface SandboxUrls {
  ingress: string;
  metrics: string;
  jaeger: string;
  grpc: string;
  admin: string;
}

export interface SandboxOptions {
  stateDir?: string;
  netns?: boolean;
  redisUrl?: string;
  /** Trace store capacity in spans (default 200,000). */
  traceCapacity?: number;
  host?: string;
  /** How hops between workloads travel (default 'inprocess'; 'socket' = a real HTTP exchange per hop). */
  hopTransport?: HopTransport;
  /** Share of traces kept (0..1, default 1); the ingress decides and tags root spans with the sampler. */
  traceSampling?: number;
  /** The API http-lb's routes are written in (default istio; gateway-api: an HTTPRoute, see manifests.ts). */
  mesh?: MeshName;
}

export class SandboxCore {
  readonly store = new ObjectStore();
  readonly telemetry = new MeshTelemetry();
  readonly traces: TraceStore;
  readonly mesh: Mesh;
  readonly ids: IdsEngine;
  readonly apps = new Map<string, AppState>();
  readonly platform: Platform;
  readonly host: string;
  redis?: Redis;
  private telemetryServer?: Server;
  private starting = new Map<string, Promise<unknown>>();
  private unwatch?: () => void;
  adminToken?: string;
  /** Called when the admin API is asked to shut down (the CLI's foreground `up` stops then). */
  onShutdown?: () => void;
  /** --netns mode: the namespaces, veths and bridge this sandbox created. */
  netns?: NetnsLayout;
  urls: SandboxUrls = { ingress: '', metrics: '', jaeger: '', grpc: '', admin: '' };

  constructor(readonly opts: SandboxOptions) {
    this.host = opts.host ?? '127.0.0.1';
    this.traces = new TraceStore(opts.traceCapacity);
    this.mesh = new Mesh(this.store, this.telemetry, this.traces, {
      transport: opts.hopTransport,
      traceSampling: opts.traceSampling,
    });
    if (opts.redisUrl) {
      // Reconnect (bounded backoff) only once a first connection succeeded: before that, start() retries and
      // fails with exit 4, and an ioredis reconnect loop would keep the process alive after the failure.
      let connectedOnce = false;
      this.redis = new Redis(opts.redisUrl, {
        lazyConnect: true,
        maxRetriesPerRequest: 2,
        connectTimeout: 3000,
        enableOfflineQueue: true,
        retryStrategy: (times) => (connectedOnce ? Math.min(times * 200, 2000) : null),
      });
      this.redis.once('ready', () => (connectedOnce = true));
      this.redis.on('error', () => undefined); // failures are counted per write (ids.redisErrors)
    }
    this.ids = new IdsEngine(this.redis, (alert) => recordAlert(this.proxyState(), alert));
    this.platform = new SandboxPlatform(
      this.store,
      `sandbox${opts.stateDir ? ` at ${opts.stateDir}` : ''}`,
      (_ns, name) => this.mesh.instances.has(name),
      () => ({ ingress: this.urls.ingress, jaeger: this.urls.jaeger, scrapeTargets: [this.urls.metrics] }),
      opts.stateDir,
    );
  }

  proxyState(): ProxyState | undefined {
    for (const s of this.apps.values()) if (s.kind === 'proxy') return s;
    return undefined;
  }

  /** What `down` removes after a crashed sandbox (`netns:<name>`, `link:<name>`), recorded in the state file. */
  get namespaces(): string[] {
    return this.netns?.created() ?? [];
  }

  async start(): Promise<void> {
    if (this.opts.netns) {
      this.netns = new NetnsLayout();
      await this.netns.createBridge();
    }
    if (this.redis) {
      const url = this.opts.redisUrl!;
      await withRetry(() => this.redis!.connect().then(() => this.redis!.ping()), {
        attempts: 3,
        baseDelayMs: 100,
      }).catch((err) => {
        // Stop ioredis' own reconnect loop, or a failed start keeps the process alive forever.
        this.redis!.disconnect();
        throw new InfrastructureError(
          'Redis',
          redact(url),
          (err as Error).message,
          'that redis-server is running and the --redis URL is right',
        );
      });
      await this.ids.init();
    }
    this.telemetryServer = createServer((req, res) => void this.serveTelemetry(req, res));
    await listen(this.telemetryServer, this.host);
    const tport = (this.telemetryServer.address() as AddressInfo).port;
    this.urls.metrics = `http://${this.host}:${tport}/metrics`;
    this.urls.jaeger = `http://${this.host}:${tport}`;
    this.unwatch = this.store.watch((e) => {
      if (e.object.kind !== 'Deployment') return;
      const name = e.object.metadata.name;
      if (e.type === 'DELETED') void this.stopWorkload(name);
      // After the whole apply: the Deployment's Service (named ports) may come later in the same batch.
      else if (!this.mesh.instances.has(name) && !this.starting.has(name)) {
        const d = e.object;
        this.starting.set(name, new Promise((r) => queueMicrotask(() => r(this.startWorkload(d)))));
      }
    });
    this.store.apply(sdcManifests(this.opts.mesh));
    await Promise.resolve();
    const ingress = await this.mesh.start({
      name: 'istio-ingressgateway',
      app: 'istio-ingressgateway',
      version: 'unknown',
      namespace: 'istio-system',
      labels: { app: 'istio-ingressgateway', istio: 'ingressgateway' },
      host: this.host,
      servicePort: 80,
      gateway: true,
      // Envoy picks the virtual host by the Host header (port stripped), case-insensitively.
      handler: (req, outbound) =>
        outbound(
          String(req.headers.host ?? '*')
            .replace(/:\d+$/, '')
            .toLowerCase(),
          req,
        ),
    });
    this.urls.ingress = `http://${this.host}:${ingress.port}`;
    await Promise.all([...this.starting.values()]);
  }

  private startWorkload(d: KubeObject): Promise<unknown> {
    const name = d.metadata.name;
    const labels = podLabels(d);
    const state = initialState(kindOf(d), d, this.ids);
    const app = labels.app ?? name;
    const servicePort = this.mesh.servicePort(app);
    const layout = this.netns;
    let handler = handlerFor(state, { host: this.host, port: 0 });
    const p = (async () => {
      // --netns: the pod's namespace first; its sidecar listens on the bridge address, its runner on the pod IP.
      const pod = layout ? await layout.addPod(name, servicePort) : undefined;
      const inst: WorkloadInstance = await this.mesh.start({
        name,
        app,
        version: labels.version ?? 'unknown',
        namespace: d.metadata.namespace ?? 'default',
        labels,
        host: layout ? layout.gateway : this.host,
        servicePort,
        handler: (req, out) => handler(req, out),
        pod: pod && layout ? { ip: pod.podIp, port: pod.port, egress: layout.egressAgent(name) } : undefined,
      });
      if (layout) await layout.startRunner(name, inst.port);
      this.apps.set(name, state);
      handler = handlerFor(state, pod ? { host: pod.podIp, port: pod.port } : inst);
    })().finally(() => this.starting.delete(name));
    return p;
  }

  private async stopWorkload(name: string): Promise<void> {
    await this.starting.get(name);
    this.apps.delete(name);
    await this.mesh.stopInstance(name);
    await this.netns?.removePod(name);
  }

  private async serveTelemetry(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      if (req.url === '/metrics' || req.url?.startsWith('/metrics?')) {
        const text = await this.telemetry.metricsText();
        res.writeHead(200, { 'content-type': this.telemetry.contentType }).end(text);
      } else if (!handleJaeger(this.traces, req, res)) {
        res
          .writeHead(404, { 'content-type': 'text/plain' })
          .end('not found: the sandbox serves /metrics and the Jaeger query API under /api/\n');
      }
    } catch (err) {
      if (!res.headersSent) res.writeHead(500).end(String(err));
    }
  }

  setFault(workload: string, version: string | undefined, fault: Fault | null): number {
    return this.mesh.setFault(workload, version, fault);
  }

  async stop(): Promise<void> {
    this.unwatch?.();
    await Promise.all([...this.starting.values()]).catch(() => undefined);
    await this.mesh.stopAll();
    await this.netns?.teardown();
    await closeServer(this.telemetryServer);
    await this.ids.flush();
    if (this.redis) this.redis.disconnect();
  }
}

export function listen(server: Server, host: string, port = 0): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
}
