import type { Job } from './types.js';

/**
 * Where jobs live. Two implementations: memory (one process, lost on restart) and Redis (survives a
 * server restart, shared by replicas). Every write from a runner is fenced by `owner` + `attempt`: when a
 * replica stalls and another takes its job over, the stale replica's writes are refused.
 */
export type CreateResult = { created: true } | { created: false; activeJobId: string };
export type RenewResult = 'ok' | 'taken' | 'missing';

/** The store could not be reached (Redis down): the only error the HTTP server answers with 503. */
export class StoreUnavailableError extends Error {
  constructor(
    readonly op: string,
    cause: unknown,
  ) {
    super(`job store unavailable (${op}): ${(cause as Error)?.message ?? String(cause)}`);
  }
}

/** What a store reports after an outage; `dataLost` when it came back empty (Redis restarted without persistence). */
export interface ReconnectInfo {
  dataLost: boolean;
}

export interface JobStore {
  readonly kind: 'memory' | 'redis';
  /** Atomically take the release's lock (one active job per release) and save the job with a lease. */
  create(job: Job, leaseMs: number): Promise<CreateResult>;
  get(id: string): Promise<Job | undefined>;
  activeJobId(release: string): Promise<string | undefined>;
  /** Jobs of a release, newest first (finished ones while they are kept). */
  list(release: string, limit: number): Promise<Job[]>;
  /** Releases that have jobs, the most recently started first (every replica sees the same list). */
  releases(limit: number): Promise<string[]>;
  /** Save a running job; false when the fencing token no longer matches or the stored job is already final. */
  save(job: Job): Promise<boolean>;
  /** Extend the lease; 'missing' when the store lost the job (Redis restarted without persistence). */
  renew(job: Job, leaseMs: number): Promise<RenewResult>;
  /** Write back a job (and its lock and lease) that the store lost. */
  restore(job: Job, leaseMs: number): Promise<void>;
  /** Save a job in a final status, release its lock and lease. False when fenced out. */
  finish(job: Job, keepMs: number): Promise<boolean>;
  /** Give up the lease on a running job (shutdown): another replica adopts it at its next scan. */
  handOver(job: Job): Promise<void>;
  /** Write back a finished job the store lost (Redis restarted without persistence); never over a stored one. */
  restoreFinished(job: Job, keepMs: number): Promise<void>;
  /** Why the store may lose finished jobs (e.g. Redis without appendonly), or undefined when it keeps them. */
  persistenceWarning(): Promise<string | undefined>;
  /** Ids of active jobs whose lease expired: their replica died or stalled. */
  orphans(): Promise<string[]>;
  /** Take over an orphaned job (owner = me, attempt + 1); undefined when another replica got it first. */
  claim(id: string, owner: string, leaseMs: number): Promise<Job | undefined>;
  requestCancel(id: string): Promise<void>;
  cancelRequested(id: string): Promise<boolean>;
  /** Called with a job id when any replica asks to cancel it. */
  onCancel(listener: (id: string) => void): void;
  /** Called when a replica handed its jobs over (shutdown): they can be adopted now. */
  onHandOver(listener: () => void): void;
  /** Called after the store came back from an outage (Redis reconnect). */
  onReconnect(listener: (info: ReconnectInfo) => void): void;
  close(): Promise<void>;
}

const fence = (j: Pick<Job, 'owner' | 'attempt'>) => `${j.owner}:${j.attempt}`;

/** Jobs in this process only: for a single server without Redis, and for tests. */
export class MemoryJobStore implements JobStore {
  readonly kind = 'memory' as const;
  private jobs = new Map<string, { json: string; expiresAt?: number }>();
  private locks = new Map<string, string>();
  private leases = new Map<string, { token: string; until: number }>();
  private cancels = new Set<string>();
  private cancelListeners: Array<(id: string) => void> = [];
  private handOverListeners: Array<() => void> = [];

  private read(id: string): Job | undefined {
    const e = this.jobs.get(id);
    if (!e) return undefined;
    if (e.expiresAt !== undefined && e.expiresAt < Date.now()) {
      this.jobs.delete(id);
      return undefined;
    }
    return JSON.parse(e.json) as Job;
  }

  async create(job: Job, leaseMs: number): Promise<CreateResult> {
    const active = this.locks.get(job.release);
    if (active) return { created: false, activeJobId: active };
    this.locks.set(job.release, job.id);
    this.jobs.set(job.id, { json: JSON.stringify(job) });
    this.leases.set(job.id, { token: fence(job), until: Date.now() + leaseMs });
    return { created: true };
  }

  async get(id: string) {
    return this.read(id);
  }

  async activeJobId(release: string) {
    return this.locks.get(release);
  }

  async releases(limit: number) {
    const latest = new Map<string, number>();
    for (const id of this.jobs.keys()) {
      const j = this.read(id);
      if (j) latest.set(j.release, Math.max(latest.get(j.release) ?? 0, j.createdAt));
    }
    return [...latest.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, limit)
      .map(([r]) => r);
  }

  async list(release: string, limit: number) {
    return [...this.jobs.keys()]
      .map((id) => this.read(id))
      .filter((j): j is Job => j?.release === release)
      .sort((a, b) => b.createdAt - a.createdAt)
      .slice(0, limit);
  }

  async handOver(job: Job) {
    if (this.leases.get(job.id)?.token === fence(job)) this.leases.delete(job.id);
    for (const l of this.handOverListeners) l();
  }

  onHandOver(listener: () => void) {
    this.handOverListeners.push(listener);
  }

  async restoreFinished(job: Job, keepMs: number) {
    if (!this.read(job.id))
      this.jobs.set(job.id, {
        json: JSON.stringify(job),
        expiresAt: (job.finishedAt ?? Date.now()) + keepMs,
      });
  }

  async persistenceWarning() {
    return 'jobs are kept in memory: a restart loses them (use --redis with appendonly yes)';
  }

  private holds(job: Job): boolean {
    const cur = this.read(job.id);
    return !cur || fence(cur) === fence(job);
  }

  async save(job: Job) {
    const cur = this.read(job.id);
    if (cur && (fence(cur) !== fence(job) || cur.status !== 'RUNNING')) return false;
    this.jobs.set(job.id, { json: JSON.stringify(job) });
    return true;
  }

  async renew(job: Job, leaseMs: number): Promise<'ok' | 'taken' | 'missing'> {
    if (!this.read(job.id)) return 'missing';
    if (!this.holds(job)) return 'taken';
    this.leases.set(job.id, { token: fence(job), until: Date.now() + leaseMs });
    return 'ok';
  }

  async restore(job: Job, leaseMs: number) {
    this.jobs.set(job.id, { json: JSON.stringify(job) });
    if (!this.locks.has(job.release)) this.locks.set(job.release, job.id);
    this.leases.set(job.id, { token: fence(job), until: Date.now() + leaseMs });
  }

  async finish(job: Job, keepMs: number) {
    if (!this.holds(job)) return false;
    this.jobs.set(job.id, { json: JSON.stringify(job), expiresAt: Date.now() + keepMs });
    if (this.locks.get(job.release) === job.id) this.locks.delete(job.release);
    this.leases.delete(job.id);
    this.cancels.delete(job.id);
    return true;
  }

  async orphans() {
    const now = Date.now();
    return [...this.locks.values()].filter((id) => (this.leases.get(id)?.until ?? 0) < now);
  }

  async claim(id: string, owner: string, leaseMs: number) {
    const job = this.read(id);
    if (!job || job.status !== 'RUNNING' || (this.leases.get(id)?.until ?? 0) >= Date.now()) return undefined;
    const taken: Job = { ...job, owner, attempt: job.attempt + 1, updatedAt: Date.now() };
    this.jobs.set(id, { json: JSON.stringify(taken) });
    this.leases.set(id, { token: fence(taken), until: Date.now() + leaseMs });
    return taken;
  }

  async requestCancel(id: string) {
    this.cancels.add(id);
    for (const l of this.cancelListeners) l(id);
  }

  async cancelRequested(id: string) {
    return this.cancels.has(id);
  }

  onCancel(listener: (id: string) => void) {
    this.cancelListeners.push(listener);
  }

  onReconnect() {
    /* never disconnects */
  }

  async close() {
    this.cancelListeners = [];
    this.handOverListeners = [];
  }
}

export { fence as fencingToken };
