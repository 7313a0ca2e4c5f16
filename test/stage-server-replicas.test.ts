import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import * as yaml from 'js-yaml';
import {
  JobManager,
  RedisJobStore,
  startStageService,
  type JobStore,
  type StageOutcome,
  type StageRegistry,
} from '../src/server/index.js';
import type { ReleaseSpec } from '../src/spec/types.js';
import { waitFor } from './helpers/ports.js';
import { startRedis, type RedisFixture } from './helpers/redis.js';

/**
 * Replicas sharing jobs in a real redis-server: a finished job is never run again (mass cancel with two
 * replicas whose final writes are slower than a lease), a replica shutting down hands its jobs over at
 * once, a Redis restart without persistence is detected and its finished jobs written back, and a write queued
 * over such a restart does not hide the release lock it lost.
 */
const base = yaml.load(readFileSync('examples/sdc-canary.yaml', 'utf8')) as ReleaseSpec;
const specFor = (name: string): ReleaseSpec => ({ ...base, metadata: { name } });

let redis: RedisFixture;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

/** Stage functions that run until canceled (or released), recording every run. */
function recorder() {
  const runs: Array<{ jobId: string; attempt: number }> = [];
  const hold = (): StageRegistry['traffic'] => (_spec, _params, signal, _progress, ctx) => {
    runs.push({ jobId: ctx.jobId, attempt: ctx.attempt });
    return new Promise<StageOutcome>((_resolve, reject) =>
      signal.addEventListener('abort', () => reject(signal.reason), { once: true }),
    );
  };
  return { runs, registry: { traffic: hold(), gate: hold() } as StageRegistry };
}

/** A store whose final writes take longer than a lease (a loaded Redis during a mass cancel). */
function slowFinish(store: JobStore, delayMs: number): JobStore {
  return new Proxy(store, {
    get(target, key, receiver) {
      if (key === 'finish')
        return async (...a: Parameters<JobStore['finish']>) => (
          await new Promise((r) => setTimeout(r, delayMs)),
          target.finish(...a)
        );
      const v = Reflect.get(target, key, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

describe('a finished job is never run again', () => {
  it('mass cancel across two replicas on one Redis: every job runs once and ends CANCELED', async () => {
    // Long enough that a busy machine renews every lease in time (a 300 ms lease was lost under two busy
    // cores and its jobs ran again elsewhere); the final writes still take two leases.
    const leaseMs = 2_000;
    const { runs, registry } = recorder();
    const stores = await Promise.all(
      [0, 1].map(() => RedisJobStore.connect({ url: redis.url, prefix: 'mass:' })),
    );
    const managers = stores.map(
      (s, i) => new JobManager(slowFinish(s, 2 * leaseMs), registry, { replicaId: `replica-${i}`, leaseMs }),
    );
    managers.forEach((m) => m.start());
    try {
      const releases = Array.from({ length: 30 }, (_, i) => `mass-${i}`);
      const ids: string[] = [];
      for (const [i, release] of releases.entries()) {
        const r = await managers[i % 2].submit(release, 'traffic', specFor(release), { weight: 10 });
        if (!('job' in r)) throw new Error(`${release}: conflict`);
        ids.push(r.job.id);
      }
      await waitFor('every job running', async () => runs.length >= ids.length);
      // Cancel everything at once, half through each replica (the cancel reaches the owner over pub/sub).
      await Promise.all(releases.map((release, i) => managers[(i + 1) % 2].cancel(release)));
      await waitFor(
        'every job CANCELED in Redis',
        async () =>
          (await Promise.all(ids.map((id) => stores[0].get(id)))).every((j) => j?.status === 'CANCELED'),
        30_000,
      );
      await Promise.all(managers.map((m) => m.whenIdle()));
      // Several orphan scans on both replicas after the last final write, each long after any lease expired.
      const after = managers.map((m) => m.scans);
      await waitFor(
        'three more orphan scans on each replica',
        async () => managers.every((m, i) => m.scans >= after[i] + 3),
        10_000,
      );
      expect(runs).toHaveLength(ids.length);
      expect(new Set(runs.map((r) => r.jobId)).size).toBe(ids.length);
      expect(runs.every((r) => r.attempt === 1)).toBe(true);
      for (const id of ids) expect(await stores[1].get(id)).toMatchObject({ status: 'CANCELED', attempt: 1 });
    } finally {
      await Promise.all(managers.map((m) => m.stop()));
      await Promise.all(stores.map((s) => s.close()));
    }
  });
});

describe('graceful shutdown and Redis restarts', () => {
  it('a replica stopping (SIGTERM) hands its running job over: another adopts it long before the lease expires', async () => {
    // A lease far longer than any wait here: an adoption within the wait's bound can only be the handover.
    const leaseMs = 120_000;
    const { runs, registry } = recorder();
    const start = () =>
      startStageService({
        port: 0,
        host: '127.0.0.1',
        redisUrl: redis.url,
        redisPrefix: 'handover:',
        registry,
        auth: {},
        leaseMs,
      });
    const a = await start();
    const b = await start();
    try {
      const r = await a.jobs.submit('rel-handover', 'traffic', specFor('rel-handover'), { weight: 10 });
      if (!('job' in r)) throw new Error('conflict');
      await waitFor('the job runs on replica a', async () => runs.length === 1);
      const stoppedAt = Date.now();
      await a.stop();
      await waitFor('replica b adopted the job', async () => runs.length === 2, leaseMs / 4);
      expect(Date.now() - stoppedAt).toBeLessThan(leaseMs / 2);
      expect(runs[1]).toEqual({ jobId: r.job.id, attempt: 2 });
      expect(await b.jobs.get(r.job.id)).toMatchObject({
        status: 'RUNNING',
        attempt: 2,
        owner: b.jobs.replicaId,
      });
      await b.jobs.cancel('rel-handover');
      await b.jobs.whenIdle();
    } finally {
      await a.stop().catch(() => undefined);
      await b.stop();
    }
  });

  it('Redis restarting without persistence: warned at start and on restart, counted, finished jobs written back', async () => {
    const logs: string[] = [];
    const registry: StageRegistry = { gate: async () => ({ status: 'SUCCEEDED', message: 'judged' }) };
    const svc = await startStageService({
      port: 0,
      host: '127.0.0.1',
      redisUrl: redis.url,
      redisPrefix: 'lost:',
      registry,
      auth: {},
      leaseMs: 600,
      log: (l) => logs.push(l),
    });
    try {
      await waitFor('the persistence warning', async () =>
        logs.some((l) => l.includes('Redis has no persistence')),
      );
      const r = await svc.jobs.submit('rel-lost', 'gate', specFor('rel-lost'), {});
      if (!('job' in r)) throw new Error('conflict');
      await svc.jobs.whenIdle();
      expect(await svc.store.get(r.job.id)).toMatchObject({ status: 'SUCCEEDED' });
      await redis.restart(); // empty: the finished job is gone from Redis
      await waitFor(
        'the data loss detected',
        async () => logs.some((l) => /"level":"warn".*came back empty/.test(l)),
        15_000,
      );
      await waitFor(
        'the finished job written back',
        async () => (await svc.store.get(r.job.id))?.status === 'SUCCEEDED',
        15_000,
      );
      expect(await svc.metrics.registry.getSingleMetricAsString('clover_cd_redis_data_lost_total')).toMatch(
        /clover_cd_redis_data_lost_total 1/,
      );
    } finally {
      await svc.stop();
    }
  });
});

describe('a write that lands on a Redis restarted empty', () => {
  it('a progress save queued over the restart does not hide the lost release lock: the heartbeat restores it', async () => {
    const { runs, registry } = recorder();
    const store = await RedisJobStore.connect({ url: redis.url, prefix: 'queued:' });
    const manager = new JobManager(store, registry, { replicaId: 'replica-0', leaseMs: 600 });
    const raw = new Redis(redis.url);
    manager.start();
    try {
      const r = await manager.submit('rel-queued', 'traffic', specFor('rel-queued'), { weight: 10 });
      if (!('job' in r)) throw new Error('conflict');
      await waitFor('the job runs', async () => runs.length === 1);
      // The restart and a save queued over it, landing before any heartbeat: the job and its owner come back,
      // its release lock and its place among active jobs do not.
      const [job, owner] = await raw.mget(`queued:job:${r.job.id}`, `queued:owner:${r.job.id}`);
      await raw
        .multi()
        .flushdb()
        .set(`queued:job:${r.job.id}`, job!)
        .set(`queued:owner:${r.job.id}`, owner!)
        .exec();
      await waitFor(
        'the release lock written back',
        async () => (await store.activeJobId('rel-queued')) === r.job.id,
      );
      expect(await raw.sismember('queued:active', r.job.id)).toBe(1);
      expect(runs).toHaveLength(1);
      await manager.cancel('rel-queued');
      await manager.whenIdle();
    } finally {
      await manager.stop();
      await store.close();
      raw.disconnect();
    }
  });
});

describe('the dashboard list is shared by replicas', () => {
  it('a replica lists the releases another replica ran jobs for, most recent first', async () => {
    const { registry } = recorder();
    const stores = await Promise.all(
      [0, 1].map(() => RedisJobStore.connect({ url: redis.url, prefix: 'list:' })),
    );
    const [a, b] = stores.map(
      (s, i) => new JobManager(s, registry, { replicaId: `list-${i}`, leaseMs: 2000 }),
    );
    try {
      for (const release of ['list-one', 'list-two']) {
        const r = await a.submit(release, 'traffic', specFor(release), { step: 1 });
        expect('job' in r).toBe(true);
      }
      expect(await b.store.releases(10)).toEqual(['list-two', 'list-one']);
    } finally {
      await Promise.all([a, b].map((m) => m.stop()));
      await Promise.all(stores.map((s) => s.close()));
    }
  });
});
