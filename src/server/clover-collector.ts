import { Redis } from 'ioredis';
import type { Platform } from '../services/platform.js';
import { startCollector, type Collector } from '../visibility/collector.js';
import { collectorStartFrom, getVisibilityConfig, setVisibilityConfig } from '../visibility/config.js';
import type { CloverSdcBackend } from './clover-routes.js';

/**
 * Clover's collector routes in `serve`: /collector/start|stop|set, /visibility/set, /visibility/get/<conf>.
 * The collector runs in this process (one per server; a Redis lock keeps replicas from double counting) and
 * reads the platform's traces and metrics: the sandbox's Jaeger API and /metrics, or Jaeger and Prometheus
 * at the addresses of the start body in a cluster.
 */
export interface CloverCollectorOptions {
  platform: Platform;
  redisUrl: string;
  log?: (line: string) => void;
}

export type CloverCollectorBackend = Required<
  Pick<CloverSdcBackend, 'collectorStart' | 'collectorStop' | 'collectorSet' | 'visibilityConfig'>
> & {
  /** The running collector, if any (status, tests). */
  current(): Collector | undefined;
  close(): Promise<void>;
};

export function cloverCollectorBackend(opts: CloverCollectorOptions): CloverCollectorBackend {
  let collector: Collector | undefined;
  const withRedis = async <T>(fn: (r: Redis) => Promise<T>): Promise<T> => {
    const r = new Redis(opts.redisUrl, {
      lazyConnect: true,
      connectTimeout: 3000,
      maxRetriesPerRequest: 1,
      retryStrategy: () => null,
    });
    r.on('error', () => undefined);
    try {
      await r.connect();
      return await fn(r);
    } finally {
      r.disconnect();
    }
  };
  return {
    async collectorStart(body) {
      const start = collectorStartFrom(
        body,
        opts.platform.kind === 'sandbox' ? opts.platform.endpoints() : undefined,
      );
      // Clover started another collector process per call; here a start replaces the running one.
      await collector?.stop();
      collector = undefined;
      collector = await startCollector({
        redisUrl: opts.redisUrl,
        sources: start.sources,
        intervalMs: start.intervalMs,
        windowMs: start.windowMs,
        log: opts.log,
      });
      return `Started collector on pid: ${collector.pid}`;
    },
    async collectorStop() {
      if (!collector) return 'Failed to stop collector';
      const { pid } = collector;
      await collector.stop();
      collector = undefined;
      return `Stopped collector on pid: ${pid}`;
    },
    collectorSet: (body) => withRedis((r) => setVisibilityConfig(r, body)),
    visibilityConfig: (type) => withRedis((r) => getVisibilityConfig(r, type)),
    current: () => collector,
    async close() {
      await collector?.stop();
      collector = undefined;
    },
  };
}
