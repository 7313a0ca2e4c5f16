/**
 * Jaeger's Thrift-over-HTTP span format, as Clovisor's jaeger-client-go sent it to the collector
 * (`POST http://<collector>:14268/api/traces`, `Content-Type: application/x-thrift`, TBinaryProtocol):
 * one `jaeger.Batch { 1: Process process, 2: list<Span> spans }` per service. Only the fields Clovisor's
 * spans carry are written (ids, operation name, flags, start, duration, string tags).
 */
export interface ThriftSpan {
  /** 32 hex digits (128-bit) or 16 */
  traceId: string;
  /** 16 hex digits */
  spanId: string;
  operationName: string;
  startUs: bigint;
  durationUs: bigint;
  tags: Array<[string, string]>;
}

const T = { STOP: 0, I32: 8, I64: 10, STRING: 11, STRUCT: 12, LIST: 15 } as const;

class Writer {
  private parts: Buffer[] = [];
  field(type: number, id: number): this {
    const b = Buffer.alloc(3);
    b.writeInt8(type, 0);
    b.writeInt16BE(id, 1);
    this.parts.push(b);
    return this;
  }
  stop(): this {
    this.parts.push(Buffer.from([T.STOP]));
    return this;
  }
  i32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeInt32BE(v);
    this.parts.push(b);
    return this;
  }
  i64(v: bigint): this {
    const b = Buffer.alloc(8);
    b.writeBigInt64BE(BigInt.asIntN(64, v));
    this.parts.push(b);
    return this;
  }
  string(s: string): this {
    const data = Buffer.from(s, 'utf8');
    this.i32(data.length);
    this.parts.push(data);
    return this;
  }
  list(elemType: number, n: number): this {
    this.parts.push(Buffer.from([elemType]));
    return this.i32(n);
  }
  buffer(): Buffer {
    return Buffer.concat(this.parts);
  }
}

const hex64 = (h: string): bigint => BigInt.asIntN(64, BigInt(`0x${h || '0'}`));

function writeTags(w: Writer, tags: Array<[string, string]>): void {
  w.list(T.STRUCT, tags.length);
  // Tag { 1: key, 2: vType (STRING = 0), 3: vStr }
  for (const [k, v] of tags)
    w.field(T.STRING, 1).string(k).field(T.I32, 2).i32(0).field(T.STRING, 3).string(v).stop();
}

export function encodeBatch(
  serviceName: string,
  processTags: Array<[string, string]>,
  spans: ThriftSpan[],
): Buffer {
  const w = new Writer();
  // Batch.process: Process { 1: serviceName, 2: tags }
  w.field(T.STRUCT, 1).field(T.STRING, 1).string(serviceName).field(T.LIST, 2);
  writeTags(w, processTags);
  w.stop();
  w.field(T.LIST, 2).list(T.STRUCT, spans.length);
  for (const s of spans) {
    const trace = s.traceId.padStart(32, '0');
    w.field(T.I64, 1).i64(hex64(trace.slice(16)));
    w.field(T.I64, 2).i64(hex64(trace.slice(0, 16)));
    w.field(T.I64, 3).i64(hex64(s.spanId));
    w.field(T.I64, 4).i64(0n);
    w.field(T.STRING, 5).string(s.operationName);
    w.field(T.I32, 7).i32(1); // sampled
    w.field(T.I64, 8).i64(s.startUs);
    w.field(T.I64, 9).i64(s.durationUs);
    w.field(T.LIST, 10);
    writeTags(w, s.tags);
    w.stop();
  }
  return w.stop().buffer();
}
