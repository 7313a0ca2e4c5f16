/**
 * Sample-size planning: how many candidate requests a healthy canary of ordinary traffic needs before every
 * rule has ruled out a regression of its `detect` size — the moment the sequential gate can pass. Pure; worked
 * out with the same always-valid tests the gate runs (sequential/), on the counts such a canary is expected to
 * show. The engine prints the plan before traffic moves, tunes the tests to be tightest there (bundle
 * plannedSamples), and says when a step can decide at the request rate it observes; `spec validate` warns when
 * a rule cannot decide within maxWindow at the rate the spec states (gate.requestRate).
 *
 * What "ordinary traffic" means here (stated in every item): both versions equal, the stable error rate
 * `baselineErrorRate` (default 0.5%; against an absolute limit at most a quarter of it), routes sharing the
 * requests evenly (4 of them), latency log-normal with σ 0.6 (a service whose p99 is ~4× its median; heavier
 * tails need more). Per rule:
 * - `gate.minSamples` (default 30);
 * - errorRate { max }: until the rate is shown below max (a route: below routeMax, on a quarter of the requests);
 * - latency { percentile }: ≥ 10 requests beyond the quantile, n = ⌈10 / (1 − q)⌉ (its limit is the user's);
 * - compareErrors: until an increase of `detect` (a route: `routeDetect`) is ruled out;
 * - compareLatency, tail: until a ratio of 1 + `detect` is ruled out for each percentile.
 */
import { inverseErrorFunction } from 'simple-statistics';
import type { GateRule } from '../spec/types.js';
import { parseDurationMs, parsePercent } from '../util/units.js';
import { DEFAULT_BETA } from './budget.js';
import { MIN_TAIL_OBSERVATIONS } from './quantiles.js';
import {
  DEFAULT_LATENCY_INCREASE,
  DEFAULT_TAIL_INCREASE,
  DEFAULT_TAIL_PERCENTILES,
} from './rules-compare.js';
import { CANDIDATE_SHARE, differenceUpper } from './sequential/counts.js';
import { bernoulliEvidence, type MixtureTuning } from './sequential/mixture.js';
import { quantileRatioTest, type Ranked } from './sequential/quantiles.js';
import {
  DEFAULT_ERRORS_DETECT,
  DEFAULT_LATENCY_DETECT,
  DEFAULT_ROUTE_ERRORS_DETECT,
  DEFAULT_TAIL_DETECT,
  detectOf,
  TYPICAL_ROUTES,
} from './sequential/rules.js';

export const DEFAULT_MIN_SAMPLES = 30;
export const DEFAULT_BASELINE_ERROR_RATE = 0.005;
/** The spread of the log-normal latency the plan assumes. */
const PLAN_SIGMA = 0.6;
const LARGEST = 10_000_000;

export interface SamplePlanOptions {
  /** Candidate weight (%) of the step: turns the candidate count into total requests. */
  weightPercent?: number;
  /** The stable version's error rate (0..1) of ordinary traffic (default 0.5%). */
  baselineErrorRate?: number;
  /** The pass error (default gate.beta or 5%). */
  beta?: number;
}

export interface SamplePlanItem {
  rule: string;
  /** Candidate requests this rule needs; Infinity when ordinary traffic can never pass it. */
  candidate?: number;
  why: string;
}

export interface SamplePlan {
  /** Candidate requests the step's analysis needs. */
  candidate: number;
  /** Requests through the service at the step's weight (when the weight is known). */
  total?: number;
  items: SamplePlanItem[];
}

const forQuantile = (q: number) => Math.ceil(MIN_TAIL_OBSERVATIONS / Math.min(q, 1 - q) - 1e-9);
const tune = (tOpt: number, alphaOpt: number): MixtureTuning => ({ tOpt: Math.max(10, tOpt), alphaOpt });

/** The smallest n (≥ 10) for which `ok(n)` holds, `ok` monotone; Infinity beyond ten million. */
export function smallestN(ok: (n: number) => boolean): number {
  let lo = 10;
  if (ok(lo)) return lo;
  let hi = 20;
  while (!ok(hi)) {
    lo = hi;
    hi *= 2;
    if (hi > LARGEST) return Infinity;
  }
  while (hi - lo > Math.max(1, lo * 0.01)) {
    const mid = Math.floor((lo + hi) / 2);
    if (ok(mid)) hi = mid;
    else lo = mid;
  }
  return hi;
}

/** A log-normal latency (median 50 ms) as the counts n requests are expected to show. */
function expectedLatency(n: number): Ranked {
  const cdf = (x: number) => (x <= 0 ? 0 : 0.5 * (1 + erf(Math.log(x / 50) / (PLAN_SIGMA * Math.SQRT2))));
  const quantile = (q: number) => 50 * Math.exp(PLAN_SIGMA * Math.SQRT2 * inverseErrorFunction(2 * q - 1));
  const points = Array.from({ length: 199 }, (_, i) => quantile((i + 1) / 200)).concat([
    quantile(0.999),
    quantile(0.9999),
  ]);
  return { n, atMost: (x) => n * cdf(x), below: (x) => n * cdf(x), points, quantile };
}

function erf(x: number): number {
  // Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7): plenty for a plan.
  const t = 1 / (1 + 0.3275911 * Math.abs(x));
  const y =
    1 -
    ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) *
      t *
      Math.exp(-x * x);
  return x >= 0 ? y : -y;
}

export function plannedSamples(
  gate: { minSamples?: number; beta?: string | number; rules: GateRule[] },
  opts: SamplePlanOptions = {},
): SamplePlan {
  const items: SamplePlanItem[] = [];
  const minSamples = gate.minSamples ?? DEFAULT_MIN_SAMPLES;
  const beta = opts.beta ?? (gate.beta === undefined ? DEFAULT_BETA : parsePercent(gate.beta));
  const threshold = Math.log(1 / beta);
  const base = opts.baselineErrorRate ?? DEFAULT_BASELINE_ERROR_RATE;
  const w = opts.weightPercent;
  const perCandidate = w !== undefined && w > 0 && w < 100 ? (100 - w) / w : 1;
  const pctText = (x: number) => `${+(x * 100).toFixed(3)}%`;
  items.push({ rule: 'minSamples', candidate: minSamples, why: `gate.minSamples ${minSamples}` });
  const belowLimit = (limit: number, rate: number) =>
    smallestN((n) => bernoulliEvidence(rate * n, n, limit, 'below', tune(n, beta)) >= threshold);
  const increaseRuledOut = (detect: number) =>
    smallestN(
      (n) =>
        differenceUpper({ k: base * n, n }, { k: base * n * perCandidate, n: n * perCandidate }, beta, {
          candidate: tune(n, beta * CANDIDATE_SHARE),
          stable: tune(n * perCandidate, beta * (1 - CANDIDATE_SHARE)),
        }) <= detect,
    );
  const ratioRuledOut = (q: number, ratio: number) =>
    smallestN(
      (n) =>
        quantileRatioTest(
          expectedLatency(n),
          expectedLatency(n * perCandidate),
          q,
          ratio,
          'faster',
          threshold,
          { candidate: tune(n, beta), stable: tune(n * perCandidate, beta) },
        ).rejected,
    );
  for (const rule of gate.rules) {
    if ('errorRate' in rule && (rule.errorRate.version ?? 'candidate') === 'candidate') {
      const r = rule.errorRate;
      const max = parsePercent(r.max);
      const rate = Math.min(base, max / 4);
      const overall = belowLimit(max, rate);
      const routeMax = r.routeMax !== undefined ? parsePercent(r.routeMax) : Math.min(1, 2 * max);
      const routes = r.perRoute && r.route === undefined ? TYPICAL_ROUTES * belowLimit(routeMax, rate) : 0;
      items.push({
        rule: `errorRate ${r.max}${routes ? ' per route' : ''}`,
        candidate: Math.max(overall, routes),
        why: `a ${pctText(rate)} error rate shown below ${r.max}${routes ? ` (each of ${TYPICAL_ROUTES} routes below ${pctText(routeMax)})` : ''} at β ${beta}`,
      });
    } else if ('latency' in rule && (rule.latency.version ?? 'candidate') === 'candidate') {
      const n = forQuantile(rule.latency.percentile / 100);
      items.push({
        rule: `latency p${rule.latency.percentile}`,
        candidate: n,
        why: `${MIN_TAIL_OBSERVATIONS} requests beyond p${rule.latency.percentile}`,
      });
    } else if ('compareErrors' in rule) {
      const r = rule.compareErrors;
      const detect = parsePercent(r.detect ?? DEFAULT_ERRORS_DETECT);
      const overall = increaseRuledOut(detect);
      const routeDetect = parsePercent(r.routeDetect ?? DEFAULT_ROUTE_ERRORS_DETECT);
      const routes = r.perRoute && r.route === undefined ? TYPICAL_ROUTES * increaseRuledOut(routeDetect) : 0;
      items.push({
        rule: `compareErrors${routes ? ' per route' : ''}`,
        candidate: Math.max(overall, routes),
        why: `+${pctText(detect)} ruled out on a ${pctText(base)} error rate${routes ? ` (+${pctText(routeDetect)} on each of ${TYPICAL_ROUTES} routes)` : ''}${w ? `, ${w}% weight` : ''}`,
      });
    } else if ('compareLatency' in rule || 'tail' in rule) {
      const tail = 'tail' in rule ? rule.tail : undefined;
      const cmp = 'compareLatency' in rule ? rule.compareLatency : undefined;
      const ps = tail ? (tail.percentiles ?? DEFAULT_TAIL_PERCENTILES) : [cmp!.percentile ?? 50];
      const inc =
        (tail ? tail.maxIncrease : cmp!.maxIncrease) ??
        (tail ? DEFAULT_TAIL_INCREASE : DEFAULT_LATENCY_INCREASE);
      const detect = parsePercent(
        detectOf(tail ? tail.detect : cmp!.detect, inc, tail ? DEFAULT_TAIL_DETECT : DEFAULT_LATENCY_DETECT),
      );
      const n = Math.max(
        ...ps.map((p) => Math.max(forQuantile(p / 100), ratioRuledOut(p / 100, 1 + detect))),
      );
      items.push({
        rule: `${tail ? 'tail' : 'compareLatency'} ${ps.map((p) => `p${p}`).join('/')}`,
        candidate: n,
        why: `a ratio of ${+(1 + detect).toFixed(3)} ruled out (log-normal latency, σ ${PLAN_SIGMA})`,
      });
    }
  }
  const candidate = Math.max(...items.map((i) => i.candidate ?? 0));
  return {
    candidate,
    total: w && Number.isFinite(candidate) ? Math.ceil((candidate * 100) / w) : undefined,
    items,
  };
}

/** Requests per second of a rate such as "50/s" or "600/m". */
export function ratePerSecond(rate: string): number {
  const m = /^(\d+(?:\.\d+)?)\/(s|m)$/.exec(rate.trim());
  if (!m) throw new RangeError(`not a request rate: "${rate}" (expected e.g. 50/s or 600/m)`);
  return Number(m[1]) / (m[2] === 'm' ? 60 : 1);
}

/** Seconds a step needs to reach its plan when the service receives `perSecond` requests at `weightPercent`. */
export function secondsToDecide(plan: SamplePlan, perSecond: number, weightPercent: number): number {
  const candidatePerS = (perSecond * weightPercent) / 100;
  return candidatePerS > 0 ? plan.candidate / candidatePerS : Infinity;
}

/** A person-readable plan, printed before traffic moves. */
export function describePlan(plan: SamplePlan): string {
  const n = (x?: number) =>
    x === undefined
      ? 'not counted'
      : Number.isFinite(x)
        ? String(x)
        : 'never (ordinary traffic cannot pass it)';
  const head = `planned ${n(plan.candidate)} candidate requests${plan.total !== undefined ? ` (${plan.total} in total at this weight)` : ''}`;
  return [head, ...plan.items.map((i) => `  ${i.rule}: ${n(i.candidate)} — ${i.why}`)].join('\n');
}

/**
 * Warnings for a spec whose rules cannot decide within maxWindow at the rate it states (gate.requestRate), one
 * per step; empty without a stated rate.
 */
export function planWarnings(
  gate: {
    minSamples?: number;
    beta?: string | number;
    requestRate?: string;
    maxWindow?: string;
    rules: GateRule[];
  },
  steps: Array<{ weight: number; windowMs: number }>,
): string[] {
  if (!gate.requestRate) return [];
  const perSecond = ratePerSecond(gate.requestRate);
  const out: string[] = [];
  for (const step of steps) {
    const maxMs = gate.maxWindow ? parseDurationMs(gate.maxWindow) : 6 * step.windowMs;
    const plan = plannedSamples(gate, { weightPercent: step.weight });
    const seconds = secondsToDecide(plan, perSecond, step.weight);
    if (seconds * 1000 <= maxMs) continue;
    const slowest = [...plan.items].sort((a, b) => (b.candidate ?? 0) - (a.candidate ?? 0))[0];
    out.push(
      `step ${step.weight}%: a healthy canary needs ~${Number.isFinite(plan.candidate) ? plan.candidate : '∞'} candidate requests (${slowest.rule}: ${slowest.why}); at ${gate.requestRate} × ${step.weight}% that takes ${Number.isFinite(seconds) ? `${Math.ceil(seconds)}s` : 'forever'}, more than maxWindow ${gate.maxWindow ?? `${(maxMs / 1000).toFixed(0)}s`}: it will end inconclusive — raise the weight, maxWindow or the rule's detect`,
    );
  }
  return out;
}
