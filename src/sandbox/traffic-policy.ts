import type { KubeObject } from '../services/platform.js';
import { parseDurationMs } from '../util/units.js';
import { shortHost } from './routing.js';

/**
 * DestinationRule `trafficPolicy` as Istio programs Envoy's clusters: outlier detection (consecutive 5xx /
 * gateway errors eject an endpoint for baseEjectionTime × times ejected, at most maxEjectionPercent of the
 * cluster, panic below minHealthPercent) and connection-pool limits (requests beyond the connections wait in
 * the pending queue; beyond that they are answered 503 with response flag UO, as Envoy's circuit breaker does).
 * One cluster per service + subset; a subset's own trafficPolicy replaces the DestinationRule's per section.
 */
export interface OutlierPolicy {
  /** Consecutive 5xx (and connect failures / resets) before ejection; 0 disables. */
  consecutive5xx: number;
  /** Consecutive 502/503/504 (and connect failures / resets) before ejection; 0 disables. */
  consecutiveGateway: number;
  baseEjectionMs: number;
  maxEjectionPercent: number;
  minHealthPercent: number;
}
export interface PoolPolicy {
  maxConnections: number;
  maxPending: number;
  maxRequests: number;
}
export interface TrafficPolicy {
  outlier?: OutlierPolicy;
  pool?: PoolPolicy;
}

type RawPolicy = {
  connectionPool?: {
    tcp?: { maxConnections?: number };
    http?: { http1MaxPendingRequests?: number; http2MaxRequests?: number; maxConcurrentRequests?: number };
  };
  outlierDetection?: {
    consecutiveErrors?: number;
    consecutive5xxErrors?: number;
    consecutiveGatewayErrors?: number;
    baseEjectionTime?: string;
    maxEjectionPercent?: number;
    minHealthPercent?: number;
  };
};

const UNLIMITED = 2 ** 32 - 1;
const limit = (v: number | undefined) => (v && v > 0 ? v : UNLIMITED);

function outlierOf(o: NonNullable<RawPolicy['outlierDetection']>): OutlierPolicy {
  // Istio: the deprecated consecutiveErrors counts gateway errors only and turns the 5xx default (5) off.
  const legacy = o.consecutiveErrors ?? 0;
  return {
    consecutive5xx: o.consecutive5xxErrors ?? (legacy > 0 ? 0 : 5),
    consecutiveGateway: o.consecutiveGatewayErrors ?? legacy,
    baseEjectionMs: o.baseEjectionTime ? parseDurationMs(o.baseEjectionTime) : 30_000,
    maxEjectionPercent: o.maxEjectionPercent ?? 10,
    minHealthPercent: o.minHealthPercent ?? 0,
  };
}

export function trafficPolicyFor(
  drs: KubeObject[],
  service: string,
  subset?: string,
): TrafficPolicy | undefined {
  for (const dr of drs) {
    const spec = (dr.spec ?? {}) as {
      host?: string;
      trafficPolicy?: RawPolicy;
      subsets?: Array<{ name: string; trafficPolicy?: RawPolicy }>;
    };
    if (!spec.host || shortHost(spec.host) !== service) continue;
    const own = subset ? spec.subsets?.find((s) => s.name === subset)?.trafficPolicy : undefined;
    const od = own?.outlierDetection ?? spec.trafficPolicy?.outlierDetection;
    const cp = own?.connectionPool ?? spec.trafficPolicy?.connectionPool;
    if (!od && !cp) return undefined;
    return {
      outlier: od ? outlierOf(od) : undefined,
      pool: cp
        ? {
            maxConnections: limit(cp.tcp?.maxConnections),
            maxPending: limit(cp.http?.http1MaxPendingRequests),
            maxRequests: limit(cp.http?.http2MaxRequests ?? cp.http?.maxConcurrentRequests),
          }
        : undefined,
    };
  }
  return undefined;
}

/** What one attempt to an endpoint came back with: a status, or a transport failure. */
export type AttemptOutcome = { status: number } | { error: 'reset' | 'refused' | 'timeout' | 'other' };

interface HostState {
  consecutive5xx: number;
  consecutiveGateway: number;
  ejectedUntil: number;
  timesEjected: number;
}

/** Run-time state of one cluster (service + subset): ejections and the connection pool. */
export class ClusterState {
  policy?: TrafficPolicy;
  private readonly hosts = new Map<string, HostState>();
  private active = 0;
  private readonly queue: Array<() => void> = [];
  /** Counters a test or status page can read: ejections so far, requests answered UO. */
  ejections = 0;
  overflows = 0;

  constructor(private readonly now: () => number = Date.now) {}

  private host(name: string): HostState {
    let h = this.hosts.get(name);
    if (!h)
      this.hosts.set(
        name,
        (h = { consecutive5xx: 0, consecutiveGateway: 0, ejectedUntil: 0, timesEjected: 0 }),
      );
    return h;
  }

  isEjected(name: string): boolean {
    const h = this.hosts.get(name);
    return Boolean(h && h.ejectedUntil > this.now());
  }

  /** Endpoints to balance over: the ones not ejected, or all of them in panic (healthy share below minHealthPercent). */
  healthy<T extends { name: string }>(endpoints: T[]): T[] {
    const o = this.policy?.outlier;
    if (!o || endpoints.length === 0) return endpoints;
    const ok = endpoints.filter((e) => !this.isEjected(e.name));
    if (o.minHealthPercent > 0 && (ok.length / endpoints.length) * 100 < o.minHealthPercent) return endpoints;
    return ok;
  }

  /** Count an attempt's outcome against its endpoint; ejects it on the configured run of errors. */
  report(name: string, clusterSize: number, outcome: AttemptOutcome): void {
    const o = this.policy?.outlier;
    if (!o) return;
    const h = this.host(name);
    const status = 'status' in outcome ? outcome.status : 503; // connect failures and resets count as gateway errors
    if (status < 500) {
      h.consecutive5xx = 0;
      h.consecutiveGateway = 0;
      return;
    }
    h.consecutive5xx++;
    if (status === 502 || status === 503 || status === 504) h.consecutiveGateway++;
    else h.consecutiveGateway = 0;
    const trip =
      (o.consecutive5xx > 0 && h.consecutive5xx >= o.consecutive5xx) ||
      (o.consecutiveGateway > 0 && h.consecutiveGateway >= o.consecutiveGateway);
    if (!trip || h.ejectedUntil > this.now()) return;
    // Envoy checks the share already ejected before ejecting one more.
    const ejected = [...this.hosts.values()].filter((x) => x.ejectedUntil > this.now()).length;
    if ((ejected / Math.max(1, clusterSize)) * 100 >= o.maxEjectionPercent) return;
    h.timesEjected++;
    h.ejectedUntil =
      this.now() + Math.min(o.baseEjectionMs * h.timesEjected, Math.max(300_000, o.baseEjectionMs));
    h.consecutive5xx = 0;
    h.consecutiveGateway = 0;
    this.ejections++;
  }

  /**
   * A slot in the connection pool: resolves to a release function, or to undefined when the pending queue is
   * full (the caller answers 503 UO). Without a pool policy every request gets a slot at once.
   */
  acquire(): Promise<(() => void) | undefined> {
    const p = this.policy?.pool;
    const release = () => {
      const next = this.queue.shift();
      if (next) next();
      else this.active--;
    };
    if (!p) return Promise.resolve(() => undefined);
    if (this.active < Math.min(p.maxConnections, p.maxRequests)) {
      this.active++;
      return Promise.resolve(release);
    }
    if (this.queue.length >= p.maxPending) {
      this.overflows++;
      return Promise.resolve(undefined);
    }
    return new Promise((resolve) => this.queue.push(() => resolve(release)));
  }
}
