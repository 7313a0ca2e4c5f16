import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import * as yaml from 'js-yaml';
import { runWebhookStage, type WebhookStage } from '../src/pipelines/local-run/webhook.js';
import {
  signBody,
  startStageService,
  type StageOutcome,
  type StageRegistry,
  type StageService,
} from '../src/server/index.js';
import type { ReleaseSpec } from '../src/spec/types.js';
import { freePort, waitFor } from './helpers/ports.js';
import { startRedis, type RedisFixture } from './helpers/redis.js';

/**
 * The stage server driven as Orca's webhook stage drives it: create call → 202 + statusUrl, polls of
 * statusJsonPath until a success / terminal / canceled status, the cancel endpoint. Job state in a real
 * redis-server; Redis and the server are restarted mid-job.
 */
const TOKEN = 'tok-3f9a1c77e2b54d0c';
const SECRET = 'hmac-5e1d2b8c9a7f4e60';
const baseSpec = yaml.load(readFileSync('examples/sdc-canary.yaml', 'utf8')) as ReleaseSpec;
const specFor = (name: string): ReleaseSpec => ({ ...baseSpec, metadata: { name } });

/** Stage functions whose end the test decides: each run waits for `finish(release, outcome)`. */
const pending = new Map<string, { resolve: (o: StageOutcome) => void; promise: Promise<StageOutcome> }>();
const runs: Array<{ release: string; action: string; weight?: number }> = [];
function outcomeFor(release: string) {
  let e = pending.get(release);
  if (!e) {
    let resolve!: (o: StageOutcome) => void;
    const promise = new Promise<StageOutcome>((r) => (resolve = r));
    e = { resolve, promise };
    pending.set(release, e);
  }
  return e;
}
const finish = (release: string, o: StageOutcome) => outcomeFor(release).resolve(o);
const controlled =
  (action: string): StageRegistry['traffic'] =>
  (spec, params, signal, progress) => {
    runs.push({ release: spec.metadata.name, action, weight: params.weight });
    progress(`${action} ${params.weight ?? ''}% running`.replace(' %', ''));
    return new Promise<StageOutcome>((resolve, reject) => {
      signal.addEventListener('abort', () => reject(signal.reason), { once: true });
      outcomeFor(spec.metadata.name).promise.then(resolve);
    });
  };
const registry: StageRegistry = {
  traffic: controlled('traffic'),
  gate: controlled('gate'),
  promote: controlled('promote'),
};

let redis: RedisFixture;
let svc: StageService;
const logs: string[] = [];
const start = async (port = 0, leaseMs = 600) =>
  startStageService({
    port,
    host: '127.0.0.1',
    redisUrl: redis.url,
    redisPrefix: 'test:',
    registry,
    auth: { token: TOKEN, hmacSecret: SECRET },
    leaseMs,
    log: (l) => logs.push(l),
    maxBodyBytes: 64 * 1024,
    contentDir: 'examples',
  });

const bearer = { Authorization: `Bearer ${TOKEN}` };
const post = (path: string, body: unknown, headers: Record<string, string> = bearer) =>
  fetch(`${svc.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

/** The webhook stage exactly as the pipeline generator emits it (contract [E]). */
const webhookStage = (release: string, action: string, payload: Record<string, unknown>): WebhookStage => ({
  url: `${svc.url}/api/v1/releases/${release}/${action}`,
  method: 'POST',
  customHeaders: { Authorization: `Bearer ${TOKEN}` },
  payload: { spec: specFor(release), ...payload, execution: { id: '01HX', pipeline: 'http-lb canary' } },
  waitForCompletion: true,
  statusUrlResolution: 'webhookResponse',
  statusUrlJsonPath: '$.statusUrl',
  statusJsonPath: '$.status',
  progressJsonPath: '$.progress',
  successStatuses: 'SUCCEEDED',
  terminalStatuses: 'FAILED,INCONCLUSIVE,ERROR',
  canceledStatuses: 'CANCELED',
  cancelEndpoint: `${svc.url}/api/v1/releases/${release}/cancel`,
  cancelMethod: 'POST',
  failFastStatusCodes: [504],
});

const job = async (id: string) =>
  (await (await fetch(`${svc.url}/api/v1/jobs/${id}`, { headers: bearer })).json()) as Record<string, any>;
const untilRuns = (release: string, n: number) =>
  waitFor(`${n} run(s) of ${release}`, async () => runs.filter((r) => r.release === release).length >= n);

beforeAll(async () => {
  redis = await startRedis();
  svc = await start();
});
afterAll(async () => {
  for (const e of pending.values()) e.resolve({ status: 'SUCCEEDED' });
  await svc?.stop();
  await redis?.stop();
});

describe('stage server, as Orca calls it', () => {
  it('start → 202 with statusUrl; polling ends SUCCEEDED with progress and reports', async () => {
    const progress: string[] = [];
    const run = runWebhookStage(webhookStage('rel-ok', 'traffic', { weight: 10 }), {
      pollIntervalMs: 50,
      onProgress: (p) => progress.push(p),
    });
    await waitFor('progress seen by the poller', async () => progress.includes('traffic 10% running'));
    finish('rel-ok', {
      status: 'SUCCEEDED',
      message: 'http-lb at 10% v2, observed split verified',
      reports: { evidence: '/tmp/e.json' },
    });
    const r = await run;
    expect(r.status).toBe('SUCCEEDED');
    expect(r.message).toBe('http-lb at 10% v2, observed split verified');
    expect(progress).toContain('traffic 10% running');
    expect(runs).toContainEqual({ release: 'rel-ok', action: 'traffic', weight: 10 });
    expect(r.context.webhook.statusCodeValue).toBe(202);
    const body = (r.context.webhook as any).monitor.body;
    expect(body).toMatchObject({
      release: 'rel-ok',
      action: 'traffic',
      status: 'SUCCEEDED',
      reports: { evidence: '/tmp/e.json' },
      execution: { id: '01HX' },
    });
    expect(r.context.statusEndpoint).toBe(`${svc.url}/api/v1/jobs/${body.id}`);
  });

  it('a failed gate ends TERMINAL and the status carries the verdict', async () => {
    const run = runWebhookStage(webhookStage('rel-bad', 'gate', {}), { pollIntervalMs: 50 });
    await untilRuns('rel-bad', 1);
    const verdict = { outcome: 'fail' as const, summary: 'errorRate 12% > 1% on v2' };
    finish('rel-bad', { status: 'FAILED', verdict, message: verdict.summary });
    const r = await run;
    expect(r.status).toBe('TERMINAL');
    expect((r.context.webhook as any).monitor.body).toMatchObject({
      status: 'FAILED',
      verdict,
      progress: verdict.summary,
    });
  });

  it('canceling the execution calls the cancel endpoint and the job ends CANCELED', async () => {
    const ac = new AbortController();
    const run = runWebhookStage(webhookStage('rel-cancel', 'traffic', { weight: 50 }), {
      pollIntervalMs: 50,
      signal: ac.signal,
    });
    await untilRuns('rel-cancel', 1);
    ac.abort();
    const r = await run;
    expect(r.status).toBe('CANCELED');
    const id = (r.context.webhook as any).body.id;
    await waitFor('job canceled', async () => (await job(id)).status === 'CANCELED');
    // The release is free again.
    const next = await post('/api/v1/releases/rel-cancel/promote', { spec: specFor('rel-cancel') });
    expect(next.status).toBe(202);
    finish('rel-cancel', { status: 'SUCCEEDED' });
    await svc.jobs.whenIdle();
  });

  it('one active job per release: a second start gets 409 naming the active job', async () => {
    const first = await post('/api/v1/releases/rel-409/traffic', { spec: specFor('rel-409'), weight: 10 });
    expect(first.status).toBe(202);
    const { id } = (await first.json()) as { id: string };
    const second = await post('/api/v1/releases/rel-409/gate', { spec: specFor('rel-409') });
    expect(second.status).toBe(409);
    expect(await second.json()).toMatchObject({ activeJobId: id });
    finish('rel-409', { status: 'SUCCEEDED' });
    await waitFor('first job done', async () => (await job(id)).status === 'SUCCEEDED');
    pending.delete('rel-409');
    const third = await post('/api/v1/releases/rel-409/gate', { spec: specFor('rel-409') });
    expect(third.status).toBe(202);
    finish('rel-409', { status: 'SUCCEEDED' });
    await svc.jobs.whenIdle();
  });

  it('two releases run in parallel', async () => {
    const a = runWebhookStage(webhookStage('rel-a', 'traffic', { weight: 10 }), { pollIntervalMs: 50 });
    const b = runWebhookStage(webhookStage('rel-b', 'traffic', { weight: 50 }), { pollIntervalMs: 50 });
    await untilRuns('rel-a', 1);
    await untilRuns('rel-b', 1);
    expect(svc.jobs.activeCount).toBe(2); // both running at once
    finish('rel-b', { status: 'SUCCEEDED' });
    finish('rel-a', { status: 'INCONCLUSIVE', message: 'only 12 samples on v2 (need 50)' });
    const [ra, rb] = await Promise.all([a, b]);
    expect(rb.status).toBe('SUCCEEDED');
    expect(ra.status).toBe('TERMINAL');
    expect((ra.context.webhook as any).monitor.body.status).toBe('INCONCLUSIVE');
  });
});

describe('authentication, limits and validation', () => {
  const body = JSON.stringify({ spec: specFor('rel-auth'), weight: 10 });

  it('401 without credentials, 403 with a wrong token or signature; no secret in logs', async () => {
    const none = await post('/api/v1/releases/rel-auth/traffic', body, {});
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(
      (await post('/api/v1/releases/rel-auth/traffic', body, { Authorization: 'Bearer nope-nope' })).status,
    ).toBe(403);
    expect(
      (
        await post('/api/v1/releases/rel-auth/traffic', body, {
          'X-Clover-Signature': signBody('other-secret', body),
        })
      ).status,
    ).toBe(403);
    expect(
      (await post('/api/v1/releases/rel-auth/traffic', body, { 'X-Clover-Signature': 'sha256=zz' })).status,
    ).toBe(403);
    expect((await fetch(`${svc.url}/api/v1/jobs/whatever`)).status).toBe(401);
    // The body signed with the shared secret is accepted; a changed body with the same signature is not.
    const sig = signBody(SECRET, body);
    expect(
      (
        await post('/api/v1/releases/rel-auth/traffic', body.replace('"weight":10', '"weight":90'), {
          'X-Clover-Signature': sig,
        })
      ).status,
    ).toBe(403);
    const ok = await post('/api/v1/releases/rel-auth/traffic', body, { 'X-Clover-Signature': sig });
    expect(ok.status).toBe(202);
    finish('rel-auth', { status: 'SUCCEEDED' });
    await svc.jobs.whenIdle();
    expect(logs.join('\n')).toContain('401');
    expect(logs.join('\n')).not.toContain(TOKEN);
    expect(logs.join('\n')).not.toContain(SECRET);
  });

  it('400 names the field path, for the request and the embedded spec', async () => {
    const bad = async (release: string, action: string, b: unknown) => {
      const r = await post(`/api/v1/releases/${release}/${action}`, b);
      expect(r.status).toBe(400);
      return ((await r.json()) as { problems: Array<{ path: string; message: string }> }).problems;
    };
    expect(await bad('rel-v', 'traffic', { spec: specFor('rel-v'), weight: 150 })).toContainEqual(
      expect.objectContaining({ path: 'weight' }),
    );
    expect(await bad('rel-v', 'traffic', { spec: specFor('rel-v'), wieght: 10 })).toContainEqual(
      expect.objectContaining({ path: 'wieght', message: expect.stringContaining('did you mean "weight"') }),
    );
    expect(
      await bad('rel-v', 'traffic', {
        spec: { ...specFor('rel-v'), service: { ...baseSpec.service, port: 'http' } },
        weight: 5,
      }),
    ).toContainEqual(expect.objectContaining({ path: 'spec.service.port' }));
    expect(await bad('rel-v', 'gate', { spec: specFor('other-name') })).toContainEqual(
      expect.objectContaining({ path: 'spec.metadata.name' }),
    );
    expect(await bad('rel-v', 'traffic', { spec: specFor('rel-v') })).toContainEqual(
      expect.objectContaining({ path: 'weight' }),
    );
    expect(await bad('rel-v', 'explode', { spec: specFor('rel-v') })).toContainEqual(
      expect.objectContaining({ path: 'action' }),
    );
    expect(await bad('rel-v', 'gate', { spec: specFor('rel-v'), window: 'soon' })).toContainEqual(
      expect.objectContaining({ path: 'window' }),
    );
    const inline = (m: unknown) => ({
      ...specFor('rel-v'),
      service: { ...baseSpec.service, candidateManifests: [m] },
    });
    expect(await bad('rel-v', 'gate', { spec: inline({ kind: 'Deployment', metadata: {} }) })).toContainEqual(
      expect.objectContaining({
        path: 'spec.service.candidateManifests[0]',
        message: expect.stringContaining('apiVersion, metadata.name'),
      }),
    );
    expect(await bad('rel-v', 'gate', { spec: inline('k8s/not-on-this-server.yaml') })).toContainEqual(
      expect.objectContaining({ path: 'spec.service.candidateManifests[0]' }),
    );
    // the manifests a rendered pipeline inlines are accepted (the server has no checkout of the spec's repository)
    const manifest = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'http-lb-v2' } };
    const accepted = await post('/api/v1/releases/rel-inline/traffic', {
      spec: { ...inline(manifest), metadata: { name: 'rel-inline' } },
      weight: 5,
    });
    expect(accepted.status).toBe(202);
    finish('rel-inline', { status: 'SUCCEEDED' });
    const notJson = await post('/api/v1/releases/rel-v/gate', '{"spec":');
    expect(notJson.status).toBe(400);
  });

  it('413 on a body over the limit', async () => {
    const big = JSON.stringify({
      spec: { ...specFor('rel-big'), metadata: { name: 'rel-big', labels: { x: 'y'.repeat(100_000) } } },
    });
    expect((await post('/api/v1/releases/rel-big/gate', big)).status).toBe(413);
  });

  it('cancel of a release without an active job is 404; unknown job is 404', async () => {
    expect((await post('/api/v1/releases/rel-idle/cancel', {})).status).toBe(404);
    expect((await fetch(`${svc.url}/api/v1/jobs/nope`, { headers: bearer })).status).toBe(404);
  });
});

describe('restarts', () => {
  it('Redis restarting mid-job (without persistence) loses no job and keeps the release lock', async () => {
    const run = runWebhookStage(webhookStage('rel-redis', 'traffic', { weight: 10 }), {
      pollIntervalMs: 100,
    });
    await untilRuns('rel-redis', 1);
    await redis.restart(); // empty Redis: the server writes its running job back
    await waitFor(
      'job written back to Redis',
      async () => (await svc.store.get((await svc.store.activeJobId('rel-redis')) ?? '')) !== undefined,
      15_000,
    );
    expect((await post('/api/v1/releases/rel-redis/gate', { spec: specFor('rel-redis') })).status).toBe(409);
    finish('rel-redis', { status: 'SUCCEEDED', message: 'done after the outage' });
    const r = await run;
    expect(r.status).toBe('SUCCEEDED');
    expect(r.message).toBe('done after the outage');
    expect(runs.filter((x) => x.release === 'rel-redis')).toHaveLength(1); // the job was not run twice
  });

  it('the server restarting mid-job: the job is taken over and finishes; replicas share jobs', async () => {
    const port = await freePort();
    await svc.stop();
    svc = await start(port);
    const created = await post('/api/v1/releases/rel-restart/traffic', {
      spec: specFor('rel-restart'),
      weight: 50,
    });
    expect(created.status).toBe(202);
    const { id, statusUrl } = (await created.json()) as { id: string; statusUrl: string };
    await untilRuns('rel-restart', 1);
    await svc.stop(); // the process goes away mid-job: no final status is written
    svc = await start(port);
    await untilRuns('rel-restart', 2); // the restarted server took the orphaned job over
    const replica = await start(await freePort()); // a second replica sees the same job
    try {
      const seen = (await (
        await fetch(`${replica.url}/api/v1/jobs/${id}`, { headers: bearer })
      ).json()) as Record<string, unknown>;
      expect(seen).toMatchObject({ id, status: 'RUNNING', attempt: 2 });
      // Cancel through the replica stops the job on the other one.
      expect(
        (
          await fetch(`${replica.url}/api/v1/releases/rel-restart/cancel`, {
            method: 'POST',
            headers: bearer,
          })
        ).status,
      ).toBe(202);
      await waitFor(
        'canceled through the other replica',
        async () =>
          ((await (await fetch(statusUrl, { headers: bearer })).json()) as { status: string }).status ===
          'CANCELED',
      );
    } finally {
      await replica.stop();
    }
  });
});
