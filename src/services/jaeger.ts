/**
 * Jaeger query API adapter (/api/services, /api/traces). A window is read in time slices: a slice that
 * returns `pageLimit` traces may have been cut, so it is split in two and read again. Each page is handed
 * to the caller and dropped, so a window of 100 000 traces never sits in memory at once.
 */
import type { Readable } from 'node:stream';
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
  search(q: SearchQuery): Promise<JaegerTrace[]>;
  /**
   * The same search, each trace parsed and handed over as its bytes arrive (no whole page in memory); resolves to
   * the count and the envelope's `errors` (a store that could not return everything says so there).
   */
  searchEach(q: SearchQuery, onTrace: (t: JaegerTrace) => void): Promise<{ count: number; errors: string[] }>;
}

export interface SearchQuery {
  service: string;
  operation?: string;
  tags?: Record<string, string>;
  /** epoch ms */
  startMs: number;
  endMs: number;
  limit: number;
}

export function createJaegerClient(
  url: string,
  opts: { timeoutMs?: number; attempts?: number; log?: QueryLog } = {},
): JaegerClient {
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
      const params = searchParams(q);
      const res = await http.get<{ data: JaegerTrace[] | null; errors?: Array<{ msg: string }> | null }>(
        '/api/traces',
        { params },
      );
      if (res.status >= 400)
        throw new Error(
          `Jaeger /api/traces answered HTTP ${res.status}: ${res.data?.errors?.[0]?.msg ?? ''}`,
        );
      return res.data.data ?? [];
    },
    searchEach: async (q, onTrace) => {
      const res = await http.get<Readable>('/api/traces', {
        params: searchParams(q),
        responseType: 'stream',
      });
      if (res.status >= 400) {
        let body = '';
        for await (const chunk of res.data) body += String(chunk);
        let msg = '';
        try {
          msg = (JSON.parse(body) as { errors?: Array<{ msg: string }> | null }).errors?.[0]?.msg ?? '';
        } catch {
          msg = body.slice(0, 200);
        }
        throw new Error(`Jaeger /api/traces answered HTTP ${res.status}: ${msg}`);
      }
      let n = 0;
      let errors: string[] = [];
      await eachDataElement(
        res.data,
        (json) => {
          n++;
          onTrace(JSON.parse(json) as JaegerTrace);
        },
        (rest) => {
          try {
            errors = ((JSON.parse(rest) as { errors?: Array<{ msg?: string }> | null }).errors ?? []).map(
              (e) => String(e.msg ?? 'unknown error'),
            );
          } catch {
            errors = [];
          }
        },
      );
      return { count: n, errors };
    },
  };
}

function searchParams(q: SearchQuery): Record<string, string | number> {
  const params: Record<string, string | number> = {
    service: q.service,
    start: Math.floor(q.startMs * 1000),
    end: Math.floor(q.endMs * 1000),
    limit: q.limit,
  };
  if (q.operation) params.operation = q.operation;
  if (q.tags) params.tags = JSON.stringify(q.tags);
  return params;
}

/**
 * Hands over the text of each element of the top-level `"data": [...]` array of a JSON body as it streams
 * in, by tracking nesting depth and string state byte by byte: only one element's bytes are held at a time.
 * `onRest` gets the body without the elements (`"data":[]` and the envelope's other fields, such as `errors`).
 */
export async function eachDataElement(
  body: AsyncIterable<Buffer | string>,
  onElement: (json: string) => void,
  onRest?: (json: string) => void,
): Promise<void> {
  let depth = 0;
  let inString = false;
  let escaped = false;
  let key = '';
  let keyStart = -1; // collecting a depth-1 string (a key), or -1
  let keyHead = ''; // the part of that string in earlier chunks
  let inData = false;
  let parts: Buffer[] = [];
  let elemStart = -1;
  const rest: Buffer[] = [];
  for await (const raw of body) {
    const chunk = typeof raw === 'string' ? Buffer.from(raw) : raw;
    if (elemStart === -2) elemStart = 0; // an element continues from the previous chunk
    let restStart = elemStart === 0 ? -1 : 0; // where the envelope text resumes in this chunk (-1: inside an element)
    const keepRest = (to: number) => {
      if (onRest && restStart >= 0 && to > restStart) rest.push(chunk.subarray(restStart, to));
    };
    let backslash = -1; // the next backslash at or after i in this chunk (chunk.length: none), found natively
    for (let i = 0; i < chunk.length; i++) {
      if (inString) {
        if (escaped) {
          escaped = false;
          continue;
        }
        // Most of a trace's bytes are inside strings: jump to the next quote or backslash.
        if (backslash < i) {
          backslash = chunk.indexOf(0x5c, i);
          if (backslash < 0) backslash = chunk.length;
        }
        const quote = chunk.indexOf(0x22, i);
        i = Math.min(quote < 0 ? chunk.length : quote, backslash);
        if (i >= chunk.length) break;
        if (i === backslash) escaped = true;
        else {
          inString = false;
          if (keyStart >= 0) {
            key = keyHead + chunk.toString('utf8', keyStart, i);
            keyHead = '';
            keyStart = -1;
          }
        }
        continue;
      }
      const c = chunk[i];
      if (c === 0x22) {
        inString = true;
        if (depth === 1) keyStart = i + 1;
      } else if (c === 0x7b || c === 0x5b) {
        if (depth === 1 && c === 0x5b && key === 'data') inData = true;
        else if (inData && depth === 2) {
          elemStart = i;
          keepRest(i);
          restStart = -1;
        }
        depth++;
      } else if (c === 0x7d || c === 0x5d) {
        depth--;
        if (inData && depth === 2 && elemStart !== -1) {
          parts.push(chunk.subarray(elemStart, i + 1));
          onElement(Buffer.concat(parts).toString('utf8'));
          parts = [];
          elemStart = -1;
          restStart = i + 1;
        } else if (inData && depth === 1) inData = false;
      } else if (c === 0x2c && inData && depth === 2) {
        // The comma between two elements goes with them.
        keepRest(i);
        restStart = i + 1;
      }
    }
    keepRest(chunk.length);
    if (elemStart >= 0) {
      parts.push(chunk.subarray(elemStart));
      elemStart = -2;
    }
    if (keyStart >= 0) {
      keyHead += chunk.toString('utf8', keyStart);
      keyStart = 0;
    }
  }
  onRest?.(Buffer.concat(rest).toString('utf8'));
}

export interface CollectStats {
  pages: number;
  traces: number;
  /** What the store said it could not return (the envelope's `errors`), when it said anything. */
  incomplete?: string;
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
  // 100 traces a page: each page's response buffer and parsed JSON are garbage once folded, and V8 collects
  // them lazily, so the page size sets the collector's peak memory (300 a page peaked ~20 MB higher for
  // 100,000 traces) more than its request count does.
  const limit = q.pageLimit ?? 100;
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
        // Each trace is folded as it is parsed, cut page or not: a trace is whole whichever slice found it,
        // and `seen` keeps the re-read halves of a cut slice from delivering it twice.
        const page = await client.searchEach({ service: q.service, startMs: s, endMs: e, limit }, (t) => {
          if (seen.has(t.traceID)) return;
          seen.add(t.traceID);
          stats.traces++;
          onTrace(t);
        });
        const got = page.count;
        if (page.errors.length && !stats.incomplete) stats.incomplete = page.errors.join('; ');
        stats.pages++;
        if (got >= limit && e - s > minSlice) {
          // The page may be cut: read the two halves instead (later half first, so order is ascending on pop).
          const mid = Math.floor((s + e) / 2);
          slices.push([mid, e], [s, mid]);
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
