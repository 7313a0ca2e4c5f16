import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import * as yaml from 'js-yaml';
import { startSandbox, type Sandbox } from '../src/sandbox/index.js';
import { cloverBackend } from '../src/server/clover-backend.js';
import { CLOVER_JTL_COLUMNS } from '../src/server/clover-jmeter.js';
import { startStageService, type StageService } from '../src/server/index.js';
import { ended, waitFor } from './helpers/ports.js';
import { startRedis, type RedisFixture } from './helpers/redis.js';

/** Clover controller routes kept for existing scripts (cloverctl), answered by clover-cd's own modules. */
let redis: RedisFixture;
let sb: Sandbox;
let svc: StageService;
const TOKEN = 'clover-routes-token-1';

beforeAll(async () => {
  redis = await startRedis();
  sb = await startSandbox();
  svc = await startStageService({
    port: 0,
    host: '127.0.0.1',
    registry: {},
    auth: { token: TOKEN },
    clover: cloverBackend({ platform: sb.platform, redisUrl: redis.url }),
    cloverRoutesOpen: true,
  });
});
afterAll(async () => {
  await svc?.stop();
  await sb?.stop();
  await redis?.stop();
});

const call = async (method: string, path: string, body?: unknown) => {
  const r = await fetch(`${svc.url}${path}`, {
    method,
    headers: body ? { 'content-type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: r.status, text: await r.text() };
};

describe("Clover's controller routes", () => {
  it('/jmeter/gen → /jmeter/start → /jmeter/results/{results,log}, through the sandbox ingress', async () => {
    // cloverctl converts the YAML plan to JSON and POSTs it; this is Clover's own sample, made small.
    const plan = yaml.load(readFileSync('examples/jmeter_testplan.yaml', 'utf8')) as {
      load_spec: Record<string, number>;
    };
    plan.load_spec = { num_threads: 2, loops: 3, ramp_time: 0, duration: 3 };
    expect(await call('POST', '/jmeter/gen', plan)).toEqual({ status: 200, text: 'Generated test plan' });
    const started = await call('POST', '/jmeter/start');
    expect(started.status).toBe(200);
    const pid = Number(/^Started jmeter on pid: (\d+)$/.exec(started.text)?.[1]);
    expect(pid).toBeGreaterThan(0);
    // The run has ended when JMeter has: it writes its final summary and flushes the JTL in its own
    // end-of-test listener, before exiting. The bound is wide: a fixed 30 s once ran out in a busy full run.
    await waitFor(`JMeter (pid ${pid}) to end its run`, ended(pid), 150_000, 200);
    const samples = 2 * 3 * 2; // threads × loops × URLs
    const rowsOf = (text: string) => text.trim().split('\n').slice(2); // message line, JTL header, samples
    const results = (await call('GET', '/jmeter/results/results')).text;
    expect(results.split('\n')[1]).toBe(CLOVER_JTL_COLUMNS.join(','));
    const rows = rowsOf(results);
    expect(rows).toHaveLength(samples);
    expect(rows.every((r) => r.split(',')[3] === '200')).toBe(true);
    const log = await call('GET', '/jmeter/results/log');
    expect(log.text).toMatch(new RegExp(`summary =\\s+${samples} in `));
  }, 180_000);

  it('a second start during a run starts another run beside it, as Clover did; results hold both runs', async () => {
    const plan = yaml.load(readFileSync('examples/jmeter_testplan.yaml', 'utf8')) as {
      load_spec: Record<string, number>;
    };
    plan.load_spec = { num_threads: 1, loops: 2, ramp_time: 0, duration: 10 };
    expect((await call('POST', '/jmeter/gen', plan)).text).toBe('Generated test plan');
    const [a, b] = [await call('POST', '/jmeter/start'), await call('POST', '/jmeter/start')];
    const pids = [a.text, b.text].map((t) => Number(/^Started jmeter on pid: (\d+)$/.exec(t)?.[1]));
    expect(pids.every((p) => p > 0)).toBe(true);
    expect(pids[0]).not.toBe(pids[1]);
    const runsEnded = pids.map(ended);
    await waitFor(
      `both JMeter runs (pids ${pids.join(', ')}) to end`,
      async () => (await Promise.all(runsEnded.map((e) => e()))).every(Boolean),
      150_000,
      200,
    );
    // Each run ended with its own final summary (4 samples) and the JTL holds both runs under one header.
    expect((await call('GET', '/jmeter/results/log')).text.match(/summary =\s+4 in /g)).toHaveLength(2);
    const rows = (await call('GET', '/jmeter/results/results')).text.trim().split('\n');
    expect(rows.filter((r) => r.startsWith('timeStamp,'))).toHaveLength(1);
    expect(rows.slice(2)).toHaveLength(2 * 1 * 2 * 2);
  }, 180_000);

  it("a plan without its required keys is 400 with Clover's message", async () => {
    const r = await call('POST', '/jmeter/gen', { load_spec: { num_threads: 1 }, url_list: [] });
    expect(r.status).toBe(400);
    expect(r.text).toMatch(/^Invalid value in test plan json\/yaml/);
  });

  it('/visibility/clear and /visibility/get/stats/{system|all} use the visibility keys in Redis', async () => {
    expect(await call('GET', '/visibility/clear')).toEqual({
      status: 200,
      text: 'Truncated visibility tables',
    });
    const system = JSON.parse((await call('GET', '/visibility/get/stats/system')).text);
    expect(system).toEqual({ trace_count: '0', span_count: '0', metric_count: '0' });
    const all = JSON.parse((await call('POST', '/visibility/get/stats/all', { stat_type: 'all' })).text);
    expect(all).toHaveProperty('response_times');
    expect(all).toHaveProperty('user_agent_count');
    expect((await call('GET', '/visibility/get/stats/nope')).status).toBe(400);
  });

  it('the job API still needs credentials when Clover routes are open', async () => {
    expect((await call('GET', '/api/v1/jobs/x')).status).toBe(401);
  });
});
