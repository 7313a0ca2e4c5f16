/**
 * Clover's visibility configuration in Redis (`/collector/set`, `/visibility/set`, `/visibility/get/<conf>`)
 * and the `/collector/start` body → the collector's sources and timing.
 */
import type { Redis } from 'ioredis';
import type { PlatformEndpoints } from '../services/platform.js';
import { InvalidInputError } from '../util/errors.js';
import type { CollectorSources } from './collector.js';

export const UPDATED = 'Updated visibility config';

type Entry<K extends string> = Array<Partial<Record<K, unknown>>>;
interface CloverSetBody {
  services?: Entry<'name'>;
  metric_prefixes?: Entry<'prefix'>;
  metric_suffixes?: Entry<'suffix'>;
  custom_metrics?: Entry<'metric'>;
}

function values<K extends string>(list: unknown, key: K, path: string): string[] {
  if (!Array.isArray(list))
    throw new InvalidInputError(`Invalid value in json/yaml: ${path} must be a list of {${key}: ...}`);
  return list.map((x, i) => {
    const v = (x as Record<string, unknown> | null)?.[key];
    if (typeof v !== 'string' || !v)
      throw new InvalidInputError(
        `Invalid value in json/yaml: ${path}[${i}].${key} must be a non-empty string`,
      );
    return v;
  });
}

/** Clover's /collector/set: services replace `visibility_services` (dashes → underscores); prefixes and suffixes
 * replace theirs when both are given; custom_metrics when given. */
export async function setVisibilityConfig(redis: Redis, body: unknown): Promise<string> {
  const b = (body ?? {}) as CloverSetBody;
  if (!b.services) throw new InvalidInputError('Specify at least one service to track');
  const services = values(b.services, 'name', 'services').map((s) => s.replace(/-/g, '_'));
  const m = redis.multi().del('visibility_services');
  if (services.length) m.sadd('visibility_services', ...services);
  if (b.metric_prefixes && b.metric_suffixes) {
    const prefixes = values(b.metric_prefixes, 'prefix', 'metric_prefixes');
    const suffixes = values(b.metric_suffixes, 'suffix', 'metric_suffixes');
    m.del('metric_prefixes', 'metric_suffixes');
    if (prefixes.length) m.sadd('metric_prefixes', ...prefixes);
    if (suffixes.length) m.sadd('metric_suffixes', ...suffixes);
  }
  if (b.custom_metrics) {
    const custom = values(b.custom_metrics, 'metric', 'custom_metrics');
    m.del('custom_metrics');
    if (custom.length) m.sadd('custom_metrics', ...custom);
  }
  await m.exec();
  return UPDATED;
}

/** Clover's /visibility/get/<services|metrics|all>. */
export async function getVisibilityConfig(redis: Redis, type: string): Promise<Record<string, unknown>> {
  const sorted = async (k: string) => (await redis.smembers(k)).sort();
  const services = async () => ({ visibility_services: await sorted('visibility_services') });
  const metrics = async () => ({
    metric_prefixes: await sorted('metric_prefixes'),
    metric_suffixes: await sorted('metric_suffixes'),
    custom_metrics: await sorted('custom_metrics'),
  });
  if (type === 'services') return services();
  if (type === 'metrics') return metrics();
  if (type === 'all') return { ...(await services()), ...(await metrics()) };
  throw new InvalidInputError(
    `Invalid value in json/yaml: the configuration is one of services, metrics, all (found "${type}")`,
  );
}

export interface CollectorStart {
  intervalMs: number;
  windowMs?: number;
  sources: CollectorSources;
}

const isLocal = (host: string) => /^(localhost|127\.\d+\.\d+\.\d+|\[?::1\]?|\d+\.\d+\.\d+\.\d+)$/.test(host);

/**
 * Clover's /collector/start body `{sample_interval, t_host, t_port, m_host, m_port}` (strings), every key
 * optional here (defaults 5, tracing.istio-system:16686, prometheus.istio-system:9090), plus `time_window`
 * (seconds the first cycle reads back). On the sandbox, hosts that are Kubernetes service names mean the
 * sandbox's own Jaeger API and /metrics; an IP or localhost is used as given.
 */
export function collectorStartFrom(body: unknown, sandbox?: PlatformEndpoints): CollectorStart {
  const b = (body ?? {}) as Record<string, unknown>;
  const field = (k: string, dflt: string) => {
    const v = b[k];
    if (v === undefined || v === null || v === '') return dflt;
    if (typeof v !== 'string' && typeof v !== 'number')
      throw new InvalidInputError(`Invalid value in json/yaml: ${k} must be a string`);
    return String(v);
  };
  const seconds = (k: string, dflt: string) => {
    const n = Number(field(k, dflt));
    if (!(n > 0 && n <= 86_400))
      throw new InvalidInputError(
        `Invalid value in json/yaml: ${k} must be seconds between 0 and 86400, found ${JSON.stringify(b[k])}`,
      );
    return n * 1000;
  };
  const port = (k: string, dflt: string) => {
    const p = field(k, dflt);
    if (!/^\d{1,5}$/.test(p) || Number(p) > 65535)
      throw new InvalidInputError(
        `Invalid value in json/yaml: ${k} must be a port number, found ${JSON.stringify(b[k])}`,
      );
    return p;
  };
  const intervalMs = seconds('sample_interval', '5');
  const windowMs = b.time_window === undefined ? undefined : seconds('time_window', '300');
  const [tHost, tPort, mHost, mPort] = [
    field('t_host', 'tracing.istio-system'),
    port('t_port', '16686'),
    field('m_host', 'prometheus.istio-system'),
    port('m_port', '9090'),
  ];
  const url = (h: string, p: string) => `http://${h.includes(':') && !h.startsWith('[') ? `[${h}]` : h}:${p}`;
  if (sandbox) {
    return {
      intervalMs,
      windowMs,
      sources: {
        jaegerUrl: isLocal(tHost) ? url(tHost, tPort) : sandbox.jaeger!,
        ...(isLocal(mHost)
          ? { prometheusUrl: url(mHost, mPort) }
          : { scrapeUrls: sandbox.scrapeTargets ?? [] }),
      },
    };
  }
  return {
    intervalMs,
    windowMs,
    sources: { jaegerUrl: url(tHost, tPort), prometheusUrl: url(mHost, mPort) },
  };
}
