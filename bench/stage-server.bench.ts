/**
 * Stage server status polling: 200 concurrent pollers (Orca webhook monitors) GET /api/v1/jobs/{id} for
 * 60 s against jobs in a real redis-server. Prints throughput and latency percentiles with the target
 * (p99 ≤ 50 ms). STAGE_SERVER_BENCH_SECONDS shortens the run (e.g. 10 for a quick check).
 */
import autocannon from 'autocannon';
import { startStageService, type StageOutcome } from '../src/server/index.js';
import type { ReleaseSpec } from '../src/spec/types.js';
import { startRedis } from '../test/helpers/redis.js';
import { readFileSync } from 'node:fs';
import { setMaxListeners } from 'node:events';
import { Worker } from 'node:worker_threads';
import * as yaml from 'js-yaml';

const seconds = Number(process.env.STAGE_SERVER_BENCH_SECONDS ?? 60);
const pollers = Number(process.env.STAGE_SERVER_BENCH_POLLERS ?? 200);
const TOKEN = 'bench-token-0123456789';

const redis = await startRedis();
const release = new AbortController();
setMaxListeners(100, release.signal);
const svc = await startStageService({
  port: 0,
  host: '127.0.0.1',
  redisUrl: redis.url,
  auth: { token: TOKEN },
  contentDir: 'examples',
  registry: {
    // Jobs that stay RUNNING for the whole run, as a release step's load + gate would.
    traffic: (_spec, _p, signal, progress) =>
      new Promise<StageOutcome>((resolve) => {
        progress('holding traffic for the benchmark');
        const end = () => resolve({ status: 'SUCCEEDED' });
        signal.addEventListener('abort', end, { once: true });
        release.signal.addEventListener('abort', end, { once: true });
      }),
  },
});

const base = yaml.load(readFileSync('examples/sdc-canary.yaml', 'utf8')) as ReleaseSpec;
const ids: string[] = [];
for (let i = 0; i < 20; i++) {
  const name = `bench-${i}`;
  const r = await fetch(`${svc.url}/api/v1/releases/${name}/traffic`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ spec: { ...base, metadata: { name } }, weight: 10 }),
  });
  ids.push(((await r.json()) as { id: string }).id);
}

const requests = ids.map((id) => ({ method: 'GET' as const, path: `/api/v1/jobs/${id}` }));
const run = (duration: number) =>
  // autocannon's options beyond bench/autocannon.d.ts (workers, headers, requests) are documented ones.
  autocannon({
    url: svc.url,
    // The load generator runs in its own thread so it does not share the server's event loop.
    workers: 1,
    connections: pollers,
    duration,
    headers: { authorization: `Bearer ${TOKEN}` },
    requests,
  } as Parameters<typeof autocannon>[0]) as Promise<AutocannonResult>;
type AutocannonResult = Awaited<ReturnType<typeof autocannon>> & { non2xx: number; errors: number };
// Latency: every poller polls 10 times a second (Orca's monitor polls about once a second per stage),
// from a worker thread so the pollers do not share the server's event loop.
const periodMs = 100;
const pollRate = (pollers * 1000) / periodMs;
const paced = await new Promise<{ latencies: number[]; errors: number }>((resolve, reject) => {
  const w = new Worker(new URL('./stage-server-pollers.mjs', import.meta.url), {
    workerData: { url: svc.url, token: TOKEN, ids, pollers, periodMs, durationMs: seconds * 1000 },
  });
  w.once('message', resolve);
  w.once('error', reject);
});
const sorted = paced.latencies.sort((a, b) => a - b);
const pct = (q: number) =>
  Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] * 10) / 10;
// Throughput: the same pollers as fast as the server answers.
const saturated = await run(Math.min(10, seconds));
release.abort();
await svc.jobs.whenIdle();
await svc.stop();
await redis.stop();

const p99 = pct(0.99);
const errors = paced.errors + saturated.errors + saturated.non2xx;
const ok = p99 <= 50 && errors === 0;
console.log(`status polls: ${pollers} concurrent pollers against ${ids.length} running jobs in Redis`);
console.log(
  `  latency      ${seconds}s at ${pollRate} polls/s (${sorted.length} polls after a 1 s warm-up): p50 ${pct(0.5)} ms   p90 ${pct(0.9)} ms   p99 ${p99} ms   max ${pct(1)} ms   (target p99 ≤ 50 ms)`,
);
console.log(
  `  throughput   ${Math.round(saturated.requests.average)} polls/s with the ${pollers} pollers polling back to back (p99 ${saturated.latency.p99} ms)`,
);
console.log(`  errors       ${errors} (transport + non-2xx)`);
console.log(`  ${ok ? 'OK' : 'ABOVE TARGET'}`);
process.exit(ok ? 0 : 1);
