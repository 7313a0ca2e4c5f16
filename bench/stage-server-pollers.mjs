/**
 * Worker thread of bench/stage-server.bench.ts: N pollers, each GETs a job status every `periodMs`
 * (phase-shifted so polls spread over the period, as independent Orca monitors do) and records latencies.
 */
import { setTimeout } from 'node:timers';
import { performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { Agent, request } from 'undici';

const { url, token, ids, pollers, periodMs, durationMs } = workerData;
const agent = new Agent({ connections: pollers, keepAliveTimeout: 60_000 });
const latencies = [];
let errors = 0;
const start = Date.now();
const end = start + durationMs;
// The first second opens the connections and warms the JIT: timed but not counted.
const warmupUntil = start + Math.min(1000, durationMs / 10);
const sleep = (ms) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

async function poller(i) {
  let next = Date.now() + (periodMs * i) / pollers;
  await sleep(next - Date.now());
  while (Date.now() < end) {
    const t = performance.now();
    try {
      const res = await request(`${url}/api/v1/jobs/${ids[i % ids.length]}`, {
        dispatcher: agent,
        headers: { authorization: `Bearer ${token}` },
      });
      await res.body.text();
      if (res.statusCode !== 200) errors++;
    } catch {
      errors++;
    }
    if (Date.now() > warmupUntil) latencies.push(performance.now() - t);
    next += periodMs;
    await sleep(next - Date.now());
  }
}

await Promise.all(Array.from({ length: pollers }, (_, i) => poller(i)));
await agent.close();
parentPort.postMessage({ latencies, errors });
