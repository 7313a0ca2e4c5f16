// Over 400 lines: the tracer's lifecycle around one BPF program (attach, read, detach) reads best in one place.
/**
 * The running tracer: loads and attaches (loader.ts), reads closed sessions from the perf array through
 * `bpftool map event_pipe`, drains packet-tier flows and kernel counters every interval, attributes records
 * to targets by network namespace (socket tier) or veth ifindex (packet tier), and feeds metrics, spans and
 * the in-memory record store that evidence is computed from.
 */
import type { ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';
import { InfrastructureError } from '../util/errors.js';
import { evaluateL4Rule, buildEvidence } from './evidence.js';
import {
  attachVeth,
  bpftoolBatch,
  cleanup,
  loadAndAttach,
  setEgressMatch,
  setNetnsFilter,
  type CleanupReport,
  type LoaderState,
} from './loader.js';
import { ClovisorMetrics, SpanExporter, flowSpan, sessionSpan, type SpanFormat } from './outputs.js';
import { HeadReader } from './heads.js';
import {
  EventPipeParser,
  decodeFlow,
  decodeSessionEvent,
  flowId,
  isLateReset,
  monotonicClock,
  type DumpEntry,
} from './records.js';
import { egressAllowed, egressKeys, tcpEgress } from './targets.js';
import { netnsInum, preflight, run, inNetns, spawnReader } from './system.js';
import {
  KERNEL_STAT_NAMES,
  type EgressMatch,
  type FlowRecord,
  type KernelStats,
  type L4Evidence,
  type OpenConnection,
  type SessionRecord,
  type Target,
} from './types.js';

export interface TracerOptions {
  pinRoot?: string;
  stateDir?: string;
  object?: string;
  targets: Target[];
  /** Drain period of flows and counters (default 1 s). */
  drainIntervalMs?: number;
  /** How long session records are kept for evidence (default 30 min). */
  retainMs?: number;
  /** Trace every namespace instead of only the targets' (default false). */
  allNamespaces?: boolean;
  spansUrl?: string;
  /** otlp (default) or jaeger-thrift (Clovisor's collector format). */
  spansFormat?: SpanFormat;
  session?: { release?: string; step?: string };
  /** A flow with no packet for this long is emitted and removed (default 10 s). */
  flowIdleMs?: number;
  /** The perf-array reader binary (default build/clovisor/clovisor-events; bpftool's event_pipe when absent). */
  reader?: string;
  /**
   * Clovisor's `clovisor_egress_match`: when not empty, a target's outbound connections are traced only to these
   * destinations (socket tier: in the kernel, at connect; packet tier: when flows are drained). Inbound: unaffected.
   */
  egressMatch?: EgressMatch[];
}

export interface TracerStatus {
  pinRoot: string;
  running: boolean;
  reader: string;
  targets: Array<Target & { attached: { socket: boolean; packet: boolean } }>;
  links: LoaderState['links'];
  records: number;
  flowsOpen: number;
  drained: { sessions: number; flows: number; flowsNotInEgressMatch: number };
  lost: { readerEvents: number; kernel: KernelStats; beforeReader: number };
  /** Resets sent after the close of a session the tracer never saw open (it predates the tracer). */
  resetsAfterUntrackedClose: number;
  spans?: { exported: number; failed: number };
}

/** Recently closed sessions kept to receive a reset sent after their close (far more than one drain's worth). */
const TOMBSTONES = 65_536;

const EMPTY_STATS = (): KernelStats => ({
  connsFull: 0,
  eventsLost: 0,
  flowsFull: 0,
  eventsSent: 0,
  resetsWithoutSocket: 0,
  untrackedCloses: 0,
  packets: 0,
  egressSkipped: 0,
  httpSent: 0,
  httpLost: 0,
});
export class Tracer {
  readonly metrics = new ClovisorMetrics();
  private state?: LoaderState;
  private pipe?: ChildProcess;
  private parser = new EventPipeParser();
  private clock = monotonicClock();
  private pending: Buffer[] = [];
  private records: SessionRecord[] = [];
  private flows: FlowRecord[] = [];
  private lastFlow = new Map<string, { pFrom: number; pTo: number; bFrom: number; bTo: number }>();
  private byNetns = new Map<number, Target>();
  private byIfindex = new Map<number, Target>();
  private timer?: NodeJS.Timeout;
  private readerLost = 0;
  private kernel = EMPTY_STATS();
  private drainedSessions = 0;
  private drainedFlows = 0;
  private spans?: SpanExporter;
  private draining?: Promise<void>;
  private sawSample = false;
  private lostBeforeReader = 0;
  private samplesReceived = 0;
  private samplesAtReady = 0;
  private sentAtReady = 0;
  private keepRaw: Buffer[] = [];
  private closed = new Map<number, { hi: number; rec: SessionRecord }>();
  private lateResetsUnmatched = 0;
  private open: OpenConnection[] = [];
  private heads?: HeadReader;
  private httpSentAtReady = 0;
  private egress: EgressMatch[] = [];
  private flowsSkipped = 0;
  /** Which program reads the perf array (status). */
  readerKind = '';

  constructor(readonly opts: TracerOptions) {
    if (opts.spansUrl) this.spans = new SpanExporter(opts.spansUrl, 500, opts.spansFormat);
  }

  get pinRoot(): string {
    return this.state?.pinRoot ?? this.opts.pinRoot ?? '';
  }

  async start(): Promise<void> {
    await preflight({ object: this.opts.object });
    this.state = await loadAndAttach({
      pinRoot: this.opts.pinRoot,
      object: this.opts.object,
      stateDir: this.opts.stateDir,
    });
    for (const t of this.opts.targets) {
      t.netnsInum ??= netnsInum(t.netns);
      this.byNetns.set(t.netnsInum, t);
    }
    await this.startPipe();
    await this.readKernelStats();
    this.lostBeforeReader = this.kernel.eventsLost; // emitted while no reader existed: before the window, not in it
    this.sentAtReady = this.kernel.eventsSent;
    this.samplesAtReady = this.samplesReceived;
    if (!this.opts.allNamespaces)
      await setNetnsFilter(this.state, [...this.byNetns.keys()], this.opts.stateDir);
    this.egress = tcpEgress(this.opts.egressMatch ?? []);
    await setEgressMatch(
      this.state,
      egressKeys(this.egress, this.opts.targets),
      this.egress.length > 0,
      this.opts.stateDir,
    );
    const packetTargets = this.opts.targets.filter((x) => x.packetTier && x.hostVeth);
    if (packetTargets.length) {
      // Request heads are read before any veth is attached, so that none is emitted without a reader.
      this.heads = await HeadReader.start(join(this.state.pinRoot, 'maps', 'http_events'), this.opts.reader);
      await this.readKernelStats();
      this.httpSentAtReady = this.kernel.httpSent;
    }
    for (const t of packetTargets) {
      await attachVeth(this.state, t, this.opts.stateDir);
      this.byIfindex.set(await ifindexOf(t.hostVeth!, t.hostNetns), t);
    }
    this.timer = setInterval(() => void this.drain(), this.opts.drainIntervalMs ?? 1000);
    this.timer.unref();
  }

  /** Starts the perf reader and waits until it delivers (a refused loopback connect is a session event). */
  private async startPipe(): Promise<void> {
    const events = join(this.state!.pinRoot, 'maps', 'events');
    // clovisor-events consumes every ring each 50 ms: bpftool reads only rings whose (deferred) wakeup arrived, which
    // left the last session of a burst in its ring. Without the helper: bpftool, unbuffered (stdbuf -o0) or the
    // last events would also wait in its stdio buffer.
    const { child, kind } = spawnReader(events, this.opts.reader);
    this.readerKind = kind;
    this.pipe = child;
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) =>
      this.parser.push(
        chunk,
        (d) => {
          this.sawSample = true;
          this.samplesReceived++;
          this.pending.push(d);
        },
        (n) => (this.readerLost += n),
      ),
    );
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const deadline = Date.now() + 10_000;
    while (!this.sawSample) {
      if (child.exitCode !== null)
        throw new InfrastructureError(
          'bpftool',
          `map event_pipe pinned ${events}`,
          stderr.trim() || `exited ${child.exitCode}`,
        );
      if (Date.now() > deadline)
        throw new InfrastructureError(
          'bpftool',
          `map event_pipe pinned ${events}`,
          'no session event within 10 s of starting the reader',
          'tracepoint sock:inet_sock_set_state attached (clovisor status)',
        );
      await refusedConnect();
    }
    this.pending = []; // the readiness probes themselves are not evidence
    this.samplesAtReady = this.samplesReceived;
  }

  /** Drains the buffered session events, flows and kernel counters once. */
  drain(): Promise<void> {
    this.draining ??= this.drainOnce().finally(() => (this.draining = undefined));
    return this.draining;
  }

  /** Turns raw perf samples into attributed records (pure CPU; what the bench measures). */
  ingest(samples: Buffer[]): number {
    let n = 0;
    for (const d of samples) {
      if (isLateReset(d)) {
        this.addLateReset(d);
        continue;
      }
      const r = decodeSessionEvent(d, this.clock);
      const t = this.byNetns.get(r.netns);
      if (!t && !this.opts.allNamespaces) continue;
      if (t) Object.assign(r, { workload: t.workload, version: t.version, service: t.service });
      this.records.push(r);
      this.rememberClosed(d, r);
      this.metrics.observeSession(r, t?.namespace);
      n++;
    }
    // Spans after the whole batch, so a reset sent after its session's close is on the span too.
    if (this.spans)
      for (const r of this.records.slice(-n))
        this.spans.add(r.service ?? r.workload ?? 'clovisor', sessionSpan(r, this.opts.session));
    this.drainedSessions += n;
    return n;
  }

  /**
   * Connections open now, from the socket tier's `conns` map: a keep-alive connection that did not close in a
   * window was still a connection of it (a close-only view, as tcplife's, would see none of a healthy pool).
   */
  private async snapshotOpen(): Promise<Array<OpenConnection & { lo: number; hi: number }>> {
    const dump = JSON.parse(
      (
        await run('bpftool', ['-j', 'map', 'dump', 'pinned', join(this.state!.pinRoot, 'maps', 'conns')], {
          timeoutMs: 30_000,
        })
      ).stdout,
    ) as DumpEntry[];
    const open: Array<OpenConnection & { lo: number; hi: number }> = [];
    for (const e of dump) {
      const v = e.formatted?.value as Record<string, number> | undefined;
      if (!v || !e.key || e.key.length < 8 || Number(v.skip)) continue; // skip: outbound, not in egress_match
      const t = this.byNetns.get(Number(v.netns));
      if (!t && !this.opts.allNamespaces) continue;
      const k = Buffer.from(e.key.map((h) => parseInt(h, 16)));
      open.push({
        lo: k.readUInt32LE(0),
        hi: k.readUInt32LE(4),
        netns: Number(v.netns),
        role: v.role === 1 ? 'client' : v.role === 2 ? 'server' : 'unknown',
        startedAt: this.clock.toEpochMs(BigInt(v.t_start ?? 0)),
        ...(Number(v.t_est) > 0 ? { establishedAt: this.clock.toEpochMs(BigInt(v.t_est)) } : {}),
        ...(t ? { workload: t.workload, version: t.version, service: t.service } : {}),
      });
    }
    return open;
  }

  /**
   * Open connections, then a drain: a connection that closed between the two is dropped from the open ones by
   * its tombstone (counted once, as closed). What evidence for a window needs.
   */
  async prepareEvidence(): Promise<void> {
    const open = await this.snapshotOpen();
    await this.drain();
    this.open = open
      .filter((o) => {
        const t = this.closed.get(o.lo);
        return !(t && t.hi === o.hi && t.rec.netns === o.netns && t.rec.closedAt >= o.startedAt);
      })
      .map(({ lo: _lo, hi: _hi, ...o }) => o);
  }

  /**
   * Tombstones of just-closed sessions, by socket address: an abortive close emits the session first and sends its
   * RST after, as a separate event on the same CPU (hence in order), which is added to the session here.
   */
  private rememberClosed(d: Buffer, r: SessionRecord): void {
    const lo = d.readUInt32LE(0);
    this.closed.delete(lo); // re-insert: Map order is age order
    this.closed.set(lo, { hi: d.readUInt32LE(4), rec: r });
    if (this.closed.size > TOMBSTONES) this.closed.delete(this.closed.keys().next().value as number);
  }

  private addLateReset(d: Buffer): void {
    const t = this.closed.get(d.readUInt32LE(0));
    const netns = d.readUInt32LE(48);
    const dport = d.readUInt16LE(88);
    if (!t || t.hi !== d.readUInt32LE(4) || t.rec.netns !== netns || t.rec.dport !== dport) {
      this.lateResetsUnmatched++; // the socket's session predates the tracer (or was filtered out)
      return;
    }
    t.rec.resetsSent++;
    if (t.rec.closeKind === 'fin') t.rec.closeKind = 'reset';
    this.metrics.addResetsSent(t.rec, this.byNetns.get(netns)?.namespace, 1);
  }

  private async drainOnce(): Promise<void> {
    await this.readKernelStats();
    // Every event the kernel put in the ring reaches the reader; wait (briefly) until those in flight arrive.
    const deadline = Date.now() + 1000;
    const behind = () =>
      this.kernel.eventsSent - this.sentAtReady > this.samplesReceived - this.samplesAtReady ||
      (this.heads !== undefined && this.kernel.httpSent - this.httpSentAtReady > this.heads.received);
    while (behind() && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    const batch = this.pending;
    this.pending = [];
    if (this.keepRaw.length < 1000) this.keepRaw.push(...batch.slice(0, 1000 - this.keepRaw.length));
    this.ingest(batch);
    this.metrics.setLoss(this.readerLost, this.kernel);
    const maps = join(this.state!.pinRoot, 'maps');
    if (this.byIfindex.size) await this.drainFlows(maps);
    const cutoff = Date.now() - (this.opts.retainMs ?? 30 * 60_000);
    if (this.records.length && this.records[0].closedAt < cutoff)
      this.records = this.records.filter((r) => r.closedAt >= cutoff);
    if (this.flows.length && this.flows[0].lastAt < cutoff)
      this.flows = this.flows.filter((f) => f.lastAt >= cutoff);
    await this.spans?.flush();
  }

  private async readKernelStats(): Promise<void> {
    const maps = join(this.state!.pinRoot, 'maps');
    const stats = JSON.parse(
      (await run('bpftool', ['-j', 'map', 'dump', 'pinned', `${maps}/stats`])).stdout,
    ) as Array<{ key: unknown; value: unknown; formatted?: { key: number; value: number } }>;
    const k = EMPTY_STATS();
    for (const e of stats) {
      const idx = e.formatted?.key ?? Number(e.key);
      if (KERNEL_STAT_NAMES[idx]) k[KERNEL_STAT_NAMES[idx]] = Number(e.formatted?.value ?? e.value);
    }
    k.eventsLost -= this.lostBeforeReader;
    this.kernel = k;
  }

  private async drainFlows(maps: string): Promise<void> {
    const dump = JSON.parse(
      (await run('bpftool', ['-j', 'map', 'dump', 'pinned', `${maps}/flows`], { timeoutMs: 30_000 })).stdout,
    ) as DumpEntry[];
    const now = Date.now();
    const idle = this.opts.flowIdleMs ?? 10_000;
    const deletes: string[] = [];
    for (const e of dump) {
      const f = decodeFlow(e, this.clock);
      if (!f) continue;
      const t = this.byIfindex.get(f.ifindex);
      if (t) Object.assign(f, { workload: t.workload, version: t.version, service: t.service });
      Object.assign(f, this.heads?.get(flowId(f)));
      const id = (e.key ?? []).join('');
      // Outbound to a destination not in egress_match: not traced (dropped from the map, no metrics, no span).
      const skip = f.podRole === 'client' && !egressAllowed(this.egress, t, f.peerAddr, f.peerPort);
      const prev = this.lastFlow.get(id) ?? { pFrom: 0, pTo: 0, bFrom: 0, bTo: 0 };
      const cur = { pFrom: f.packetsFromPod, pTo: f.packetsToPod, bFrom: f.bytesFromPod, bTo: f.bytesToPod };
      if (!skip)
        this.metrics.observeFlowDelta(f, t?.namespace ?? '', {
          pFrom: cur.pFrom - prev.pFrom,
          pTo: cur.pTo - prev.pTo,
          bFrom: cur.bFrom - prev.bFrom,
          bTo: cur.bTo - prev.bTo,
        });
      this.lastFlow.set(id, cur);
      const closed = (f.fin >= 2 || f.rst > 0) && now - f.lastAt > 500;
      if (closed || now - f.lastAt > idle) {
        if (skip) this.flowsSkipped++;
        else {
          this.flows.push(f);
          this.drainedFlows++;
          this.spans?.add(t?.service ?? t?.workload ?? 'clovisor', flowSpan(f, this.opts.session));
        }
        this.lastFlow.delete(id);
        this.heads?.delete(flowId(f));
        if (e.key)
          deletes.push(
            `map delete pinned ${maps}/flows key hex ${e.key.map((h) => h.replace(/^0x/, '')).join(' ')}`,
          );
      }
    }
    await bpftoolBatch(deletes);
  }

  /** Open flows (still in the map) plus closed ones, for `status` and tests. */
  async flowRecords(): Promise<FlowRecord[]> {
    await this.drain();
    return [...this.flows];
  }

  /** Up to 1,000 raw session events as the kernel emitted them (the benchmark replays them). */
  rawSamplesForBench(): Buffer[] {
    return [...this.keepRaw];
  }

  sessionRecords(): SessionRecord[] {
    return [...this.records];
  }

  evidence(window: { start: number; end: number }, versions: string[], service?: string): L4Evidence {
    return buildEvidence(this.records, window, versions, {
      service,
      targets: this.opts.targets,
      lostEvents: this.readerLost,
      kernel: this.kernel,
      open: this.open,
    });
  }

  /** Evaluates the l4 rule on this tracer's evidence (convenience for in-process gates and tests). */
  judge(
    rule: Parameters<typeof evaluateL4Rule>[0],
    window: { start: number; end: number },
    versions: { stable: string; candidate: string },
    service?: string,
  ) {
    return evaluateL4Rule(
      rule,
      this.evidence(window, [versions.stable, versions.candidate], service),
      versions,
    );
  }

  status(): TracerStatus {
    return {
      pinRoot: this.pinRoot,
      reader: this.readerKind,
      running: Boolean(this.pipe && this.pipe.exitCode === null),
      targets: this.opts.targets.map((t) => ({
        ...t,
        attached: {
          socket: this.byNetns.has(t.netnsInum ?? -1),
          packet: [...this.byIfindex.values()].includes(t),
        },
      })),
      links: this.state?.links ?? [],
      records: this.records.length,
      flowsOpen: this.lastFlow.size,
      drained: {
        sessions: this.drainedSessions,
        flows: this.drainedFlows,
        flowsNotInEgressMatch: this.flowsSkipped,
      },
      lost: { readerEvents: this.readerLost, kernel: this.kernel, beforeReader: this.lostBeforeReader },
      resetsAfterUntrackedClose: this.lateResetsUnmatched,
      spans: this.spans ? { exported: this.spans.exported, failed: this.spans.failed } : undefined,
    };
  }

  /** Stops reading; with `cleanup` (default) also removes every filter, qdisc it created and pin. */
  async stop(opts: { cleanup?: boolean } = {}): Promise<CleanupReport | undefined> {
    if (this.timer) clearInterval(this.timer);
    if (this.state) await this.drain().catch(() => undefined);
    if (this.pipe && this.pipe.exitCode === null) {
      const exited = new Promise((r) => this.pipe!.once('exit', r));
      this.pipe.kill('SIGINT');
      await exited;
    }
    await this.heads?.stop();
    if (opts.cleanup === false || !this.state) return undefined;
    return cleanup({ pinRoot: this.state.pinRoot, stateDir: this.opts.stateDir });
  }
}

async function ifindexOf(dev: string, netns?: string): Promise<number> {
  const [cmd, args] = inNetns(netns, 'ip', ['-j', 'link', 'show', 'dev', dev]);
  const links = JSON.parse((await run(cmd, args, { system: 'ip' })).stdout) as Array<{ ifindex: number }>;
  return links[0].ifindex;
}

/** A connect to a closed loopback port: SYN_SENT → CLOSE, i.e. one session event, harmlessly. */
function refusedConnect(): Promise<void> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port: 9 });
    s.on('error', () => resolve());
    s.on('connect', () => {
      s.destroy();
      resolve();
    });
    setTimeout(resolve, 100).unref();
  });
}
