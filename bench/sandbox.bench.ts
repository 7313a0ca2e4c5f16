/**
 * Sandbox figures: time to `up`, end-to-end requests/s through ingress → proxy → lb → server, CPU ms the
 * sandbox spends per request, added latency per mesh hop at 1,000 req/s, and the trace store with
 * 1,000,000 spans (memory, query time). Targets are printed beside each figure; the machine's load is
 * printed too, since it is shared. The load generator runs in a child process (this same file with
 * `--loadgen`), so the CPU figure is the sandbox's alone.
 */
import { spawn } from 'node:child_process';
import { Agent, request } from 'node:http';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { startSandbox } from '../src/sandbox/index.js';
import { TraceStore } from '../src/sandbox/traces.js';

interface LoadJob {
  kind: 'throughput' | 'paced';
  url: string;
  durationS: number;
  connections: number;
  rate?: number;
}
interface LoadResult {
  rps: number;
  total: number;
  errors: number;
  non2xx: number;
  p50: number;
}

/** Paced GETs at `rate`/s over keep-alive, latencies in µs precision (autocannon rounds to whole ms). */
async function paced(job: LoadJob): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: job.connections });
  const u = new URL(job.url);
  const lat: number[] = [];
  let errors = 0;
  let non2xx = 0;
  const one = () =>
    new Promise<void>((resolve) => {
      const t = performance.now();
      const req = request({ agent, host: u.hostname, port: u.port, path: u.pathname }, (res) => {
        res.resume();
        res.on('end', () => {
          lat.push(performance.now() - t);
          if ((res.statusCode ?? 0) >= 300) non2xx++;
          resolve();
        });
      });
      req.on('error', () => {
        errors++;
        resolve();
      });
      req.end();
    });
  const inflight: Promise<void>[] = [];
  const t0 = performance.now();
  const n = Math.round(job.durationS * (job.rate ?? 1000));
  for (let i = 0; i < n; i++) {
    const due = t0 + (i * 1000) / (job.rate ?? 1000);
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    inflight.push(one());
  }
  await Promise.all(inflight);
  agent.destroy();
  lat.sort((a, b) => a - b);
  const s = (performance.now() - t0) / 1000;
  return {
    rps: lat.length / s,
    total: lat.length,
    errors,
    non2xx,
    p50: lat[Math.floor(lat.length / 2)] ?? NaN,
  };
}

async function loadgen(job: LoadJob): Promise<LoadResult> {
  if (job.kind === 'paced') return paced(job);
  const r = await autocannon({
    url: job.url,
    duration: job.durationS,
    connections: job.connections,
    pipelining: 1,
  });
  return {
    rps: r.requests.average,
    total: r.requests.total,
    errors: r.errors,
    non2xx: r.non2xx,
    p50: r.latency.p50,
  };
}

/** Runs the load in a child process; returns its result and the CPU this process (the sandbox) spent meanwhile. */
function remoteLoad(job: LoadJob): Promise<LoadResult & { cpuMs: number }> {
  return new Promise((resolve, reject) => {
    const cpu0 = process.cpuUsage();
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', fileURLToPath(import.meta.url), '--loadgen', JSON.stringify(job)],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.on('error', reject);
    child.on('close', (code) => {
      const cpu = process.cpuUsage(cpu0);
      if (code !== 0) return reject(new Error(`load generator exited ${code}`));
      resolve({
        ...(JSON.parse(out.trim().split('\n').pop()!) as LoadResult),
        cpuMs: (cpu.user + cpu.system) / 1000,
      });
    });
  });
}

const line = (name: string, value: string, target: string, ok: boolean) =>
  console.log(
    `${name.padEnd(46)} ${value.padStart(14)}   target ${target.padEnd(10)} ${ok ? 'ok' : 'MISSED'}`,
  );

if (process.argv[2] === '--loadgen') {
  console.log(JSON.stringify(await loadgen(JSON.parse(process.argv[3]) as LoadJob)));
  process.exit(0);
}

console.log(
  `load average ${loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')} on this machine`,
);
const t0 = performance.now();
const sb = await startSandbox();
const upMs = performance.now() - t0;
line('time to up all workloads', `${(upMs / 1000).toFixed(2)} s`, '≤ 3 s', upMs <= 3000);
try {
  const server = [...sb.core.mesh.instances.values()].find((i) => i.name === 'clover-server1')!;
  await remoteLoad({ kind: 'throughput', url: sb.urls.ingress + '/', durationS: 1, connections: 16 }); // warm-up
  const e2e = await remoteLoad({
    kind: 'throughput',
    url: sb.urls.ingress + '/',
    durationS: 5,
    connections: 32,
  });
  line('end-to-end req/s (ingress→proxy→lb→server)', `${Math.round(e2e.rps)}/s`, '≥ 3000/s', e2e.rps >= 3000);
  if (e2e.non2xx || e2e.errors)
    console.log(`  (${e2e.non2xx} non-2xx, ${e2e.errors} errors of ${e2e.total})`);
  const cpuPerReq = e2e.cpuMs / Math.max(1, e2e.total);
  console.log(
    `  sandbox CPU per request: ${cpuPerReq.toFixed(3)} ms (4 hops + the mirror copy to snort-ids; ${Math.round(e2e.cpuMs)} ms CPU for ${e2e.total} requests)`,
  );
  // Per-hop cost: p50 through the 4-hop path minus p50 straight to a server's sidecar, over 3 added hops.
  // 8 keep-alive connections carry 1,000 req/s at ~1 ms each (Little's law: ~1-2 in flight).
  const direct = await remoteLoad({
    kind: 'paced',
    url: `http://127.0.0.1:${server.port}/`,
    durationS: 3,
    connections: 8,
    rate: 1000,
  });
  const chain = await remoteLoad({
    kind: 'paced',
    url: sb.urls.ingress + '/',
    durationS: 3,
    connections: 8,
    rate: 1000,
  });
  const perHop = Math.max(0, (chain.p50 - direct.p50) / 3);
  line('added latency per mesh hop, p50 @1000 req/s', `${perHop.toFixed(3)} ms`, '≤ 1 ms', perHop <= 1);
  console.log(
    `  (p50 direct ${direct.p50.toFixed(3)} ms, through 4 hops ${chain.p50.toFixed(3)} ms; achieved ${Math.round(chain.rps)} req/s)`,
  );
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
    traceId: trace.toString(16),
    spanId: (i + 1).toString(16),
    parentSpanId: i % 5 ? i.toString(16) : undefined,
    service: services[i % 5],
    operation: `${services[i % 5]}.default.svc.cluster.local:9180/*`,
    startUs: 1.7e15 + i * 10,
    durationUs: 100 + (i % 1000),
    nodeId: `sidecar~127.0.0.1~${services[i % 5]}-abc.default~default.svc.cluster.local`,
    url: `http://proxy-access-control:9180/p${i % 50}`,
    method: 'GET',
    statusCode: i % 100 === 0 ? 503 : 200,
    userAgent: 'jmeter/5',
    upstreamCluster: `inbound|9180||${services[i % 5]}.default.svc.cluster.local`,
    requestSize: 0,
    responseSize: 120,
    requestId: `00000000-0000-4000-a000-${trace.toString(16).padStart(12, '0')}`,
  });
}
const addS = (performance.now() - tAdd) / 1000;
global.gc?.();
const after = process.memoryUsage();
const mb = (after.heapUsed + after.arrayBuffers - before.heapUsed - before.arrayBuffers) / 1e6;
line('trace store memory, 1,000,000 spans', `${mb.toFixed(0)} MB`, 'bounded', true);
console.log(
  `  (${Math.round(1_000_000 / addS)} spans/s ingested; capacity fixed at 1,000,000 spans, oldest evicted first)`,
);
const q = (label: string, fn: () => unknown) => {
  const t = performance.now();
  fn();
  const ms = performance.now() - t;
  line(`query: ${label}`, `${ms.toFixed(1)} ms`, '≤ 100 ms', ms <= 100);
};
q('service, newest 20 traces', () =>
  store.find({ service: 'http-lb', limit: 20 }).map((id) => store.trace(id)),
);
q('service + http.status_code=503, 100', () =>
  store
    .find({ service: 'http-lb', tags: { 'http.status_code': '503' }, limit: 100 })
    .map((id) => store.trace(id)),
);
q('no match (full scan)', () => store.find({ service: 'http-lb', minDurationUs: 1e9 }));
q('service + time window, 1000 traces', () =>
  store
    .find({ service: 'clover-server1', startUs: 1.7e15, endUs: 1.7e15 + 5e6, limit: 1000 })
    .map((id) => store.trace(id)),
);
