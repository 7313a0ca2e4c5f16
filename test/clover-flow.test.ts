import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as yaml from 'js-yaml';
import { startSandbox, type Sandbox } from '../src/sandbox/index.js';
import { cloverBackend } from '../src/server/clover-backend.js';
import { cloverCollectorBackend, type CloverCollectorBackend } from '../src/server/clover-collector.js';
import { CLOVER_JTL_COLUMNS } from '../src/server/clover-jmeter.js';
import { startStageService, type StageService } from '../src/server/index.js';
import { runCli } from './helpers/cli.js';
import { ended, waitFor } from './helpers/ports.js';
import { startRedis, type RedisFixture } from './helpers/redis.js';
import { sendRequests } from './helpers/sandbox-load.js';

/**
 * Clover's "integrate and validate" CI flow, played as an unmodified client would against `serve` + sandbox:
 * configure and start visibility, clear, generate and start a JMeter plan, poll trace_count until it reaches
 * the requests sent, read the results log and the JTL.
 */
let redis: RedisFixture;
let sb: Sandbox;
let svc: StageService;
let collector: CloverCollectorBackend;

beforeAll(async () => {
  redis = await startRedis();
  sb = await startSandbox();
  collector = cloverCollectorBackend({ platform: sb.platform, redisUrl: redis.url });
  svc = await startStageService({
    port: 0,
    host: '127.0.0.1',
    registry: {},
    auth: { token: 'flow-token' },
    clover: { ...cloverBackend({ platform: sb.platform, redisUrl: redis.url }), ...collector },
    cloverRoutesOpen: true,
  });
});
afterAll(async () => {
  await collector?.close();
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
const json = async (path: string) => JSON.parse((await call('GET', path)).text);
const docs = (file: string) => yaml.loadAll(readFileSync(file, 'utf8')) as Array<Record<string, unknown>>;

describe("Clover's integrate-and-validate flow against serve + sandbox", () => {
  it('trace_count reaches the requests JMeter sent within a few sampling intervals; the log ends with summary =', async () => {
    // cloverctl set visibility -f set_visibility.yaml; start visibility -f start_visibility.yaml (interval made 1 s)
    const [setVis] = docs('examples/clover/set_visibility.yaml');
    expect(await call('POST', '/visibility/set', setVis)).toEqual({
      status: 200,
      text: 'Updated visibility config',
    });
    expect(await json('/visibility/get/services')).toEqual({
      visibility_services: ['clover_server1', 'clover_server2', 'clover_server3', 'proxy_access_control'],
    });
    expect((await json('/visibility/get/all')).metric_prefixes).toEqual([
      'envoy_cluster_inbound_9180__',
      'envoy_cluster_outbound_9180__',
    ]);
    const [startVis] = docs('examples/clover/start_visibility.yaml');
    const started = await call('POST', '/collector/start', { ...startVis, sample_interval: '1' });
    expect(started).toEqual({ status: 200, text: `Started collector on pid: ${process.pid}` });
    expect(await call('GET', '/visibility/clear')).toEqual({
      status: 200,
      text: 'Truncated visibility tables',
    });

    // cloverctl create testplan -f jmeter_testplan.yaml (made small: 2 threads × 4 loops × 2 URLs = 16 requests)
    const plan = docs('examples/jmeter_testplan.yaml')[0] as {
      load_spec: Record<string, number>;
      url_list: Array<Record<string, string>>;
    };
    plan.load_spec = { num_threads: 2, loops: 4, ramp_time: 0, duration: 60 };
    plan.url_list = [
      {
        ...plan.url_list[0],
        name: 'url1',
        url: 'http://proxy-access-control.default:9180/',
        'user-agent': 'chrome',
      },
      {
        ...plan.url_list[0],
        name: 'url2',
        url: 'http://proxy-access-control.default:9180/shop',
        'user-agent': 'firefox',
      },
    ];
    const sent = 2 * 4 * 2;
    expect(await call('POST', '/jmeter/gen', plan)).toEqual({ status: 200, text: 'Generated test plan' });
    const start = await call('POST', '/jmeter/start');
    expect(start.status).toBe(200);
    const pid = Number(/^Started jmeter on pid: (\d+)$/.exec(start.text)?.[1]);
    expect(pid).toBeGreaterThan(0);
    const jmeterEnded = ended(pid);
    // While it runs, the results routes answer with what there is so far.
    expect((await call('GET', '/jmeter/results/log')).text).toMatch(/^Retrieved all results\n/);

    // JMeter writes its final summary and flushes the JTL in its own end-of-test listener, before exiting. The
    // bound is wide: a fixed 30 s once ran out in a busy full run.
    await waitFor(`JMeter (pid ${pid}) to end its run`, jmeterEnded, 150_000, 250);
    // The CI script's loop: poll the system stats until trace_count reaches the requests sent (bounded).
    let system: Record<string, string | null> = {};
    await waitFor(
      `trace_count = ${sent}`,
      async () => (system = await json('/visibility/get/stats/system')).trace_count === String(sent),
      30_000,
      250,
    );
    const log = (await call('GET', '/jmeter/results/log')).text;
    const lines = log.trim().split('\n');
    expect(lines[0]).toBe('Retrieved all results');
    expect(lines[lines.length - 1]).toMatch(new RegExp(`summary =\\s+${sent} in .*Err:\\s+0 \\(0\\.00%\\)`));

    // Counted once: two more sampling intervals later the count is the same.
    const cycles = collector.current()!.status().cycles;
    await waitFor(
      'two more collector cycles',
      async () => collector.current()!.status().cycles >= cycles + 2,
      10_000,
      100,
    );
    expect((await json('/visibility/get/stats/system')).trace_count).toBe(String(sent));
    expect(Number(system.span_count)).toBeGreaterThanOrEqual(sent * 5); // ingress, proxy, lb, server, snort-ids mirror

    const results = (await call('GET', '/jmeter/results/results')).text.trim().split('\n');
    expect(results[0]).toBe('Retrieved all results');
    expect(results[1]).toBe(CLOVER_JTL_COLUMNS.join(','));
    expect(results.slice(2)).toHaveLength(sent);
    expect(results.slice(2).every((r) => r.split(',')[3] === '200' && r.split(',')[7] === 'true')).toBe(true);

    const all = await json('/visibility/get/stats/all');
    const proxy = all.response_times.find((r: { name: string }) => r.name === 'proxy-access-control');
    expect(Number(proxy.avg)).toBeGreaterThan(0);
    expect(Number(proxy.min)).toBeLessThanOrEqual(Number(proxy.max));
    const agents = Object.fromEntries(all.user_agent_count);
    expect(agents.chrome).toBeGreaterThanOrEqual(8);
    expect(agents.firefox).toBeGreaterThanOrEqual(8);
    expect(all.status_codes).toContain('200');
    expect(all.request_url_count.some(([u]: [string]) => u.endsWith('/shop'))).toBe(true);

    expect(await call('GET', '/collector/stop')).toEqual({
      status: 200,
      text: `Stopped collector on pid: ${process.pid}`,
    });
    expect(await call('GET', '/collector/stop')).toEqual({ status: 200, text: 'Failed to stop collector' });
  }, 240_000);

  it('clover-cd visibility collect --sandbox --once: the same counting without the server', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vis-collect-'));
    try {
      writeFileSync(
        join(dir, 'sandbox.json'),
        JSON.stringify({
          pid: process.pid,
          urls: sb.urls,
          token: sb.core.adminToken,
          startedAt: new Date().toISOString(),
          netns: false,
        }),
      );
      const cli = (...args: string[]) => runCli(['visibility', ...args, '--redis', redis.url]);
      expect((await cli('clear')).code).toBe(0);
      await sendRequests(`${sb.urls.ingress}/collect`, 5, { concurrency: 1 });
      await waitFor(
        'trace_count 5 from the CLI collector',
        async () => {
          const r = await cli('collect', '--sandbox', dir, '--once', '-o', 'json');
          if (r.code !== 0) throw new Error(r.stderr);
          return (await json('/visibility/get/stats/system')).trace_count === '5';
        },
        30_000,
        200,
      );
      expect((await cli('collect', '--once')).code).toBe(2);
      const help = await runCli(['visibility', 'collect', '--help']);
      expect(help.stdout).toMatch(/Exit codes:[\s\S]*Examples:/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("Clover's 400s: /collector/set without services, a bad interval, an unknown config", async () => {
    expect(await call('POST', '/collector/set', { metric_prefixes: [] })).toEqual({
      status: 400,
      text: 'Specify at least one service to track',
    });
    expect((await call('POST', '/collector/start', { sample_interval: 'soon' })).status).toBe(400);
    expect((await call('GET', '/visibility/get/nope')).status).toBe(400);
  });
});
