/**
 * Jaeger query API adapter (/api/services, /api/traces). A window is read in time slices: a slice that
 * returns `pageLimit` traces may have been cut, so it is split in two and read again. Each page is handed
 * to the caller and dropped, so a window of 100 000 traces never sits in memory at once.
 */
import { createHttpClient, type HttpClient } from './http.js';
import { logged, type QueryLog } from './query-log.js';

export interface JaegerTag {
  key: string;
  type?: string;
  value: unknown;
}

export interface JaegerSpan {
  traceID: string;
  spanID: string;
  operationName: string;
  references?: Array<{ refType: string; traceID: string; spanID: string }>;
  /** epoch µs */
  startTime: number;
  /** µs */
  duration: number;
  tags?: JaegerTag[];
  processID?: string;
}

export interface JaegerTrace {
  traceID: string;
  spans: JaegerSpan[];
  processes?: Record<string, { serviceName: string; tags?: JaegerTag[] }>;
}

export interface JaegerClient {
  readonly url: string;
  readonly log: QueryLog;
  services(): Promise<string[]>;
  /** One search page (Jaeger's own parameters; times in epoch ms here, µs on the wire). */
  search(q: { service: string; operation?: string; tags?: Record<string, string>; startMs: number; endMs: number; limit: number }): Promise<JaegerTrace[]>;
}

export function createJaegerClient(url: string, opts: { timeoutMs?: number; attempts?: number; log?: QueryLog } = {}): JaegerClient {
  const http: HttpClient = createHttpClient({
    system: 'Jaeger',
    baseURL: url,
    timeoutMs: opts.timeoutMs ?? 30_000,
    retry: { attempts: opts.attempts ?? 3 },
    hint: `that the Jaeger query service answers at ${url} (GET /api/services) and that gate.tracing.url is right`,
  });
  const log = opts.log ?? [];
  return {
    url,
    log,
    services: () =>
      logged(
        log,
        'GET /api/services',
        async () => {
          const res = await http.get<{ data: string[] | null }>('/api/services');
          if (res.status >= 400) throw new Error(`HTTP ${res.status}`);
          return res.data.data ?? [];
        },
        (v) => `${v.length} services`,
      ),
    search: async (q) => {
      const params: Record<string, string | number> = { service: q.service, start: Math.floor(q.startMs * 1000), end: Math.floor(q.endMs * 1000), limit: q.limit };
      if (q.operation) params.operation = q.operation;
      if (q.tags) params.tags = JSON.stringify(q.tags);
      const res = await http.get<{ data: JaegerTrace[] | null; errors?: Array<{ msg: string }> | null }>('/api/traces', { params });
      if (res.status >= 400) throw new Error(`Jaeger /api/traces answered HTTP ${res.status}: ${res.data?.errors?.[0]?.msg ?? ''}`);
      return res.data.data ?? [];
    },
  };
}

export interface CollectStats {
  pages: number;
  traces: number;
}

/**
 * Every trace of `service` that has a span in [startMs, endMs), page by page. A trace that appears in two
 * slices is delivered once. `onTrace` sees each trace; nothing is kept here but the trace ids.
 */
export async function forEachTrace(
  client: JaegerClient,
  q: { service: string; startMs: number; endMs: number; pageLimit?: number; minSliceMs?: number },
  onTrace: (t: JaegerTrace) => void,
): Promise<CollectStats> {
  const limit = q.pageLimit ?? 300;
  const minSlice = q.minSliceMs ?? 1;
  const seen = new Set<string>();
  const stats: CollectStats = { pages: 0, traces: 0 };
  const slices: Array<[number, number]> = [[q.startMs, q.endMs]];
  const query = `GET /api/traces?service=${q.service}&start=${q.startMs * 1000}&end=${q.endMs * 1000}&limit=${limit} (paged by time)`;
  await logged(
    client.log,
    query,
    async () => {
      while (slices.length) {
        const [s, e] = slices.pop()!;
        const page = await client.search({ service: q.service, startMs: s, endMs: e, limit });
        stats.pages++;
        if (page.length >= limit && e - s > minSlice) {
          // The page may be cut: read the two halves instead (later half first, so order is ascending on pop).
          const mid = Math.floor((s + e) / 2);
          slices.push([mid, e], [s, mid]);
          continue;
        }
        for (const t of page) {
          if (seen.has(t.traceID)) continue;
          seen.add(t.traceID);
          stats.traces++;
          onTrace(t);
        }
      }
      return stats;
    },
    (v) => `${v.pages} pages, ${v.traces} traces`,
  );
  return stats;
}

export function tagValue(span: JaegerSpan, key: string): string | undefined {
  const t = span.tags?.find((x) => x.key === key);
  return t === undefined ? undefined : String(t.value);
}
