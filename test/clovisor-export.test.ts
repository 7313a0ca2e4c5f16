/** clovisor's span export at the HTTP level (no eBPF needed): Jaeger Thrift as Clovisor sent it, or OTLP, chosen by config. */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { spansFromJaegerKey } from '../src/clovisor/index.js';
import { SpanExporter, flowSpan, sessionSpan } from '../src/clovisor/outputs.js';
import { decodeHttpHead, parseHttpHeaders, parseHttpPrefix } from '../src/clovisor/records.js';
import { egressAllowed, parseEgressMatch } from '../src/clovisor/targets.js';
import type { FlowRecord, SessionRecord } from '../src/clovisor/types.js';
import { runCli } from './helpers/cli.js';
import { startFakeCollector, type FakeCollector } from './helpers/fake-jaeger-collector.js';
import { startRedis, type RedisFixture } from './helpers/redis.js';

let collector: FakeCollector;
let redis: RedisFixture;
beforeAll(async () => {
  collector = await startFakeCollector();
  redis = await startRedis();
});
afterAll(async () => {
  await collector?.stop();
  await redis?.stop();
});

const REQUEST_ID = '8f2c1b7e-5d34-4c1a-9a0e-3b6f2d9c4e11';
const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const REQUEST = `GET /shop HTTP/1.1\r\nHost: www.sdc.com\r\nUser-Agent: chrome\r\nx-request-id: ${REQUEST_ID}\r\ntraceparent: 00-${TRACE_ID}-00f067aa0ba902b7-01\r\n\r\n`;

const flow: FlowRecord = {
  ...({} as FlowRecord),
  podRole: 'server',
  podAddr: '10.200.0.12',
  podPort: 9180,
  peerAddr: '10.200.0.11',
  peerPort: 41000,
  packetsFromPod: 4,
  bytesFromPod: 400,
  packetsToPod: 5,
  bytesToPod: 300,
  syn: 1,
  fin: 1,
  rst: 0,
  retransmits: 0,
  firstAt: 1_700_000_000_000,
  lastAt: 1_700_000_000_012.5,
  workload: 'http-lb-v2',
  version: 'v2',
  service: 'http-lb',
  ...parseHttpPrefix(REQUEST, 'HTTP/1.1 200 OK\r\n'),
  ...parseHttpHeaders(REQUEST),
} as FlowRecord;
const TAGS = { useragent: 'chrome', host: 'www.sdc.com', requestid: REQUEST_ID, traceid: TRACE_ID };

describe('clovisor span export', () => {
  it("jaeger-thrift: a Batch per service on /api/traces with Clovisor's tags, decodable field by field", async () => {
    const ex = new SpanExporter(collector.url, 500, 'jaeger-thrift');
    ex.add('http-lb', flowSpan(flow));
    ex.add('http-lb', flowSpan({ ...flow, peerPort: 41001 }));
    ex.add(
      'clover-server1',
      sessionSpan({
        netns: 1,
        family: 4,
        role: 'server',
        closeKind: 'fin',
        saddr: '10.0.0.2',
        daddr: '10.0.0.1',
        sport: 9180,
        dport: 40000,
        closedAt: 1_700_000_000_100,
        startedAt: 1_700_000_000_090,
        retransmits: 0,
        synRetransmits: 0,
        resetsSent: 0,
        resetsReceived: 0,
        bytesAcked: 1,
        bytesReceived: 1,
        segsIn: 1,
        segsOut: 1,
        srttUs: 10,
        workload: 'clover-server1',
        version: 'v1',
      } as SessionRecord),
    );
    await ex.flush();
    expect([ex.exported, ex.failed]).toEqual([3, 0]);
    expect(collector.thrift.map((b) => [b.serviceName, b.spans.length])).toEqual([
      ['http-lb', 2],
      ['clover-server1', 1],
    ]);
    const [span] = collector.thrift[0].spans;
    expect(span.operationName).toBe('tracing-10.200.0.11:41000-10.200.0.12:9180');
    expect(span.startTime).toBe(1_700_000_000_000_000n);
    expect(span.duration).toBe(12_500n);
    expect(span.tags).toMatchObject({
      srcip: '10.200.0.11',
      dstport: '9180',
      reqpakcount: '5',
      respbytecount: '400',
      reqmethod: 'GET',
      requrl: '/shop',
      reqproto: 'HTTP/1.1',
      respstatuscode: '200',
      respstatus: '200 OK',
      respproto: 'HTTP/1.1',
      podname: 'http-lb-v2',
      duration: '12500 usec',
      ...TAGS,
    });
    expect(span.tags.nodename).toBeTruthy();
    expect(collector.thrift[0].processTags).toHaveProperty('hostname');
  });

  it('otlp: the same spans as OTLP/HTTP JSON on /v1/traces', async () => {
    const ex = new SpanExporter(collector.url, 500, 'otlp');
    ex.add('http-lb', flowSpan(flow));
    await ex.flush();
    const body = collector.otlp[0] as {
      resourceSpans: Array<{
        scopeSpans: Array<{
          spans: Array<{ attributes: Array<{ key: string; value: { stringValue?: string } }> }>;
        }>;
      }>;
    };
    const attrs = body.resourceSpans[0].scopeSpans[0].spans[0].attributes;
    expect(attrs.map((a) => a.key)).toEqual(expect.arrayContaining(['nodename', 'respstatus', 'respproto']));
    expect(Object.fromEntries(attrs.map((a) => [a.key, a.value.stringValue]))).toMatchObject(TAGS);
  });

  it('request heads: the trace id from X-B3-TraceId, b3 or traceparent; a header line cut by the capture is not reported', () => {
    expect(
      parseHttpHeaders(
        'GET / HTTP/1.1\r\nX-B3-TraceId: 80f198ee56343ba864fe8b2a57d3eff7\r\ntraceparent: 00-' +
          TRACE_ID +
          '-00f067aa0ba902b7-01\r\n\r\n',
      ).traceId,
    ).toBe('80f198ee56343ba864fe8b2a57d3eff7');
    expect(
      parseHttpHeaders('GET / HTTP/1.1\r\nb3: 80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1\r\n\r\n')
        .traceId,
    ).toBe('80f198ee56343ba864fe8b2a57d3eff7');
    expect(
      parseHttpHeaders('GET / HTTP/1.1\r\nX-Envoy-Decorator-Operation: shop\r\nUser-Agent: chro'),
    ).toEqual({ envoyDecorator: 'shop' });
    // struct http_head (32 bytes) + the copied packet: 14 + 20 + 20 bytes of headers, then the payload.
    const pkt = Buffer.concat([Buffer.alloc(54), Buffer.from(REQUEST, 'latin1')]);
    const head = Buffer.alloc(32);
    head.writeUInt32LE(0x48545450, 0);
    head.writeUInt32LE(7, 4);
    Buffer.from([10, 200, 0, 12, 10, 200, 0, 11]).copy(head, 8);
    head.writeUInt16LE(9180, 16);
    head.writeUInt16LE(41000, 18);
    head.writeUInt16LE(54, 20);
    head.writeUInt16LE(pkt.length, 22);
    expect(decodeHttpHead(Buffer.concat([head, pkt, Buffer.alloc(4)]))).toEqual({
      id: '7/10.200.0.12:9180/10.200.0.11:41000',
      headers: parseHttpHeaders(REQUEST),
    });
    expect(decodeHttpHead(Buffer.alloc(40))).toBeNull();
  });

  it('clovisor_egress_match entries: ip:port, ip:port/protocol, 0:port and a pod prefix', () => {
    const m = parseEgressMatch([
      '10.0.0.5:9180',
      '10.0.0.6:80/http',
      '0:6379:clover-server',
      'bogus',
      '10.0.0.7:99999',
    ]);
    expect(m).toEqual([
      { ip: '10.0.0.5', port: 9180 },
      { ip: '10.0.0.6', port: 80, protocol: 'http' },
      { ip: '0.0.0.0', port: 6379, podPrefix: 'clover-server' },
    ]);
    expect(egressAllowed(m, { workload: 'http-lb-v1' }, '10.0.0.5', 9180)).toBe(true);
    expect(egressAllowed(m, { workload: 'http-lb-v1' }, '10.0.0.5', 9181)).toBe(false);
    expect(egressAllowed(m, { workload: 'http-lb-v1' }, '10.9.9.9', 6379)).toBe(false);
    expect(egressAllowed(m, { workload: 'clover-server1' }, '10.9.9.9', 6379)).toBe(true);
    expect(egressAllowed([], { workload: 'x' }, '1.2.3.4', 1)).toBe(true);
  });

  it('a collector that refuses spans is counted, never fatal', async () => {
    const ex = new SpanExporter(`${collector.url}/nowhere`, 500, 'jaeger-thrift');
    ex.add('x', flowSpan(flow));
    await ex.flush();
    expect([ex.exported, ex.failed]).toEqual([0, 1]);
  });

  it("clovisor_jaeger_collector means Clovisor's Thrift endpoint; --span-format otlp its OTLP port", () => {
    expect(spansFromJaegerKey('jaeger-collector.clovisor:14268')).toEqual({
      url: 'http://jaeger-collector.clovisor:14268',
      format: 'jaeger-thrift',
    });
    expect(spansFromJaegerKey('jaeger-collector.clovisor')).toEqual({
      url: 'http://jaeger-collector.clovisor:14268',
      format: 'jaeger-thrift',
    });
    expect(spansFromJaegerKey('jaeger-collector.clovisor:14268', 'otlp')).toEqual({
      url: 'http://jaeger-collector.clovisor:4318',
      format: 'otlp',
    });
  });

  it("config --sandbox --redis: Clovisor's keys with the sandbox (labels select its workloads, spans to the collector key)", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'clovisor-sbx-'));
    try {
      const w = (name: string, version: string) => ({
        name,
        service: name.replace(/-v\d$/, ''),
        version,
        namespace: 'default',
        netns: `/var/run/netns/ccd-test-${name}`,
        hostVeth: `ccd-test-${name}`,
      });
      writeFileSync(
        join(dir, 'sandbox.json'),
        JSON.stringify({
          pid: 1,
          urls: {},
          token: 't',
          startedAt: '',
          netns: true,
          workloads: [w('http-lb-v1', 'v1'), w('http-lb-v2', 'v2'), w('clover-server1', 'v1')],
        }),
      );
      const c = new Redis(redis.url);
      await c.rpush('clovisor_labels', 'default:app:http-lb');
      await c.set('clovisor_jaeger_collector', collector.url.replace('http://', ''));
      c.disconnect();
      const r = await runCli(['clovisor', 'config', '--sandbox', dir, '--redis', redis.url, '-o', 'json']);
      expect(r.code).toBe(0);
      const d = JSON.parse(r.stdout);
      expect(d.targets.map((t: { workload: string }) => t.workload)).toEqual(['http-lb-v1', 'http-lb-v2']);
      expect([d.spans, d.spansFormat]).toEqual([collector.url, 'jaeger-thrift']);
      expect(d.kubernetes).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
