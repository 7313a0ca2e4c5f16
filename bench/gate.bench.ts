/**
 * Gate speed and memory: judging a bundle with 1,000,000 latency samples (target ≤ 1 s), and collecting a
 * window of 100,000 traces from a Jaeger-API server (paged by time; target peak RSS ≤ 200 MB).
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { createJaegerClient, forEachTrace, type JaegerTrace } from '../src/services/jaeger.js';
import { createTraceFolder } from '../src/validators/traces.js';
import { judgeBundle } from '../src/validators/verdict.js';
import type { EvidenceBundle } from '../src/validators/types.js';

let peakRss = process.memoryUsage().rss;
const sample = () => (peakRss = Math.max(peakRss, process.memoryUsage().rss));
let timer: NodeJS.Timeout;

const JAEGER_START = Date.parse('2024-01-01T00:00:00Z');
const JAEGER_WINDOW_MS = 600_000;

/** A Jaeger-API server over 100,000 generated traces (search by service, start, end, limit). */
async function serveJaeger(): Promise<void> {
  const TOTAL = 100_000;
  const start = JAEGER_START;
  const windowMs = JAEGER_WINDOW_MS;
  const startUsOf = (i: number) => (start + (i * windowMs) / TOTAL) * 1000;
  const trace = (i: number): JaegerTrace => {
    const id = i.toString(16).padStart(16, '0');
    const v = i % 10 === 0 ? 'v2' : 'v1';
    const span = (
      sid: string,
      parent: string | undefined,
      pid: string,
      node: string,
      off: number,
      dur: number,
    ) => ({
      traceID: id,
      spanID: sid,
      operationName: `${pid}.default.svc.cluster.local:9180/*`,
      processID: pid,
      references: parent ? [{ refType: 'CHILD_OF', traceID: id, spanID: parent }] : [],
      startTime: startUsOf(i) + off,
      duration: dur,
      tags: [
        { key: 'node_id', type: 'string', value: node },
        { key: 'http.url', type: 'string', value: `http://proxy-access-control:9180/url${i % 3}` },
        { key: 'http.status_code', type: 'string', value: '200' },
        { key: 'user_agent', type: 'string', value: i % 2 ? 'chrome' : 'safari' },
        { key: 'upstream_cluster', type: 'string', value: `inbound|9180||${pid}.default.svc.cluster.local` },
      ],
    });
    return {
      traceID: id,
      spans: [
        span(
          `${id.slice(0, 12)}0001`,
          undefined,
          'proxy-access-control',
          'sidecar~10.0.0.1~proxy-access-control-v1-a.default~default.svc.cluster.local',
          0,
          3000,
        ),
        span(
          `${id.slice(0, 12)}0002`,
          `${id.slice(0, 12)}0001`,
          'http-lb',
          `sidecar~10.0.0.2~http-lb-${v}-b.default~default.svc.cluster.local`,
          200,
          2000 + (i % 500),
        ),
        span(
          `${id.slice(0, 12)}0003`,
          `${id.slice(0, 12)}0002`,
          'clover-server1',
          'sidecar~10.0.0.3~clover-server1-c.default~default.svc.cluster.local',
          400,
          1000,
        ),
      ],
      processes: {
        'proxy-access-control': { serviceName: 'proxy-access-control' },
        'http-lb': { serviceName: 'http-lb' },
        'clover-server1': { serviceName: 'clover-server1' },
      },
    };
  };
  const server = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    if (u.pathname === '/api/services')
      return res.end(JSON.stringify({ data: ['proxy-access-control', 'http-lb', 'clover-server1'] }));
    const s = Number(u.searchParams.get('start'));
    const e = Number(u.searchParams.get('end'));
    const limit = Number(u.searchParams.get('limit') ?? 20);
    const first = Math.max(0, Math.ceil(((s / 1000 - start) * TOTAL) / windowMs));
    const data: JaegerTrace[] = [];
    for (let i = first; i < TOTAL && startUsOf(i) < e && data.length < limit; i++)
      if (startUsOf(i) >= s) data.push(trace(i));
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ data }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  process.stdout.write(`http://127.0.0.1:${(server.address() as AddressInfo).port}\n`);
}

async function main(): Promise<void> {
  timer = setInterval(sample, 20);
  // ---- 1. collect 100,000 traces through the Jaeger query API (the API server runs in a child process,
  // so the figure is the collector's own memory)
  {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', fileURLToPath(import.meta.url), 'jaeger-server'],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout!.once('data', (d) => resolve(String(d).trim()));
      child.once('exit', (code) => reject(new Error(`the Jaeger API server exited (${code})`)));
    });
    const start = JAEGER_START;
    const windowMs = JAEGER_WINDOW_MS;
    (globalThis as { gc?: () => void }).gc?.();
    const folder = createTraceFolder({
      service: 'http-lb',
      versions: ['v1', 'v2'],
      window: { start, end: start + windowMs },
      hops: ['proxy-access-control', 'http-lb'],
    });
    const t0 = performance.now();
    const stats = await forEachTrace(
      createJaegerClient(url),
      { service: 'proxy-access-control', startMs: start, endMs: start + windowMs },
      (t) => folder.add(t),
    );
    const ms = performance.now() - t0;
    sample();
    const ev = folder.evidence();
    child.kill();
    const mb = peakRss / 1024 / 1024;
    console.log(
      `collect 100,000 traces from the Jaeger API: ${stats.traces} traces in ${stats.pages} pages, ${(ms / 1000).toFixed(1)} s; peak RSS ${mb.toFixed(0)} MB (target ≤ 200 MB) ${mb <= 200 ? 'OK' : 'MISSED'}  [root spans ${ev.rootSpans}, v2 ${ev.versions.v2?.requests}]`,
    );
  }

  // ---- 2. judge 1,000,000 latency samples
  {
    const n = 500_000;
    const v1 = new Array<number>(n);
    const v2 = new Array<number>(n);
    let seed = 7;
    const rnd = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    for (let i = 0; i < n; i++) {
      v1[i] = Math.round(40 + rnd() * 30);
      v2[i] = Math.round(41 + rnd() * 30);
    }
    const counts = { requests: n, errors: 0, codes: { '200': n } };
    const bundle: EvidenceBundle = {
      kind: 'clover-cd/evidence',
      version: 1,
      createdAt: '',
      release: 'bench',
      service: { name: 'http-lb', namespace: 'default', stable: 'v1', candidate: 'v2' },
      window: { start: 0, end: 1 },
      candidateWeight: 50,
      minSamples: 100,
      rules: [
        { compareLatency: { alpha: 0.01 } },
        { tail: {} },
        { latency: { percentile: 99, max: '500ms' } },
        { split: {} },
        { compareErrors: {} },
      ],
      sources: [],
      evidence: {
        traces: {
          traces: 2 * n,
          spans: 2 * n,
          rootSpans: 2 * n,
          requests: [],
          hops: {},
          versions: { v1: counts, v2: counts },
          durations: { v1, v2 },
        },
      },
    };
    const t0 = performance.now();
    const v = judgeBundle(bundle);
    const ms = performance.now() - t0;
    console.log(
      `judge 1,000,000 latency samples: ${ms.toFixed(0)} ms (target ≤ 1000 ms) ${ms <= 1000 ? 'OK' : 'MISSED'}  [verdict ${v.outcome}]`,
    );
  }

  clearInterval(timer);
}

if (process.argv[2] === 'jaeger-server') await serveJaeger();
else await main();
