/**
 * What the dashboard shows, as JSON: the releases this server has run jobs for, each with the state the
 * engine records with the routes (phase, step, weights, verdicts — `releaseStatus`), its jobs, and links to
 * each gate job's report and evidence by job id. State reads are cached for a second, so many open pages
 * cost the cluster one read per release per second at most.
 */
import type { Platform } from '../services/platform.js';
import { releaseStatus } from '../stages/engine/index.js';
import { stepOf } from '../stages/actions.js';
import type { JobManager } from './jobs.js';
import type { Job, StageRegistry } from './types.js';

/** Release names this replica has seen jobs for (submitted, run or adopted), newest activity first. */
export class ReleaseIndex {
  private seen = new Map<string, number>();

  note(release: string): void {
    this.seen.delete(release);
    this.seen.set(release, Date.now());
    if (this.seen.size > 500) this.seen.delete(this.seen.keys().next().value as string);
  }

  names(): string[] {
    return [...this.seen.keys()].reverse();
  }

  /** The registry with every stage function noting its release first (new, resumed and adopted jobs alike). */
  wrap(registry: StageRegistry): StageRegistry {
    const out: StageRegistry = {};
    for (const [action, fn] of Object.entries(registry) as Array<
      [keyof StageRegistry, NonNullable<StageRegistry[keyof StageRegistry]>]
    >) {
      out[action] = (spec, params, signal, progress, ctx) => {
        this.note(spec.metadata.name);
        return fn(spec, params, signal, progress, ctx);
      };
    }
    return out;
  }
}

export interface JobView {
  id: string;
  action: string;
  status: string;
  progress: string;
  /** 1-based plan step the job acted on, when the request named one. */
  step?: number;
  verdict?: string;
  createdAt: string;
  finishedAt?: string;
  reportUrl?: string;
  evidenceUrl?: string;
}

export interface ReleaseView {
  release: string;
  strategy?: string;
  phase: string;
  /** 1-based current step (0 before the first shift). */
  step: number;
  steps: Array<{ kind: string; weight: number; status: 'done' | 'current' | 'pending' }>;
  weights: { stable: number; candidate: number; stableName: string; candidateName: string };
  held?: boolean;
  reason?: string;
  lastVerdict?: { step: number; outcome: string; summary: string; at: string };
  verdicts: Array<{ step: number; outcome: string; summary: string; at: string; reportUrl?: string }>;
  activeJob?: JobView;
  jobs: JobView[];
  updatedAt?: string;
  /** Why the recorded state could not be read (the platform was unreachable); the jobs are still shown. */
  stateError?: string;
}

function jobView(job: Job, stepCount: number, plan?: Parameters<typeof stepOf>[0]): JobView {
  let step: number | undefined;
  try {
    step =
      plan && (job.params.step !== undefined || job.params.weight !== undefined)
        ? stepOf(plan, job.params) + 1
        : undefined;
  } catch {
    step = undefined;
  }
  if (step !== undefined && (step < 1 || step > stepCount)) step = undefined;
  const hasEvidence = typeof job.reports?.evidence === 'string';
  return {
    id: job.id,
    action: job.action,
    status: job.status,
    progress: job.progress,
    step,
    verdict: job.verdict?.outcome,
    createdAt: new Date(job.createdAt).toISOString(),
    finishedAt: job.finishedAt ? new Date(job.finishedAt).toISOString() : undefined,
    reportUrl: hasEvidence ? `/ui/jobs/${encodeURIComponent(job.id)}/report` : undefined,
    evidenceUrl: hasEvidence ? `/ui/jobs/${encodeURIComponent(job.id)}/evidence` : undefined,
  };
}

export class DashboardData {
  private cache = new Map<string, { at: number; view: Promise<ReleaseView | undefined> }>();

  constructor(
    private readonly jobs: JobManager,
    readonly index: ReleaseIndex,
    private readonly platform?: Platform,
    private readonly ttlMs = 1000,
  ) {}

  /** Releases any replica ran jobs for (the job store's list), then any this replica saw that the store lost. */
  async releases(): Promise<ReleaseView[]> {
    const stored = await this.jobs.store.releases(100).catch(() => [] as string[]);
    const names = [...new Set([...stored, ...this.index.names()])].slice(0, 100);
    const views = await Promise.all(names.map((r) => this.release(r)));
    return views.filter((v): v is ReleaseView => !!v);
  }

  /** One release's view; undefined when this server knows no job of it. */
  release(name: string): Promise<ReleaseView | undefined> {
    const hit = this.cache.get(name);
    if (hit && Date.now() - hit.at < this.ttlMs) return hit.view;
    const view = this.build(name);
    this.cache.set(name, { at: Date.now(), view });
    if (this.cache.size > 200) this.cache.delete(this.cache.keys().next().value as string);
    view.catch(() => this.cache.delete(name));
    return view;
  }

  private async build(name: string): Promise<ReleaseView | undefined> {
    const jobs = await this.jobs.list(name, 50);
    if (!jobs.length) return undefined;
    const spec = jobs[0].spec;
    const { stable, candidate } = spec.service;
    let status: Awaited<ReturnType<typeof releaseStatus>> | undefined;
    let stateError: string | undefined;
    if (this.platform) {
      try {
        status = await releaseStatus(this.platform, spec);
      } catch (err) {
        stateError = (err as Error).message;
      }
    }
    const plan = status?.plan;
    const s = status?.state;
    const stepCount = plan?.steps.length ?? 0;
    const views = jobs.map((j) => jobView(j, stepCount, plan));
    const current = s ? s.step : -1;
    const promoted = s?.phase === 'promoted';
    const steps = (plan?.steps ?? []).map((st, i) => ({
      kind: st.kind,
      weight: st.weight,
      status: (promoted || i < current ? 'done' : i === current ? 'current' : 'pending') as
        'done' | 'current' | 'pending',
    }));
    const gateJobs = views.filter((v) => v.action === 'gate' && v.reportUrl);
    const reportFor = (step: number, at: string) =>
      gateJobs.find(
        (g) =>
          g.step === step + 1 && g.finishedAt && Math.abs(Date.parse(g.finishedAt) - Date.parse(at)) < 60_000,
      )?.reportUrl;
    const weight = s?.weight ?? status?.routes.weight ?? 0;
    return {
      release: name,
      strategy: plan?.strategy,
      phase: s?.phase ?? (stateError ? 'unknown' : 'not started'),
      step: s ? s.step + 1 : 0,
      steps,
      weights: { stable: 100 - weight, candidate: weight, stableName: stable, candidateName: candidate },
      held: s?.held,
      reason: s?.reason,
      lastVerdict: s?.lastVerdict && { ...s.lastVerdict, step: s.lastVerdict.step + 1 },
      verdicts: (s?.verdicts ?? []).map((v) => ({
        ...v,
        step: v.step + 1,
        reportUrl: reportFor(v.step, v.at),
      })),
      activeJob: views.find((v) => v.status === 'RUNNING'),
      jobs: views,
      updatedAt: s?.updatedAt ?? views[0]?.createdAt,
      stateError,
    };
  }
}
