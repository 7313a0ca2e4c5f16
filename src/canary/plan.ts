/**
 * The release plan: the ordered traffic steps a spec asks for, whatever the strategy. Every step says what
 * share of the managed route goes to the candidate, how long it is analysed, and whether a person must
 * approve before the next one. Pure: data in, data out.
 */
import type { GateRule, HttpMatchValue, ReleaseSpec, StrategyKind } from '../spec/types.js';
import { canaryWeights } from '../spec/validate.js';
import { InvalidInputError, type InputProblem } from '../util/errors.js';
import { parseDurationMs, parsePercent } from '../util/units.js';

export type StepKind = 'mirror' | 'weight' | 'preview' | 'switch' | 'match';

/** Without gate.maxWindow, a window may grow to this many times its length while samples are missing. */
export const DEFAULT_MAX_WINDOW_FACTOR = 6;

export interface PlanStep {
  index: number;
  kind: StepKind;
  /** Candidate share (%) of the managed route after this step's shift. */
  weight: number;
  /** Share (%) of stable traffic copied to the candidate (mirror steps). */
  mirrorPercent?: number;
  /** Whether the A/B match route (header/cookie → candidate) is in place during this step. */
  matchRoute: boolean;
  /** Analysis window: load runs and the gate judges over this span. 0 = no analysis (preview). */
  windowMs: number;
  /** Longest the window may grow while the candidate has fewer requests than the rules need. */
  maxWindowMs: number;
  /** A person approves (or `--auto-approve`) before the release goes past this step. */
  judgment: boolean;
  /** Where the step comes from in the spec, for messages. */
  path: string;
}

/** Traffic a step asks for, whatever the mesh: the candidate's share and the match / mirror routes. */
export interface TrafficTarget {
  /** Candidate share (%) of the managed route. */
  weight: number;
  mirrorPercent?: number;
  /** The A/B (or blue/green preview) match route is in place. */
  matchRoute: boolean;
}

/** Everything on stable: what a rollback asks for. */
export const STABLE_TARGET: TrafficTarget = { weight: 0, matchRoute: false };
/** Everything on the candidate: what a promotion asks for. */
export const PROMOTED_TARGET: TrafficTarget = { weight: 100, matchRoute: false };

export const targetOfStep = (
  s: Pick<PlanStep, 'weight' | 'mirrorPercent' | 'matchRoute'>,
): TrafficTarget => ({ weight: s.weight, mirrorPercent: s.mirrorPercent, matchRoute: s.matchRoute });
export const sameTarget = (a: TrafficTarget, b: TrafficTarget): boolean =>
  a.weight === b.weight && a.matchRoute === b.matchRoute && (a.mirrorPercent ?? 0) === (b.mirrorPercent ?? 0);

/** Header that reaches the candidate during a blue/green preview. */
export const PREVIEW_HEADER = 'x-clover-cd-preview';

/**
 * What a release routes, whatever the mesh: the service, its two versions and the pod label that tells them
 * apart. With a plan's steps (weights, the A/B match rules, the mirror share) it is everything a router needs;
 * the objects that carry it (Istio's VirtualService and DestinationRule, …) and their names live in each
 * mesh's router.
 */
export interface ServiceRouting {
  namespace: string;
  /** Host the routes point at (service.host or service.name). */
  host: string;
  port: number;
  versionLabel: string;
  stable: string;
  candidate: string;
}

export interface ReleasePlan {
  release: string;
  strategy: StrategyKind;
  routing: ServiceRouting;
  steps: PlanStep[];
  /** How many inconclusive verdicts a step may get (each is retried) before `onInconclusive` applies. */
  maxInconclusive: number;
  /** After that: roll back (`fail`, exit 3) or keep the weight and stop (`hold`, exit 3; the next run goes on). */
  onInconclusive: 'fail' | 'hold';
  /** A/B match conditions (empty for other strategies). */
  match: Array<{ headers?: Record<string, HttpMatchValue>; cookie?: HttpMatchValue }>;
}

/**
 * Gate rules that can judge a mirror window. Counting rules cannot: the copies are extra requests at the
 * candidate (conservation would see more than the ingress sent) and no weight is configured (split, share,
 * count). compareLatency cannot either: a copy is sent alongside its primary request, not in its place, so
 * its latency is not paired with the baseline's. Error rate, latency limits, error comparison and L4 judge
 * the copies as they judge any traffic.
 */
export const MIRROR_JUDGEABLE_RULES = ['errorRate', 'latency', 'compareErrors', 'l4'];

/** The gate rules that apply to a step: all of them, or for a mirror step only those that can judge copies. */
export function rulesForStep(rules: GateRule[], step: Pick<PlanStep, 'kind'>): GateRule[] {
  return step.kind === 'mirror'
    ? rules.filter((r) => MIRROR_JUDGEABLE_RULES.includes(Object.keys(r)[0]))
    : rules;
}

/** Why a 1-based step number names no step of the plan, or undefined; `name` is how the caller's input names it (`--step`). */
export function stepProblem(plan: ReleasePlan, step: number, name = 'step'): string | undefined {
  const n = plan.steps.length;
  if (Number.isInteger(step) && step >= 1 && step <= n) return undefined;
  const steps = plan.steps.map((s) => `${s.index + 1}: ${s.kind} ${s.weight}%`).join(', ');
  if (Number.isInteger(step) && step > n)
    return `${name} ${step} is beyond the plan's ${n} step(s) (${steps}); ${name} must be 1..${n}`;
  return `${name} must be 1..${n} (steps: ${steps}), got ${step}`;
}

/** The candidate's Deployment: `service.candidateWorkload`, else `<name>-<candidate>` (what a rendered pipeline deploys). */
export const candidateWorkloadName = (spec: ReleaseSpec): string =>
  spec.service.candidateWorkload ?? `${spec.service.name}-${spec.service.candidate}`;

export function routingOf(spec: ReleaseSpec): ServiceRouting {
  const s = spec.service;
  return {
    namespace: s.namespace,
    host: s.host ?? s.name,
    port: s.port,
    versionLabel: s.versionLabel ?? 'version',
    stable: s.stable,
    candidate: s.candidate,
  };
}

export function strategyOf(spec: ReleaseSpec): StrategyKind {
  if (spec.strategy.canary) return 'canary';
  if (spec.strategy.blueGreen) return 'blueGreen';
  return 'abTest';
}

/** The plan for a validated spec. */
export function buildPlan(spec: ReleaseSpec): ReleasePlan {
  const strategy = strategyOf(spec);
  const steps: Omit<PlanStep, 'index' | 'maxWindowMs'>[] = [];
  const m = spec.strategy.mirror;
  if (m) {
    steps.push({
      kind: 'mirror',
      weight: 0,
      mirrorPercent: Math.round(parsePercent(m.percentage ?? '100%') * 10000) / 100,
      matchRoute: false,
      windowMs: parseDurationMs(m.window),
      judgment: false,
      path: 'strategy.mirror',
    });
  }
  let maxInconclusive = 0;
  if (spec.strategy.canary) {
    const c = spec.strategy.canary;
    maxInconclusive = c.maxInconclusive ?? 0;
    canaryWeights(c).forEach((w, i) =>
      steps.push({
        kind: 'weight',
        weight: w,
        matchRoute: false,
        windowMs: parseDurationMs(c.window),
        judgment: (c.judgmentAt ?? []).includes(w),
        path: c.steps ? `strategy.canary.steps[${i}]` : `strategy.canary.stepWeight (step ${i + 1})`,
      }),
    );
  } else if (spec.strategy.blueGreen) {
    const b = spec.strategy.blueGreen;
    maxInconclusive = b.maxInconclusive ?? 0;
    // Preview: the candidate is up and reachable only through the preview match route; nothing is judged.
    steps.push({
      kind: 'preview',
      weight: 0,
      matchRoute: true,
      windowMs: 0,
      judgment: b.judgment ?? false,
      path: 'strategy.blueGreen',
    });
    // Switch 0 → 100 at once; the stable version stays warm, so a failed window switches straight back.
    steps.push({
      kind: 'switch',
      weight: 100,
      matchRoute: false,
      windowMs: parseDurationMs(b.previewWindow),
      judgment: false,
      path: 'strategy.blueGreen.previewWindow',
    });
  } else if (spec.strategy.abTest) {
    const a = spec.strategy.abTest;
    maxInconclusive = a.maxInconclusive ?? 0;
    steps.push({
      kind: 'match',
      weight: 0,
      matchRoute: true,
      windowMs: parseDurationMs(a.window),
      judgment: a.judgment ?? false,
      path: 'strategy.abTest',
    });
  }
  const maxWindow = spec.gate?.maxWindow ? parseDurationMs(spec.gate.maxWindow) : undefined;
  return {
    release: spec.metadata.name,
    strategy,
    routing: routingOf(spec),
    steps: steps.map((s, index) => ({
      ...s,
      index,
      maxWindowMs:
        s.windowMs === 0 ? 0 : Math.max(s.windowMs, maxWindow ?? DEFAULT_MAX_WINDOW_FACTOR * s.windowMs),
    })),
    maxInconclusive,
    onInconclusive: spec.gate?.onInconclusive ?? 'fail',
    match: spec.strategy.abTest?.match ?? [],
  };
}

// ---- sample-size planning -------------------------------------------------------------------------------

/** What the load plan will send in one analysis window. */
export interface LoadEstimate {
  /** Requests per second, when the plan runs until its window ends. */
  ratePerS?: number;
  /** Requests per run, when the plan is bounded (threads × loops × URLs). */
  perRun?: number;
  /** User agents of the plan's URLs with each URL's share of the requests (for A/B header matches). */
  userAgents: Array<{ userAgent?: string; share: number }>;
}

interface CloverPlanShape {
  load_spec?: { num_threads?: number; loops?: number; duration?: number };
  url_list?: Array<{ 'user-agent'?: string }>;
}

/** Estimate a step's load from a plan in Clover's form; `ratePerS` (measured or given) covers open-ended plans. */
export function estimateLoad(plan: unknown, ratePerS?: number): LoadEstimate {
  const p = (plan ?? {}) as CloverPlanShape;
  const urls = p.url_list ?? [];
  const threads = p.load_spec?.num_threads ?? 1;
  const loops = p.load_spec?.loops ?? 1;
  const userAgents = urls.map((u) => ({ userAgent: u['user-agent'], share: 1 / Math.max(1, urls.length) }));
  const perRun = loops > 0 ? threads * loops * urls.length : undefined;
  return { ratePerS, perRun, userAgents };
}

function matches(value: string | undefined, m: HttpMatchValue): boolean {
  if (value === undefined) return false;
  if (m.exact !== undefined) return value === m.exact;
  if (m.prefix !== undefined) return value.startsWith(m.prefix);
  if (m.regex !== undefined) return new RegExp(`^(?:${m.regex})$`).test(value);
  return false;
}

/** Share (0..1) of the plan's requests that an A/B match sends to the candidate. Cookies: plans send none. */
export function matchedShare(plan: ReleasePlan, load: LoadEstimate): number {
  let share = 0;
  for (const ua of load.userAgents) {
    const hit = plan.match.some((m) => {
      if (m.cookie || !m.headers) return false;
      return Object.entries(m.headers).every(
        ([name, value]) => name.toLowerCase() === 'user-agent' && matches(ua.userAgent, value),
      );
    });
    if (hit) share += ua.share;
  }
  return share;
}

export interface StepSamples {
  step: number;
  kind: StepKind;
  weight: number;
  requests: number;
  candidateRequests: number;
}

/** Candidate requests each analysed step will get; undefined when the load's volume is unknown. */
export function plannedSamples(plan: ReleasePlan, load: LoadEstimate): StepSamples[] | undefined {
  const out: StepSamples[] = [];
  for (const s of plan.steps) {
    if (s.windowMs === 0) continue;
    const requests =
      load.perRun ?? (load.ratePerS !== undefined ? load.ratePerS * (s.windowMs / 1000) : undefined);
    if (requests === undefined) return undefined;
    const share =
      s.kind === 'mirror'
        ? (s.mirrorPercent ?? 100) / 100
        : s.kind === 'match'
          ? matchedShare(plan, load)
          : s.weight / 100;
    out.push({
      step: s.index,
      kind: s.kind,
      weight: s.weight,
      requests: Math.floor(requests),
      candidateRequests: Math.floor(requests * share),
    });
  }
  return out;
}

/** Problems (exit 2) for steps whose candidate cannot reach the gate's minimum samples, with the numbers. */
export function checkSampleSizes(
  plan: ReleasePlan,
  load: LoadEstimate,
  minSamples: number | undefined,
  file?: string,
): InputProblem[] {
  if (!minSamples) return [];
  const samples = plannedSamples(plan, load);
  if (!samples) return [];
  const problems: InputProblem[] = [];
  for (const s of samples) {
    if (s.candidateRequests >= minSamples) continue;
    const step = plan.steps[s.step];
    const why =
      s.kind === 'match'
        ? `the A/B match selects ${s.candidateRequests} of the ${s.requests} requests the load sends per window`
        : s.kind === 'mirror'
          ? `mirroring ${step.mirrorPercent}% of ${s.requests} requests copies ${s.candidateRequests}`
          : `${s.weight}% of the ${s.requests} requests the load sends per window is ${s.candidateRequests}`;
    problems.push({
      file,
      path: step.path,
      message: `the candidate would get ${s.candidateRequests} requests but gate.minSamples is ${minSamples}: ${why}; raise the load (threads, loops, duration) or the window, or lower minSamples`,
    });
  }
  return problems;
}

/**
 * The plan commands use: the spec's steps, refused (exit 2, nothing changed) when a step cannot reach the
 * gate's minimum samples at the load's volume. `loadPlan` is the spec's load plan, already read.
 */
export function planRelease(
  spec: ReleaseSpec,
  opts: { loadPlan?: unknown; loadRatePerS?: number; file?: string } = {},
): ReleasePlan {
  const plan = buildPlan(spec);
  if (opts.loadPlan !== undefined || opts.loadRatePerS !== undefined) {
    const problems = checkSampleSizes(
      plan,
      estimateLoad(opts.loadPlan, opts.loadRatePerS),
      spec.gate?.minSamples,
      opts.file,
    );
    if (problems.length) {
      const numbers = problems.map((p) => p.message.split(':')[0]).join('; ');
      throw new InvalidInputError(
        `${opts.file ?? spec.metadata.name}: the load cannot give the gate enough samples (${numbers})`,
        problems,
      );
    }
  }
  return plan;
}
