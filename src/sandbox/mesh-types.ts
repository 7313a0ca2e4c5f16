/**
 * The shapes the mesh works with: workload instances, the application handler contract, faults, and the
 * inbound request/result of a sidecar. Split from mesh.ts so workloads and transports can import them
 * without the mesh itself.
 */
import type { Agent, IncomingMessage, Server } from 'node:http';

export interface Fault {
  /** 0..1: share of requests the workload answers with `abortStatus` (default 500). */
  errorRate?: number;
  abortStatus?: number;
  /** Added latency before the workload answers. */
  delayMs?: number;
  /** 0..1: share of requests whose connection is reset (TCP RST) instead of answered. */
  resetRate?: number;
}

export interface AppRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: Buffer;
}
export interface AppResponse {
  status: number;
  headers?: Record<string, string>;
  body: Buffer | string;
  /** Service the mesh routed an outbound request to (set by the sidecar, read by the ingress's span). */
  upstream?: string;
}
export type Outbound = (service: string, req: AppRequest) => Promise<AppResponse>;
export type AppHandler = (req: AppRequest, outbound: Outbound) => Promise<AppResponse> | AppResponse;

export interface WorkloadInstance {
  /** Deployment name: http-lb-v2. */
  name: string;
  /** Service (app label): http-lb. */
  app: string;
  version: string;
  namespace: string;
  labels: Record<string, string>;
  host: string;
  port: number;
  /** Port the Service names for HTTP (9180, 80 for snort-ids), used in span names and clusters. */
  servicePort: number;
  nodeId: string;
  fault?: Fault;
  handler: AppHandler;
  server?: Server;
  /** Set on the ingress: requests are routed by the VirtualServices bound to the Gateways it serves. */
  gateway?: boolean;
  /** Reached only over its socket (a workload in another process or network namespace): no handler here. */
  remote?: boolean;
  /** --netns: the pod address peers connect to (its runner relays to this sidecar), and the agent whose
   *  connections leave from the pod's namespace. */
  pod?: { ip: string; port: number; egress: Agent };
}

/** A request as the inbound sidecar sees it, whether it came over a socket or from an in-process hop. */
export interface InboundRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: Buffer;
}
/** What the inbound sidecar answers; `reset` asks the transport to reset the connection instead. */
export interface InboundResult {
  status: number;
  headers: Record<string, string | number>;
  body: Buffer;
  reset?: boolean;
}

/**
 * How hops between workloads of this process travel: 'inprocess' (default) calls the next sidecar directly,
 * with the same routing, faults, retries, timeouts, telemetry, spans and headers as a socket hop; 'socket'
 * makes every hop a real HTTP exchange over loopback. Remote instances always use their socket.
 */
export type HopTransport = 'inprocess' | 'socket';
