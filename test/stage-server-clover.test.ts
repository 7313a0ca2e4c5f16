import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import * as yaml from 'js-yaml';
import { startSandbox, type Sandbox } from '../src/sandbox/index.js';
import { cloverBackend } from '../src/server/clover-backend.js';
import { CLOVER_JTL_COLUMNS } from '../src/server/clover-jmeter.js';
import { startStageService, type StageService } from '../src/server/index.js';
import { waitFor } from './helpers/ports.js';
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
    expect(started.text).toMatch(/^Started jmeter on pid: \d+$/);
    // During the run the routes give what there is so far. A "summary =" line alone does not mark the end: on
    // a slow machine JMeter also writes interim ones (every 5 s), and it flushes the JTL in its own end-of-test
    // listener. The run has ended when the final summary counts every sample and the JTL holds them all.
    const samples = 2 * 3 * 2; // threads × loops × URLs
    let results = '';
    const rowsOf = (text: string) => text.trim().split('\n').slice(2); // message line, JTL header, samples
    await waitFor(
      `the end of the run: ${samples} samples in the final summary and in the JTL`,
      async () =>
        new RegExp(`summary =\\s+${samples} in `).test((await call('GET', '/jmeter/results/log')).text) &&
        rowsOf((results = (await call('GET', '/jmeter/results/results')).text)).length >= samples,
      30_000,
      100,
    );
    expect(results.split('\n')[1]).toBe(CLOVER_JTL_COLUMNS.join(','));
    const rows = rowsOf(results);
    expect(rows).toHaveLength(samples);
    expect(rows.every((r) => r.split(',')[3] === '200')).toBe(true);
    const log = await call('GET', '/jmeter/results/log');
    expect(log.text).toMatch(/summary =\s+12 in /);
  });

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
    // Each run ends with its own final summary (4 samples; interim summaries may come before it) and the JTL
    // holds both runs under one header.
    let rows: string[] = [];
    await waitFor(
      'both runs finished: each final summary, and their 8 samples in the JTL',
      async () =>
        ((await call('GET', '/jmeter/results/log')).text.match(/summary =\s+4 in /g) ?? []).length >= 2 &&
        (rows = (await call('GET', '/jmeter/results/results')).text.trim().split('\n')).length - 2 >= 8,
      60_000,
      200,
    );
    expect(rows.filter((r) => r.startsWith('timeStamp,'))).toHaveLength(1);
    expect(rows.slice(2)).toHaveLength(2 * 1 * 2 * 2);
  });

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
