/**
 * Continuous visibility, as Clover's clover-collector + Spark kept it: every sampling interval, read the
 * traces that completed since the last cycle from the Jaeger query API and the configured metrics from
 * Prometheus (or a scrape endpoint), and add them to Clover's Redis keys, so `trace_count`, per-service
 * response times, the URL / user-agent / status-code tables and `metrics_*` stay current.
 *
 * Incremental, not Clover's "re-read the last 300 s every cycle": a watermark in Redis marks what is counted;
 * each cycle counts the traces that started in [watermark, now − settle) and moves the watermark. A clear
 * (`/visibility/clear`, `clover-cd visibility clear`) moves the watermark to its own time, and a cycle that
 * overlaps a clear is dropped (WATCH), so nothing from before a clear is counted after it.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { createJaegerClient, forEachTrace } from '../services/jaeger.js';
import { createPrometheusClient } from '../services/prometheus.js';
import { VISIBILITY_LOCK_KEY, VISIBILITY_RT_KEY, VISIBILITY_WATERMARK_KEY } from '../services/redis.js';
import { scrapeTargets } from '../services/scrape.js';
import { InfrastructureError } from '../util/errors.js';
import { redact } from '../util/redact.js';
import { emptyDelta, foldTrace, mergeDurations, type Durations, type VisibilityDelta } from './fold.js';

export interface CollectorSources {
  /** Jaeger query API base URL (in a cluster tracing.istio-system:16686; the sandbox serves one). */
  jaegerUrl: string;
  /** Prometheus base URL for the metric series; or `scrapeUrls` (Prometheus text endpoints, the sandbox's /metrics). */
  prometheusUrl?: string;
  scrapeUrls?: string[];
}

export interface CollectorOptions {
  redisUrl: string;
  sources: CollectorSources;
  /** Clover's sample_interval (default 5 s). */
  intervalMs?: number;
  /** How far back the first cycle reads when Redis holds no watermark (Clover's 300 s window). */
  windowMs?: number;
  /** A trace is counted once its first span is this old, so its spans are all stored (default 1 s). */
  settleMs?: number;
  log?: (line: string) => void;
}

export interface CycleResult {
  traces: number;
  spans: number;
  metrics: number;
  /** epoch ms: traces that started before this are counted */
  watermark: number;
  /** Why nothing was written: another collector holds the lock, or a clear ran meanwhile. */
  skipped?: 'locked' | 'cleared';
}

export interface Collector {
  readonly id: string;
  readonly pid: number;
  readonly options: Required<Omit<CollectorOptions, 'log'>>;
  /** One cycle now (the loop runs them on its own; for `--once` and tests). */
  cycle(): Promise<CycleResult>;
  status(): { running: boolean; cycles: number; last?: CycleResult; lastError?: string };
  stop(): Promise<void>;
}

const underscored = (s: string) => s.replace(/-/g, '_');

function connect(url: string): Redis {
  const c = new Redis(url, {
    lazyConnect: true,
    connectTimeout: 3000,
    commandTimeout: 10_000,
    maxRetriesPerRequest: 1,
    retryStrategy: (n) => Math.min(n * 200, 2000),
  });
  c.on('error', () => undefined); // surfaced by the failing cycle
  return c;
}

/** Start collecting: the first cycle runs at once; `stop()` ends the loop after the cycle in flight. */
export async function startCollector(opts: CollectorOptions): Promise<Collector> {
  const options = {
    redisUrl: opts.redisUrl,
    sources: opts.sources,
    intervalMs: opts.intervalMs ?? 5000,
    windowMs: opts.windowMs ?? 300_000,
    settleMs: opts.settleMs ?? 1000,
  };
  const log = opts.log ?? (() => undefined);
  const redis = connect(opts.redisUrl);
  try {
    await redis.connect();
  } catch (err) {
    redis.disconnect();
    throw new InfrastructureError(
      'Redis',
      redact(opts.redisUrl),
      (err as Error).message,
      'that Redis runs at that URL (redis-cli -u <url> ping)',
    );
  }
  const id = randomUUID();
  const jaeger = createJaegerClient(options.sources.jaegerUrl, { timeoutMs: 15_000, attempts: 2 });
  const prometheus = options.sources.prometheusUrl
    ? createPrometheusClient(options.sources.prometheusUrl, { attempts: 2 })
    : undefined;
  let running = true;
  let cycles = 0;
  let last: CycleResult | undefined;
  let lastError: string | undefined;

  /** Latest value per metric name: an instant query, or the sum of a scrape's samples of that name. */
  const readMetrics = async (names: string[]): Promise<Map<string, number>> => {
    const out = new Map<string, number>();
    if (!names.length) return out;
    if (prometheus) {
      for (const name of names) {
        const samples = await prometheus.instant(name);
        if (samples.length)
          out.set(
            name,
            samples.reduce((s, x) => s + x.value, 0),
          );
      }
      prometheus.log.length = 0;
    } else if (options.sources.scrapeUrls?.length) {
      const want = new Set(names);
      const snap = await scrapeTargets(options.sources.scrapeUrls, { keep: (f) => want.has(f) });
      for (const s of snap.series) if (want.has(s.name)) out.set(s.name, (out.get(s.name) ?? 0) + s.value);
    }
    return out;
  };

  const cycle = async (): Promise<CycleResult> => {
    // One collector at a time across replicas: the lock lives a few intervals and is renewed each cycle.
    const ttl = Math.max(3 * options.intervalMs, 10_000);
    const holder = await redis.set(VISIBILITY_LOCK_KEY, id, 'PX', ttl, 'NX');
    if (!holder && (await redis.get(VISIBILITY_LOCK_KEY)) !== id)
      return { traces: 0, spans: 0, metrics: 0, watermark: 0, skipped: 'locked' };
    await redis.pexpire(VISIBILITY_LOCK_KEY, ttl);

    const now = Date.now();
    const cutoff = now - options.settleMs;
    await redis.watch(VISIBILITY_WATERMARK_KEY, VISIBILITY_RT_KEY);
    const stored = Number(await redis.get(VISIBILITY_WATERMARK_KEY));
    const from = Math.max(Number.isFinite(stored) && stored > 0 ? stored : 0, now - options.windowMs);
    const configured = (await redis.smembers('visibility_services')).map((s) => s.replace(/_/g, '-')).sort();
    const known = await jaeger.services();
    // Clover read only visibility_services; with none configured, every service Jaeger knows.
    const services = configured.length ? configured : known;
    const delta: VisibilityDelta = emptyDelta();
    const seen = new Set<string>();
    if (cutoff > from) {
      for (const service of services) {
        // Jaeger may name a service "proxy-access-control" or "proxy-access-control.default".
        const name = known.find((k) => k === service) ?? known.find((k) => k.split('.')[0] === service);
        if (name)
          await forEachTrace(jaeger, { service: name, startMs: from, endMs: now }, (t) =>
            foldTrace(delta, t, from, cutoff, seen),
          );
      }
    }
    jaeger.log.length = 0;
    const prefixes = await redis.smembers('metric_prefixes');
    const suffixes = await redis.smembers('metric_suffixes');
    const names = (configured.length ? configured : []).flatMap((svc) =>
      prefixes.flatMap((p) => suffixes.map((s) => `${p}${underscored(svc)}${s}`)),
    );
    const metrics = await readMetrics(names);
    const rtFields = await redis.hgetall(VISIBILITY_RT_KEY);

    const m = redis.multi();
    if (delta.traces) m.incrby('trace_count', delta.traces).incrby('span_count', delta.spans);
    else m.incrby('trace_count', 0).incrby('span_count', 0); // "0" rather than null once collection runs
    const counted = (set: string, zset: string, counts: Map<string, number>) => {
      for (const [k, n] of counts) m.sadd(set, k).zincrby(zset, n, k);
    };
    counted('span_urls', 'span_urls_z', delta.urls);
    counted('span_user_agent', 'span_user_agent_z', delta.userAgents);
    counted('span_node_id', 'span_node_id_z', delta.nodeIds);
    for (const [k, n] of delta.statusUrl) m.zincrby('span_status_codes_z', n, k);
    for (const [k, n] of delta.nodeUrl) m.zincrby('span_node_url_z', n, k);
    if (delta.statusCodes.size) m.sadd('span_status_code', ...delta.statusCodes);
    if (delta.operations.size) m.sadd('span_operation_name', ...delta.operations);
    if (delta.upstreamClusters.size) m.sadd('span_upstream_cluster', ...delta.upstreamClusters);
    const rtServices = new Set(configured.length ? configured : [...delta.durations.keys()]);
    for (const [svc, d] of delta.durations) {
      const prev = rtFields[svc] ? (JSON.parse(rtFields[svc]) as Durations) : undefined;
      const merged = mergeDurations(prev, d);
      m.hset(VISIBILITY_RT_KEY, svc, JSON.stringify(merged));
      if (rtServices.has(svc))
        m.hset(svc, {
          min_rt: merged.min.toFixed(2),
          avg_rt: (merged.sum / merged.n).toFixed(2),
          max_rt: merged.max.toFixed(2),
        });
    }
    m.del('tracing_services');
    if (known.length) m.sadd('tracing_services', ...known);
    for (const [name, value] of metrics) {
      m.set(name, String(value)).rpush(`metrics_${name}`, String(value)).ltrim(`metrics_${name}`, -100, -1);
    }
    m.incrby('metric_count', metrics.size);
    const next = Math.max(from, cutoff);
    m.set(VISIBILITY_WATERMARK_KEY, String(next));
    const res = await m.exec();
    if (res === null) return { traces: 0, spans: 0, metrics: 0, watermark: from, skipped: 'cleared' };
    const err = res.find(([e]) => e)?.[0];
    if (err) throw err;
    return { traces: delta.traces, spans: delta.spans, metrics: metrics.size, watermark: next };
  };

  // Cycles never overlap (they share one connection and its WATCH): each waits for the one before.
  let chain: Promise<unknown> = Promise.resolve();
  const serial = (): Promise<CycleResult> => {
    const p = chain.then(cycle);
    chain = p.catch(() => undefined);
    return p;
  };
  let timer: NodeJS.Timeout | undefined;
  let inFlight: Promise<unknown> = Promise.resolve();
  const loop = () => {
    if (!running) return;
    inFlight = serial()
      .then(
        (r) => {
          cycles++;
          last = r;
          lastError = undefined;
          if (r.traces || r.metrics)
            log(`visibility: +${r.traces} traces, +${r.spans} spans, ${r.metrics} metrics`);
        },
        (e: Error) => {
          lastError = redact(e.message);
          log(`visibility: cycle failed: ${lastError}`);
          return redis.unwatch().catch(() => undefined);
        },
      )
      .finally(() => {
        if (running) timer = setTimeout(loop, options.intervalMs).unref();
      });
  };
  loop();

  return {
    id,
    pid: process.pid,
    options,
    cycle: serial,
    status: () => ({ running, cycles, last, lastError }),
    stop: async () => {
      running = false;
      if (timer) clearTimeout(timer);
      await inFlight.catch(() => undefined);
      await redis
        .eval(
          "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0",
          1,
          VISIBILITY_LOCK_KEY,
          id,
        )
        .catch(() => undefined);
      redis.disconnect();
    },
  };
}
