/**
 * A bounded trace store: a ring of spans in typed arrays (about 100 bytes a span, no object per span), so
 * a million spans cost a known amount of memory and a query scans memory linearly from the newest span.
 * Strings that repeat (service, operation, node id, url, user agent, cluster) are interned.
 * The ring is cut into blocks of BLOCK slots, each knowing the earliest and latest span start it holds, so
 * a time-window query skips whole blocks outside the window (spans arrive roughly in time order, so a
 * window touches few blocks; out-of-order spans only widen a block's range, never hide a span).
 */
export interface SpanInput {
  traceId: string; // 32 hex (16 hex ids are left-padded)
  spanId: string; // 16 hex
  parentSpanId?: string;
  service: string;
  operation: string;
  startUs: number;
  durationUs: number;
  nodeId: string;
  url: string;
  method: string;
  statusCode: number;
  userAgent: string;
  upstreamCluster: string;
  requestSize: number;
  responseSize: number;
  requestId: string;
  responseFlags?: string;
  /** The load engines' x-clover-cd-load header (Istio tracing custom_tags), when present. */
  loadTag?: string;
  /** "type|param" of the sampler that kept the trace, on root spans (Jaeger's sampler.type / sampler.param). */
  sampler?: string;
}

export interface StoredSpan extends SpanInput {
  tags: Array<{ key: string; type: 'string'; value: string }>;
}

export interface TraceQuery {
  service: string;
  operation?: string;
  tags?: Record<string, string>;
  startUs?: number;
  endUs?: number;
  minDurationUs?: number;
  maxDurationUs?: number;
  limit?: number;
}

class Interner {
  private readonly ids = new Map<string, number>();
  readonly values: string[] = [];
  id(s: string): number {
    let i = this.ids.get(s);
    if (i === undefined) {
      i = this.values.length;
      this.values.push(s);
      this.ids.set(s, i);
    }
    return i;
  }
  find(s: string): number | undefined {
    return this.ids.get(s);
  }
}

const BLOCK_BITS = 10;
const BLOCK = 1 << BLOCK_BITS;

const TAG_COLUMNS = [
  'node_id',
  'http.url',
  'http.method',
  'user_agent',
  'upstream_cluster',
  'response_flags',
  'clover_cd_load',
  'sampler',
] as const;

export class TraceStore {
  readonly capacity: number;
  private written = 0;
  private readonly traceIds: Uint32Array;
  private readonly spanIds: Uint32Array;
  private readonly parentIds: Uint32Array;
  private readonly start: Float64Array;
  private readonly duration: Float64Array;
  private readonly service: Int32Array;
  private readonly operation: Int32Array;
  private readonly tagCols: Int32Array[];
  private readonly status: Uint16Array;
  private readonly reqSize: Uint32Array;
  private readonly respSize: Uint32Array;
  /** Per block: earliest and latest span start among the spans written since the block was last entered. */
  private readonly blockMin: Float64Array;
  private readonly blockMax: Float64Array;
  private readonly strings = new Interner();
  private readonly operations = new Map<number, Set<number>>();
  /** Latest start (µs) of any span the ring overwrote: a window starting before it has lost spans. */
  private evictedUpToUs = -Infinity;
  /** trace id → slots holding its spans, and its x-request-id (one per trace, so kept once). */
  private readonly traces = new Map<string, { slots: number[]; requestId: string }>();

  constructor(capacity = 200_000) {
    this.capacity = capacity;
    this.traceIds = new Uint32Array(capacity * 4);
    this.spanIds = new Uint32Array(capacity * 2);
    this.parentIds = new Uint32Array(capacity * 2);
    this.start = new Float64Array(capacity);
    this.duration = new Float64Array(capacity);
    this.service = new Int32Array(capacity);
    this.operation = new Int32Array(capacity);
    this.tagCols = TAG_COLUMNS.map(() => new Int32Array(capacity));
    this.status = new Uint16Array(capacity);
    this.reqSize = new Uint32Array(capacity);
    this.respSize = new Uint32Array(capacity);
    const blocks = Math.ceil(capacity / BLOCK);
    this.blockMin = new Float64Array(blocks).fill(Infinity);
    this.blockMax = new Float64Array(blocks).fill(-Infinity);
  }

  get size(): number {
    return Math.min(this.written, this.capacity);
  }

  add(s: SpanInput): void {
    const slot = this.written % this.capacity;
    if (this.written >= this.capacity) this.evict(slot);
    this.written++;
    const tid = s.traceId.padStart(32, '0');
    for (let i = 0; i < 4; i++) this.traceIds[slot * 4 + i] = parseInt(tid.slice(i * 8, i * 8 + 8), 16) >>> 0;
    writeId64(this.spanIds, slot, s.spanId);
    writeId64(this.parentIds, slot, s.parentSpanId ?? '0');
    this.start[slot] = s.startUs;
    const block = slot >> BLOCK_BITS;
    if ((slot & (BLOCK - 1)) === 0) {
      // Entering a block again: its range restarts with this span. Its older spans (the store's oldest) are
      // still checked one by one, since the block holding the write cursor is never skipped.
      this.blockMin[block] = s.startUs;
      this.blockMax[block] = s.startUs;
    } else {
      if (s.startUs < this.blockMin[block]) this.blockMin[block] = s.startUs;
      if (s.startUs > this.blockMax[block]) this.blockMax[block] = s.startUs;
    }
    this.duration[slot] = s.durationUs;
    const svc = this.strings.id(s.service);
    const op = this.strings.id(s.operation);
    this.service[slot] = svc;
    this.operation[slot] = op;
    let ops = this.operations.get(svc);
    if (!ops) this.operations.set(svc, (ops = new Set()));
    ops.add(op);
    const values = [
      s.nodeId,
      s.url,
      s.method,
      s.userAgent,
      s.upstreamCluster,
      s.responseFlags ?? '-',
      s.loadTag ?? '',
      s.sampler ?? '',
    ];
    for (let i = 0; i < TAG_COLUMNS.length; i++) this.tagCols[i][slot] = this.strings.id(values[i]);
    this.status[slot] = s.statusCode;
    this.reqSize[slot] = s.requestSize;
    this.respSize[slot] = s.responseSize;
    let t = this.traces.get(tid);
    if (!t) this.traces.set(tid, (t = { slots: [], requestId: s.requestId }));
    t.slots.push(slot);
  }

  private evict(slot: number): void {
    if (this.start[slot] > this.evictedUpToUs) this.evictedUpToUs = this.start[slot];
    const tid = this.traceKey(slot);
    const t = this.traces.get(tid);
    if (!t) return;
    const i = t.slots.indexOf(slot);
    if (i >= 0) t.slots.splice(i, 1);
    if (!t.slots.length) this.traces.delete(tid);
  }

  private traceKey(slot: number): string {
    let s = '';
    for (let i = 0; i < 4; i++) s += this.traceIds[slot * 4 + i].toString(16).padStart(8, '0');
    return s;
  }

  /** Whether spans that started at or after `startUs` were overwritten (the ring is full): a search from there is incomplete. */
  evictedSince(startUs: number): boolean {
    return this.evictedUpToUs >= startUs;
  }

  services(): string[] {
    return [...this.operations.keys()].map((i) => this.strings.values[i]).sort();
  }

  operationsOf(service: string): string[] {
    const svc = this.strings.find(service);
    if (svc === undefined) return [];
    return [...(this.operations.get(svc) ?? [])].map((i) => this.strings.values[i]).sort();
  }

  /** Trace ids matching the query, newest first, at most `limit` traces (Jaeger's semantics: limit counts traces). */
  find(q: TraceQuery): string[] {
    const svc = this.strings.find(q.service);
    if (svc === undefined) return [];
    const op = q.operation ? this.strings.find(q.operation) : -1;
    if (op === undefined) return [];
    const checks: Array<(slot: number) => boolean> = [];
    for (const [key, value] of Object.entries(q.tags ?? {})) {
      const col = (TAG_COLUMNS as readonly string[]).indexOf(key);
      if (col >= 0) {
        const id = this.strings.find(value);
        if (id === undefined) return [];
        checks.push((slot) => this.tagCols[col][slot] === id);
      } else if (key === 'http.status_code') checks.push((slot) => String(this.status[slot]) === value);
      else if (key === 'error') checks.push((slot) => String(isError(this.status[slot])) === value);
      else if (key === 'request_size') checks.push((slot) => String(this.reqSize[slot]) === value);
      else if (key === 'response_size') checks.push((slot) => String(this.respSize[slot]) === value);
      else if (key === 'guid:x-request-id')
        checks.push((slot) => this.traces.get(this.traceKey(slot))?.requestId === value);
      else return [];
    }
    const limit = q.limit && q.limit > 0 ? q.limit : 100;
    const found = new Set<string>();
    const n = this.size;
    const windowed = q.startUs !== undefined || q.endUs !== undefined;
    const lo = q.startUs ?? -Infinity;
    const hi = q.endUs ?? Infinity;
    const cursorBlock = ((this.written - 1) % this.capacity) >> BLOCK_BITS;
    for (let k = 0; k < n && found.size < limit; k++) {
      const slot = (this.written - 1 - k) % this.capacity;
      if (windowed && ((slot & (BLOCK - 1)) === BLOCK - 1 || slot === this.capacity - 1)) {
        // At the newest slot of a block (scanning backwards): skip the block when its range misses the window.
        const block = slot >> BLOCK_BITS;
        if (block !== cursorBlock && (this.blockMax[block] < lo || this.blockMin[block] > hi)) {
          k += slot & (BLOCK - 1); // the loop's k++ moves to the previous block's last slot
          continue;
        }
      }
      if (this.service[slot] !== svc || (op >= 0 && this.operation[slot] !== op)) continue;
      const st = this.start[slot];
      if ((q.startUs !== undefined && st < q.startUs) || (q.endUs !== undefined && st > q.endUs)) continue;
      const d = this.duration[slot];
      if (
        (q.minDurationUs !== undefined && d < q.minDurationUs) ||
        (q.maxDurationUs !== undefined && d > q.maxDurationUs)
      )
        continue;
      if (checks.length && !checks.every((c) => c(slot))) continue;
      found.add(this.traceKey(slot));
    }
    return [...found];
  }

  /** The spans of one trace in start order, or undefined when it is unknown (or evicted). */
  trace(traceId: string): StoredSpan[] | undefined {
    const key = traceId.toLowerCase().padStart(32, '0');
    const t = this.traces.get(key);
    if (!t) return undefined;
    return t.slots.map((slot) => this.spanAt(slot, key, t.requestId)).sort((a, b) => a.startUs - b.startUs);
  }

  private spanAt(slot: number, traceId: string, requestId: string): StoredSpan {
    const v = this.strings.values;
    const col = (i: number) => v[this.tagCols[i][slot]];
    const parent = readId64(this.parentIds, slot);
    const span: StoredSpan = {
      traceId,
      spanId: readId64(this.spanIds, slot),
      parentSpanId: parent === '0000000000000000' ? undefined : parent,
      service: v[this.service[slot]],
      operation: v[this.operation[slot]],
      startUs: this.start[slot],
      durationUs: this.duration[slot],
      nodeId: col(0),
      url: col(1),
      method: col(2),
      userAgent: col(3),
      upstreamCluster: col(4),
      responseFlags: col(5),
      loadTag: col(6) || undefined,
      sampler: col(7) || undefined,
      statusCode: this.status[slot],
      requestSize: this.reqSize[slot],
      responseSize: this.respSize[slot],
      requestId,
      tags: [],
    };
    const tag = (key: string, value: string) => ({ key, type: 'string' as const, value });
    const tags = span.tags;
    tags.push(
      tag('node_id', span.nodeId),
      tag('zone', 'sandbox'),
      tag('guid:x-request-id', requestId),
      tag('http.url', span.url),
      tag('http.method', span.method),
      tag('downstream_cluster', '-'),
      tag('user_agent', span.userAgent),
      tag('http.protocol', 'HTTP/1.1'),
      tag('request_size', String(span.requestSize)),
      tag('upstream_cluster', span.upstreamCluster),
      tag('http.status_code', String(span.statusCode)),
      tag('response_size', String(span.responseSize)),
      tag('response_flags', span.responseFlags ?? '-'),
      tag('span.kind', 'server'),
    );
    if (isError(span.statusCode)) tags.push(tag('error', 'true'));
    if (span.loadTag) tags.push(tag('clover_cd_load', span.loadTag));
    if (span.sampler) {
      const bar = span.sampler.indexOf('|');
      tags.push(
        tag('sampler.type', span.sampler.slice(0, bar)),
        tag('sampler.param', span.sampler.slice(bar + 1)),
      );
    }
    return span;
  }
}

const isError = (status: number): boolean => status >= 500 || status === 0;

function writeId64(arr: Uint32Array, slot: number, hex: string): void {
  const h = hex.padStart(16, '0').slice(-16);
  arr[slot * 2] = parseInt(h.slice(0, 8), 16) >>> 0;
  arr[slot * 2 + 1] = parseInt(h.slice(8), 16) >>> 0;
}

function readId64(arr: Uint32Array, slot: number): string {
  return arr[slot * 2].toString(16).padStart(8, '0') + arr[slot * 2 + 1].toString(16).padStart(8, '0');
}
