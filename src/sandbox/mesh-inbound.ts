import { pathOnly } from './http-hop.js';
import type { AppRequest, InboundRequest, InboundResult, Outbound, WorkloadInstance } from './mesh-types.js';
import {
  EMPTY,
  LOAD_HEADER,
  one,
  SOURCE_HEADER,
  type Headers,
  type SidecarContext,
  type TraceContext,
} from './mesh-sidecar.js';
import { newRequestId, newSpanId, newTraceId } from './trace-ids.js';

/** What the workload (or a fault in front of it) answered, before telemetry and the span are written. */
interface Answer {
  status: number;
  body: Buffer;
  headers?: Record<string, string>;
  flags: string;
  reset: boolean;
  /** The ingress's routed upstream: names its span's operation and upstream cluster. */
  upstream?: string;
}

/** The inbound sidecar: fault knobs, the application, reporter=destination telemetry and this hop's span. */
export async function inboundSidecar(
  mesh: SidecarContext,
  inst: WorkloadInstance,
  req: InboundRequest,
): Promise<InboundResult> {
  const t0 = performance.now();
  const startUs = Date.now() * 1000;
  const decided = one(req.headers['x-b3-sampled']);
  const ctx = traceContext(mesh, req.headers, decided);
  const a = await answer(mesh, inst, req, ctx);
  const headers: Record<string, string | number> = {
    'content-length': a.body.length,
    'x-request-id': ctx.requestId,
    ...a.headers,
  };
  delete headers['x-sandbox-response-flags'];
  const durationMs = performance.now() - t0;
  if (!inst.gateway) recordDestination(mesh, inst, req, a, durationMs);
  if (ctx.sampled) recordSpan(mesh, inst, req, a, ctx, { startUs, durationMs, decided });
  return { status: a.status, headers, body: a.body, reset: a.reset };
}

/** Joins the caller's trace (B3 headers) or starts one, deciding sampling once at the root. */
function traceContext(mesh: SidecarContext, h: Headers, decided: string | undefined): TraceContext {
  return {
    traceId: (one(h['x-b3-traceid']) ?? newTraceId()).padStart(32, '0'),
    spanId: newSpanId(),
    requestId: one(h['x-request-id']) ?? newRequestId(),
    sampled:
      decided !== undefined ? decided === '1' : mesh.traceSampling >= 1 || mesh.random() < mesh.traceSampling,
  };
}

async function answer(
  mesh: SidecarContext,
  inst: WorkloadInstance,
  req: InboundRequest,
  ctx: TraceContext,
): Promise<Answer> {
  const f = inst.fault;
  if (f?.delayMs) await new Promise((r) => setTimeout(r, f.delayMs));
  // A reset is a TCP RST on the wire, as a crashing workload produces; the caller's sidecar reports 503 UC.
  if (f?.resetRate && mesh.random() < f.resetRate)
    return { status: 503, body: EMPTY, flags: 'UC', reset: true };
  if (f?.errorRate && mesh.random() < f.errorRate) {
    const status = f.abortStatus ?? 500;
    return {
      status,
      body: Buffer.from(`fault injected by the sandbox: ${inst.name} answers ${status}\n`),
      flags: '-',
      reset: false,
    };
  }
  const appReq: AppRequest = { method: req.method, path: req.path, headers: req.headers, body: req.body };
  const outbound: Outbound = (service, r) => mesh.outbound(inst, ctx, service, r);
  try {
    const r = await inst.handler(appReq, outbound);
    const body = typeof r.body === 'string' ? Buffer.from(r.body) : r.body;
    const flags = r.headers?.['x-sandbox-response-flags'] ?? '-';
    return {
      status: r.status,
      body,
      headers: r.headers,
      flags,
      reset: false,
      upstream: inst.gateway ? r.upstream : undefined,
    };
  } catch (err) {
    return {
      status: 500,
      body: Buffer.from(`workload ${inst.name} failed: ${(err as Error).message}\n`),
      flags: '-',
      reset: false,
    };
  }
}

function recordDestination(
  mesh: SidecarContext,
  inst: WorkloadInstance,
  req: InboundRequest,
  a: Answer,
  durationMs: number,
): void {
  const source = one(req.headers[SOURCE_HEADER]) ?? 'unknown|unknown';
  const bar = source.indexOf('|');
  mesh.telemetry.record({
    reporter: 'destination',
    sourceWorkload: bar < 0 ? source : source.slice(0, bar),
    sourceVersion: bar < 0 ? 'unknown' : source.slice(bar + 1),
    destinationWorkload: inst.name,
    destinationService: inst.app,
    destinationVersion: inst.version,
    namespace: inst.namespace,
    responseCode: a.status,
    responseFlags: a.flags,
    durationMs,
    requestBytes: req.body.length,
    responseBytes: a.body.length,
    loadTag: one(req.headers[LOAD_HEADER]) ?? 'unknown',
    requestPath: pathOnly(req.path),
  });
}

function recordSpan(
  mesh: SidecarContext,
  inst: WorkloadInstance,
  req: InboundRequest,
  a: Answer,
  ctx: TraceContext,
  t: { startUs: number; durationMs: number; decided: string | undefined },
): void {
  const h = req.headers;
  let operation = `${inst.app}.${inst.namespace}.svc.cluster.local:${inst.servicePort}/*`;
  let upstreamCluster = inst.gateway
    ? '-'
    : `inbound|${inst.servicePort}||${inst.app}.${inst.namespace}.svc.cluster.local`;
  if (a.upstream) {
    const port = mesh.discovery.servicePort(a.upstream);
    operation = `${a.upstream}.default.svc.cluster.local:${port}/*`;
    upstreamCluster = `outbound|${port}||${a.upstream}.default.svc.cluster.local`;
  }
  const loadTag = one(h[LOAD_HEADER]);
  mesh.traces.add({
    traceId: ctx.traceId,
    spanId: ctx.spanId,
    parentSpanId: one(h['x-b3-spanid']),
    service: inst.app,
    operation,
    startUs: t.startUs,
    durationUs: Math.max(1, Math.round(t.durationMs * 1000)),
    nodeId: inst.nodeId,
    url: `http://${h.host ?? `${inst.app}:${inst.servicePort}`}${req.path}`,
    method: req.method,
    statusCode: a.status,
    userAgent: one(h['user-agent']) ?? '-',
    upstreamCluster,
    requestSize: req.body.length,
    responseSize: a.body.length,
    requestId: ctx.requestId,
    responseFlags: a.flags,
    loadTag: loadTag === 'unknown' ? undefined : loadTag,
    // Jaeger clients tag the root span with the sampler that kept it; the ingress decides here.
    sampler: t.decided === undefined ? `probabilistic|${mesh.traceSampling}` : undefined,
  });
}
