import type { KubeObject } from '../services/platform.js';
import type { IdsAlert, IdsEngine } from './ids.js';
import type { AppHandler, AppRequest, AppResponse } from './mesh.js';

/**
 * The SDC sample's applications, as Clover's nginx proxy / lb / server and snort-ids behave, with the
 * run-time state the gRPC control API changes (lb backends, server routes, proxy targets).
 */
export type WorkloadKind = 'proxy' | 'lb' | 'server' | 'ids';

export interface ServerRoute {
  /** Path the route answers: exact, or every path under it when `prefix` is true. */
  path: string;
  prefix: boolean;
  status: number;
  body: string;
  contentType: string;
}

export interface ProxyState {
  kind: 'proxy';
  forwardTo: string;
  /** Service every request is copied to after it is answered (nginx post_action); '' disables it. */
  mirrorTo: string;
  alerts: Array<{ eventId: string; redisKey: string; receivedAt: number }>;
}
export interface LbState {
  kind: 'lb';
  backends: string[];
  next: number;
}
export interface ServerState {
  kind: 'server';
  name: string;
  routes: ServerRoute[];
}
export interface IdsState {
  kind: 'ids';
  engine: IdsEngine;
}
export type AppState = ProxyState | LbState | ServerState | IdsState;

export const BACKENDS_ANNOTATION = 'sandbox.clover-cd.io/backends';

/** Which application a Deployment runs: by image (opnfv/clover-ns-nginx-lb …), else by its app label. */
export function kindOf(d: KubeObject): WorkloadKind {
  const containers =
    (d.spec as { template?: { spec?: { containers?: Array<{ image?: string }> } } })?.template?.spec
      ?.containers ?? [];
  const image = containers.map((c) => c.image ?? '').join(' ');
  const app = podLabels(d).app ?? d.metadata.name;
  if (/nginx-proxy/.test(image) || app === 'proxy-access-control') return 'proxy';
  if (/nginx-lb/.test(image) || app === 'http-lb') return 'lb';
  if (/snort/.test(image) || app === 'snort-ids') return 'ids';
  return 'server';
}

export function podLabels(d: KubeObject): Record<string, string> {
  const spec = (d.spec ?? {}) as { template?: { metadata?: { labels?: Record<string, string> } } };
  return { ...d.metadata.labels, ...spec.template?.metadata?.labels };
}

export function initialState(kind: WorkloadKind, d: KubeObject, ids: IdsEngine): AppState {
  switch (kind) {
    case 'proxy':
      return { kind, forwardTo: 'http-lb', mirrorTo: 'snort-ids', alerts: [] };
    case 'lb': {
      const annotated = d.metadata.annotations?.[BACKENDS_ANNOTATION];
      const backends = annotated
        ? annotated
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean)
        : ['clover-server1', 'clover-server2', 'clover-server3'];
      return { kind, backends, next: 0 };
    }
    case 'ids':
      return { kind, engine: ids };
    case 'server':
      return { kind, name: podLabels(d).app ?? d.metadata.name, routes: [] };
  }
}

const text = (status: number, body: string, contentType = 'text/plain'): AppResponse => ({
  status,
  body,
  headers: { 'content-type': contentType },
});

export function handlerFor(state: AppState, self: { host: string; port: number }): AppHandler {
  switch (state.kind) {
    case 'proxy':
      return async (req, outbound) => {
        const res = await outbound(state.forwardTo, req);
        // nginx post_action: the copy leaves after the answer, fire-and-forget, off the caller's path.
        const mirrorTo = state.mirrorTo;
        if (mirrorTo) setImmediate(() => void outbound(mirrorTo, req).catch(() => undefined));
        return res;
      };
    case 'lb':
      return async (req, outbound) => {
        if (!state.backends.length) return text(502, 'http-lb: no backends configured\n');
        const backend = state.backends[state.next++ % state.backends.length];
        return outbound(backend, req);
      };
    case 'server':
      return (req) => serve(state, req);
    case 'ids':
      return (req) => {
        state.engine.inspect(req, {
          sourceIp: '127.0.0.1',
          sourcePort: 0,
          destinationIp: self.host,
          destinationPort: 80,
        });
        return { status: 200, body: '' };
      };
  }
}

function serve(state: ServerState, req: AppRequest): AppResponse {
  const q = req.path.indexOf('?');
  const path = q < 0 ? req.path : req.path.slice(0, q);
  // Longest matching route wins, exact before prefix, like nginx location selection.
  let best: ServerRoute | undefined;
  for (const r of state.routes) {
    const hit = r.prefix ? path.startsWith(r.path) : path === r.path;
    if (
      hit &&
      (!best || (!r.prefix && best.prefix) || (r.prefix === best.prefix && r.path.length > best.path.length))
    )
      best = r;
  }
  if (best) return text(best.status, best.body, best.contentType);
  return text(200, `${state.name}: ${req.method} ${path}\n`);
}

export function recordAlert(proxy: ProxyState | undefined, alert: IdsAlert): void {
  if (!proxy) return;
  proxy.alerts.push({ eventId: String(alert.eventId), redisKey: 'snort_events', receivedAt: Date.now() });
  if (proxy.alerts.length > 1000) proxy.alerts.shift();
}
