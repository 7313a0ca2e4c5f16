/**
 * Prometheus HTTP API adapter: instant and range queries, series and target metadata. Every call is logged
 * (query, time, what came back) for the evidence bundle, and a Prometheus that cannot be reached or answers
 * an error becomes an InfrastructureError (exit 4) naming the URL; a query it refuses (400 bad_data, 422)
 * is a PrometheusQueryError (exit 2) with its message.
 */
import { CloverError, ExitCode, InfrastructureError } from '../util/errors.js';
import { createHttpClient, type HttpClient } from './http.js';
import { logged, type QueryLog } from './query-log.js';

export interface PromSample {
  labels: Record<string, string>;
  value: number;
  /** Sample time, epoch ms. */
  ts: number;
}

export interface PromSeriesRange {
  labels: Record<string, string>;
  values: Array<[number, number]>;
}

export interface PromTarget {
  job: string;
  scrapeUrl: string;
  health: string;
  lastError: string;
  scrapeIntervalMs?: number;
}

interface ApiAnswer<T> {
  status: 'success' | 'error';
  data?: T;
  errorType?: string;
  error?: string;
}

/**
 * Prometheus answered and refused the query itself (HTTP 400 bad_data, 422 execution): the query is wrong,
 * not Prometheus, so this is bad input (exit 2) carrying Prometheus' own message.
 */
export class PrometheusQueryError extends CloverError {
  constructor(
    readonly status: number,
    readonly errorType: string,
    readonly detail: string,
  ) {
    super(`Prometheus refused the query (HTTP ${status} ${errorType}): ${detail}`, ExitCode.invalid);
  }
}

export interface PrometheusClient {
  readonly url: string;
  readonly log: QueryLog;
  instant(query: string, timeMs?: number): Promise<PromSample[]>;
  range(query: string, startMs: number, endMs: number, stepS: number): Promise<PromSeriesRange[]>;
  series(match: string, startMs: number, endMs: number): Promise<Array<Record<string, string>>>;
  targets(): Promise<PromTarget[]>;
}

export function createPrometheusClient(
  url: string,
  opts: { timeoutMs?: number; attempts?: number; log?: QueryLog } = {},
): PrometheusClient {
  const http: HttpClient = createHttpClient({
    system: 'Prometheus',
    baseURL: url,
    timeoutMs: opts.timeoutMs ?? 10_000,
    retry: { attempts: opts.attempts ?? 3 },
    hint: `that Prometheus answers at ${url} (GET ${url.replace(/\/$/, '')}/-/ready) and that gate.metrics.url is right`,
  });
  const log = opts.log ?? [];

  async function api<T>(path: string, params: Record<string, string | number>): Promise<T> {
    const res = await http.get<ApiAnswer<T>>(path, { params });
    const body = res.data as ApiAnswer<T> | undefined;
    if ((res.status === 400 || res.status === 422) && body?.status === 'error')
      throw new PrometheusQueryError(res.status, body.errorType ?? 'error', body.error ?? 'no message');
    if (res.status >= 400 || res.data?.status !== 'success') {
      throw new InfrastructureError(
        'Prometheus',
        `GET ${url}${path}`,
        `HTTP ${res.status}: ${body?.errorType ?? ''} ${body?.error ?? 'unexpected answer'}`.trim(),
        'the query and the Prometheus version',
      );
    }
    return res.data.data as T;
  }

  return {
    url,
    log,
    instant: (query, timeMs) =>
      logged(
        log,
        `${query}${timeMs ? ` @ ${new Date(timeMs).toISOString()}` : ''}`,
        async () => {
          const d = await api<{
            resultType: string;
            result: Array<{ metric: Record<string, string>; value: [number, string] }>;
          }>('/api/v1/query', {
            query,
            ...(timeMs ? { time: timeMs / 1000 } : {}),
          });
          if (d.resultType === 'scalar') {
            const v = d.result as unknown as [number, string];
            return [{ labels: {}, value: Number(v[1]), ts: v[0] * 1000 }];
          }
          return d.result.map((r) => ({
            labels: r.metric,
            value: Number(r.value[1]),
            ts: r.value[0] * 1000,
          }));
        },
        (v) => `${v.length} series`,
      ),
    range: (query, startMs, endMs, stepS) =>
      logged(
        log,
        `${query} [${new Date(startMs).toISOString()} .. ${new Date(endMs).toISOString()} step ${stepS}s]`,
        async () => {
          const d = await api<{
            result: Array<{ metric: Record<string, string>; values: Array<[number, string]> }>;
          }>('/api/v1/query_range', {
            query,
            start: startMs / 1000,
            end: endMs / 1000,
            step: stepS,
          });
          return d.result.map((r) => ({
            labels: r.metric,
            values: r.values.map(([t, v]) => [t * 1000, Number(v)] as [number, number]),
          }));
        },
        (v) => `${v.length} series`,
      ),
    series: (match, startMs, endMs) =>
      logged(
        log,
        `series ${match}`,
        () =>
          api<Array<Record<string, string>>>('/api/v1/series', {
            'match[]': match,
            start: startMs / 1000,
            end: endMs / 1000,
          }),
        (v) => `${v.length} series`,
      ),
    targets: () =>
      logged(
        log,
        'targets',
        async () => {
          const d = await api<{
            activeTargets: Array<{
              labels: Record<string, string>;
              scrapeUrl: string;
              health: string;
              lastError: string;
              scrapeInterval?: string;
            }>;
          }>('/api/v1/targets', { state: 'active' });
          return d.activeTargets.map((t) => ({
            job: t.labels.job ?? '',
            scrapeUrl: t.scrapeUrl,
            health: t.health,
            lastError: t.lastError,
            scrapeIntervalMs: t.scrapeInterval ? parseGoDuration(t.scrapeInterval) : undefined,
          }));
        },
        (v) => `${v.length} targets`,
      ),
  };
}

/** Prometheus durations as the targets API prints them ("15s", "1m30s", "500ms"). */
export function parseGoDuration(s: string): number {
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
  let total = 0;
  for (const m of s.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)) total += Number(m[1]) * units[m[2]];
  return total;
}
