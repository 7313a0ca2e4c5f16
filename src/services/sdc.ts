import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { InfrastructureError, InvalidInputError } from '../util/errors.js';
import { withRetry } from '../util/retry.js';

/**
 * gRPC control of the SDC sample's services (proto: services/proto/sdc.proto, package clovercd.sdc.v1):
 * lb backends, server routes, proxy targets, IDS rules and alerts. Typed fields, no pickled strings.
 */
export interface SdcRoute {
  path: string;
  prefix: boolean;
  status: number;
  body: string;
  contentType: string;
}
export interface SdcIdsRule {
  sid: number;
  rev: number;
  msg: string;
  protocol: string; // tcp | udp | icmp | ip
  /** Bytes the payload must contain (Snort's `content:`); empty matches every packet of the protocol. */
  content: string;
  nocase?: boolean;
  srcIp?: string;
  srcPort?: string;
  destIp?: string;
  destPort?: string;
}
export interface SdcAlert {
  eventId: number;
  signatureId: number;
  signatureRevision: number;
  msg: string;
  eventSecond: number;
  eventMicrosecond: number;
  sourceIp: string;
  destinationIp: string;
  sourcePort: number;
  destinationPort: number;
  url: string;
  userAgent: string;
}
export interface SdcIdsState {
  running: boolean;
  pid: number;
  changed: boolean;
}
export interface SdcProxyConfig {
  workload: string;
  forwardTo: string;
  mirrorTo: string;
  alerts: Array<{ eventId: number; redisKey: string; receivedAtMs: number }>;
}

/** The build copies proto/ beside the compiled module (scripts/build.mjs). */
export const SDC_PROTO = fileURLToPath(new URL('./proto/sdc.proto', import.meta.url));

// longs as Numbers, enums as strings, defaults filled: callers see plain typed objects.
const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

export interface SdcPackage {
  LoadBalancer: grpc.ServiceClientConstructor;
  Server: grpc.ServiceClientConstructor;
  Proxy: grpc.ServiceClientConstructor;
  Ids: grpc.ServiceClientConstructor;
}

let cached: SdcPackage | undefined;
export function loadSdcPackage(): SdcPackage {
  if (!cached) {
    const def = protoLoader.loadSync(SDC_PROTO, LOADER_OPTIONS);
    const root = grpc.loadPackageDefinition(def) as unknown as { clovercd: { sdc: { v1: SdcPackage } } };
    cached = root.clovercd.sdc.v1;
  }
  return cached;
}

export interface SdcClient {
  getBackends(workload: string): Promise<{ workload: string; backends: string[] }>;
  setBackends(workload: string, backends: string[]): Promise<{ workload: string; backends: string[] }>;
  getRoutes(workload: string): Promise<{ workload: string; routes: SdcRoute[] }>;
  setRoutes(
    workload: string,
    routes: Array<Partial<SdcRoute> & { path: string }>,
  ): Promise<{ workload: string; routes: SdcRoute[] }>;
  getProxy(workload?: string): Promise<SdcProxyConfig>;
  setProxy(config: { workload?: string; forwardTo: string; mirrorTo: string }): Promise<SdcProxyConfig>;
  addIdsRule(rule: SdcIdsRule): Promise<{ rules: SdcIdsRule[]; ruleText: string[] }>;
  listIdsRules(): Promise<{ rules: SdcIdsRule[]; ruleText: string[] }>;
  listAlerts(opts?: {
    afterEventId?: number;
    limit?: number;
  }): Promise<{ alerts: SdcAlert[]; inspected: number }>;
  startIds(): Promise<SdcIdsState>;
  stopIds(): Promise<SdcIdsState>;
  close(): void;
}

/** A client for the SDC control API at `address` (host:port), with deadlines and retries on UNAVAILABLE. */
export function createSdcClient(address: string, opts: { timeoutMs?: number } = {}): SdcClient {
  const pkg = loadSdcPackage();
  const creds = grpc.credentials.createInsecure();
  const clients = {
    lb: new pkg.LoadBalancer(address, creds),
    server: new pkg.Server(address, creds),
    proxy: new pkg.Proxy(address, creds),
    ids: new pkg.Ids(address, creds),
  };
  const timeoutMs = opts.timeoutMs ?? 5000;
  const call = <T>(client: grpc.Client, method: string, req: object): Promise<T> =>
    withRetry(
      () =>
        new Promise<T>((resolve, reject) => {
          type UnaryCall = (
            req: object,
            meta: grpc.CallOptions,
            cb: (err: grpc.ServiceError | null, res: T) => void,
          ) => void;
          const fn = (client as unknown as Record<string, UnaryCall>)[method];
          fn.call(
            client,
            req,
            { deadline: Date.now() + timeoutMs },
            (err: grpc.ServiceError | null, res: T) => (err ? reject(err) : resolve(res)),
          );
        }),
      {
        attempts: 3,
        baseDelayMs: 100,
        retryable: (e) => (e as grpc.ServiceError).code === grpc.status.UNAVAILABLE,
      },
    ).catch((err: grpc.ServiceError) => {
      if (err.code === grpc.status.INVALID_ARGUMENT || err.code === grpc.status.NOT_FOUND) {
        throw new InvalidInputError(`SDC control ${method}: ${err.details}`);
      }
      throw new InfrastructureError(
        'SDC control (gRPC)',
        `${address} ${method}`,
        err.details ?? err.message,
        'that the sandbox is running (clover-cd sandbox status)',
      );
    });
  return {
    getBackends: (workload) => call(clients.lb, 'getBackends', { workload }),
    setBackends: (workload, backends) => call(clients.lb, 'setBackends', { workload, backends }),
    getRoutes: (workload) => call(clients.server, 'getRoutes', { workload }),
    setRoutes: (workload, routes) =>
      call(clients.server, 'setRoutes', {
        workload,
        routes: routes.map((r) => ({
          prefix: false,
          status: 200,
          body: '',
          contentType: 'text/plain',
          ...r,
        })),
      }),
    getProxy: (workload = 'proxy-access-control') => call(clients.proxy, 'getProxy', { workload }),
    setProxy: (c) => call(clients.proxy, 'setProxy', { workload: 'proxy-access-control', alerts: [], ...c }),
    addIdsRule: (rule) => call(clients.ids, 'addRule', rule),
    listIdsRules: () => call(clients.ids, 'listRules', {}),
    startIds: () => call(clients.ids, 'start', {}),
    stopIds: () => call(clients.ids, 'stop', {}),
    listAlerts: (o = {}) =>
      call(clients.ids, 'listAlerts', { afterEventId: o.afterEventId ?? 0, limit: o.limit ?? 0 }),
    close: () => Object.values(clients).forEach((c) => c.close()),
  };
}
