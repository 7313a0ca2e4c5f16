/**
 * clovisor against the real kernel: network namespaces joined by veth pairs, real TCP traffic, both tiers.
 * Skips (and says why) only when not root or eBPF is unavailable.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Tracer,
  cleanupClovisor,
  collectL4Evidence,
  evaluateL4Rule,
  serveTracer,
  FILTER_PRIO,
} from '../src/clovisor/index.js';
import { createLab, ebpfUnavailableReason, type Lab } from './clovisor-lab.js';
import { runCli } from './helpers/cli.js';
import { waitFor } from './helpers/ports.js';

const reason = ebpfUnavailableReason();
if (reason) process.stdout.write(`SKIPPED clovisor eBPF suite: ${reason}\n`);
const maybe = reason ? describe.skip : describe;

maybe('clovisor on real namespaces', () => {
  let lab: Lab;
  let tracer: Tracer;
  let stateDir: string;
  const pinRoot = `/sys/fs/bpf/clover-cd-test-${process.pid}`;
  let window: { start: number; end: number };
  let load: { v1: Awaited<ReturnType<Lab['load']>>; v2: Awaited<ReturnType<Lab['load']>> };

  beforeAll(async () => {
    stateDir = mkdtempSync(join(tmpdir(), 'clovisor-state-'));
    lab = await createLab([
      { name: 'http-lb-v1', version: 'v1' },
      { name: 'http-lb-v2', version: 'v2' },
    ]);
    const [stable, candidate] = lab.workloads;
    await lab.startServer(stable);
    await lab.startServer(candidate, { resetEvery: 5 }); // fault knob: every 5th connection is reset
    tracer = new Tracer({
      pinRoot,
      stateDir,
      drainIntervalMs: 200,
      targets: lab.workloads.map((w) => ({
        workload: w.name,
        version: w.version,
        namespace: 'default',
        service: 'http-lb',
        netns: w.netns,
        hostVeth: w.hostVeth,
        hostNetns: `/var/run/netns/${lab.host}`,
        packetTier: true,
      })),
    });
    await tracer.start();
    window = { start: Date.now(), end: 0 };
    load = { v1: await lab.load(stable, 40), v2: await lab.load(candidate, 40) };
    // Server sockets close a moment after the client has its answer (the last one after the load returned):
    // wait for every one of them, within a bound. Each reset attempt was a connection of its own.
    const expected = { v1: 40, v2: 40 + load.v2.resetsSeen };
    await waitFor(
      'server-side sessions of both versions',
      async () => {
        await tracer.drain();
        const recs = tracer.sessionRecords();
        return (
          recs.filter((r) => r.version === 'v1').length >= expected.v1 &&
          recs.filter((r) => r.version === 'v2').length >= expected.v2
        );
      },
      10_000,
      100,
    );
    window.end = Date.now();
  }, 60_000);

  afterAll(async () => {
    await tracer?.stop().catch(() => undefined);
    await lab?.destroy();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('counts every real connection per version, with bytes and handshake time', async () => {
    const ev = await collectL4Evidence(window, ['v1', 'v2'], { tracer, service: 'http-lb' });
    expect(load.v1.ok).toBe(40);
    // One server-side session per connection: 40 for v1; v2 adds the reset (and retried) connections.
    expect(ev.versions.v1.connections).toBe(40);
    expect(ev.versions.v2.connections).toBe(40 + load.v2.resetsSeen);
    expect(ev.versions.v1.openConnections).toBe(0);
    expect(ev.versions.v1.resetConnections).toBe(0);
    expect(ev.versions.v1.resetsSent).toBe(0);
    expect(ev.versions.v1.handshakeP50Ms).toBeGreaterThan(0);
    expect(ev.complete).toBe(true);
    const v1 = tracer.sessionRecords().filter((r) => r.version === 'v1');
    expect(v1.every((r) => r.role === 'server' && r.sport === 8080 && r.bytesReceived > 0)).toBe(true);
  });

  it('packet tier sees each 5-tuple with flags, request line and status', async () => {
    await new Promise((r) => setTimeout(r, 700)); // flows are emitted 500 ms after their last FIN
    const flows = (await tracer.flowRecords()).filter((f) => f.version === 'v1');
    expect(flows.length).toBe(40);
    const f = flows[0];
    expect(f.podRole).toBe('server');
    expect(f.syn).toBe(1);
    expect(f.requestLine).toBe('GET / HTTP/1.1');
    expect(f.status).toBe(200);
    expect(f.packetsToPod).toBeGreaterThan(2);
    expect(f.bytesFromPod).toBeGreaterThan(0);
  });

  it('a candidate whose fault knob resets connections fails the l4 rule while L7 errors stay under threshold', async () => {
    const l7ErrorRate = (load.v2.http5xx + load.v2.failed) / load.v2.sent;
    expect(l7ErrorRate).toBeLessThanOrEqual(0.01); // errorRate max 1%: the retries hide the resets from L7
    expect(load.v2.resetsSeen).toBeGreaterThan(0);
    const ev = await collectL4Evidence(window, ['v1', 'v2'], { tracer, service: 'http-lb' });
    expect(ev.versions.v2.resetConnections).toBe(load.v2.resetsSeen);
    // The server's abortive close sends its RST after the socket is in CLOSE: still one reset sent per reset connection.
    expect(ev.versions.v2.resetsSent).toBe(load.v2.resetsSeen);
    expect(tracer.status().resetsAfterUntrackedClose).toBe(0);
    const absolute = evaluateL4Rule({ resetRate: '5%' }, ev, { stable: 'v1', candidate: 'v2' });
    expect(absolute.outcome).toBe('fail');
    expect(absolute.reason).toMatch(/reset rate of v2/);
    const compared = evaluateL4Rule({ resetRate: '5%', compare: true }, ev, {
      stable: 'v1',
      candidate: 'v2',
    });
    expect(compared.outcome).toBe('fail');
    // The stable version, judged as if it were the candidate, passes: the rule discriminates.
    expect(evaluateL4Rule({ resetRate: '5%' }, ev, { stable: 'v2', candidate: 'v1' }).outcome).toBe('pass');
  });

  it('serves metrics per workload and version, and evidence over HTTP', async () => {
    const server = await serveTracer(tracer, '127.0.0.1', 0);
    const { port } = server.address() as { port: number };
    try {
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      expect(metrics).toMatch(
        /clovisor_tcp_connections_total\{workload="http-lb-v2",version="v2",namespace="default",role="server",close="reset"\} \d+/,
      );
      expect(metrics).toMatch(/clovisor_lost_events_total\{source="kernel"\} 0/);
      const ev = await collectL4Evidence(window, ['v1', 'v2'], {
        url: `http://127.0.0.1:${port}`,
        service: 'http-lb',
      });
      expect(ev.versions.v1.connections).toBe(40);
    } finally {
      server.close();
    }
  });

  it('cleanup leaves no filter, qdisc it created, pinned object or namespace behind', async () => {
    const veths = lab.workloads.map((w) => w.hostVeth);
    await tracer.stop({ cleanup: false });
    // Another tool's filter on the same clsact qdisc must survive our cleanup.
    const hostNs = `/var/run/netns/${lab.host}`;
    const tc = (...a: string[]) => execFileSync('nsenter', [`--net=${hostNs}`, 'tc', ...a]).toString();
    tc(
      'filter',
      'add',
      'dev',
      veths[0],
      'ingress',
      'prio',
      '100',
      'handle',
      '0x1',
      'bpf',
      'da',
      'object-pinned',
      `${pinRoot}/prog/tc_from_pod`,
    );
    const cli = await runCli([
      'clovisor',
      'cleanup',
      '--pin-root',
      pinRoot,
      '--state-dir',
      stateDir,
      '-o',
      'json',
    ]);
    expect(cli.code).toBe(0);
    const report = JSON.parse(cli.stdout);
    expect(report.removed).toEqual(
      expect.arrayContaining(['link/tp_inet_sock_set_state', 'maps/events', `qdisc ${veths[1]} clsact`]),
    );
    expect(existsSync(pinRoot)).toBe(false);
    expect(tc('-j', 'filter', 'show', 'dev', veths[0], 'ingress')).not.toContain(`"pref":${FILTER_PRIO}`);
    expect(tc('-j', 'filter', 'show', 'dev', veths[0], 'ingress')).toContain('"pref":100');
    expect(tc('qdisc', 'show', 'dev', veths[0])).toContain('clsact'); // still used by the other filter
    expect(tc('qdisc', 'show', 'dev', veths[1])).not.toContain('clsact');
    await lab.destroy();
    const left = execFileSync('ip', ['netns', 'list']).toString();
    expect(left).not.toContain(lab.host);
    lab = { ...lab, destroy: async () => undefined };
    expect((await cleanupClovisor({ pinRoot, stateDir })).removed).toEqual([]); // idempotent
  });
});

describe('clovisor without eBPF', () => {
  it('run exits 4 with the reason when eBPF cannot be used (here: the BPF object was never built)', async () => {
    const r = await runCli([
      'clovisor',
      'run',
      '--all-namespaces',
      '--duration',
      '1s',
      '--object',
      '/nonexistent/clovisor.bpf.o',
    ]);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(process.getuid?.() === 0 ? /BPF object has not been built/ : /needs root/);
    expect(r.stderr).toMatch(/check:/);
  });
});
