/**
 * Outputs of the tracer: Prometheus metrics per workload and version, and session spans (OTLP/HTTP JSON, which
 * Jaeger's collector and the sandbox trace store accept) carrying Clovisor's session tags.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { createHttpClient, type HttpClient } from '../services/http.js';
import { encodeBatch } from './jaeger-thrift.js';
import type { FlowRecord, KernelStats, SessionRecord } from './types.js';

const CLIENT_ID = randomUUID();

export class ClovisorMetrics {
  readonly registry = new Registry();
  private readonly labels = ['workload', 'version', 'namespace', 'role'] as const;
  readonly connections = new Counter({
    name: 'clovisor_tcp_connections_total',
    help: 'TCP connections closed, by workload and version',
    labelNames: [...this.labels, 'close'],
    registers: [this.registry],
  });
  readonly resetsSent = new Counter({
    name: 'clovisor_tcp_resets_sent_total',
    help: 'TCP resets sent',
    labelNames: this.labels,
    registers: [this.registry],
  });
  readonly resetsReceived = new Counter({
    name: 'clovisor_tcp_resets_received_total',
    help: 'TCP resets received',
    labelNames: this.labels,
    registers: [this.registry],
  });
  readonly retransmits = new Counter({
    name: 'clovisor_tcp_retransmits_total',
    help: 'TCP segments retransmitted',
    labelNames: this.labels,
    registers: [this.registry],
  });
  readonly connectFailures = new Counter({
    name: 'clovisor_tcp_connect_failures_total',
    help: 'Outbound connects that never established',
    labelNames: this.labels,
    registers: [this.registry],
  });
  readonly handshake = new Histogram({
    name: 'clovisor_tcp_handshake_seconds',
    help: 'SYN to ESTABLISHED',
    labelNames: this.labels,
    buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 3],
    registers: [this.registry],
  });
  readonly flowPackets = new Counter({
    name: 'clovisor_flow_packets_total',
    help: 'Packets on traced veths (packet tier)',
    labelNames: ['workload', 'version', 'namespace', 'direction'],
    registers: [this.registry],
  });
  readonly flowBytes = new Counter({
    name: 'clovisor_flow_bytes_total',
    help: 'Bytes on traced veths (packet tier)',
    labelNames: ['workload', 'version', 'namespace', 'direction'],
    registers: [this.registry],
  });
  readonly lostEvents = new Gauge({
    name: 'clovisor_lost_events_total',
    help: 'Session events lost (perf ring full or no reader), as counted by kernel and reader',
    labelNames: ['source'],
    registers: [this.registry],
  });
  readonly mapFull = new Gauge({
    name: 'clovisor_map_overflow_total',
    help: 'Insertions refused because a BPF map was full',
    labelNames: ['map'],
    registers: [this.registry],
  });
  readonly records = new Counter({
    name: 'clovisor_session_records_total',
    help: 'Session records drained',
    registers: [this.registry],
  });

  /** Label children cached per workload/version/role/close: prom-client hashes labels on every inc otherwise. */
  private children = new Map<
    string,
    {
      conn: Map<string, ReturnType<Counter['labels']>>;
      sent: ReturnType<Counter['labels']>;
      rcvd: ReturnType<Counter['labels']>;
      retr: ReturnType<Counter['labels']>;
      fail: ReturnType<Counter['labels']>;
      hs: ReturnType<Histogram['labels']>;
    }
  >();

  observeSession(r: SessionRecord, namespace = ''): void {
    const key = `${r.workload ?? ''}\u0000${r.version ?? ''}\u0000${namespace}\u0000${r.role}`;
    let c = this.children.get(key);
    if (!c) {
      const l = { workload: r.workload ?? '', version: r.version ?? '', namespace, role: r.role };
      c = {
        conn: new Map(),
        sent: this.resetsSent.labels(l),
        rcvd: this.resetsReceived.labels(l),
        retr: this.retransmits.labels(l),
        fail: this.connectFailures.labels(l),
        hs: this.handshake.labels(l),
      };
      this.children.set(key, c);
    }
    this.records.inc();
    if (r.closeKind === 'connect-failed') return c.fail.inc();
    let conn = c.conn.get(r.closeKind);
    if (!conn) {
      conn = this.connections.labels({
        workload: r.workload ?? '',
        version: r.version ?? '',
        namespace,
        role: r.role,
        close: r.closeKind,
      });
      c.conn.set(r.closeKind, conn);
    }
    conn.inc();
    if (r.resetsSent) c.sent.inc(r.resetsSent);
    if (r.resetsReceived) c.rcvd.inc(r.resetsReceived);
    if (r.retransmits) c.retr.inc(r.retransmits);
    if (r.connectMs !== undefined) c.hs.observe(r.connectMs / 1000);
  }

  /** A reset a session's socket sent after the session was emitted (abortive close). */
  addResetsSent(r: SessionRecord, namespace = '', n: number): void {
    this.resetsSent.inc({ workload: r.workload ?? '', version: r.version ?? '', namespace, role: r.role }, n);
  }

  observeFlowDelta(
    f: FlowRecord,
    namespace: string,
    d: { pFrom: number; pTo: number; bFrom: number; bTo: number },
  ): void {
    const base = { workload: f.workload ?? '', version: f.version ?? '', namespace };
    if (d.pFrom) this.flowPackets.inc({ ...base, direction: 'from_workload' }, d.pFrom);
    if (d.pTo) this.flowPackets.inc({ ...base, direction: 'to_workload' }, d.pTo);
    if (d.bFrom) this.flowBytes.inc({ ...base, direction: 'from_workload' }, d.bFrom);
    if (d.bTo) this.flowBytes.inc({ ...base, direction: 'to_workload' }, d.bTo);
  }

  setLoss(readerLost: number, k: KernelStats): void {
    this.lostEvents.set({ source: 'reader' }, readerLost);
    this.lostEvents.set({ source: 'kernel' }, k.eventsLost);
    this.mapFull.set({ map: 'conns' }, k.connsFull);
    this.mapFull.set({ map: 'flows' }, k.flowsFull);
  }
}

type Attr = { key: string; value: { stringValue?: string; intValue?: string } };
const s = (key: string, v: string | number | undefined): Attr[] =>
  v === undefined ? [] : [{ key, value: { stringValue: String(v) } }];

/** Span tags follow Clovisor's names where they exist (srcip, dstport, reqpakcount, requrl, respstatuscode ...). */
export function flowSpan(f: FlowRecord, session: { release?: string; step?: string } = {}) {
  const client = f.podRole === 'client';
  const [src, sport, dst, dport] = client
    ? [f.podAddr, f.podPort, f.peerAddr, f.peerPort]
    : [f.peerAddr, f.peerPort, f.podAddr, f.podPort];
  const [reqPk, reqB, respPk, respB] = client
    ? [f.packetsFromPod, f.bytesFromPod, f.packetsToPod, f.bytesToPod]
    : [f.packetsToPod, f.bytesToPod, f.packetsFromPod, f.bytesFromPod];
  const req = f.requestLine?.split(' ');
  return {
    traceId: randomBytes(16).toString('hex'),
    spanId: randomBytes(8).toString('hex'),
    name: `tracing-${src}:${sport}-${dst}:${dport}`,
    kind: 2,
    startTimeUnixNano: String(Math.round(f.firstAt * 1e6)),
    endTimeUnixNano: String(Math.round(f.lastAt * 1e6)),
    attributes: [
      ...s('protocol-0', 'IPv4'),
      ...s('protocol-1', 'TCP'),
      ...(f.requestLine ? s('protocol-2', 'HTTP') : []),
      ...s('srcip', src),
      ...s('srcport', sport),
      ...s('dstip', dst),
      ...s('dstport', dport),
      ...s('reqpakcount', reqPk),
      ...s('reqbytecount', reqB),
      ...s('resppakcount', respPk),
      ...s('respbytecount', respB),
      ...s('duration', `${Math.round((f.lastAt - f.firstAt) * 1000)} usec`),
      ...s('handshake_us', f.handshakeMs !== undefined ? Math.round(f.handshakeMs * 1000) : undefined),
      ...s('ttfb_us', f.firstByteMs !== undefined ? Math.round(f.firstByteMs * 1000) : undefined),
      ...s('tcp.syn', f.syn),
      ...s('tcp.fin', f.fin),
      ...s('tcp.rst', f.rst),
      ...s('tcp.retransmits', f.retransmits),
      ...s('reqmethod', req?.[0]),
      ...s('requrl', req?.[1]),
      ...s('reqproto', req?.[2]),
      ...s('useragent', f.userAgent),
      ...s('host', f.host),
      ...s('requestid', f.requestId),
      ...s('envoydecorator', f.envoyDecorator),
      ...s('traceid', f.traceId),
      ...s('respstatuscode', f.status),
      // "HTTP/1.1 200 OK" → respproto HTTP/1.1, respstatus "200 OK" (the reason is cut where the 16 captured bytes end)
      ...s('respproto', f.statusLine?.split(' ')[0]),
      ...s('respstatus', f.statusLine?.split(' ').slice(1).join(' ') || undefined),
      ...s('podname', f.workload),
      ...s('nodename', NODE_NAME),
      ...s('version', f.version),
      ...s('clover.release', session.release),
      ...s('clover.step', session.step),
    ],
  };
}

export function sessionSpan(r: SessionRecord, session: { release?: string; step?: string } = {}) {
  return {
    traceId: randomBytes(16).toString('hex'),
    spanId: randomBytes(8).toString('hex'),
    name: `tcp-${r.role}-${r.saddr}:${r.sport}-${r.daddr}:${r.dport}`,
    kind: r.role === 'client' ? 3 : 2,
    startTimeUnixNano: String(Math.round((r.startedAt ?? r.closedAt) * 1e6)),
    endTimeUnixNano: String(Math.round(r.closedAt * 1e6)),
    attributes: [
      ...s('protocol-0', r.family === 4 ? 'IPv4' : 'IPv6'),
      ...s('protocol-1', 'TCP'),
      ...s('srcip', r.saddr),
      ...s('srcport', r.sport),
      ...s('dstip', r.daddr),
      ...s('dstport', r.dport),
      ...s('tcp.close', r.closeKind),
      ...s('tcp.resets_sent', r.resetsSent),
      ...s('tcp.resets_received', r.resetsReceived),
      ...s('tcp.retransmits', r.retransmits),
      ...s('tcp.segs_out', r.segsOut),
      ...s('tcp.segs_in', r.segsIn),
      ...s('reqbytecount', r.bytesAcked),
      ...s('respbytecount', r.bytesReceived),
      ...s('tcp.srtt_us', r.srttUs),
      ...s('connect_us', r.connectMs !== undefined ? Math.round(r.connectMs * 1000) : undefined),
      ...s('podname', r.workload),
      ...s('nodename', NODE_NAME),
      ...s('version', r.version),
      ...s('clover.release', session.release),
      ...s('clover.step', session.step),
    ],
  };
}

type Span = ReturnType<typeof sessionSpan>;

/** Node the tracer runs on (Clovisor's `nodename` tag): $MY_NODE_NAME in a DaemonSet, else the host name. */
const NODE_NAME = process.env.MY_NODE_NAME || hostname();

/** How spans leave: OTLP/HTTP JSON (`POST <url>/v1/traces`, Jaeger :4318) or Jaeger Thrift over HTTP as Clovisor sent them (`POST <url>/api/traces`, :14268). */
export type SpanFormat = 'otlp' | 'jaeger-thrift';

/** Batches spans and posts them, one resource (OTLP) or one batch (Thrift) per service. */
export class SpanExporter {
  private readonly http: HttpClient;
  private pending = new Map<string, Span[]>();
  exported = 0;
  failed = 0;

  constructor(
    readonly url: string,
    private readonly maxBatch = 500,
    readonly format: SpanFormat = 'otlp',
  ) {
    const hint =
      format === 'otlp'
        ? `an OTLP/HTTP receiver at ${url}/v1/traces (Jaeger collector port 4318, or the sandbox trace store)`
        : `a Jaeger collector at ${url}/api/traces (port 14268)`;
    this.http = createHttpClient({
      system: 'trace collector',
      baseURL: url,
      timeoutMs: 5_000,
      retry: { attempts: 2 },
      hint,
    });
  }

  private post(service: string, chunk: Span[]) {
    if (this.format === 'otlp') {
      const body = {
        resourceSpans: [
          {
            resource: { attributes: s('service.name', service) },
            scopeSpans: [{ scope: { name: 'clovisor' }, spans: chunk }],
          },
        ],
      };
      return this.http.post('/v1/traces', body, { headers: { 'content-type': 'application/json' } });
    }
    const spans = chunk.map((x) => {
      const start = BigInt(x.startTimeUnixNano) / 1000n;
      return {
        traceId: x.traceId,
        spanId: x.spanId,
        operationName: x.name,
        startUs: start,
        durationUs: BigInt(x.endTimeUnixNano) / 1000n - start,
        tags: x.attributes.map(
          (a) => [a.key, a.value.stringValue ?? a.value.intValue ?? ''] as [string, string],
        ),
      };
    });
    const body = encodeBatch(
      service,
      [
        ['hostname', NODE_NAME],
        ['client-uuid', CLIENT_ID],
      ],
      spans,
    );
    return this.http.post('/api/traces', body, { headers: { 'content-type': 'application/x-thrift' } });
  }

  add(service: string, span: Span): void {
    const list = this.pending.get(service) ?? [];
    list.push(span);
    this.pending.set(service, list);
  }

  async flush(): Promise<void> {
    const batches = [...this.pending.entries()];
    this.pending = new Map();
    for (const [service, spans] of batches) {
      for (let i = 0; i < spans.length; i += this.maxBatch) {
        const chunk = spans.slice(i, i + this.maxBatch);
        try {
          const r = await this.post(service, chunk);
          if (r.status >= 400) throw new Error(`HTTP ${r.status}`);
          this.exported += chunk.length;
        } catch {
          this.failed += chunk.length; // counted and shown by `status`; tracing never stops on a collector outage
        }
      }
    }
  }
}
