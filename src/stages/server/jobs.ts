import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { statusForExitCode } from '../../contract/index.js';
import { CloverError, ExitCode } from '../../util/errors.js';
import { redact } from '../../util/redact.js';
import type { ReleaseSpec } from '../../spec/types.js';
import type { JobStore } from './store.js';
import type { Job, ReleaseMemo, StageAction, StageOutcome, StageParams, StageRegistry } from './types.js';

/**
 * Runs jobs and keeps their state in the store. Each replica renews a lease on the jobs it runs; a
 * replica that dies stops renewing, and any replica (or the same server after a restart) takes the job
 * over and runs its stage again from the start — stage functions are idempotent (they set a weight, run
 * a window, judge it), and release state lives in the cluster. During a Redis outage jobs keep running;
 * their latest state is written back when Redis returns (also when Redis lost its data on restart).
 */
export interface JobManagerOptions {
  replicaId?: string;
  /** Lease on a running job; another replica takes it over this long after its owner died (default 10 s). */
  leaseMs?: number;
  /** How long finished jobs stay queryable (default 7 days). */
  keepMs?: number;
  log?: (message: string) => void;
}

type AbortReason = 'cancel' | 'lease-lost' | 'shutdown';

interface Running {
  job: Job;
  controller: AbortController;
  reason?: AbortReason;
  saving: boolean;
  dirty: boolean;
  unsaved?: boolean;
}

export { statusForExitCode };

export class JobManager {
  readonly replicaId: string;
  private readonly leaseMs: number;
  private readonly keepMs: number;
  private readonly log: (m: string) => void;
  private running = new Map<string, Running>();
  /** Finished jobs whose final state is not yet in the store (outage), and recent ones for GETs during one. */
  private unflushed = new Map<string, Job>();
  private recent = new Map<string, Job>();
  private timers: NodeJS.Timeout[] = [];
  private stopped = false;
  private idle: Array<() => void> = [];

  constructor(
    readonly store: JobStore,
    private readonly registry: StageRegistry,
    opts: JobManagerOptions = {},
  ) {
    this.replicaId = opts.replicaId ?? `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
    this.leaseMs = opts.leaseMs ?? 10_000;
    this.keepMs = opts.keepMs ?? 7 * 24 * 3600_000;
    this.log = opts.log ?? (() => undefined);
  }

  start(): void {
    this.store.onCancel((id) => this.abortLocal(id, 'cancel'));
    this.store.onReconnect(() => {
      this.log('job store reconnected: writing back the state of local jobs');
      void this.heartbeat();
    });
    const beat = setInterval(() => void this.heartbeat(), Math.max(50, Math.floor(this.leaseMs / 3)));
    const reap = setInterval(() => void this.adoptOrphans(), Math.max(100, Math.floor(this.leaseMs / 2)));
    beat.unref();
    reap.unref();
    this.timers.push(beat, reap);
    void this.adoptOrphans();
  }

  /** Start a job; `conflict` names the release's active job when there is one (HTTP 409). */
  async submit(release: string, action: StageAction, spec: ReleaseSpec, params: StageParams): Promise<{ job: Job } | { conflict: string }> {
    const now = Date.now();
    const job: Job = {
      id: randomUUID(),
      release,
      action,
      status: 'RUNNING',
      progress: `${action} accepted`,
      spec,
      params,
      createdAt: now,
      updatedAt: now,
      owner: this.replicaId,
      attempt: 1,
    };
    const r = await this.store.create(job, this.leaseMs);
    if (!r.created) return { conflict: r.activeJobId };
    this.execute(job);
    return { job };
  }

  /** The job as the store has it; during a store outage, this replica's own copy when it has one. */
  async get(id: string): Promise<Job | undefined> {
    // The replica running a job holds its newest state: no store round trip for the polls it answers.
    const owned = this.running.get(id);
    if (owned && !owned.reason) return owned.job;
    const local = this.unflushed.get(id);
    try {
      const stored = await this.store.get(id);
      // Right after Redis lost its data, this replica's copy is newer than nothing.
      return stored ?? local ?? this.recent.get(id);
    } catch (err) {
      if (local ?? this.recent.get(id)) return local ?? this.recent.get(id);
      throw err;
    }
  }

  /** Ask the release's active job to stop. Undefined when the release has no active job. */
  async cancel(release: string): Promise<Job | undefined> {
    const id = await this.store.activeJobId(release);
    if (!id) return undefined;
    await this.store.requestCancel(id);
    return this.get(id);
  }

  /** Stop timers and local jobs without writing a final status: another replica (or a restart) takes them over. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.timers.forEach(clearInterval);
    for (const id of [...this.running.keys()]) this.abortLocal(id, 'shutdown');
    await this.flushFinished();
  }

  get activeCount(): number {
    return this.running.size;
  }

  /** Resolves when no job runs in this replica (tests, graceful shutdown). */
  whenIdle(): Promise<void> {
    return this.running.size === 0 ? Promise.resolve() : new Promise((r) => this.idle.push(r));
  }

  private abortLocal(id: string, reason: AbortReason): void {
    const r = this.running.get(id);
    if (!r || r.reason) return;
    r.reason = reason;
    if (reason === 'cancel') this.progress(r, 'cancel requested: stopping');
    r.controller.abort(new Error(`job ${reason === 'cancel' ? 'canceled' : `stopped (${reason})`}`));
  }

  private progress(r: Running, message: string): void {
    if (r.reason === 'lease-lost' || r.reason === 'shutdown') return;
    r.job = { ...r.job, progress: redact(message), updatedAt: Date.now() };
    void this.save(r);
  }

  /** Coalesced saves: at most one in flight per job, the latest state wins. */
  private async save(r: Running): Promise<void> {
    if (r.saving) {
      r.dirty = true;
      return;
    }
    r.saving = true;
    try {
      do {
        r.dirty = false;
        let ok: boolean;
        try {
          ok = await this.store.save(r.job);
        } catch {
          r.unsaved = true; // store unreachable: the heartbeat writes it back
          return;
        }
        r.unsaved = false;
        if (!ok) {
          this.log(`job ${r.job.id}: another replica took it over; stopping here`);
          this.abortLocal(r.job.id, 'lease-lost');
          return;
        }
      } while (r.dirty && !this.stopped);
    } finally {
      r.saving = false;
    }
  }

  private execute(job: Job): void {
    const r: Running = { job, controller: new AbortController(), saving: false, dirty: false };
    this.running.set(job.id, r);
    void this.store.cancelRequested(job.id).then((c) => c && this.abortLocal(job.id, 'cancel'), () => undefined);
    const fn = this.registry[job.action];
    const run = async (): Promise<StageOutcome> => {
      if (!fn) return { status: 'ERROR', message: `action "${job.action}" is not available on this server` };
      const memo: ReleaseMemo = {
        get: async <T>(key: string) => {
          const raw = await this.store.getMemo(job.release, key);
          return raw === undefined ? undefined : (JSON.parse(raw) as T);
        },
        set: (key, value) => this.store.setMemo(job.release, key, JSON.stringify(value), this.keepMs),
      };
      return fn(job.spec, job.params, r.controller.signal, (m) => this.progress(r, m), { memo, jobId: job.id, attempt: job.attempt });
    };
    this.log(`job ${job.id}: ${job.release} ${job.action} started (attempt ${job.attempt})`);
    run()
      .then(
        (out) => (r.reason === 'cancel' && out.status !== 'SUCCEEDED' ? { ...out, status: 'CANCELED' as const } : out),
        (err: unknown): StageOutcome => {
          if (r.reason === 'cancel') return { status: 'CANCELED', message: 'canceled' };
          const code = err instanceof CloverError ? err.exitCode : ExitCode.infrastructure;
          return { status: statusForExitCode(code), message: redact((err as Error)?.message ?? String(err)) };
        },
      )
      .then((out) => this.complete(r, out));
  }

  private async complete(r: Running, out: StageOutcome): Promise<void> {
    this.running.delete(r.job.id);
    if (r.reason === 'lease-lost' || r.reason === 'shutdown') {
      this.log(`job ${r.job.id}: left to the replica that takes it over`);
    } else {
      const now = Date.now();
      const job: Job = {
        ...r.job,
        status: out.status,
        progress: redact(out.message ?? out.verdict?.summary ?? `${r.job.action} ${out.status.toLowerCase()}`),
        verdict: out.verdict,
        reports: out.reports,
        error: out.status === 'ERROR' || out.status === 'FAILED' ? redact(out.message ?? '') || undefined : undefined,
        updatedAt: now,
        finishedAt: now,
      };
      this.log(`job ${job.id}: ${job.release} ${job.action} ${job.status}`);
      this.remember(job);
      this.unflushed.set(job.id, job);
      await this.flushFinished();
    }
    if (this.running.size === 0) this.idle.splice(0).forEach((f) => f());
  }

  private remember(job: Job): void {
    this.recent.set(job.id, job);
    if (this.recent.size > 1000) this.recent.delete(this.recent.keys().next().value as string);
  }

  private async flushFinished(): Promise<void> {
    for (const [id, job] of this.unflushed) {
      try {
        await this.store.finish(job, this.keepMs); // false = fenced out: another replica's result stands
        this.unflushed.delete(id);
      } catch {
        /* store unreachable: retried by the heartbeat */
      }
    }
  }

  private async heartbeat(): Promise<void> {
    if (this.stopped) return;
    for (const r of [...this.running.values()]) {
      if (r.reason) continue;
      try {
        const state = await this.store.renew(r.job, this.leaseMs);
        if (state === 'taken') {
          this.log(`job ${r.job.id}: lease lost to another replica`);
          this.abortLocal(r.job.id, 'lease-lost');
        } else if (state === 'missing') {
          this.log(`job ${r.job.id}: job store lost it (restart without persistence?): writing it back`);
          await this.store.restore(r.job, this.leaseMs);
        } else if (r.unsaved) {
          await this.save(r);
        }
        if (await this.store.cancelRequested(r.job.id)) this.abortLocal(r.job.id, 'cancel');
      } catch {
        /* store unreachable: the job goes on; state is written back on reconnect */
      }
    }
    await this.flushFinished();
  }

  private async adoptOrphans(): Promise<void> {
    if (this.stopped) return;
    let ids: string[];
    try {
      ids = await this.store.orphans();
    } catch {
      return;
    }
    for (const id of ids) {
      if (this.running.has(id)) continue;
      const job = await this.store.claim(id, this.replicaId, this.leaseMs).catch(() => undefined);
      if (!job) continue;
      const adopted: Job = { ...job, progress: `resumed by ${this.replicaId} (attempt ${job.attempt}): its previous runner stopped` };
      this.log(`job ${id}: adopted (attempt ${job.attempt})`);
      await this.store.save(adopted).catch(() => undefined);
      this.execute(adopted);
    }
  }
}
