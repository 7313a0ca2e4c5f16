/**
 * clovisor against the real kernel, continued: Clovisor's `clovisor_egress_match` (outbound connections traced only
 * to listed destinations, inbound unaffected) and its HTTP request tags (useragent, host, requestid, traceid) read
 * from the first request segment and exported as Jaeger Thrift to a collector fake. Skips (and says why) only
 * when not root or eBPF is unavailable.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tracer, FILTER_PRIO, parseEgressMatch } from '../src/clovisor/index.js';
import type { FlowRecord } from '../src/clovisor/types.js';
import { createLab, ebpfUnavailableReason, type Lab, type LoadResult } from './clovisor-lab.js';
import { startFakeCollector, type FakeCollector } from './helpers/fake-jaeger-collector.js';
import { waitFor } from './helpers/ports.js';

const reason = ebpfUnavailableReason();
if (reason) process.stdout.write(`SKIPPED clovisor egress/http eBPF suite: ${reason}\n`);
const maybe = reason ? describe.skip : describe;

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const REQUEST_ID = randomUUID();
const HEADERS = {
  'User-Agent': 'chrome',
  Host: 'www.sdc.com',
  'x-request-id': REQUEST_ID,
  traceparent: `00-${TRACE_ID}-00f067aa0ba902b7-01`,
  // Padding so that the tags sit beyond the 48 bytes the flow map keeps: they can only come from the request head.
  'x-padding': 'p'.repeat(200),
};

maybe('clovisor egress match and HTTP request tags on real namespaces', () => {
  let lab: Lab;
  let tracer: Tracer;
  let collector: FakeCollector;
  let stateDir: string;
  const pinRoot = `/sys/fs/bpf/clover-cd-test-http-${process.pid}`;
  let listed: string;
  let unlisted: string;
  let load: { ingress: LoadResult; listed: LoadResult; unlisted: LoadResult };
  let flows: FlowRecord[];

  beforeAll(async () => {
    stateDir = mkdtempSync(join(tmpdir(), 'clovisor-state-'));
    collector = await startFakeCollector();
    lab = await createLab([{ name: 'clover-server1', version: 'v1' }]);
    const [w] = lab.workloads;
    const nodeIp = w.ip.replace(/\.2$/, '.1'); // the node side of the workload's veth
    listed = `${nodeIp}:9180`;
    unlisted = `${nodeIp}:9181`;
    await lab.startServer(w);
    await lab.startNodeServer(9180);
    await lab.startNodeServer(9181);
    tracer = new Tracer({
      pinRoot,
      stateDir,
      drainIntervalMs: 200,
      spansUrl: collector.url,
      spansFormat: 'jaeger-thrift',
      egressMatch: parseEgressMatch([`${listed}/http`]),
      targets: [
        {
          workload: w.name,
          version: w.version,
          namespace: 'default',
          service: 'clover-server1',
          netns: w.netns,
          hostVeth: w.hostVeth,
          hostNetns: `/var/run/netns/${lab.host}`,
          packetTier: true,
        },
      ],
    });
    await tracer.start();
    load = {
      ingress: await lab.load(w, 3, { headers: HEADERS }),
      listed: await lab.loadFrom(w, `http://${listed}/`, 5),
      unlisted: await lab.loadFrom(w, `http://${unlisted}/`, 5),
    };
    expect([load.ingress.ok, load.listed.ok, load.unlisted.ok]).toEqual([3, 5, 5]);
    // Every connection closed (5 outbound listed + 3 inbound), and their flows emitted (500 ms after the last FIN).
    await waitFor(
      'sessions and flows of the traffic',
      async () => {
        flows = await tracer.flowRecords();
        const recs = tracer.sessionRecords();
        return (
          recs.filter((r) => r.role === 'server').length >= 3 &&
          recs.filter((r) => r.role === 'client').length >= 5 &&
          flows.length >= 8 &&
          tracer.status().drained.flowsNotInEgressMatch >= 5
        );
      },
      15_000,
      100,
    );
    await tracer.drain();
  }, 60_000);

  afterAll(async () => {
    await tracer?.stop().catch(() => undefined);
    await lab?.destroy();
    await collector?.stop();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('traces outbound connections to a listed destination only, in the kernel; inbound ones are unaffected', () => {
    const recs = tracer.sessionRecords();
    const port = (hp: string) => Number(hp.split(':')[1]);
    expect(recs.filter((r) => r.role === 'client' && r.dport === port(listed))).toHaveLength(5);
    expect(recs.filter((r) => r.role === 'client' && r.dport === port(unlisted))).toHaveLength(0);
    expect(recs.filter((r) => r.role === 'server' && r.sport === 8080)).toHaveLength(3);
    const s = tracer.status();
    expect(s.lost.kernel.egressSkipped).toBe(5); // one per unlisted connect, never emitted
    expect(s.lost.kernel.eventsLost).toBe(0);
    // Packet tier: the same choice for flows.
    expect(flows.filter((f) => f.podRole === 'client' && f.peerPort === port(listed))).toHaveLength(5);
    expect(flows.filter((f) => f.peerPort === port(unlisted))).toHaveLength(0);
    expect(s.drained.flowsNotInEgressMatch).toBe(5);
  });

  it("reads Clovisor's request tags from the first request segment", () => {
    const inbound = flows.filter((f) => f.podRole === 'server' && f.podPort === 8080);
    expect(inbound).toHaveLength(3);
    for (const f of inbound) {
      expect(f).toMatchObject({
        requestLine: 'GET / HTTP/1.1',
        userAgent: 'chrome',
        host: 'www.sdc.com',
        requestId: REQUEST_ID,
        traceId: TRACE_ID,
        status: 200,
      });
    }
    const s = tracer.status();
    expect(s.lost.kernel.httpLost).toBe(0);
    expect(s.lost.kernel.httpSent).toBe(13); // one head per flow with a request: 3 inbound, 5 + 5 outbound (the packet tier filters when it drains)
  });

  it('exports them as span tags to a Jaeger collector (Thrift over HTTP)', async () => {
    await waitFor(
      'spans at the collector',
      async () => collector.thrift.flatMap((b) => b.spans).filter((x) => x.tags.useragent).length >= 3,
      10_000,
      100,
    );
    const spans = collector.thrift.flatMap((b) => b.spans);
    const inbound = spans.filter((x) => x.tags.dstport === '8080');
    expect(inbound).toHaveLength(3);
    expect(inbound[0].tags).toMatchObject({
      useragent: 'chrome',
      host: 'www.sdc.com',
      requestid: REQUEST_ID,
      traceid: TRACE_ID,
      reqmethod: 'GET',
      respstatuscode: '200',
      respproto: 'HTTP/1.1',
    });
    expect(inbound[0].tags.nodename).toBeTruthy();
    expect(spans.filter((x) => x.tags.dstport === unlisted.split(':')[1])).toHaveLength(0);
  });

  it('stop removes the readers, filters, qdiscs and pins it created', async () => {
    await tracer.stop();
    const hostNs = `/var/run/netns/${lab.host}`;
    const tc = (...a: string[]) => execFileSync('nsenter', [`--net=${hostNs}`, 'tc', ...a]).toString();
    expect(tc('-j', 'filter', 'show', 'dev', lab.workloads[0].hostVeth, 'ingress')).not.toContain(
      `"pref":${FILTER_PRIO}`,
    );
    expect(tc('qdisc', 'show', 'dev', lab.workloads[0].hostVeth)).not.toContain('clsact');
    expect(existsSync(pinRoot)).toBe(false);
  });
});
