import type { IncomingMessage, ServerResponse } from 'node:http';
import type { StoredSpan, TraceStore } from './traces.js';

/**
 * The Jaeger query HTTP API (the one jaeger-query serves on :16686 and Jaeger's UI and clients use) over
 * the sandbox trace store: /api/services, /api/services/{s}/operations, /api/operations, /api/traces,
 * /api/traces/{id}, with Jaeger's JSON envelope {data, total, limit, offset, errors}.
 */
const GO_DURATION = /^(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)$/;
const US: Record<string, number> = { ns: 0.001, us: 1, µs: 1, ms: 1000, s: 1e6, m: 6e7, h: 3.6e9 };
const DAYS = /^(\d+(?:\.\d+)?)d$/;

/** Microseconds of a Go duration (Jaeger's minDuration, maxDuration, lookback: "1.2s", "100ms", "1h", "2d"). */
export function parseGoDurationUs(v: string): number | undefined {
  let total = 0;
  let rest = v.trim();
  if (DAYS.test(rest)) return Number(DAYS.exec(rest)![1]) * 8.64e10;
  if (!rest) return undefined;
  while (rest) {
    const m = /^(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/.exec(rest);
    if (!m) return undefined;
    total += Number(m[1]) * US[m[2]];
    rest = rest.slice(m[0].length);
  }
  return GO_DURATION.test(v) || total > 0 ? total : undefined;
}

type Envelope = {
  data: unknown;
  total: number;
  limit: number;
  offset: number;
  errors: Array<{ code: number; msg: string }> | null;
};
const envelope = (data: unknown, total = 0): Envelope => ({ data, total, limit: 0, offset: 0, errors: null });
const failure = (code: number, msg: string): Envelope => ({
  data: null,
  total: 0,
  limit: 0,
  offset: 0,
  errors: [{ code, msg }],
});

export function toJaegerTrace(traceId: string, spans: StoredSpan[]) {
  const processIds = new Map<string, string>();
  const processes: Record<
    string,
    { serviceName: string; tags: Array<{ key: string; type: string; value: string }> }
  > = {};
  for (const s of spans) {
    const key = `${s.service}|${s.nodeId}`;
    if (processIds.has(key)) continue;
    const id = `p${processIds.size + 1}`;
    processIds.set(key, id);
    const ip = s.nodeId.split('~')[1] ?? '127.0.0.1';
    processes[id] = {
      serviceName: s.service,
      tags: [
        { key: 'ip', type: 'string', value: ip },
        { key: 'hostname', type: 'string', value: (s.nodeId.split('~')[2] ?? '').split('.')[0] },
      ],
    };
  }
  return {
    traceID: traceId,
    spans: spans.map((s) => ({
      traceID: traceId,
      spanID: s.spanId,
      flags: 1,
      operationName: s.operation,
      references: s.parentSpanId ? [{ refType: 'CHILD_OF', traceID: traceId, spanID: s.parentSpanId }] : [],
      startTime: s.startUs,
      duration: s.durationUs,
      tags: s.tags,
      logs: [],
      processID: processIds.get(`${s.service}|${s.nodeId}`)!,
      warnings: null,
    })),
    processes,
    warnings: null,
  };
}

/** Answer one Jaeger API request; returns false when the path is not part of the API. */
export function handleJaeger(store: TraceStore, req: IncomingMessage, res: ServerResponse): boolean {
  const url = new URL(req.url ?? '/', 'http://x');
  const send = (status: number, body: Envelope) => {
    const text = JSON.stringify(body);
    res
      .writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
      .end(text);
  };
  const path = url.pathname.replace(/\/+$/, '');
  let m: RegExpExecArray | null;
  if (path === '/api/services') {
    const s = store.services();
    send(200, envelope(s, s.length));
  } else if ((m = /^\/api\/services\/([^/]+)\/operations$/.exec(path))) {
    const ops = store.operationsOf(decodeURIComponent(m[1]));
    send(200, envelope(ops, ops.length));
  } else if (path === '/api/operations') {
    const service = url.searchParams.get('service');
    if (!service) send(400, failure(400, "parameter 'service' is required"));
    else {
      const ops = store.operationsOf(service).map((name) => ({ name, spanKind: 'server' }));
      send(200, envelope(ops, ops.length));
    }
  } else if ((m = /^\/api\/traces\/([0-9a-fA-F]{1,32})$/.exec(path))) {
    const spans = store.trace(m[1]);
    if (!spans) send(404, failure(404, 'trace not found'));
    else send(200, envelope([toJaegerTrace(m[1].toLowerCase().padStart(32, '0'), spans)]));
  } else if (path === '/api/traces') {
    const p = url.searchParams;
    const ids = p.getAll('traceID');
    if (ids.length) {
      const traces = ids.map((id) => [id, store.trace(id)] as const).filter(([, s]) => s);
      send(200, envelope(traces.map(([id, s]) => toJaegerTrace(id.toLowerCase().padStart(32, '0'), s!))));
      return true;
    }
    const service = p.get('service');
    if (!service) {
      send(400, failure(400, "parameter 'service' is required"));
      return true;
    }
    const num = (k: string) => (p.get(k) ? Number(p.get(k)) : undefined);
    const dur = (k: string) => (p.get(k) ? parseGoDurationUs(p.get(k)!) : undefined);
    for (const k of ['minDuration', 'maxDuration', 'lookback']) {
      const v = p.get(k);
      if (v && v !== 'custom' && parseGoDurationUs(v) === undefined) {
        send(400, failure(400, `unable to parse param '${k}': time: invalid duration "${v}"`));
        return true;
      }
    }
    let tags: Record<string, string> = {};
    try {
      for (const t of p.getAll('tags')) Object.assign(tags, JSON.parse(t));
      for (const t of p.getAll('tag')) {
        const i = t.indexOf(':');
        tags[t.slice(0, i)] = t.slice(i + 1);
      }
    } catch {
      send(400, failure(400, "malformed 'tags' parameter: expected a JSON object"));
      return true;
    }
    tags = Object.fromEntries(Object.entries(tags).map(([k, v]) => [k, String(v)]));
    const endUs = num('end') ?? Date.now() * 1000;
    const lookback = p.get('lookback');
    const startUs =
      num('start') ??
      (lookback && lookback !== 'custom' ? endUs - (parseGoDurationUs(lookback) ?? 0) : undefined);
    const found = store.find({
      service,
      operation: p.get('operation') ?? undefined,
      tags,
      startUs,
      endUs,
      minDurationUs: dur('minDuration'),
      maxDurationUs: dur('maxDuration'),
      limit: num('limit'),
    });
    const data = found.map((id) => toJaegerTrace(id, store.trace(id) ?? []));
    // The ring evicts its oldest spans when full: a window that reaches back past them is reported incomplete,
    // in Jaeger's own errors field, rather than read as requests that never happened.
    const lost = store.evictedSince(startUs ?? -Infinity);
    send(
      200,
      lost
        ? {
            ...envelope(data),
            errors: [
              {
                code: 206,
                msg: `the sandbox trace store (capacity ${store.capacity} spans) evicted spans of this window: its traces are incomplete (raise sandbox up --trace-capacity or shorten the window)`,
              },
            ],
          }
        : envelope(data),
    );
  } else return false;
  return true;
}
