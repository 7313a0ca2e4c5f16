/**
 * Redis adapter for Clover's visibility keys (reference: Clover's Redis key catalogue). clover-cd writes the
 * stats Clover's Spark jobs used to write, so Clover's dashboard and `clover-cd visibility stats` read the
 * same keys; `clearVisibility` does what Clover's /visibility/clear did to Redis.
 */
import { Redis } from 'ioredis';
import { InfrastructureError } from '../util/errors.js';
import { redact } from '../util/redact.js';
import { withRetry } from '../util/retry.js';

/** Visibility figures in Clover's terms, computed from traces and metrics (validators/visibility.ts). */
export interface VisibilityData {
  traceCount: number;
  spanCount: number;
  metricCount: number;
  /** Services gated on (dashed names); stored in `visibility_services` with underscores, as Clover does. */
  services: string[];
  /** Services Jaeger knows (`tracing_services`). */
  tracingServices: string[];
  /** Per service, ms; undefined when no inbound span was seen (Clover writes "NA"). */
  responseTimes: Record<string, { min: number; avg: number; max: number } | undefined>;
  urls: Record<string, number>;
  userAgents: Record<string, number>;
  nodeIds: Record<string, number>;
  statusCodes: Record<string, number>;
  /** "<status_code>, <http_url>" → count */
  statusUrl: Record<string, number>;
  /** "<node_id>, <http_url>" → count */
  nodeUrl: Record<string, number>;
  operationNames: string[];
  upstreamClusters: string[];
}

/** The JSON of Clover's GET /visibility/get/stats/all. */
export interface CloverStatsAll {
  trace_count: string | null;
  span_count: string | null;
  metric_count: string | null;
  metrics_time: Array<{ name: string; service: string; prefix: string; suffix: string; values: string[] }>;
  response_times: Array<{ name: string; min: string | null; avg: string | null; max: string | null }>;
  request_urls: string[];
  user_agents: string[];
  status_codes: string[];
  op_names: string[];
  node_ids: string[];
  upstream_clusters: string[];
  user_agent_count: Array<[string, number]>;
  request_url_count: Array<[string, number]>;
  status_code_count: Array<[string, number]>;
  node_url_count: Array<[string, number]>;
  node_id_count: Array<[string, number]>;
}

const SPAN_KEYS = [
  'span_user_agent',
  'span_urls',
  'span_urls_z',
  'span_status_codes_z',
  'span_node_url_z',
  'span_node_id_z',
  'span_user_agent_z',
  'span_status_code',
  'span_node_id',
  'span_upstream_cluster',
  'span_operation_name',
];

/** The continuous collector's bookkeeping (visibility/collector.ts): traces that started before the watermark
 * (epoch ms) are counted; running inbound-span durations per service; the one-collector lock. */
export const VISIBILITY_WATERMARK_KEY = 'clover-cd:visibility:watermark';
export const VISIBILITY_RT_KEY = 'clover-cd:visibility:rt';
export const VISIBILITY_LOCK_KEY = 'clover-cd:visibility:collector';

export interface VisibilityStore {
  write(data: VisibilityData): Promise<void>;
  read(): Promise<CloverStatsAll>;
  clear(): Promise<{ cleared: string[]; services: string[] }>;
  close(): Promise<void>;
}

/** Connect with a bounded connect timeout and retries; an unreachable Redis is an InfrastructureError. */
export async function openVisibilityStore(
  url: string,
  opts: { timeoutMs?: number; attempts?: number } = {},
): Promise<VisibilityStore> {
  const safeUrl = redact(url);
  const fail = (err: unknown): never => {
    throw new InfrastructureError(
      'Redis',
      safeUrl,
      err instanceof Error ? err.message : String(err),
      `that Redis is running at ${safeUrl} (redis-cli -u <url> ping)`,
    );
  };
  const client = await withRetry(
    async () => {
      const c = new Redis(url, {
        lazyConnect: true,
        connectTimeout: opts.timeoutMs ?? 3000,
        commandTimeout: opts.timeoutMs ?? 5000,
        maxRetriesPerRequest: 1,
        retryStrategy: () => null,
      });
      c.on('error', () => undefined); // surfaced through the failing command instead
      try {
        await c.connect();
        return c;
      } catch (err) {
        c.disconnect();
        throw err;
      }
    },
    { attempts: opts.attempts ?? 3, baseDelayMs: 200 },
  ).catch(fail);
  const run = <T>(p: Promise<T>) => p.catch(fail);

  const visibilityServices = async () =>
    (await client.smembers('visibility_services')).map((s) => s.replace(/_/g, '-')).sort();
  const zrange = async (key: string): Promise<Array<[string, number]>> => {
    const flat = await client.zrange(key, 0, 50, 'WITHSCORES');
    const out: Array<[string, number]> = [];
    for (let i = 0; i < flat.length; i += 2) out.push([flat[i], Number(flat[i + 1])]);
    return out;
  };

  return {
    write: (d) =>
      run(
        (async () => {
          const m = client.multi();
          m.set('trace_count', d.traceCount)
            .set('span_count', d.spanCount)
            .set('metric_count', d.metricCount);
          if (d.services.length)
            m.sadd('visibility_services', ...d.services.map((s) => s.replace(/-/g, '_')));
          m.del('tracing_services');
          if (d.tracingServices.length) m.sadd('tracing_services', ...d.tracingServices);
          for (const svc of new Set([...d.services, ...Object.keys(d.responseTimes)])) {
            const rt = d.responseTimes[svc];
            const f = (x: number) => x.toFixed(2);
            m.hset(
              svc,
              rt
                ? { min_rt: f(rt.min), avg_rt: f(rt.avg), max_rt: f(rt.max) }
                : { min_rt: 'NA', avg_rt: 'NA', max_rt: 'NA' },
            );
          }
          m.del(...SPAN_KEYS);
          const setAndZset = (set: string, zset: string | undefined, counts: Record<string, number>) => {
            const keys = Object.keys(counts);
            if (!keys.length) return;
            m.sadd(set, ...keys);
            if (zset) m.zadd(zset, ...keys.flatMap((k) => [counts[k], k]));
          };
          setAndZset('span_urls', 'span_urls_z', d.urls);
          setAndZset('span_user_agent', 'span_user_agent_z', d.userAgents);
          setAndZset('span_node_id', 'span_node_id_z', d.nodeIds);
          setAndZset('span_status_code', undefined, d.statusCodes);
          const zonly = (key: string, counts: Record<string, number>) => {
            const keys = Object.keys(counts);
            if (keys.length) m.zadd(key, ...keys.flatMap((k) => [counts[k], k]));
          };
          zonly('span_status_codes_z', d.statusUrl);
          zonly('span_node_url_z', d.nodeUrl);
          if (d.operationNames.length) m.sadd('span_operation_name', ...d.operationNames);
          if (d.upstreamClusters.length) m.sadd('span_upstream_cluster', ...d.upstreamClusters);
          const res = await m.exec();
          const err = res?.find(([e]) => e)?.[0];
          if (err) throw err;
        })(),
      ),
    read: () =>
      run(
        (async (): Promise<CloverStatsAll> => {
          const [trace_count, span_count, metric_count] = await client.mget(
            'trace_count',
            'span_count',
            'metric_count',
          );
          const services = await visibilityServices();
          const prefixes = await client.smembers('metric_prefixes');
          const suffixes = await client.smembers('metric_suffixes');
          const metrics_time: CloverStatsAll['metrics_time'] = [];
          for (const svc of (await client.smembers('visibility_services')).sort())
            for (const prefix of prefixes)
              for (const suffix of suffixes) {
                const name = `metrics_${prefix}${svc}${suffix}`;
                metrics_time.push({
                  name,
                  service: svc,
                  prefix,
                  suffix,
                  values: await client.lrange(name, 0, 100),
                });
              }
          const response_times = [];
          for (const svc of services) {
            const h = await client.hgetall(svc);
            response_times.push({
              name: svc,
              min: h.min_rt ?? null,
              avg: h.avg_rt ?? null,
              max: h.max_rt ?? null,
            });
          }
          const members = async (k: string) => (await client.smembers(k)).sort();
          return {
            trace_count,
            span_count,
            metric_count,
            metrics_time,
            response_times,
            request_urls: await members('span_urls'),
            user_agents: await members('span_user_agent'),
            status_codes: await members('span_status_code'),
            op_names: await members('span_operation_name'),
            node_ids: await members('span_node_id'),
            upstream_clusters: await members('span_upstream_cluster'),
            user_agent_count: await zrange('span_user_agent_z'),
            request_url_count: await zrange('span_urls_z'),
            status_code_count: await zrange('span_status_codes_z'),
            node_url_count: await zrange('span_node_url_z'),
            node_id_count: await zrange('span_node_id_z'),
          };
        })(),
      ),
    clear: () =>
      run(
        (async () => {
          const services = await visibilityServices();
          // The watermark moves to now: a running collector counts only what starts after the clear.
          const m = client
            .multi()
            .set('trace_count', 0)
            .set('span_count', 0)
            .set('metric_count', 0)
            .del(...SPAN_KEYS, VISIBILITY_RT_KEY)
            .set(VISIBILITY_WATERMARK_KEY, String(Date.now()));
          for (const svc of services) m.hset(svc, { min_rt: 'NA', avg_rt: 'NA', max_rt: 'NA' });
          await m.exec();
          return { cleared: ['trace_count', 'span_count', 'metric_count', ...SPAN_KEYS], services };
        })(),
      ),
    close: async () => {
      client.disconnect();
    },
  };
}
