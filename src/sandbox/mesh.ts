import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { KubeObject } from '../services/platform.js';
import type { OutgoingHttpHeaders } from 'node:http';
import { createAgent, forwardableHeaders, HopError, pickHeaders, retryableError, retryableStatus, sendHop, type HopResponse, pathOnly } from './http-hop.js';
import type { ObjectStore } from './objects.js';
import { gatewayAdmits, labelsMatch, routeRequest, subsetLabels, type Destination, type RequestView } from './routing.js';
import type { MeshTelemetry } from './telemetry.js';
import type { TraceStore } from './traces.js';
import { newRequestId, newSpanId, newTraceId } from './trace-ids.js';
import { ClusterState, trafficPolicyFor, type AttemptOutcome } from './traffic-policy.js';
import type { AppRequest, AppResponse, Fault, HopTransport, InboundRequest, InboundResult, Outbound, WorkloadInstance } from './mesh-types.js';

/**
 * The local mesh: every workload instance listens on its own loopback port with its sidecar in front
 * (inbound: faults, telemetry, one span per hop); outbound calls resolve the destination through the
 * VirtualServices and DestinationRules in the object store, exactly as Envoy would.
 */
export type { Fault, AppRequest, AppResponse, Outbound, AppHandler, WorkloadInstance, InboundRequest, InboundResult, HopTransport } from './mesh-types.js';

const ISTIO_GROUP = 'networking.istio.io';
const SOURCE_HEADER = 'x-sandbox-source';
const one = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);

interface TraceContext {
  traceId: string;
  spanId: string;
  requestId: string;
  /** B3 sampling decision, made once at the root (the ingress) and propagated as x-b3-sampled. */
  sampled: boolean;
}

/** The load engines' tag header (jmeter/plan.ts LOAD_HEADER), surfaced as the clover_cd_load label and span tag. */
const LOAD_HEADER = 'x-clover-cd-load';

export class Mesh {
  readonly instances = new Map<string, WorkloadInstance>();
  readonly agent = createAgent();
  private readonly faults = new Map<string, Fault>();
  private readonly roundRobin = new Map<string, number>();
  /** Per cluster (service|subset): outlier ejections and connection pool, under the DestinationRule's trafficPolicy. */
  readonly clusters = new Map<string, ClusterState>();
  private readonly random: () => number;
  readonly transport: HopTransport;
  /** Routing inputs derived from the object store, rebuilt after any object or instance change. */
  private cache?: { vss: KubeObject[]; drs: KubeObject[]; gateways: Map<string, KubeObject[]>; endpoints: Map<string, WorkloadInstance[]>; ports: Map<string, number> };
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
    this.unwatch = store.watch(() => (this.cache = undefined));
  }

  private routingCache() {
    return (this.cache ??= {
      vss: this.store.listLive(ISTIO_GROUP, 'VirtualService', 'default'),
      drs: this.store.listLive(ISTIO_GROUP, 'DestinationRule', 'default'),
      gateways: new Map(),
      endpoints: new Map(),
      ports: new Map(),
    });
  }

  async start(w: Omit<WorkloadInstance, 'port' | 'server' | 'nodeId'> & { port?: number }): Promise<WorkloadInstance> {
    const inst: WorkloadInstance = {
      ...w,
      port: w.port ?? 0,
      nodeId: `${w.gateway ? 'router' : 'sidecar'}~${w.host}~${w.name}-${randomBytes(3).toString('hex')}.${w.namespace}~${w.namespace}.svc.cluster.local`,
    };
    if (!inst.remote) {
      const server = createServer({ keepAlive: true, keepAliveTimeout: 30_000 }, (req, res) => this.inbound(inst, req, res));
      server.keepAliveTimeout = 30_000;
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(inst.port, inst.host, () => resolve());
      });
      inst.port = (server.address() as AddressInfo).port;
      inst.server = server;
    }
    inst.fault = this.faultFor(inst);
    this.instances.set(inst.name, inst);
    this.cache = undefined;
    return inst;
  }

  async stopInstance(name: string): Promise<void> {
    const inst = this.instances.get(name);
    if (!inst) return;
    this.instances.delete(name);
    this.cache = undefined;
    await closeServer(inst.server);
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.instances.keys()].map((n) => this.stopInstance(n)));
    this.unwatch();
    this.agent.destroy();
  }

  /** Fault knobs for a workload (app or Deployment name), optionally one version only; null clears them. */
  setFault(workload: string, version: string | undefined, fault: Fault | null): number {
    const key = `${workload}|${version ?? '*'}`;
    if (fault && Object.values(fault).some((v) => v !== undefined && v !== 0)) this.faults.set(key, { ...fault });
    else this.faults.delete(key);
    let affected = 0;
    for (const inst of this.instances.values()) {
      inst.fault = this.faultFor(inst);
      if ((inst.app === workload || inst.name === workload) && (!version || inst.version === version)) affected++;
    }
    return affected;
  }

  faultList(): Array<{ workload: string; version?: string; fault: Fault }> {
    return [...this.faults].map(([k, fault]) => {
      const [workload, version] = k.split('|');
      return { workload, version: version === '*' ? undefined : version, fault };
    });
  }

  private faultFor(i: WorkloadInstance): Fault | undefined {
    return this.faults.get(`${i.name}|*`) ?? this.faults.get(`${i.app}|${i.version}`) ?? this.faults.get(`${i.app}|*`);
  }

  /** The socket transport: an HTTP request on the instance's port, answered by `handleInbound`. */
  private inbound(inst: WorkloadInstance, req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = chunks.length === 0 ? EMPTY : chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
      this.handleInbound(inst, { method: req.method ?? 'GET', path: req.url ?? '/', headers: req.headers, body }).then(
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

  /** The in-process transport: the same inbound sidecar, called directly, with the caller's deadline. */
  private dispatch(target: WorkloadInstance, method: string, path: string, headers: OutgoingHttpHeaders, body: Buffer, timeoutMs: number): Promise<HopResponse> {
    const h: IncomingMessage['headers'] = {};
    for (const k in headers) {
      const v = headers[k];
      if (v !== undefined) h[k] = typeof v === 'number' ? String(v) : (v as string);
    }
    if (body.length) h['content-length'] = String(body.length);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new HopError('timeout', `no response within ${timeoutMs} ms`)), timeoutMs);
      this.handleInbound(target, { method, path, headers: h, body }).then(
        (r) => {
          clearTimeout(timer);
          if (r.reset) reject(new HopError('reset', 'connection reset by peer'));
          else resolve({ status: r.status, headers: r.headers as HopResponse['headers'], body: r.body });
        },
        (err: Error) => {
          clearTimeout(timer);
          reject(new HopError('other', err.message));
        },
      );
    });
  }

  /** The inbound sidecar: fault knobs, the application, reporter=destination telemetry and this hop's span. */
  async handleInbound(inst: WorkloadInstance, req: InboundRequest): Promise<InboundResult> {
    const t0 = performance.now();
    const startUs = Date.now() * 1000;
    const h = req.headers;
    const { path, method, body } = req;
    const decided = one(h['x-b3-sampled']);
    const ctx: TraceContext = {
      traceId: (one(h['x-b3-traceid']) ?? newTraceId()).padStart(32, '0'),
      spanId: newSpanId(),
      requestId: one(h['x-request-id']) ?? newRequestId(),
      sampled: decided !== undefined ? decided === '1' : this.traceSampling >= 1 || this.random() < this.traceSampling,
    };
    const loadTag = one(h[LOAD_HEADER]) ?? 'unknown';
    const parentSpanId = one(h['x-b3-spanid']);
    const source = one(h[SOURCE_HEADER]) ?? 'unknown|unknown';
    const bar = source.indexOf('|');
    const sourceWorkload = bar < 0 ? source : source.slice(0, bar);
    const sourceVersion = bar < 0 ? 'unknown' : source.slice(bar + 1);
    let status: number;
    let flags = '-';
    let out: Buffer;
    let outHeaders: Record<string, string> | undefined;
    let reset = false;
    let upstreamCluster = inst.gateway ? '-' : `inbound|${inst.servicePort}||${inst.app}.${inst.namespace}.svc.cluster.local`;
    let operation = `${inst.app}.${inst.namespace}.svc.cluster.local:${inst.servicePort}/*`;
    const f = inst.fault;
    if (f?.delayMs) await new Promise((r) => setTimeout(r, f.delayMs));
    if (f?.resetRate && this.random() < f.resetRate) {
      reset = true;
      status = 503;
      flags = 'UC';
      out = EMPTY;
    } else if (f?.errorRate && this.random() < f.errorRate) {
      status = f.abortStatus ?? 500;
      out = Buffer.from(`fault injected by the sandbox: ${inst.name} answers ${status}\n`);
    } else {
      const appReq: AppRequest = { method, path, headers: h, body };
      const outbound: Outbound = (service, r) => this.outbound(inst, ctx, service, r);
      try {
        const r = await inst.handler(appReq, outbound);
        status = r.status;
        out = typeof r.body === 'string' ? Buffer.from(r.body) : r.body;
        outHeaders = r.headers;
        flags = r.headers?.['x-sandbox-response-flags'] ?? '-';
        if (inst.gateway && r.upstream) {
          const port = this.servicePort(r.upstream);
          operation = `${r.upstream}.default.svc.cluster.local:${port}/*`;
          upstreamCluster = `outbound|${port}||${r.upstream}.default.svc.cluster.local`;
        }
      } catch (err) {
        status = 500;
        out = Buffer.from(`workload ${inst.name} failed: ${(err as Error).message}\n`);
      }
    }
    const headers: Record<string, string | number> = { 'content-length': out.length, 'x-request-id': ctx.requestId, ...outHeaders };
    delete headers['x-sandbox-response-flags'];
    const durationMs = performance.now() - t0;
    if (!inst.gateway) {
      this.telemetry.record({
        reporter: 'destination',
        sourceWorkload,
        sourceVersion,
        destinationWorkload: inst.name,
        destinationService: inst.app,
        destinationVersion: inst.version,
        namespace: inst.namespace,
        responseCode: status,
        responseFlags: flags,
        durationMs,
        requestBytes: body.length,
        responseBytes: out.length,
        loadTag,
        requestPath: pathOnly(path),
      });
    }
    if (ctx.sampled) this.traces.add({
      traceId: ctx.traceId,
      spanId: ctx.spanId,
      parentSpanId,
      service: inst.app,
      operation,
      startUs,
      durationUs: Math.max(1, Math.round(durationMs * 1000)),
      nodeId: inst.nodeId,
      url: `http://${h.host ?? `${inst.app}:${inst.servicePort}`}${path}`,
      method,
      statusCode: status,
      userAgent: one(h['user-agent']) ?? '-',
      upstreamCluster,
      requestSize: body.length,
      responseSize: out.length,
      requestId: ctx.requestId,
      responseFlags: flags,
      loadTag: loadTag === 'unknown' ? undefined : loadTag,
      // Jaeger clients tag the root span with the sampler that kept it; the ingress decides here.
      sampler: decided === undefined ? `probabilistic|${this.traceSampling}` : undefined,
    });
    return { status, headers, body: out, reset };
  }

  /** Gateway objects whose selector picks this ingress (selector `istio: ingressgateway`) and whose servers admit `host`. */
  private gatewayNames(ingress: WorkloadInstance, host: string): string[] {
    const c = this.routingCache();
    let gws: KubeObject[] | undefined = c.gateways.get(ingress.name);
    if (!gws) {
      gws = this.store.listLive(ISTIO_GROUP, 'Gateway').filter((g) => labelsMatch(ingress.labels, ((g.spec ?? {}) as { selector?: Record<string, string> }).selector ?? {}));
      c.gateways.set(ingress.name, gws);
    }
    return gws.filter((g) => gatewayAdmits(g, host)).map((g) => g.metadata.name);
  }

  servicePort(service: string): number {
    const c = this.routingCache();
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
    const c = this.routingCache();
    const key = `${dest.service}|${dest.subset ?? ''}`;
    let eps = c.endpoints.get(key);
    if (!eps) c.endpoints.set(key, (eps = this.lookupEndpoints(dest, c.drs)));
    return eps;
  }

  private lookupEndpoints(dest: Destination, drs: KubeObject[]): WorkloadInstance[] {
    const svc = this.store.peek({ apiVersion: 'v1', kind: 'Service', namespace: 'default', name: dest.service });
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
    c.policy = trafficPolicyFor(this.routingCache().drs, dest.service, dest.subset);
    return c;
  }

  private pick(dest: Destination, cluster?: ClusterState): WorkloadInstance | undefined {
    const all = this.endpointsOf(dest);
    const eps = cluster ? cluster.healthy(all) : all;
    if (eps.length <= 1) return eps[0];
    const key = `${dest.service}|${dest.subset ?? ''}`;
    const n = (this.roundRobin.get(key) ?? 0) + 1;
    this.roundRobin.set(key, n);
    return eps[n % eps.length];
  }

  private async outbound(from: WorkloadInstance, ctx: TraceContext, service: string, req: AppRequest): Promise<AppResponse> {
    const t0 = performance.now();
    const view: RequestView = { path: req.path, method: req.method, headers: req.headers };
    const decision = routeRequest(this.routingCache().vss, service, view, { gateways: from.gateway ? this.gatewayNames(from, service) : undefined, random: this.random });
    let result: AppResponse & { flags: string; target?: WorkloadInstance };
    const dest = decision?.destination ?? { service };
    if (from.gateway && !decision) {
      result = { status: 404, body: '', flags: 'NR' };
    } else {
      const cluster = this.cluster(dest);
      const target = this.pick(dest, cluster);
      if (decision?.mirror && target && this.random() < decision.mirror.fraction) {
        const shadow = this.pick(decision.mirror.destination);
        if (shadow) void this.send(from, ctx, shadow, req, 'shadow', this.defaultTimeoutMs).catch(() => undefined);
      }
      if (decision?.delay && this.random() < decision.delay.fraction) await new Promise((r) => setTimeout(r, decision.delay!.ms));
      if (decision?.abort && this.random() < decision.abort.fraction) {
        result = { status: decision.abort.status, body: 'fault filter abort', flags: 'FI' };
      } else if (!target) {
        result = { status: 503, body: 'no healthy upstream', flags: 'UH' };
      } else {
        const headers = { ...req.headers };
        for (const k of decision?.removeHeaders ?? []) delete headers[k.toLowerCase()];
        Object.assign(headers, decision?.setHeaders);
        let path = req.path;
        if (decision?.rewriteUri !== undefined) {
          path = decision.matchedPrefix && path.startsWith(decision.matchedPrefix) ? decision.rewriteUri + path.slice(decision.matchedPrefix.length) : decision.rewriteUri;
        }
        const release = await cluster.acquire();
        if (!release) result = { status: 503, body: 'upstream connect error or disconnect/reset before headers. reset reason: overflow', flags: 'UO' };
        else {
          const size = this.endpointsOf(dest).length;
          const report = (i: WorkloadInstance, o: AttemptOutcome) => cluster.report(i.name, size, o);
          result = await this.sendWithRetries(from, ctx, target, { ...req, headers, path }, decision?.timeoutMs, decision?.retries, report).finally(release);
        }
      }
    }
    const body = typeof result.body === 'string' ? Buffer.from(result.body) : result.body;
    this.telemetry.record({
      reporter: 'source',
      sourceWorkload: from.name,
      sourceVersion: from.version,
      destinationWorkload: result.target?.name ?? 'unknown',
      destinationService: dest.service,
      destinationVersion: result.target?.version ?? 'unknown',
      namespace: 'default',
      responseCode: result.status,
      responseFlags: result.flags,
      durationMs: performance.now() - t0,
      requestBytes: req.body.length,
      responseBytes: body.length,
      loadTag: one(req.headers[LOAD_HEADER]) ?? 'unknown',
      requestPath: pathOnly(req.path),
    });
    const headers: Record<string, string> = { ...result.headers };
    if (result.flags !== '-') headers['x-sandbox-response-flags'] = result.flags;
    return { status: result.status, headers, body, upstream: dest.service };
  }

  private async sendWithRetries(
    from: WorkloadInstance,
    ctx: TraceContext,
    first: WorkloadInstance,
    req: AppRequest,
    timeoutMs: number | undefined,
    retries: { attempts: number; perTryTimeoutMs?: number; retryOn: string[] } | undefined,
    report: (target: WorkloadInstance, outcome: AttemptOutcome) => void = () => undefined,
  ): Promise<AppResponse & { flags: string; target?: WorkloadInstance }> {
    const deadline = performance.now() + (timeoutMs ?? this.defaultTimeoutMs);
    const attempts = 1 + (retries?.attempts ?? 0);
    const target = first; // retries go to the same subset's endpoint, as Envoy retries within the cluster
    let last: AppResponse & { flags: string; target?: WorkloadInstance } = { status: 503, body: '', flags: 'UF' };
    for (let a = 0; a < attempts; a++) {
      const left = deadline - performance.now();
      if (left <= 0) return { status: 504, body: 'upstream request timeout', flags: 'UT', target };
      const perTry = Math.min(left, retries?.perTryTimeoutMs ?? left);
      try {
        const r = await this.send(from, ctx, target, req, undefined, perTry);
        last = { status: r.status, headers: pickHeaders(r.headers), body: r.body, flags: '-', target };
        report(target, { status: r.status });
        if (!retries || !retryableStatus(r.status, retries.retryOn)) return last;
      } catch (err) {
        const kind = err instanceof HopError ? err.kind : 'other';
        report(target, { error: kind });
        last =
          kind === 'timeout'
            ? { status: 504, body: 'upstream request timeout', flags: 'UT', target }
            : { status: 503, body: 'upstream connect error or disconnect/reset before headers', flags: kind === 'refused' ? 'UF' : 'UC', target };
        if (!retries || !retryableError(kind, retries.retryOn)) return last;
      }
    }
    return last;
  }

  private send(from: WorkloadInstance, ctx: TraceContext, target: WorkloadInstance, req: AppRequest, shadow: 'shadow' | undefined, timeoutMs: number) {
    const headers = forwardableHeaders(req.headers);
    headers.host = `${target.app}${shadow ? '-shadow' : ''}:${target.servicePort}`;
    headers['x-request-id'] = ctx.requestId;
    headers['x-b3-traceid'] = ctx.traceId;
    headers['x-b3-spanid'] = ctx.spanId;
    headers['x-b3-sampled'] = ctx.sampled ? '1' : '0';
    delete headers['x-b3-parentspanid'];
    headers[SOURCE_HEADER] = `${from.name}|${from.version}`;
    if (this.transport === 'inprocess' && !target.remote && !target.pod) return this.dispatch(target, req.method, req.path, headers, req.body, timeoutMs);
    const agent = from.pod?.egress ?? this.agent;
    return target.pod
      ? sendHop(agent, target.pod.ip, target.pod.port, req.method, req.path, headers, req.body, timeoutMs)
      : sendHop(agent, target.host, target.port, req.method, req.path, headers, req.body, timeoutMs);
  }
}

const EMPTY = Buffer.alloc(0);

export function closeServer(server: Server | undefined): Promise<void> {
  if (!server) return Promise.resolve();
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

export type { KubeObject };
