import type { Agent, IncomingMessage } from 'node:http';
import type {
  AppRequest,
  AppResponse,
  HopTransport,
  InboundRequest,
  InboundResult,
  WorkloadInstance,
} from './mesh-types.js';
import type { ServiceDiscovery } from './mesh-discovery.js';
import type { MeshTelemetry } from './telemetry.js';
import type { TraceStore } from './traces.js';

/** What a sidecar reads of the mesh it runs in (the Mesh implements it; inbound and outbound take it). */
export interface SidecarContext {
  readonly telemetry: MeshTelemetry;
  readonly traces: TraceStore;
  readonly discovery: ServiceDiscovery;
  readonly random: () => number;
  /** Share of new traces kept (Istio's meshConfig.defaultConfig.tracing.sampling, as a fraction). */
  readonly traceSampling: number;
  /** Per-try deadline when a route sets no timeout. */
  readonly defaultTimeoutMs: number;
  readonly transport: HopTransport;
  readonly agent: Agent;
  handleInbound(inst: WorkloadInstance, req: InboundRequest): Promise<InboundResult>;
  outbound(from: WorkloadInstance, ctx: TraceContext, service: string, req: AppRequest): Promise<AppResponse>;
}

export interface TraceContext {
  traceId: string;
  spanId: string;
  requestId: string;
  /** B3 sampling decision, made once at the root (the ingress) and propagated as x-b3-sampled. */
  sampled: boolean;
}

/** The load engines' tag header (jmeter/plan.ts LOAD_HEADER), surfaced as the clover_cd_load label and span tag. */
export const LOAD_HEADER = 'x-clover-cd-load';
/** Set by the calling sidecar: `<workload>|<version>` of the source, for reporter=destination telemetry. */
export const SOURCE_HEADER = 'x-sandbox-source';

export const one = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);

export const EMPTY = Buffer.alloc(0);

export type Headers = IncomingMessage['headers'];
