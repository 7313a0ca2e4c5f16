import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import {
  forwardableHeaders,
  HopError,
  pathOnly,
  pickHeaders,
  retryableError,
  retryableStatus,
  sendHop,
  type HopResponse,
} from './http-hop.js';
import type { AppRequest, AppResponse, WorkloadInstance } from './mesh-types.js';
import { LOAD_HEADER, one, SOURCE_HEADER, type SidecarContext, type TraceContext } from './mesh-sidecar.js';
import { hasHttpRoutes, routeHttpRoutes, type HttpRouteDecision } from './httproute.js';
import { routeRequest, type RequestView } from './routing.js';
import type { AttemptOutcome } from './traffic-policy.js';

type Attempt = AppResponse & { flags: string; target?: WorkloadInstance };
type Retries = { attempts: number; perTryTimeoutMs?: number; retryOn: string[] };

/**
 * The outbound sidecar: resolves the destination through the VirtualServices (as Envoy would), applies the
 * route's faults, mirror, header and URI rewrites, connection pool, timeout and retries, then records
 * reporter=source telemetry.
 */
export async function outboundSidecar(
  mesh: SidecarContext,
  from: WorkloadInstance,
  ctx: TraceContext,
  service: string,
  req: AppRequest,
): Promise<AppResponse> {
  const t0 = performance.now();
  const view: RequestView = { path: req.path, method: req.method, headers: req.headers };
  const gateways = from.gateway ? mesh.discovery.gatewayNames(from, service) : undefined;
  const decision = decide(mesh, service, view, gateways);
  const dest = decision?.destination ?? { service };
  let result: Attempt;
  if (from.gateway && !decision) {
    result = { status: 404, body: '', flags: 'NR' };
  } else if (decision?.invalidBackend) {
    // The HTTPRoute spec: requests a rule would send to an invalid backendRef are answered 500.
    result = { status: 500, body: decision.invalidBackend, flags: '-' };
  } else {
    const cluster = mesh.discovery.cluster(dest);
    const target = mesh.discovery.pick(dest, cluster);
    if (decision?.mirror && target && mesh.random() < decision.mirror.fraction) {
      const shadow = mesh.discovery.pick(decision.mirror.destination);
      if (shadow)
        void send(mesh, from, ctx, shadow, req, 'shadow', mesh.defaultTimeoutMs).catch(() => undefined);
    }
    if (decision?.delay && mesh.random() < decision.delay.fraction)
      await new Promise((r) => setTimeout(r, decision.delay!.ms));
    if (decision?.abort && mesh.random() < decision.abort.fraction) {
      result = { status: decision.abort.status, body: 'fault filter abort', flags: 'FI' };
    } else if (!target) {
      result = { status: 503, body: 'no healthy upstream', flags: 'UH' };
    } else {
      const headers = { ...req.headers };
      for (const k of decision?.removeHeaders ?? []) delete headers[k.toLowerCase()];
      Object.assign(headers, decision?.setHeaders);
      let path = req.path;
      if (decision?.rewriteUri !== undefined) {
        const prefix = decision.matchedPrefix;
        path =
          prefix && path.startsWith(prefix)
            ? decision.rewriteUri + path.slice(prefix.length)
            : decision.rewriteUri;
      }
      const release = await cluster.acquire();
      if (!release) {
        result = {
          status: 503,
          body: 'upstream connect error or disconnect/reset before headers. reset reason: overflow',
          flags: 'UO',
        };
      } else {
        const size = mesh.discovery.endpointsOf(dest).length;
        const report = (i: WorkloadInstance, o: AttemptOutcome) => cluster.report(i.name, size, o);
        const routed = { ...req, headers, path };
        result = await sendWithRetries(
          mesh,
          from,
          ctx,
          target,
          routed,
          decision?.timeoutMs,
          decision?.retries,
          report,
        ).finally(release);
      }
    }
  }
  const body = typeof result.body === 'string' ? Buffer.from(result.body) : result.body;
  mesh.telemetry.record({
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

/**
 * The route decision for a request to `service`: its HTTPRoutes when one is attached to it (the Gateway API
 * binding for mesh traffic, which then replaces the VirtualServices for that service), else its VirtualServices.
 */
function decide(
  mesh: SidecarContext,
  service: string,
  view: RequestView,
  gateways: string[] | undefined,
): HttpRouteDecision | undefined {
  const routes = mesh.discovery.httpRoutes();
  if (!gateways && hasHttpRoutes(routes, service))
    return routeHttpRoutes(routes, service, view, {
      random: mesh.random,
      backendExists: (ref) => mesh.discovery.hasServicePort(ref.name, ref.port),
    });
  return routeRequest(mesh.discovery.virtualServices(), service, view, { gateways, random: mesh.random });
}

async function sendWithRetries(
  mesh: SidecarContext,
  from: WorkloadInstance,
  ctx: TraceContext,
  target: WorkloadInstance,
  req: AppRequest,
  timeoutMs: number | undefined,
  retries: Retries | undefined,
  report: (target: WorkloadInstance, outcome: AttemptOutcome) => void,
): Promise<Attempt> {
  const deadline = performance.now() + (timeoutMs ?? mesh.defaultTimeoutMs);
  const attempts = 1 + (retries?.attempts ?? 0);
  // Retries go to the same subset's endpoint, as Envoy retries within the cluster.
  let last: Attempt = { status: 503, body: '', flags: 'UF' };
  for (let a = 0; a < attempts; a++) {
    const left = deadline - performance.now();
    if (left <= 0) return { status: 504, body: 'upstream request timeout', flags: 'UT', target };
    const perTry = Math.min(left, retries?.perTryTimeoutMs ?? left);
    try {
      const r = await send(mesh, from, ctx, target, req, undefined, perTry);
      last = { status: r.status, headers: pickHeaders(r.headers), body: r.body, flags: '-', target };
      report(target, { status: r.status });
      if (!retries || !retryableStatus(r.status, retries.retryOn)) return last;
    } catch (err) {
      const kind = err instanceof HopError ? err.kind : 'other';
      report(target, { error: kind });
      last =
        kind === 'timeout'
          ? { status: 504, body: 'upstream request timeout', flags: 'UT', target }
          : {
              status: 503,
              body: 'upstream connect error or disconnect/reset before headers',
              flags: kind === 'refused' ? 'UF' : 'UC',
              target,
            };
      if (!retries || !retryableError(kind, retries.retryOn)) return last;
    }
  }
  return last;
}

function send(
  mesh: SidecarContext,
  from: WorkloadInstance,
  ctx: TraceContext,
  target: WorkloadInstance,
  req: AppRequest,
  shadow: 'shadow' | undefined,
  timeoutMs: number,
): Promise<HopResponse> {
  const headers = forwardableHeaders(req.headers);
  headers.host = `${target.app}${shadow ? '-shadow' : ''}:${target.servicePort}`;
  headers['x-request-id'] = ctx.requestId;
  headers['x-b3-traceid'] = ctx.traceId;
  headers['x-b3-spanid'] = ctx.spanId;
  headers['x-b3-sampled'] = ctx.sampled ? '1' : '0';
  delete headers['x-b3-parentspanid'];
  headers[SOURCE_HEADER] = `${from.name}|${from.version}`;
  if (mesh.transport === 'inprocess' && !target.remote && !target.pod)
    return dispatch(mesh, target, req.method, req.path, headers, req.body, timeoutMs);
  const agent = from.pod?.egress ?? mesh.agent;
  return target.pod
    ? sendHop(agent, target.pod.ip, target.pod.port, req.method, req.path, headers, req.body, timeoutMs)
    : sendHop(agent, target.host, target.port, req.method, req.path, headers, req.body, timeoutMs);
}

/** The in-process transport: the same inbound sidecar, called directly, with the caller's deadline. */
function dispatch(
  mesh: SidecarContext,
  target: WorkloadInstance,
  method: string,
  path: string,
  headers: OutgoingHttpHeaders,
  body: Buffer,
  timeoutMs: number,
): Promise<HopResponse> {
  const h: IncomingMessage['headers'] = {};
  for (const k in headers) {
    const v = headers[k];
    if (v !== undefined) h[k] = typeof v === 'number' ? String(v) : (v as string);
  }
  if (body.length) h['content-length'] = String(body.length);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new HopError('timeout', `no response within ${timeoutMs} ms`)),
      timeoutMs,
    );
    mesh.handleInbound(target, { method, path, headers: h, body }).then(
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
