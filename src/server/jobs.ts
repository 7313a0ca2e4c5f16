// Over 400 lines: the job manager's lifecycle (start, lease, heartbeat, hand-over, cancel) is one state machine over the store.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { statusForExitCode } from '../contract/index.js';
import { CloverError, ExitCode } from '../util/errors.js';
import { redact, redactDeep } from '../util/redact.js';
import type { ReleaseSpec } from '../spec/types.js';
import type { JobMetricsHooks } from './metrics.js';
import type { JobStore, ReconnectInfo } from './store.js';
import {
  JobStopped,
  type Job,
  type StageAction,
  type StageOutcome,
  type StageParams,
  type StageRegistry,
} from './types.js';

/**
 * Runs jobs and keeps their state in the store. Each replica renews a lease on the jobs it runs; a
 * replica that dies stops renewing, and any replica (or the same server after a restart) takes the job
 * over and runs its stage again from the start — stage functions are idempotent (they set a weight, run
 * a window, judge it), and release state lives in the cluster. During a Redis outage jobs keep running;
 * their latest state is written back when Redis returns (also when Redis lost its data on restart).
 * A finished job is never run again: it stays in this replica's running set, with its lease renewed, until
 * the store holds its final state (written atomically with the lease's release), and the store refuses to
 * hand a job in a final state to anyone.
 */
export interface JobManagerOptions {
  replicaId?: string;
  /** Lease on a running job; another replica takes it over this long after its owner died (default 10 s). */
  leaseMs?: number;
  /** How long finished jobs stay queryable (default 7 days). */
  keepMs?: number;
  /** On stop, how long running stage functions get to wind down before their leases are handed over (default 10 s). */
  shutdownGraceMs?: number;
  log?: (message: string, level?: 'info' | 'warn') => void;
  metrics?: JobMetricsHooks;
}

type AbortReason = JobStopped['why'];

interface Running {
  job: Job;
  controller: AbortController;
  reason?: AbortReason;
  saving?: Promise<void>;
  dirty: boolean;
  unsaved?: boolean;
  /** The final state, from the moment the stage ended until the store holds it (the lease is kept meanwhile). */
  final?: Job;
  flushing?: Promise<void>;
  done: Promise<void>;
  settle: () => void;
}

export { statusForExitCode };

export class JobManager {
  readonly replicaId: string;
  private readonly leaseMs: number;
  private readonly keepMs: number;
  private readonly graceMs: number;
  private readonly log: (m: string, level?: 'info' | 'warn') => void;
  private readonly metrics?: JobMetricsHooks;
  /** Jobs this replica runs, and finished ones whose final state is not yet in the store. */
  private running = new Map<string, Running>();
  /** Recently finished jobs: answers GETs during an outage, written back if Redis loses its data. */
  private recent = new Map<string, Job>();
  private timers: NodeJS.Timeout[] = [];
  private stopped = false;
  private idle: Array<() => void> = [];
  /** Orphan scans done (tests wait on it instead of sleeping). */
  scans = 0;

  constructor(
    readonly store: JobStore,
    private readonly registry: StageRegistry,
    opts: JobManagerOptions = {},
  ) {
    this.replicaId = opts.replicaId ?? `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
    this.leaseMs = opts.leaseMs ?? 10_000;
    this.keepMs = opts.keepMs ?? 7 * 24 * 3600_000;
    this.graceMs = opts.shutdownGraceMs ?? 10_000;
    this.log = opts.log ?? (() => undefined);
    this.metrics = opts.metrics;
  }

  start(): void {
    this.store.onCancel((id) => this.abortLocal(id, 'cancel'));
    this.store.onReconnect((info) => void this.reconnected(info));
    // A replica shutting down released its leases: adopt its jobs now rather than at the next scan.
    this.store.onHandOver(() => void this.adoptOrphans());
    const beat = setInterval(() => void this.heartbeat(), Math.max(50, Math.floor(this.leaseMs / 3)));
    const reap = setInterval(() => void this.adoptOrphans(), Math.max(100, Math.floor(this.leaseMs / 2)));
    beat.unref();
    reap.unref();
    this.timers.push(beat, reap);
    void this.store.persistenceWarning().then(
      (w) => w && this.log(w, 'warn'),
      () => undefined,
    );
    void this.adoptOrphans();
  }

  /** Start a job; `conflict` names the release's active job when there is one (HTTP 409). */
  async submit(
    release: string,
    action: StageAction,
    spec: ReleaseSpec,
    params: StageParams,
  ): Promise<{ job: Job } | { conflict: string }> {
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
    if (owned?.final) return owned.final;
    if (owned && !owned.reason) return owned.job;
    const local = this.recent.get(id);
    try {
      // Right after Redis lost its data, this replica's copy is newer than nothing.
      return (await this.store.get(id)) ?? local;
    } catch (err) {
      if (local) return local;
      throw err;
    }
  }

  /** Jobs of a release, newest first; this replica's running jobs in their newest state. */
  async list(release: string, limit: number): Promise<Job[]> {
    const jobs = await this.store.list(release, limit);
    return jobs.map((j) => {
      const r = this.running.get(j.id);
      return r?.final ?? (r && !r.reason ? r.job : j);
    });
  }

  /** Ask the release's active job to stop. Undefined when the release has no active job. */
  async cancel(release: string): Promise<Job | undefined> {
    const id = await this.store.activeJobId(release);
    if (!id) return undefined;
    await this.store.requestCancel(id);
    return this.get(id);
  }

  /**
   * Graceful stop (SIGTERM): stage functions are aborted and get `shutdownGraceMs` to wind down, their
   * leases are released so another replica adopts them at once, finished jobs are written. No final
   * status is written for an interrupted job: the adopting replica runs it again.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    this.timers.forEach(clearInterval);
    const local = [...this.running.values()];
    for (const r of local) this.abortLocal(r.job.id, 'shutdown');
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((res) => (timer = setTimeout(res, this.graceMs)));
    await Promise.race([Promise.all(local.map((r) => r.done)), grace]);
    clearTimeout(timer);
    for (const r of local) {
      if (r.final) await this.flush(r);
      else await this.handOver(r);
    }
  }

  get activeCount(): number {
    return [...this.running.values()].filter((r) => !r.final).length;
  }

  /** Resolves when no job runs in this replica and every final state is stored (tests, graceful shutdown). */
  whenIdle(): Promise<void> {
    return this.running.size === 0 ? Promise.resolve() : new Promise((r) => this.idle.push(r));
  }

  private abortLocal(id: string, reason: AbortReason): void {
    const r = this.running.get(id);
    if (!r || r.reason || r.final) return;
    r.reason = reason;
    if (reason === 'cancel') this.progress(r, 'cancel requested: stopping');
    r.controller.abort(new JobStopped(reason));
  }

  private progress(r: Running, message: string): void {
    if (r.reason === 'lease-lost' || r.reason === 'shutdown' || r.final) return;
    r.job = { ...r.job, progress: redact(message), updatedAt: Date.now() };
    void this.save(r);
  }

  /** Coalesced saves: at most one in flight per job, the latest state wins; none once the job has ended. */
  private save(r: Running): Promise<void> {
    if (r.saving) {
      r.dirty = true;
      return r.saving;
    }
    const loop = async () => {
      do {
        r.dirty = false;
        if (r.final || this.stopped) return;
        let ok: boolean;
        try {
          ok = await this.store.save(r.job);
        } catch {
          r.unsaved = true; // store unreachable: the heartbeat writes it back
          return;
        }
        r.unsaved = false;
        if (!ok && !r.final) {
          this.log(`job ${r.job.id}: another replica took it over (or it has ended); stopping here`);
          this.abortLocal(r.job.id, 'lease-lost');
          return;
        }
      } while (r.dirty);
    };
    r.saving = loop().finally(() => (r.saving = undefined));
    return r.saving;
  }

  private execute(job: Job): void {
    let settle!: () => void;
    const done = new Promise<void>((res) => (settle = res));
    const r: Running = { job, controller: new AbortController(), dirty: false, done, settle };
    this.running.set(job.id, r);
    this.metrics?.jobStarted(job.action, job.attempt);
    void this.store.cancelRequested(job.id).then(
      (c) => c && this.abortLocal(job.id, 'cancel'),
      () => undefined,
    );
    const fn = this.registry[job.action];
    const startedAt = Date.now();
    const run = async (): Promise<StageOutcome> => {
      if (!fn) return { status: 'ERROR', message: `action "${job.action}" is not available on this server` };
      return fn(job.spec, job.params, r.controller.signal, (m) => this.progress(r, m), {
        jobId: job.id,
        attempt: job.attempt,
      });
    };
    this.log(`job ${job.id}: ${job.release} ${job.action} started (attempt ${job.attempt})`);
    run()
      .then(
        (out) =>
          r.reason === 'cancel' && out.status !== 'SUCCEEDED' ? { ...out, status: 'CANCELED' as const } : out,
        (err: unknown): StageOutcome => {
          if (r.reason === 'cancel') return { status: 'CANCELED', message: 'canceled' };
          const code = err instanceof CloverError ? err.exitCode : ExitCode.infrastructure;
          return { status: statusForExitCode(code), message: redact((err as Error)?.message ?? String(err)) };
        },
      )
      .then((out) => this.complete(r, out, Date.now() - startedAt))
      .catch((err: unknown) => this.log(`job ${job.id}: ${(err as Error)?.message ?? String(err)}`, 'warn'))
      .finally(() => r.settle());
  }

  private async complete(r: Running, out: StageOutcome, ms: number): Promise<void> {
    if (r.reason === 'lease-lost' || r.reason === 'shutdown') {
      this.log(`job ${r.job.id}: left to the replica that takes it over`);
      if (r.reason === 'lease-lost') this.forget(r);
      return; // a shutdown hands the lease over in stop()
    }
    const now = Date.now();
    // The final state is held (and the lease renewed) until the store has it: the job is never orphaned.
    r.final = {
      ...r.job,
      status: out.status,
      progress: redact(out.message ?? out.verdict?.summary ?? `${r.job.action} ${out.status.toLowerCase()}`),
      // Verdicts quote sources (URLs, error messages): masked like every other text the job shows.
      verdict: redactDeep(out.verdict),
      reports: redactDeep(out.reports),
      error:
        out.status === 'ERROR' || out.status === 'FAILED'
          ? redact(out.message ?? '') || undefined
          : undefined,
      updatedAt: now,
      finishedAt: now,
    };
    this.log(`job ${r.final.id}: ${r.final.release} ${r.final.action} ${r.final.status}`);
    this.metrics?.jobFinished(r.final.action, r.final.status, ms);
    this.remember(r.final);
    await r.saving; // a progress write in flight lands before the final one
    await this.flush(r);
  }

  /** Write the final state (and release the lock and lease, atomically); kept for the heartbeat on failure. */
  private flush(r: Running): Promise<void> {
    const final = r.final;
    if (!final) return Promise.resolve();
    r.flushing ??= this.store
      .finish(final, this.keepMs)
      .then(
        (ok) => {
          if (!ok)
            this.log(
              `job ${final.id}: fenced out; the result of the replica that took it over stands`,
              'warn',
            );
          this.forget(r);
        },
        () => undefined, // store unreachable: the heartbeat keeps the lease and retries
      )
      .finally(() => (r.flushing = undefined));
    return r.flushing;
  }

  private async handOver(r: Running): Promise<void> {
    try {
      await this.store.handOver(r.job);
      this.log(`job ${r.job.id}: lease handed over for another replica to adopt`);
    } catch {
      this.log(
        `job ${r.job.id}: job store unreachable; another replica adopts it when the lease expires`,
        'warn',
      );
    }
    this.forget(r);
  }

  private forget(r: Running): void {
    if (this.running.get(r.job.id) === r) this.running.delete(r.job.id);
    if (this.running.size === 0) this.idle.splice(0).forEach((f) => f());
  }

  private remember(job: Job): void {
    this.recent.set(job.id, job);
    if (this.recent.size > 1000) this.recent.delete(this.recent.keys().next().value as string);
  }

  private async reconnected(info: ReconnectInfo): Promise<void> {
    if (info.dataLost) {
      this.metrics?.storeDataLost();
      this.log(
        `job store came back empty (Redis restarted without persistence): writing back ${this.running.size} running and ${this.recent.size} recently finished job(s) of this replica; jobs of other replicas may be lost — run Redis with appendonly yes`,
        'warn',
      );
      for (const job of this.recent.values()) {
        if (this.running.get(job.id)?.final) continue; // flushed below
        await this.store.restoreFinished(job, this.keepMs).catch(() => undefined);
      }
    } else this.log('job store reconnected: writing back the state of local jobs');
    await this.heartbeat();
  }

  private async heartbeat(): Promise<void> {
    if (this.stopped) return;
    // Every job at once: one after another, a replica with many jobs on a slow store took longer than a
    // lease to renew them all, and another replica adopted (and ran again) jobs that were running here.
    await Promise.all([...this.running.values()].map((r) => this.renewOne(r)));
  }

  private async renewOne(r: Running): Promise<void> {
    if (r.reason === 'lease-lost' || r.reason === 'shutdown') return;
    try {
      if (r.final) {
        // Keep the lease until the final state is stored, so no replica (this one included) adopts the job.
        if ((await this.store.renew(r.final, this.leaseMs)) === 'taken') this.forget(r);
        else void this.flush(r); // not awaited: a slow write must not hold up the other jobs' renewals
        return;
      }
      const state = await this.store.renew(r.job, this.leaseMs);
      if (state === 'taken') {
        this.log(`job ${r.job.id}: lease lost to another replica`);
        this.abortLocal(r.job.id, 'lease-lost');
        return;
      } else if (state === 'missing') {
        this.log(
          `job ${r.job.id}: job store lost it (restart without persistence?): writing it back`,
          'warn',
        );
        await this.store.restore(r.job, this.leaseMs);
      } else if (r.unsaved) {
        await this.save(r);
      }
      if (await this.store.cancelRequested(r.job.id)) this.abortLocal(r.job.id, 'cancel');
    } catch {
      /* store unreachable: the job goes on; state is written back on reconnect */
    }
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
      // Never again a job this replica runs, is finishing, or has finished (its final state may be in flight).
      if (this.running.has(id) || this.recent.has(id) || this.stopped) continue;
      // The store's claim refuses a job whose stored status is final.
      const job = await this.store.claim(id, this.replicaId, this.leaseMs).catch(() => undefined);
      if (!job) continue;
      const adopted: Job = {
        ...job,
        progress: `resumed by ${this.replicaId} (attempt ${job.attempt}): its previous runner stopped`,
      };
      this.log(`job ${id}: adopted (attempt ${job.attempt})`);
      await this.store.save(adopted).catch(() => undefined);
      this.execute(adopted);
    }
    this.scans++;
  }
}
