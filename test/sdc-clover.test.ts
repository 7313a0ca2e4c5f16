import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as yaml from 'js-yaml';
import { Redis } from 'ioredis';
import { startSandbox, type Sandbox } from '../src/sandbox/index.js';
import { createSdcClient } from '../src/services/sdc.js';
import { parseCloverIdsRule, parseCloverServer } from '../src/services/sdc-clover.js';
import { cloverSdcBackend } from '../src/server/clover-sdc.js';
import { startStageService, type StageService } from '../src/server/index.js';
import { runCli } from './helpers/cli.js';
import { waitFor } from './helpers/ports.js';
import { startRedis, type RedisFixture } from './helpers/redis.js';
import { diff, scrape, sendRequests } from './helpers/sandbox-load.js';

/** cloverctl's SDC verbs (clover-cd sdc …) and the controller's /nginx, /snort routes, on Clover's own files. */
let redis: RedisFixture;
let client: Redis;
let sb: Sandbox;
let svc: StageService;
const dir = mkdtempSync(join(tmpdir(), 'sdc-clover-'));
const stateDir = join(dir, 'state');

beforeAll(async () => {
  redis = await startRedis();
  client = new Redis(redis.url);
  sb = await startSandbox({ redisUrl: redis.url });
  // The CLI finds a sandbox through its state file, as `sandbox up --detach` writes it.
  const { mkdirSync } = await import('node:fs');
  mkdirSync(stateDir);
  writeFileSync(
    join(stateDir, 'sandbox.json'),
    JSON.stringify({
      pid: process.pid,
      urls: sb.urls,
      token: sb.core.adminToken,
      startedAt: new Date().toISOString(),
      netns: false,
    }),
  );
  svc = await startStageService({
    port: 0,
    host: '127.0.0.1',
    registry: {},
    auth: { token: 't' },
    clover: cloverSdcBackend({ sdcAddress: sb.urls.grpc, redisUrl: redis.url }),
    cloverRoutesOpen: true,
  });
  // All of http-lb's traffic to v2, so v2's backends are what the ingress sees.
  await sb.platform.apply([
    {
      apiVersion: 'networking.istio.io/v1beta1',
      kind: 'VirtualService',
      metadata: { name: 'http-lb', namespace: 'default' },
      spec: { hosts: ['http-lb'], http: [{ route: [{ destination: { host: 'http-lb', subset: 'v2' } }] }] },
    },
  ]);
});
afterAll(async () => {
  await svc?.stop();
  await sb?.stop();
  client?.disconnect();
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const sdc = (...args: string[]) => runCli(['sdc', ...args, '--state-dir', stateDir]);
const call = async (method: string, path: string, body?: unknown) => {
  const r = await fetch(`${svc.url}${path}`, {
    method,
    headers: body ? { 'content-type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: r.status, text: await r.text() };
};
const servers = () =>
  scrape(
    sb.urls.metrics,
    'istio_requests_total',
    { reporter: 'destination', source_workload: 'http-lb-v2' },
    'destination_workload',
  );
const served = (bodies: Map<string, number>) => Object.fromEntries([...bodies].sort());

describe('clover-cd sdc (cloverctl verbs)', () => {
  it("set lb -f lbv2.yaml: http-lb-v2's backends move to clover-server4/5, seen in the traffic", async () => {
    const before = await sendRequests(`${sb.urls.ingress}/`, 6, { concurrency: 1 });
    expect(served(before.bodies)).toEqual({ 'clover-server1': 2, 'clover-server2': 2, 'clover-server3': 2 });
    const r = await sdc('set', 'lb', '-f', 'examples/clover/lbv2.yaml');
    expect([r.code, r.stdout.trim()]).toEqual([
      0,
      'Modified nginx config: http-lb-v2 → clover-server4, clover-server5',
    ]);
    const m0 = await servers();
    const after = await sendRequests(`${sb.urls.ingress}/`, 20, { concurrency: 4 });
    expect(after.codes).toEqual({ 200: 20 });
    expect(served(after.bodies)).toEqual({ 'clover-server4': 10, 'clover-server5': 10 });
    expect(diff(await servers(), m0)).toEqual({ 'clover-server4': 10, 'clover-server5': 10 });
  });

  it('create idsrules -f: a new rule raises snort_events entries in Redis for matching traffic; stop/start ids', async () => {
    const file = join(dir, 'idsrule_probe.yaml');
    writeFileSync(
      file,
      readFileSync('examples/clover/idsrule_scan.yaml', 'utf8')
        .replace('10000003', '10000042')
        .replace('asafaweb.com', 'clover-cd-probe')
        .replace(/^msg: .*$/m, 'msg: clover-cd probe'),
    );
    const r = await sdc('create', 'idsrules', '-f', file);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(
      'Added to local rules: alert tcp any any -> $HOME_NET any (msg:"clover-cd probe"; content:"clover-cd-probe"; sid:10000042; rev:1;)',
    );
    const eventsFor = async (sid: string) => {
      const ids = await client.smembers('snort_events');
      const sids = await Promise.all(ids.map((id) => client.hget(`snort_event:${id}`, 'signature-id')));
      return sids.filter((s) => s === sid).length;
    };
    await sendRequests(`${sb.urls.ingress}/`, 3, { headers: { 'user-agent': 'curl/8 clover-cd-probe' } });
    await sendRequests(`${sb.urls.ingress}/`, 3, { headers: { 'user-agent': 'curl/8' } });
    await waitFor('3 snort_events of sid 10000042', async () => (await eventsFor('10000042')) === 3);
    const [id] = (await client.smembers('snort_events')).sort((a, b) => Number(a) - Number(b));
    expect(await client.hgetall(`snort_event:${id}`)).toMatchObject({
      'signature-id': '10000042',
      'event-id': id,
      msg: 'clover-cd probe',
    });

    const stop = await sdc('stop', 'ids');
    expect([stop.code, stop.stdout.trim()]).toEqual([
      0,
      `Stopped Snort on pid: ${process.pid}, Cleared Snort logs`,
    ]);
    expect((await sdc('stop', 'ids')).stdout.trim()).toBe('Snort is not running');
    await sendRequests(`${sb.urls.ingress}/`, 3, { headers: { 'user-agent': 'clover-cd-probe' } });
    expect((await sdc('start', 'ids')).stdout.trim()).toBe(`Started Snort on pid: ${process.pid}`);
    expect((await sdc('start', 'ids')).stdout.trim()).toBe('Snort already running');
    await sendRequests(`${sb.urls.ingress}/`, 1, { headers: { 'user-agent': 'clover-cd-probe' } });
    await waitFor('the alert after the restart', async () => (await eventsFor('10000042')) === 4);
    expect(sb.core.ids.inspected).toBeGreaterThan(0);
  });

  it('set server -f server.yaml: locations and files become the server routes', async () => {
    const r = await sdc('set', 'server', '-f', 'examples/clover/server.yaml', '-o', 'json');
    expect(r.code).toBe(0);
    const routes = JSON.parse(r.stdout).routes.map((x: { path: string; prefix: boolean }) => [
      x.path,
      x.prefix,
    ]);
    expect(routes).toEqual([
      ['/clover/testurl', true],
      ['/clover/testurl/file1.png', false],
    ]);
  });

  it("exit 2 for a file that is not Clover's shape or names an unknown workload; 4 without a sandbox", async () => {
    const bad = join(dir, 'bad-lb.yaml');
    writeFileSync(bad, 'server_name: http-lb-v2\nlb_list:\n  - uri: clover-server4:9180\n');
    const r = await sdc('set', 'lb', '-f', bad);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('lb_list[0].url: missing');
    const unknown = join(dir, 'unknown-lb.yaml');
    writeFileSync(unknown, 'server_name: http-lb-v9\nlb_list:\n  - url: clover-server4:9180\n');
    expect((await sdc('set', 'lb', '-f', unknown)).code).toBe(2);
    expect((await runCli(['sdc', 'start', 'ids', '--state-dir', join(dir, 'none')])).code).toBe(4);
    const help = await runCli(['sdc', 'set', 'lb', '--help']);
    expect(help.stdout).toMatch(/Examples?:[\s\S]*lbv2\.yaml[\s\S]*Exit codes/);
  });
});

describe("the controller's /nginx and /snort routes", () => {
  it("/nginx/lb with lbv1's JSON moves v2 back to server1..3; Clover's 400 messages", async () => {
    const lbv1 = yaml.load(readFileSync('examples/clover/lbv1.yaml', 'utf8')) as Record<string, unknown>;
    expect(
      await call('POST', '/nginx/lb', { ...lbv1, server_name: 'http-lb-v2', lb_name: 'http-lb-v2.default' }),
    ).toEqual({ status: 200, text: 'Modified nginx config' });
    expect(served((await sendRequests(`${sb.urls.ingress}/`, 6, { concurrency: 1 })).bodies)).toEqual({
      'clover-server1': 2,
      'clover-server2': 2,
      'clover-server3': 2,
    });
    const missing = await call('POST', '/nginx/lb', { server_name: 'http-lb-v2' });
    expect(missing.status).toBe(400);
    expect(missing.text).toMatch(/^Invalid value in json\/yaml: .*lb_list/);
    const unknown = await call('POST', '/nginx/lb', {
      ...lbv1,
      server_name: 'http-lb-v2',
      lb_list: [{ url: 'nowhere:9180' }],
    });
    expect(unknown.status).toBe(400);
    expect(unknown.text).toMatch(/^Failed to modify nginx config: .*nowhere/);
  });

  it('/nginx/server, /snort/addrule, /snort/stop|start and /snort/get_events', async () => {
    const server = yaml.load(readFileSync('examples/clover/server.yaml', 'utf8'));
    expect(await call('POST', '/nginx/server', server)).toEqual({
      status: 200,
      text: 'Modified nginx config',
    });
    const c = createSdcClient(sb.urls.grpc);
    try {
      expect((await c.getRoutes('clover-server1')).routes.map((r) => r.path)).toEqual(
        parseCloverServer(server).routes.map((r) => r.path),
      );
    } finally {
      c.close();
    }
    const rule = yaml.load(readFileSync('examples/clover/idsrule_tcp.yaml', 'utf8')) as Record<
      string,
      unknown
    >;
    expect(parseCloverIdsRule(rule)).toMatchObject({ sid: 10000002, rev: 1, content: '' });
    expect(
      await call('POST', '/snort/addrule', {
        ...rule,
        sid: '10000077',
        msg: 'route probe',
        content: '"route-probe"',
      }),
    ).toEqual({ status: 200, text: 'Added to local rules' });
    expect((await call('POST', '/snort/addrule', { ...rule, protocol: 'sctp' })).status).toBe(400);
    expect((await call('GET', '/snort/stop')).text).toBe(
      `Stopped Snort on pid: ${process.pid}, Cleared Snort logs`,
    );
    expect((await call('GET', '/snort/start')).text).toBe(`Started Snort on pid: ${process.pid}`);
    await sendRequests(`${sb.urls.ingress}/route-probe`, 1);
    let key = '';
    await waitFor('an event of sid 10000077', async () => {
      for (const id of await client.smembers('snort_events'))
        if ((await client.hget(`snort_event:${id}`, 'signature-id')) === '10000077')
          key = `snort_event:${id}`;
      return Boolean(key);
    });
    // Clover's cloverctl sends this as a GET with a JSON body.
    expect(await call('POST', '/snort/get_events', { event_key: key, field: 'signature-id' })).toEqual({
      status: 200,
      text: '10000077',
    });
  });
});
