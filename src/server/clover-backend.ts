import type { Platform } from '../services/platform.js';
import { openVisibilityStore, type CloverStatsAll } from '../services/redis.js';
import type { CloverBackend, StatType } from './clover-routes.js';
import { cloverJmeterBackend } from './clover-jmeter.js';

/**
 * Clover's controller routes bound to clover-cd's own modules: the visibility store in Redis (the keys
 * Clover's dashboard reads) and the load runner (real JMeter when installed, the builtin engine otherwise).
 * Plans generated through /jmeter/gen are kept in this process, as Clover's JMeter master kept its test.jmx
 * (clover-jmeter.ts).
 */
export interface CloverBackendOptions {
  platform: Platform;
  /** Redis holding the visibility keys; visibility routes answer 501 without it. */
  redisUrl?: string;
  /** Unused: plans come in the request body (kept for callers that still pass it). */
  baseDir?: string;
}

function statsOf(all: CloverStatsAll, type: StatType): Record<string, unknown> {
  const system = { trace_count: all.trace_count, span_count: all.span_count, metric_count: all.metric_count };
  const { trace_count: _t, span_count: _s, metric_count: _m, metrics_time, ...tracing } = all;
  if (type === 'system') return system;
  if (type === 'metrics') return { metrics_time };
  if (type === 'tracing') return tracing;
  return { ...all };
}

export function cloverBackend(opts: CloverBackendOptions): CloverBackend {
  // Clover's JMeter master: "Started jmeter on pid: N", concurrent starts, partial results (clover-jmeter.ts).
  const backend: CloverBackend = { ...cloverJmeterBackend(opts) };
  if (opts.redisUrl) {
    const url = opts.redisUrl;
    backend.visibilityClear = async () => {
      const store = await openVisibilityStore(url);
      try {
        await store.clear();
        return 'Truncated visibility tables';
      } finally {
        await store.close();
      }
    };
    backend.visibilityStats = async (type) => {
      const store = await openVisibilityStore(url);
      try {
        return statsOf(await store.read(), type);
      } finally {
        await store.close();
      }
    };
  }
  return backend;
}
