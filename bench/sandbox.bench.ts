/**
 * Sandbox figures: time to `up`, end-to-end requests/s through ingress → proxy → lb → server, added
 * latency per mesh hop at 1,000 req/s, and the trace store with 1,000,000 spans (memory, query time).
 * Targets are printed beside each figure; the machine's load is printed too, since it is shared.
 */
import { loadavg } from 'node:os';
import autocannon from 'autocannon';
import { startSandbox } from '../src/sandbox/index.js';
import { TraceStore } from '../src/sandbox/traces.js';

const line = (name: string, value: string, target: string, ok: boolean) =>
  console.log(`${name.padEnd(44)} ${value.padStart(14)}   target ${target.padEnd(10)} ${ok ? 'ok' : 'MISSED'}`);

async function cannon(url: string, opts: { durationS: number; connections: number; rate?: number }) {
  const r = await autocannon({ url, duration: opts.durationS, connections: opts.connections, overallRate: opts.rate, pipelining: 1 });
  return { rps: r.requests.average, p50: r.latency.p50, non2xx: r.non2xx, errors: r.errors, total: r.requests.total };
}

console.log(`load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} on this machine`);
const t0 = performance.now();
const sb = await startSandbox();
const upMs = performance.now() - t0;
line('time to up all workloads', `${(upMs / 1000).toFixed(2)} s`, '≤ 3 s', upMs <= 3000);
try {
  const server = [...sb.core.mesh.instances.values()].find((i) => i.name === 'clover-server1')!;
  await cannon(sb.urls.ingress + '/', { durationS: 1, connections: 16 }); // warm-up
  const e2e = await cannon(sb.urls.ingress + '/', { durationS: 5, connections: 32 });
  line('end-to-end req/s (ingress→proxy→lb→server)', `${Math.round(e2e.rps)}/s`, '≥ 3000/s', e2e.rps >= 3000);
  if (e2e.non2xx || e2e.errors) console.log(`  (${e2e.non2xx} non-2xx, ${e2e.errors} errors of ${e2e.total})`);
  // Per-hop cost: p50 through the 4-hop path minus p50 straight to a server's sidecar, over 3 added hops.
  const direct = await cannon(`http://127.0.0.1:${server.port}/`, { durationS: 3, connections: 8, rate: 1000 });
  const chain = await cannon(sb.urls.ingress + '/', { durationS: 3, connections: 8, rate: 1000 });
  const perHop = Math.max(0, (chain.p50 - direct.p50) / 3);
  line('added latency per mesh hop, p50 @1000 req/s', `${perHop.toFixed(2)} ms`, '≤ 1 ms', perHop <= 1);
  console.log(`  (p50 direct ${direct.p50} ms, through 4 hops ${chain.p50} ms)`);
} finally {
  await sb.stop();
}

global.gc?.();
const before = process.memoryUsage();
const store = new TraceStore(1_000_000);
const services = ['istio-ingressgateway', 'proxy-access-control', 'http-lb', 'clover-server1', 'snort-ids'];
const tAdd = performance.now();
for (let i = 0; i < 1_000_000; i++) {
  const trace = Math.floor(i / 5);
  store.add({
    traceId: trace.toString(16), spanId: (i + 1).toString(16), parentSpanId: i % 5 ? i.toString(16) : undefined,
    service: services[i % 5], operation: `${services[i % 5]}.default.svc.cluster.local:9180/*`, startUs: 1.7e15 + i * 10, durationUs: 100 + (i % 1000),
    nodeId: `sidecar~127.0.0.1~${services[i % 5]}-abc.default~default.svc.cluster.local`, url: `http://proxy-access-control:9180/p${i % 50}`, method: 'GET',
    statusCode: i % 100 === 0 ? 503 : 200, userAgent: 'jmeter/5', upstreamCluster: `inbound|9180||${services[i % 5]}.default.svc.cluster.local`,
    requestSize: 0, responseSize: 120, requestId: `00000000-0000-4000-a000-${trace.toString(16).padStart(12, '0')}`,
  });
}
const addS = (performance.now() - tAdd) / 1000;
global.gc?.();
const after = process.memoryUsage();
const mb = (after.heapUsed + after.arrayBuffers - before.heapUsed - before.arrayBuffers) / 1e6;
line('trace store memory, 1,000,000 spans', `${mb.toFixed(0)} MB`, 'bounded', true);
console.log(`  (${Math.round(1_000_000 / addS)} spans/s ingested; capacity fixed at 1,000,000 spans, oldest evicted first)`);
const q = (label: string, fn: () => unknown) => {
  const t = performance.now();
  fn();
  const ms = performance.now() - t;
  line(`query: ${label}`, `${ms.toFixed(1)} ms`, '≤ 100 ms', ms <= 100);
};
q('service, newest 20 traces', () => store.find({ service: 'http-lb', limit: 20 }).map((id) => store.trace(id)));
q('service + http.status_code=503, 100', () => store.find({ service: 'http-lb', tags: { 'http.status_code': '503' }, limit: 100 }).map((id) => store.trace(id)));
q('no match (full scan)', () => store.find({ service: 'http-lb', minDurationUs: 1e9 }));
q('service + time window, 1000 traces', () => store.find({ service: 'clover-server1', startUs: 1.7e15, endUs: 1.7e15 + 5e6, limit: 1000 }).map((id) => store.trace(id)));
