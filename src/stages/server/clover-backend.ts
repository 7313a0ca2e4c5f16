import { existsSync, readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import type { Platform } from '../../services/platform.js';
import { openVisibilityStore, type CloverStatsAll } from '../../services/redis.js';
import type { LoadPlan, LoadRunResult } from '../../jmeter/types.js';
import { InvalidInputError } from '../../util/errors.js';
import type { CloverBackend, StatType } from './clover-routes.js';

/**
 * Clover's controller routes bound to clover-cd's own modules: the visibility store in Redis (the keys
 * Clover's dashboard reads) and the load runner (real JMeter when installed, the builtin engine otherwise).
 * Plans generated through /jmeter/gen are kept in this process, as Clover's JMeter master kept its test.jmx.
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

/** JMeter's summariser line ("summary = N in hh:mm:ss = r/s Avg: Min: Max: Err: n (p%)"), for the builtin engine's log. */
function summaryLine(r: LoadRunResult): string {
  const t = r.summary.total;
  const s = Math.round((r.endedAt - r.startedAt) / 1000);
  const hms = [Math.floor(s / 3600), Math.floor(s / 60) % 60, s % 60].map((n) => String(n).padStart(2, '0')).join(':');
  return `summary = ${String(t.count).padStart(6)} in ${hms} = ${t.throughput.toFixed(1).padStart(6)}/s Avg: ${String(Math.round(t.mean)).padStart(5)} Min: ${String(Math.round(t.min)).padStart(5)} Max: ${String(Math.round(t.max)).padStart(5)} Err: ${String(t.errors).padStart(5)} (${(t.errorRate * 100).toFixed(2)}%)`;
}

export function cloverBackend(opts: CloverBackendOptions): CloverBackend {
  let plan: LoadPlan | undefined;
  let run: { id: string; promise: Promise<LoadRunResult>; result?: LoadRunResult; error?: string } | undefined;
  const backend: CloverBackend = {
    async jmeterGen(doc) {
      const { loadPlan } = await import('../../jmeter/index.js');
      // Only a plan document: a string would be a file name, and a request never makes the server read a file.
      if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new InvalidInputError('expected the test plan as a JSON object');
      plan = loadPlan(doc);
      return 'Generated test plan';
    },
    async jmeterStart({ slaveList }) {
      if (!plan) throw new InvalidInputError('no test plan: POST one to /jmeter/gen first');
      if (run && !run.result && !run.error) throw new InvalidInputError(`load run ${run.id} is still running`);
      const { runLoad } = await import('../../jmeter/index.js');
      const target = opts.platform.kind === 'sandbox' ? opts.platform.endpoints().ingress : undefined;
      const remote = (slaveList ?? []).map((ip) => (ip.includes(':') ? ip : `${ip}:1099`));
      const id = randomUUID();
      const current: NonNullable<typeof run> = { id, promise: runLoad(plan, { engine: remote.length ? 'jmeter' : 'auto', target, remote }) };
      current.promise.then(
        (r) => (current.result = r),
        (e: Error) => (current.error = e.message),
      );
      run = current;
      return `Started load run ${id}`;
    },
    async jmeterResults(kind) {
      if (!run) return 'Failed to retrieve results';
      if (run.error) return `Failed to retrieve results: ${run.error}`;
      if (!run.result) return 'Failed to retrieve results: the load run is still running';
      const r = run.result;
      if (kind === 'results') return `Retrieved all results\n${readFileSync(r.jtlPath, 'utf8')}`;
      const log = r.jtlPath.replace(/\.jtl$/i, '.jmeter.log');
      return `Retrieved all results\n${existsSync(log) ? readFileSync(log, 'utf8') : `${summaryLine(r)}\n`}`;
    },
  };
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
