import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A Jaeger collector's HTTP span intake at the wire level: `POST /api/traces` with
 * `Content-Type: application/x-thrift` (TBinaryProtocol `jaeger.Batch`, what jaeger-client-go's HTTP sender
 * posts; answers 202 as the collector does) and OTLP/HTTP JSON `POST /v1/traces`. Bodies are decoded with a
 * generic Thrift binary reader, so a wrong type or field id fails the request with 400, as the collector would.
 */
export interface DecodedSpan {
  traceIdHigh: bigint;
  traceIdLow: bigint;
  spanId: bigint;
  operationName: string;
  startTime: bigint;
  duration: bigint;
  tags: Record<string, string>;
}
export interface DecodedBatch {
  serviceName: string;
  processTags: Record<string, string>;
  spans: DecodedSpan[];
}

type Value = bigint | number | string | boolean | Value[] | Map<number, Value>;

function reader(buf: Buffer) {
  let at = 0;
  const need = (n: number) => {
    if (at + n > buf.length) throw new Error(`truncated Thrift body at byte ${at}`);
  };
  const read = (type: number): Value => {
    switch (type) {
      case 2:
        need(1);
        return buf.readInt8(at++) !== 0;
      case 3:
        need(1);
        return buf.readInt8(at++);
      case 4:
        need(8);
        at += 8;
        return buf.readDoubleBE(at - 8);
      case 6:
        need(2);
        at += 2;
        return buf.readInt16BE(at - 2);
      case 8:
        need(4);
        at += 4;
        return buf.readInt32BE(at - 4);
      case 10:
        need(8);
        at += 8;
        return buf.readBigInt64BE(at - 8);
      case 11: {
        need(4);
        const n = buf.readInt32BE(at);
        at += 4;
        need(n);
        at += n;
        return buf.toString('utf8', at - n, at);
      }
      case 12: {
        const fields = new Map<number, Value>();
        for (;;) {
          need(1);
          const t = buf.readInt8(at++);
          if (t === 0) return fields;
          need(2);
          const id = buf.readInt16BE(at);
          at += 2;
          fields.set(id, read(t));
        }
      }
      case 15: {
        need(5);
        const et = buf.readInt8(at);
        const n = buf.readInt32BE(at + 1);
        at += 5;
        return Array.from({ length: n }, () => read(et));
      }
      default:
        throw new Error(`unsupported Thrift type ${type} at byte ${at}`);
    }
  };
  return { struct: () => read(12) as Map<number, Value>, done: () => at === buf.length };
}

const tagsOf = (list: Value | undefined): Record<string, string> => {
  const out: Record<string, string> = {};
  for (const t of (list as Array<Map<number, Value>>) ?? []) {
    if (t.get(2) !== 0) throw new Error('only string tags (vType STRING) are expected');
    out[String(t.get(1))] = String(t.get(3));
  }
  return out;
};

export function decodeBatch(body: Buffer): DecodedBatch {
  const r = reader(body);
  const batch = r.struct();
  if (!r.done()) throw new Error('trailing bytes after the Batch');
  const process = batch.get(1) as Map<number, Value>;
  if (!(process instanceof Map) || typeof process.get(1) !== 'string')
    throw new Error('Batch.process.serviceName missing');
  const spans = (batch.get(2) as Array<Map<number, Value>>).map((s) => {
    for (const id of [1, 2, 3, 4, 8, 9])
      if (typeof s.get(id) !== 'bigint') throw new Error(`Span field ${id} must be i64`);
    if (typeof s.get(5) !== 'string' || typeof s.get(7) !== 'number')
      throw new Error('Span operationName / flags missing');
    return {
      traceIdLow: s.get(1) as bigint,
      traceIdHigh: s.get(2) as bigint,
      spanId: s.get(3) as bigint,
      operationName: s.get(5) as string,
      startTime: s.get(8) as bigint,
      duration: s.get(9) as bigint,
      tags: tagsOf(s.get(10)),
    };
  });
  return { serviceName: process.get(1) as string, processTags: tagsOf(process.get(2)), spans };
}

export interface FakeCollector {
  url: string;
  thrift: DecodedBatch[];
  otlp: unknown[];
  stop(): Promise<void>;
}

export async function startFakeCollector(): Promise<FakeCollector> {
  const thrift: DecodedBatch[] = [];
  const otlp: unknown[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      try {
        if (req.method === 'POST' && req.url?.startsWith('/api/traces')) {
          if (req.headers['content-type'] !== 'application/x-thrift')
            throw new Error(`unsupported content type ${req.headers['content-type']}`);
          thrift.push(decodeBatch(body));
          res.writeHead(202).end();
        } else if (req.method === 'POST' && req.url === '/v1/traces') {
          otlp.push(JSON.parse(body.toString('utf8')));
          res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
        } else res.writeHead(404).end();
      } catch (err) {
        res.writeHead(400).end(String(err));
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    thrift,
    otlp,
    stop: () => new Promise<void>((r) => server.close(() => r())),
  };
}
