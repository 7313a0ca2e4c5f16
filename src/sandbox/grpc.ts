import * as grpc from '@grpc/grpc-js';
import { loadSdcPackage, type SdcIdsRule, type SdcRoute } from '../services/sdc.js';
import { formatRule, type IdsRule } from './ids.js';
import type { SandboxCore } from './sandbox.js';
import type { AppState } from './workloads.js';

/** The gRPC control server of the sandbox: one endpoint for every SDC workload (requests name the workload). */
type Handler = (req: Record<string, unknown>) => unknown;

class RpcError extends Error {
  constructor(
    readonly code: grpc.status,
    message: string,
  ) {
    super(message);
  }
}

function unary(fn: Handler): grpc.handleUnaryCall<Record<string, unknown>, unknown> {
  return (call, callback) => {
    try {
      callback(null, fn(call.request));
    } catch (err) {
      const e = err as RpcError;
      callback({ code: e.code ?? grpc.status.INTERNAL, details: e.message } as grpc.ServiceError);
    }
  };
}

export async function startGrpcServer(
  core: SandboxCore,
): Promise<{ address: string; stop(): Promise<void> }> {
  const pkg = loadSdcPackage();
  const server = new grpc.Server();
  const state = <K extends AppState['kind']>(workload: unknown, kind: K): Extract<AppState, { kind: K }> => {
    const name = String(workload ?? '');
    const s = core.apps.get(name);
    if (!s)
      throw new RpcError(
        grpc.status.NOT_FOUND,
        `no workload "${name}" (known: ${[...core.apps.keys()].join(', ')})`,
      );
    if (s.kind !== kind)
      throw new RpcError(grpc.status.INVALID_ARGUMENT, `workload "${name}" is a ${s.kind}, not a ${kind}`);
    return s as Extract<AppState, { kind: K }>;
  };
  const knownService = (name: string) => {
    if (!core.store.peek({ apiVersion: 'v1', kind: 'Service', namespace: 'default', name })) {
      throw new RpcError(grpc.status.INVALID_ARGUMENT, `no Service "${name}" in the sandbox`);
    }
    return name;
  };
  const proxyConfig = (workload: string) => {
    const p = state(workload, 'proxy');
    return {
      workload,
      forwardTo: p.forwardTo,
      mirrorTo: p.mirrorTo,
      alerts: p.alerts.map((a) => ({
        eventId: Number(a.eventId),
        redisKey: a.redisKey,
        receivedAtMs: a.receivedAt,
      })),
    };
  };
  const rulesReply = () => ({ rules: core.ids.rules, ruleText: core.ids.rules.map(formatRule) });

  server.addService(pkg.LoadBalancer.service, {
    getBackends: unary((r) => ({ workload: r.workload, backends: state(r.workload, 'lb').backends })),
    setBackends: unary((r) => {
      const lb = state(r.workload, 'lb');
      const list = (r.backends as string[]).map((b) =>
        knownService(b.replace(/^https?:\/\//, '').split(':')[0]),
      );
      if (!list.length)
        throw new RpcError(grpc.status.INVALID_ARGUMENT, 'backends must name at least one service');
      lb.backends = list;
      return { workload: r.workload, backends: lb.backends };
    }),
  });
  server.addService(pkg.Server.service, {
    getRoutes: unary((r) => ({ workload: r.workload, routes: state(r.workload, 'server').routes })),
    setRoutes: unary((r) => {
      const s = state(r.workload, 'server');
      const routes = (r.routes as SdcRoute[]).map((x, i) => {
        if (!x.path.startsWith('/'))
          throw new RpcError(
            grpc.status.INVALID_ARGUMENT,
            `routes[${i}].path must start with "/", found "${x.path}"`,
          );
        if (x.status < 100 || x.status > 599)
          throw new RpcError(
            grpc.status.INVALID_ARGUMENT,
            `routes[${i}].status must be 100..599, found ${x.status}`,
          );
        return {
          path: x.path,
          prefix: x.prefix,
          status: x.status,
          body: x.body,
          contentType: x.contentType || 'text/plain',
        };
      });
      s.routes = routes;
      return { workload: r.workload, routes };
    }),
  });
  server.addService(pkg.Proxy.service, {
    getProxy: unary((r) => proxyConfig(String(r.workload))),
    setProxy: unary((r) => {
      const p = state(r.workload, 'proxy');
      p.forwardTo = knownService(String(r.forwardTo));
      p.mirrorTo = r.mirrorTo ? knownService(String(r.mirrorTo)) : '';
      return proxyConfig(String(r.workload));
    }),
    processAlert: unary((r) => {
      const p = core.proxyState();
      if (!p) throw new RpcError(grpc.status.NOT_FOUND, 'no proxy-access-control workload');
      p.alerts.push({
        eventId: String(r.eventId),
        redisKey: String(r.redisKey || 'snort_events'),
        receivedAt: Date.now(),
      });
      return proxyConfig([...core.apps].find(([, s]) => s === p)![0]);
    }),
  });
  server.addService(pkg.Ids.service, {
    addRule: unary((r) => {
      const x = r as unknown as SdcIdsRule;
      if (!x.sid) throw new RpcError(grpc.status.INVALID_ARGUMENT, 'sid must be a positive number');
      if (!['tcp', 'udp', 'icmp', 'ip'].includes(x.protocol))
        throw new RpcError(
          grpc.status.INVALID_ARGUMENT,
          `protocol must be tcp, udp, icmp or ip, found "${x.protocol}"`,
        );
      if (!x.msg) throw new RpcError(grpc.status.INVALID_ARGUMENT, 'msg must not be empty');
      const rule: IdsRule = {
        sid: x.sid,
        rev: x.rev || 1,
        msg: x.msg,
        protocol: x.protocol,
        content: x.content.replace(/^"(.*)"$/, '$1'),
        nocase: x.nocase,
        srcIp: x.srcIp || 'any',
        srcPort: x.srcPort || 'any',
        destIp: x.destIp || '$HOME_NET',
        destPort: x.destPort || 'any',
      };
      core.ids.addRule(rule);
      return rulesReply();
    }),
    listRules: unary(() => rulesReply()),
    start: unary(() => ({ changed: core.ids.setRunning(true), running: true, pid: process.pid })),
    stop: unary(() => ({ changed: core.ids.setRunning(false), running: false, pid: process.pid })),
    listAlerts: unary((r) => {
      const after = Number(r.afterEventId ?? 0);
      const limit = Number(r.limit ?? 0);
      let alerts = core.ids.alerts.filter((a) => a.eventId > after);
      if (limit > 0) alerts = alerts.slice(0, limit);
      return {
        alerts: alerts.map((a) => ({ ...a, eventSecond: a.second, eventMicrosecond: a.microsecond })),
        inspected: core.ids.inspected,
      };
    }),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${core.host}:0`, grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  return {
    address: `${core.host}:${port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 1000);
        server.tryShutdown(() => {
          clearTimeout(t);
          resolve();
        });
      }),
  };
}
