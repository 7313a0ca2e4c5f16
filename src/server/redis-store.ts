// Over 400 lines: every job-store operation is a short Redis script or transaction; together they are the store's contract.
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { InfrastructureError } from '../util/errors.js';
import { redact } from '../util/redact.js';
import type { CreateResult, JobStore, ReconnectInfo, RenewResult } from './store.js';
import { fencingToken, StoreUnavailableError } from './store.js';
import type { Job } from './types.js';

/**
 * Jobs in Redis, shared by every replica of the stage server.
 *   <p>job:<id>       the job as JSON (expires `keepMs` after it finished)
 *   <p>owner:<id>     "<replica>:<attempt>", the fencing token every write is checked against
 *   <p>lease:<id>     exists while the owning replica is alive (renewed every lease/3)
 *   <p>release:<name> id of the release's active job: one active job per release, with an expiry as a backstop
 *   <p>active         set of active job ids (scanned for expired leases)
 *   <p>cancel:<id>    cancellation request; also published on <p>cancel for an immediate stop
 *   <p>jobs:<release> sorted set of the release's job ids by creation time (the newest 100; for listing)
 *   <p>epoch          random value set at first connect: gone or changed after a reconnect = Redis lost its data
 * Compound steps are Lua scripts, so they are atomic across replicas. Scripts only decode JSON (never
 * re-encode it), so the stored job is byte-for-byte what Node wrote.
 */
const CREATE = `
local cur = redis.call('GET', KEYS[1])
if cur then
  local j = redis.call('GET', ARGV[6] .. 'job:' .. cur)
  if j and cjson.decode(j).status == 'RUNNING' then return cur end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[5])
redis.call('SET', KEYS[2], ARGV[2])
redis.call('SET', KEYS[3], ARGV[3])
redis.call('SET', KEYS[4], ARGV[3], 'PX', ARGV[4])
redis.call('SADD', KEYS[5], ARGV[1])
redis.call('ZADD', KEYS[6], ARGV[7], ARGV[1])
redis.call('ZREMRANGEBYRANK', KEYS[6], 0, -101)
return ''`;

const SAVE = `
local v = redis.call('GET', KEYS[2])
if v and v ~= ARGV[2] then return 0 end
local cur = redis.call('GET', KEYS[1])
if cur and cjson.decode(cur).status ~= 'RUNNING' then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
if not v then redis.call('SET', KEYS[2], ARGV[2]) end
return 1`;

// A running job is among the active ones. A write that reached a Redis restarted empty (a progress save queued
// over the restart) brings back the job and its owner, not its release lock or that membership: missing too.
const RENEW = `
local v = redis.call('GET', KEYS[2])
if not v or redis.call('EXISTS', KEYS[3]) == 0 then return 2 end
if v ~= ARGV[1] then return 0 end
if redis.call('SISMEMBER', KEYS[4], ARGV[3]) == 0 then return 2 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`;

const RESTORE = `
redis.call('SET', KEYS[1], ARGV[2], 'NX')
redis.call('SET', KEYS[2], ARGV[3], 'NX')
redis.call('SET', KEYS[3], ARGV[1], 'NX', 'PX', ARGV[5])
redis.call('SET', KEYS[4], ARGV[3], 'PX', ARGV[4])
redis.call('SADD', KEYS[5], ARGV[1])
return 1`;

const FINISH = `
local v = redis.call('GET', KEYS[2])
if v and v ~= ARGV[2] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[4])
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[4])
if redis.call('GET', KEYS[3]) == ARGV[3] then redis.call('DEL', KEYS[3]) end
redis.call('DEL', KEYS[4], KEYS[6])
redis.call('SREM', KEYS[5], ARGV[3])
return 1`;

const HANDOVER = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1`;

const ORPHANS = `
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local j = redis.call('GET', ARGV[1] .. 'job:' .. id)
  if not j or cjson.decode(j).status ~= 'RUNNING' then
    redis.call('SREM', KEYS[1], id)
  elseif redis.call('EXISTS', ARGV[1] .. 'lease:' .. id) == 0 then
    table.insert(out, id)
  end
end
return out`;

const CLAIM = `
if redis.call('EXISTS', KEYS[1]) == 1 then return nil end
local j = redis.call('GET', KEYS[3])
if not j or cjson.decode(j).status ~= 'RUNNING' then return nil end
local v = redis.call('GET', KEYS[2]) or ':0'
local attempt = tonumber(string.match(v, ':(%d+)$') or '0') + 1
local token = ARGV[1] .. ':' .. attempt
redis.call('SET', KEYS[2], token)
redis.call('SET', KEYS[1], token, 'PX', ARGV[2])
return {j, tostring(attempt)}`;

type Scripted = Redis & {
  cdCreate(...a: Array<string | number>): Promise<string>;
  cdSave(...a: Array<string | number>): Promise<number>;
  cdRenew(...a: Array<string | number>): Promise<number>;
  cdRestore(...a: Array<string | number>): Promise<number>;
  cdFinish(...a: Array<string | number>): Promise<number>;
  cdOrphans(...a: Array<string | number>): Promise<string[]>;
  cdClaim(...a: Array<string | number>): Promise<[string, string] | null>;
  cdHandOver(...a: Array<string | number>): Promise<number>;
};

export interface RedisJobStoreOptions {
  url: string;
  prefix?: string;
  /** Backstop expiry of a release's lock, in case a job is lost entirely (default 24 h). */
  lockTtlMs?: number;
  /** Called with the operation name when a Redis call fails (metrics). */
  onError?: (op: string) => void;
}

export class RedisJobStore implements JobStore {
  readonly kind = 'redis' as const;
  private readonly p: string;
  private readonly lockTtlMs: number;
  private readonly redis: Scripted;
  private readonly sub: Redis;
  private cancelListeners: Array<(id: string) => void> = [];
  private reconnectListeners: Array<(info: ReconnectInfo) => void> = [];
  private handOverListeners: Array<() => void> = [];
  private epoch = '';

  private constructor(
    private readonly opts: RedisJobStoreOptions,
    redis: Redis,
    sub: Redis,
  ) {
    this.p = opts.prefix ?? 'clover-cd:';
    this.lockTtlMs = opts.lockTtlMs ?? 24 * 3600_000;
    this.redis = redis as Scripted;
    this.sub = sub;
  }

  static async connect(opts: RedisJobStoreOptions): Promise<RedisJobStore> {
    const common = {
      lazyConnect: true,
      maxRetriesPerRequest: 2,
      connectTimeout: 3000,
      // Keep reconnecting for as long as the server runs: jobs keep running through a Redis outage.
      retryStrategy: (times: number) => Math.min(100 * times, 1000),
    };
    const redis = new Redis(opts.url, common);
    const sub = new Redis(opts.url, common);
    // ioredis reports connection errors as events; they are expected during an outage.
    redis.on('error', () => undefined);
    sub.on('error', () => undefined);
    try {
      await Promise.all([redis.connect(), sub.connect()]);
      await redis.ping();
    } catch (err) {
      redis.disconnect();
      sub.disconnect();
      throw new InfrastructureError(
        'Redis',
        redact(opts.url),
        (err as Error).message,
        'that redis-server is running and --redis points to it (redis://host:port/db)',
      );
    }
    const store = new RedisJobStore(opts, redis, sub);
    store.defineScripts();
    await sub.subscribe(`${store.p}cancel`, `${store.p}handover`);
    sub.on('message', (channel: string, id: string) => {
      if (channel === `${store.p}handover`) store.handOverListeners.forEach((l) => l());
      else store.cancelListeners.forEach((l) => l(id));
    });
    await store.checkEpoch();
    let first = true;
    redis.on('ready', () => {
      if (first) return;
      void store.checkEpoch().then(
        (dataLost) => store.reconnectListeners.forEach((l) => l({ dataLost })),
        () => undefined,
      );
    });
    first = false;
    return store;
  }

  private defineScripts(): void {
    const def = (name: string, numberOfKeys: number, lua: string) =>
      this.redis.defineCommand(name, { numberOfKeys, lua });
    def('cdCreate', 6, CREATE);
    def('cdSave', 2, SAVE);
    def('cdRenew', 4, RENEW);
    def('cdRestore', 5, RESTORE);
    def('cdFinish', 6, FINISH);
    def('cdOrphans', 1, ORPHANS);
    def('cdClaim', 3, CLAIM);
    def('cdHandOver', 1, HANDOVER);
  }

  /** Run a Redis call; a failure is a StoreUnavailableError (503 for polls) and is counted. */
  private async op<T>(name: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      this.opts.onError?.(name);
      throw new StoreUnavailableError(name, err);
    }
  }

  /** True when the epoch marker is gone or changed since the last check: Redis lost its data. */
  private async checkEpoch(): Promise<boolean> {
    const key = `${this.p}epoch`;
    await this.redis.set(key, randomUUID(), 'NX');
    const now = (await this.redis.get(key)) ?? '';
    const lost = this.epoch !== '' && now !== this.epoch;
    this.epoch = now;
    return lost;
  }

  async persistenceWarning(): Promise<string | undefined> {
    try {
      const aof = ((await this.redis.call('CONFIG', 'GET', 'appendonly')) as string[])[1];
      const save = ((await this.redis.call('CONFIG', 'GET', 'save')) as string[])[1];
      if (aof === 'yes') return undefined;
      return save
        ? `Redis has appendonly ${aof ?? 'no'} (snapshots only, save "${save}"): a Redis restart loses the jobs written since the last snapshot; set appendonly yes`
        : 'Redis has no persistence (appendonly no, save ""): a Redis restart loses every job; set appendonly yes';
    } catch {
      return 'could not read the Redis persistence settings (CONFIG GET refused): make sure Redis runs with appendonly yes';
    }
  }

  private k = {
    job: (id: string) => `${this.p}job:${id}`,
    owner: (id: string) => `${this.p}owner:${id}`,
    lease: (id: string) => `${this.p}lease:${id}`,
    release: (name: string) => `${this.p}release:${name}`,
    jobs: (name: string) => `${this.p}jobs:${name}`,
    /** Sorted set: release names scored by their latest job's start (the dashboard's list, shared by replicas). */
    releases: () => `${this.p}releases`,
    cancel: (id: string) => `${this.p}cancel:${id}`,
    active: () => `${this.p}active`,
  };

  async create(job: Job, leaseMs: number): Promise<CreateResult> {
    const k = this.k;
    const r = await this.op('create', () =>
      this.redis.cdCreate(
        k.release(job.release),
        k.job(job.id),
        k.owner(job.id),
        k.lease(job.id),
        k.active(),
        k.jobs(job.release),
        job.id,
        JSON.stringify(job),
        fencingToken(job),
        leaseMs,
        this.lockTtlMs,
        this.p,
        job.createdAt,
      ),
    );
    if (r) return { created: false, activeJobId: r };
    await this.op('create', () => this.redis.zadd(k.releases(), job.createdAt, job.release));
    return { created: true };
  }

  async releases(limit: number): Promise<string[]> {
    return this.op('releases', async () => {
      const names = await this.redis.zrevrange(this.k.releases(), 0, Math.max(0, limit * 2 - 1));
      // A release whose jobs all expired drops out of the list.
      const alive: string[] = [];
      for (const name of names) {
        if (alive.length >= limit) break;
        if (await this.redis.zcard(this.k.jobs(name))) alive.push(name);
        else await this.redis.zrem(this.k.releases(), name);
      }
      return alive;
    });
  }

  async get(id: string): Promise<Job | undefined> {
    const raw = await this.op('get', () => this.redis.get(this.k.job(id)));
    return raw ? (JSON.parse(raw) as Job) : undefined;
  }

  async list(release: string, limit: number): Promise<Job[]> {
    return this.op('list', async () => {
      const ids = await this.redis.zrevrange(this.k.jobs(release), 0, Math.max(0, limit - 1));
      if (!ids.length) return [];
      const raws = await this.redis.mget(ids.map((id) => this.k.job(id)));
      const gone = ids.filter((_, i) => !raws[i]);
      if (gone.length) await this.redis.zrem(this.k.jobs(release), ...gone);
      return raws.filter((r): r is string => Boolean(r)).map((r) => JSON.parse(r) as Job);
    });
  }

  async handOver(job: Job): Promise<void> {
    await this.op('handOver', async () => {
      await this.redis.cdHandOver(this.k.lease(job.id), fencingToken(job));
      await this.redis.publish(`${this.p}handover`, job.id);
    });
  }

  async restoreFinished(job: Job, keepMs: number): Promise<void> {
    const ttl = Math.max(1000, (job.finishedAt ?? Date.now()) + keepMs - Date.now());
    await this.op('restoreFinished', () =>
      this.redis.set(this.k.job(job.id), JSON.stringify(job), 'PX', ttl, 'NX'),
    );
  }

  async activeJobId(release: string): Promise<string | undefined> {
    const id = await this.op('activeJobId', () => this.redis.get(this.k.release(release)));
    if (!id) return undefined;
    const job = await this.get(id);
    return job?.status === 'RUNNING' ? id : undefined;
  }

  async save(job: Job): Promise<boolean> {
    return (
      (await this.op('save', () =>
        this.redis.cdSave(this.k.job(job.id), this.k.owner(job.id), JSON.stringify(job), fencingToken(job)),
      )) === 1
    );
  }

  async renew(job: Job, leaseMs: number): Promise<RenewResult> {
    const r = await this.op('renew', () =>
      this.redis.cdRenew(
        this.k.lease(job.id),
        this.k.owner(job.id),
        this.k.job(job.id),
        this.k.active(),
        fencingToken(job),
        leaseMs,
        job.id,
      ),
    );
    return r === 1 ? 'ok' : r === 2 ? 'missing' : 'taken';
  }

  async restore(job: Job, leaseMs: number): Promise<void> {
    const k = this.k;
    await this.op('restore', () =>
      this.redis.cdRestore(
        k.job(job.id),
        k.owner(job.id),
        k.release(job.release),
        k.lease(job.id),
        k.active(),
        job.id,
        JSON.stringify(job),
        fencingToken(job),
        leaseMs,
        this.lockTtlMs,
      ),
    );
  }

  async finish(job: Job, keepMs: number): Promise<boolean> {
    const k = this.k;
    const r = await this.op('finish', () =>
      this.redis.cdFinish(
        k.job(job.id),
        k.owner(job.id),
        k.release(job.release),
        k.lease(job.id),
        k.active(),
        k.cancel(job.id),
        JSON.stringify(job),
        fencingToken(job),
        job.id,
        keepMs,
      ),
    );
    return r === 1;
  }

  async orphans(): Promise<string[]> {
    return this.op('orphans', () => this.redis.cdOrphans(this.k.active(), this.p));
  }

  async claim(id: string, owner: string, leaseMs: number): Promise<Job | undefined> {
    const r = await this.op('claim', () =>
      this.redis.cdClaim(this.k.lease(id), this.k.owner(id), this.k.job(id), owner, leaseMs),
    );
    if (!r) return undefined;
    const job = JSON.parse(r[0]) as Job;
    return { ...job, owner, attempt: Number(r[1]), updatedAt: Date.now() };
  }

  async requestCancel(id: string): Promise<void> {
    await this.op('requestCancel', async () => {
      await this.redis.set(this.k.cancel(id), '1', 'PX', this.lockTtlMs);
      await this.redis.publish(`${this.p}cancel`, id);
    });
  }

  async cancelRequested(id: string): Promise<boolean> {
    return (await this.op('cancelRequested', () => this.redis.exists(this.k.cancel(id)))) === 1;
  }

  onCancel(listener: (id: string) => void): void {
    this.cancelListeners.push(listener);
  }

  onHandOver(listener: () => void): void {
    this.handOverListeners.push(listener);
  }

  onReconnect(listener: (info: ReconnectInfo) => void): void {
    this.reconnectListeners.push(listener);
  }

  async close(): Promise<void> {
    this.cancelListeners = [];
    this.reconnectListeners = [];
    this.handOverListeners = [];
    this.sub.disconnect();
    this.redis.disconnect();
  }

  describe(): string {
    return `Redis ${redact(this.opts.url)}`;
  }
}
