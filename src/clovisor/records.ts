/**
 * Decoding of what the kernel side emits: closed-session events (perf array, read with `bpftool map event_pipe`)
 * and packet-tier flows (`bpftool map dump`). Pure: bytes in, records out.
 */
import type { CloseKind, FlowRecord, Role, SessionRecord } from './types.js';

/** Size of `struct session_event` in clovisor.bpf.c. */
export const SESSION_EVENT_SIZE = 136;
const ROLES: Role[] = ['unknown', 'client', 'server'];
const CLOSE_KINDS: Record<number, CloseKind> = {
  1: 'fin',
  2: 'reset',
  3: 'connect-failed',
  4: 'handshake-failed',
};

/** Converts bpf_ktime_get_ns() (CLOCK_MONOTONIC, the clock of process.hrtime) to epoch ms. */
export interface Clock {
  toEpochMs(ktimeNs: bigint): number;
}
export function monotonicClock(): Clock {
  const hr = process.hrtime.bigint();
  const wall = Date.now();
  return { toEpochMs: (ns) => wall + Number(ns - hr) / 1e6 };
}

function ipv4(b: Buffer | Uint8Array, off: number): string {
  return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;
}
function ipv6(b: Buffer, off: number): string {
  const parts: string[] = [];
  for (let i = 0; i < 16; i += 2) parts.push(b.readUInt16BE(off + i).toString(16));
  return parts.join(':').replace(/(^|:)0(:0)+(:|$)/, '::');
}

/** `close_kind` 5: not a session but a reset its socket sent after its CLOSE (EVENT_LATE_RESET in clovisor.bpf.c). */
export function isLateReset(b: Buffer): boolean {
  return b.length >= SESSION_EVENT_SIZE && b[91] === 5;
}

export function decodeSessionEvent(b: Buffer, clock: Clock): SessionRecord {
  if (b.length < SESSION_EVENT_SIZE)
    throw new RangeError(`session event of ${b.length} bytes, expected ${SESSION_EVENT_SIZE}`);
  const tStart = b.readBigUInt64LE(8);
  const tEst = b.readBigUInt64LE(16);
  const tClose = b.readBigUInt64LE(24);
  const family = b.readUInt16LE(84) === 10 ? 6 : 4;
  const rec: SessionRecord = {
    netns: b.readUInt32LE(48),
    family,
    role: ROLES[b[90]] ?? 'unknown',
    closeKind: CLOSE_KINDS[b[91]] ?? 'fin',
    saddr: family === 4 ? ipv4(b, 92) : ipv6(b, 92),
    daddr: family === 4 ? ipv4(b, 108) : ipv6(b, 108),
    sport: b.readUInt16LE(86),
    dport: b.readUInt16LE(88),
    closedAt: clock.toEpochMs(tClose),
    retransmits: b.readUInt32LE(68),
    synRetransmits: b.readUInt32LE(72),
    resetsSent: b.readUInt32LE(76),
    resetsReceived: b.readUInt32LE(80),
    bytesAcked: Number(b.readBigUInt64LE(32)),
    bytesReceived: Number(b.readBigUInt64LE(40)),
    segsIn: b.readUInt32LE(52),
    segsOut: b.readUInt32LE(56),
    srttUs: b.readUInt32LE(64),
  };
  if (tStart > 0n) rec.startedAt = clock.toEpochMs(tStart);
  if (tEst > 0n) rec.establishedAt = clock.toEpochMs(tEst);
  if (tStart > 0n && tEst > tStart) rec.connectMs = Number(tEst - tStart) / 1e6;
  return rec;
}

export interface PipeSample {
  data: Buffer;
}
export interface PipeLost {
  lost: number;
}

/**
 * Incremental parser of `bpftool -j map event_pipe` output: one JSON array streamed forever,
 * `[{"type":9,"cpu":0,"index":0,"timestamp":N,"data":[..bytes..]},{"type":2,...,"lost":{"id":N,"count":N}}...`.
 * Samples hold no nested object, so the first `}` after `{` ends one; a lost record ends at its second `}`.
 * The data array (decimal bytes) is read in place, which is several times faster than JSON.parse + Buffer.from.
 */
export class EventPipeParser {
  private rest = '';

  push(chunk: string, onSample: (data: Buffer) => void, onLost: (count: number) => void): void {
    const s = this.rest ? this.rest + chunk : chunk;
    let pos = 0;
    for (;;) {
      const open = s.indexOf('{', pos);
      if (open < 0) {
        pos = s.length;
        break;
      }
      let close = s.indexOf('}', open);
      if (close < 0) {
        pos = open;
        break;
      }
      const data = s.indexOf('"data":[', open);
      if (data >= 0 && data < close) {
        onSample(readBytes(s, data + 8, close));
      } else {
        const lostAt = s.indexOf('"lost"', open);
        if (lostAt >= 0 && lostAt < close) {
          const outer = s.indexOf('}', close + 1);
          if (outer < 0) {
            pos = open;
            break;
          }
          close = outer;
          const o = JSON.parse(s.slice(open, close + 1)) as { lost?: { count?: number } };
          onLost(Number(o.lost?.count ?? 0));
        }
      }
      pos = close + 1;
    }
    this.rest = pos < s.length ? s.slice(pos) : '';
  }
}

function readBytes(s: string, from: number, to: number): Buffer {
  const out = Buffer.allocUnsafe(Math.min(4096, (to - from) >> 1));
  let n = 0;
  let v = 0;
  let inNum = false;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      v = v * 10 + (c - 48);
      inNum = true;
    } else {
      if (inNum && n < out.length) out[n++] = v;
      v = 0;
      inNum = false;
      if (c === 93 /* ] */) break;
    }
  }
  return out.subarray(0, n);
}

/** One entry of `bpftool -j map dump` on a BTF map: `formatted` carries the decoded key and value. */
export interface DumpEntry {
  key?: string[];
  value?: string[];
  formatted?: { key: Record<string, unknown>; value: Record<string, unknown> };
}

function cString(chars: unknown): string {
  if (!Array.isArray(chars)) return typeof chars === 'string' ? chars : '';
  let out = '';
  for (const c of chars as number[]) {
    if (!c) break;
    out += String.fromCharCode(c < 0 ? c + 256 : c);
  }
  return out;
}

function u32le(n: unknown): string {
  const v = Number(n) >>> 0;
  return `${v & 255}.${(v >>> 8) & 255}.${(v >>> 16) & 255}.${v >>> 24}`;
}

/** Parses the first bytes of a request ("GET /path HTTP/1.1") and a response ("HTTP/1.1 503 ..."). */
export function parseHttpPrefix(
  req: string,
  resp: string,
): { requestLine?: string; status?: number; statusLine?: string } {
  const out: { requestLine?: string; status?: number; statusLine?: string } = {};
  const line = req.split('\r\n')[0];
  if (/^[A-Z]{3,7} \S+/.test(line)) out.requestLine = line;
  const m = /^HTTP\/\d\.\d (\d{3})/.exec(resp);
  if (m) {
    out.status = Number(m[1]);
    out.statusLine = resp.split('\r')[0].trimEnd();
  }
  return out;
}

/** Size of `struct http_head` in clovisor.bpf.c, and its magic ("HTTP"). */
export const HTTP_HEAD_SIZE = 32;
const HTTP_HEAD_MAGIC = 0x48545450;

/** Identity of a packet-tier flow (its `flow_key`), the same from a map dump and from a request head. */
export function flowId(
  f: Pick<FlowRecord, 'ifindex' | 'podAddr' | 'podPort' | 'peerAddr' | 'peerPort'>,
): string {
  return `${f.ifindex}/${f.podAddr}:${f.podPort}/${f.peerAddr}:${f.peerPort}`;
}

export type HttpHeaders = Pick<FlowRecord, 'userAgent' | 'host' | 'requestId' | 'traceId' | 'envoyDecorator'>;

/** A request head from `http_events`: the flow it belongs to and the headers found in its captured payload. */
export function decodeHttpHead(b: Buffer): { id: string; headers: HttpHeaders } | null {
  if (b.length < HTTP_HEAD_SIZE || b.readUInt32LE(0) !== HTTP_HEAD_MAGIC) return null;
  const off = b.readUInt16LE(20);
  const cap = Math.min(b.readUInt16LE(22), b.length - HTTP_HEAD_SIZE);
  const id = flowId({
    ifindex: b.readUInt32LE(4),
    podAddr: ipv4(b, 8),
    peerAddr: ipv4(b, 12),
    podPort: b.readUInt16LE(16),
    peerPort: b.readUInt16LE(18),
  });
  const payload = off < cap ? b.toString('latin1', HTTP_HEAD_SIZE + off, HTTP_HEAD_SIZE + cap) : '';
  return { id, headers: parseHttpHeaders(payload) };
}

/**
 * Clovisor's request tags from a request head: User-Agent, Host, X-Request-Id, X-Envoy-Decorator-Operation and the
 * trace id (X-B3-TraceId as Clovisor read it, else the single `b3` header, else W3C `traceparent`). Only complete
 * header lines count: a line cut where the capture ends is ignored rather than reported truncated.
 */
export function parseHttpHeaders(payload: string): HttpHeaders {
  const end = payload.indexOf('\r\n\r\n');
  const lines = (end >= 0 ? payload.slice(0, end + 2) : payload).split('\r\n');
  lines.pop(); // after the last CRLF: empty, or a line cut by the capture
  const h = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0) {
      const name = line.slice(0, colon).trim().toLowerCase();
      if (!h.has(name)) h.set(name, line.slice(colon + 1).trim());
    }
  }
  const out: HttpHeaders = {};
  const set = (k: keyof HttpHeaders, v: string | undefined) => {
    if (v) out[k] = v;
  };
  set('userAgent', h.get('user-agent'));
  set('host', h.get('host'));
  set('requestId', h.get('x-request-id'));
  set('envoyDecorator', h.get('x-envoy-decorator-operation'));
  const b3 = h.get('b3')?.split('-')[0];
  const w3c = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}/.exec(h.get('traceparent') ?? '')?.[1];
  set('traceId', h.get('x-b3-traceid') ?? (b3 && /^[0-9a-f]{16,32}$/.test(b3) ? b3 : undefined) ?? w3c);
  return out;
}

/** A flow from the packet tier's map dump; null when the entry lacks BTF formatting. */
export function decodeFlow(e: DumpEntry, clock: Clock): FlowRecord | null {
  const f = e.formatted;
  if (!f) return null;
  const k = f.key;
  const v = f.value as Record<string, unknown>;
  const pair = (x: unknown) => (Array.isArray(x) ? x.map(Number) : [0, 0]);
  const [pFrom, pTo] = pair(v.packets);
  const [bFrom, bTo] = pair(v.bytes);
  const ns = (x: unknown) => BigInt(Number(x ?? 0));
  const tSyn = ns(v.t_syn);
  const tSynAck = ns(v.t_synack);
  const tReq = ns(v.t_req);
  const tResp = ns(v.t_resp);
  const role = Number(v.pod_is_client);
  const rec: FlowRecord = {
    ifindex: Number(k.ifindex),
    podAddr: u32le(k.pod_addr),
    podPort: Number(k.pod_port),
    peerAddr: u32le(k.peer_addr),
    peerPort: Number(k.peer_port),
    podRole: role === 1 ? 'client' : role === 2 ? 'server' : 'unknown',
    packetsFromPod: pFrom,
    packetsToPod: pTo,
    bytesFromPod: bFrom,
    bytesToPod: bTo,
    syn: Number(v.syn),
    synAck: Number(v.synack),
    fin: Number(v.fin),
    rst: Number(v.rst),
    retransmits: Number(v.retrans),
    firstAt: clock.toEpochMs(ns(v.t_first)),
    lastAt: clock.toEpochMs(ns(v.t_last)),
  };
  if (tSyn > 0n && tSynAck > tSyn) rec.handshakeMs = Number(tSynAck - tSyn) / 1e6;
  if (tReq > 0n && tResp > tReq) rec.firstByteMs = Number(tResp - tReq) / 1e6;
  Object.assign(rec, parseHttpPrefix(cString(v.req), cString(v.resp)));
  return rec;
}
