/** Data shapes of clovisor: targets, session and flow records, L4 evidence. */

/** One workload clovisor traces: a network namespace (socket tier) and optionally its host-side veth (packet tier). */
export interface Target {
  workload: string;
  version: string;
  namespace: string;
  /** Service the workload backs (evidence is grouped by service + version). */
  service?: string;
  pod?: string;
  /** Path of the workload's network namespace (/var/run/netns/<name> or /proc/<pid>/ns/net). */
  netns: string;
  /** Inode number of that namespace (what the kernel reports as the socket's netns). */
  netnsInum?: number;
  /** Packet tier: the host-side veth of the workload, in `hostNetns` (root namespace when absent). */
  hostVeth?: string;
  hostNetns?: string;
  /** Opt in to the packet tier (tc clsact on hostVeth). */
  packetTier?: boolean;
}

export type Role = 'client' | 'server' | 'unknown';
export type CloseKind = 'fin' | 'reset' | 'connect-failed' | 'handshake-failed';

/** One TCP connection, from the socket tier, emitted when it closed. Times are epoch ms. */
export interface SessionRecord {
  netns: number;
  family: 4 | 6;
  role: Role;
  closeKind: CloseKind;
  saddr: string;
  daddr: string;
  sport: number;
  dport: number;
  startedAt?: number;
  establishedAt?: number;
  closedAt: number;
  /** SYN → ESTABLISHED, ms (client: connect latency; server: SYN-ACK → ACK). */
  connectMs?: number;
  retransmits: number;
  synRetransmits: number;
  resetsSent: number;
  resetsReceived: number;
  bytesAcked: number;
  bytesReceived: number;
  segsIn: number;
  segsOut: number;
  srttUs: number;
  /** The traced workload this session belongs to, when its netns is a target's. */
  workload?: string;
  version?: string;
  service?: string;
}

/** A connection still open when evidence was taken (socket tier's live map). Times are epoch ms. */
export interface OpenConnection {
  netns: number;
  role: Role;
  startedAt: number;
  establishedAt?: number;
  workload?: string;
  version?: string;
  service?: string;
}

/** One 5-tuple seen by the packet tier on a workload's host veth. */
export interface FlowRecord {
  ifindex: number;
  podAddr: string;
  podPort: number;
  peerAddr: string;
  peerPort: number;
  podRole: Role;
  packetsFromPod: number;
  packetsToPod: number;
  bytesFromPod: number;
  bytesToPod: number;
  syn: number;
  synAck: number;
  fin: number;
  rst: number;
  retransmits: number;
  firstAt: number;
  lastAt: number;
  handshakeMs?: number;
  firstByteMs?: number;
  requestLine?: string;
  status?: number;
  /** The response's first line as captured ("HTTP/1.1 200 OK", cut at 16 bytes). */
  statusLine?: string;
  /** Request headers from the first request segment (up to 512 payload bytes): Clovisor's useragent, host, requestid, traceid, envoydecorator. */
  userAgent?: string;
  host?: string;
  requestId?: string;
  traceId?: string;
  envoyDecorator?: string;
  workload?: string;
  version?: string;
  service?: string;
}

/** Counters the kernel side keeps so that nothing is lost silently. */
export interface KernelStats {
  connsFull: number;
  eventsLost: number;
  flowsFull: number;
  eventsSent: number;
  resetsWithoutSocket: number;
  untrackedCloses: number;
  packets: number;
  /** Outbound connections not traced because their destination is not in `clovisor_egress_match`. */
  egressSkipped: number;
  /** Request heads (packet tier) emitted, and those lost on a full ring. */
  httpSent: number;
  httpLost: number;
}
export const KERNEL_STAT_NAMES: Array<keyof KernelStats> = [
  'connsFull',
  'eventsLost',
  'flowsFull',
  'eventsSent',
  'resetsWithoutSocket',
  'untrackedCloses',
  'packets',
  'egressSkipped',
  'httpSent',
  'httpLost',
];

/** One `clovisor_egress_match` entry: outbound connections to `ip:port` (ip 0.0.0.0 = any) are traced. */
export interface EgressMatch {
  ip: string;
  port: number;
  /** Only pods (workloads) whose name starts with this are restricted by the entry. */
  podPrefix?: string;
  protocol?: string;
}

/** L4 counts of one version in a window. */
export interface L4Counts {
  /** Connections closed in the window plus connections established before its end and still open. */
  connections: number;
  /** Of `connections`, those still open when the evidence was taken (keep-alive pools). */
  openConnections: number;
  /** Connections closed by a reset (sent or received) or aborted from ESTABLISHED. */
  resetConnections: number;
  resetsSent: number;
  resetsReceived: number;
  retransmits: number;
  segmentsOut: number;
  connectFailures: number;
  /** resetConnections / connections; undefined without connections. */
  resetRate?: number;
  /** retransmits / segmentsOut. */
  retransmitRate?: number;
  handshakeP50Ms?: number;
  handshakeP99Ms?: number;
  workloads: string[];
}

export interface L4Evidence {
  source: 'clovisor';
  window: { start: number; end: number };
  service?: string;
  versions: Record<string, L4Counts>;
  /** Targets that were attached during the window (what the evidence covers). */
  targets: Array<Pick<Target, 'workload' | 'version' | 'namespace' | 'netns' | 'hostVeth' | 'packetTier'>>;
  /** Loss accounting: perf ring losses seen by the reader plus the kernel counters. */
  lost: { events: number; kernel: KernelStats };
  /** Whether any loss makes the counts a lower bound. */
  complete: boolean;
}
