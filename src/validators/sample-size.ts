/**
 * Sample-size planning: how many candidate requests a step's analysis needs before its rules can decide,
 * from the gate's own rules. Pure; the release engine calls it to size each step's window (run until the
 * planned count is reached, bounded by a maximum time) and prints the plan before traffic moves. The gate
 * records the plan in the bundle (`plannedSamples`): below it every statistical rule is inconclusive.
 *
 * What each rule needs (the largest wins):
 * - `gate.minSamples` (default 30);
 * - errorRate { max }: the fewest requests in which a clean candidate (no errors) shows its rate is below
 *   `max` at 95% (the rule's own test level): n = ⌈ln 0.05 / ln(1 − max)⌉ (the "rule of three" at 1%: 299);
 * - latency { percentile } and tail { percentiles }: ≥ 10 requests beyond the quantile, n = ⌈10 / (1 − q)⌉
 *   (p99: 1,000), or its interval has no order statistics to stand on;
 * - compareLatency: the same for its quantile (median: 20);
 * - compareErrors: given the baseline's error rate (`baselineErrorRate`), the candidate count that detects a
 *   doubling of it (plus the rule's margin) with `power` at the rule's α, for the weight split
 *   (two-proportion normal approximation, Fleiss/Chow "Sample Size Calculations in Clinical Research", section 4.2).
 *   Without a baseline rate it is listed but not counted.
 */
import { probit } from 'simple-statistics';
import type { GateRule } from '../spec/types.js';
import { parsePercent } from '../util/units.js';
import { MIN_TAIL_OBSERVATIONS } from './quantiles.js';
import { DEFAULT_TAIL_PERCENTILES } from './rules-compare.js';

export const DEFAULT_MIN_SAMPLES = 30;
/** The errorRate rule fails only when the excess is significant at this level. */
const ERROR_RATE_LEVEL = 0.05;

export interface SamplePlanOptions {
  /** Candidate weight (%) of the step: turns the candidate count into total requests. */
  weightPercent?: number;
  /** The stable version's error rate (0..1), e.g. from its recent traffic; enables compareErrors planning. */
  baselineErrorRate?: number;
  /** Chance of detecting the planned effect (default 0.8). */
  power?: number;
}

export interface SamplePlanItem {
  rule: string;
  /** Candidate requests this rule needs; undefined = not counted (reason in `why`). */
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

/** Candidate count that detects p_b → 2p_b + margin at one-sided α with the given power, baseline k× larger. */
export function twoProportionSampleSize(
  pBase: number,
  margin: number,
  alpha: number,
  power: number,
  k: number,
): number {
  const pCand = Math.min(0.999, 2 * pBase + margin);
  const effect = pCand - pBase - margin;
  if (effect <= 0) return Infinity;
  const pBar = (pCand + k * pBase) / (1 + k);
  const za = probit(1 - alpha);
  const zb = probit(power);
  const n =
    (za * Math.sqrt(pBar * (1 - pBar) * (1 + 1 / k)) +
      zb * Math.sqrt(pCand * (1 - pCand) + (pBase * (1 - pBase)) / k)) /
    effect;
  return Math.ceil(n * n);
}

export function plannedSamples(
  gate: { minSamples?: number; rules: GateRule[] },
  opts: SamplePlanOptions = {},
): SamplePlan {
  const items: SamplePlanItem[] = [];
  const minSamples = gate.minSamples ?? DEFAULT_MIN_SAMPLES;
  items.push({ rule: 'minSamples', candidate: minSamples, why: `gate.minSamples ${minSamples}` });
  const weight = opts.weightPercent;
  for (const rule of gate.rules) {
    if ('errorRate' in rule && (rule.errorRate.version ?? 'candidate') === 'candidate') {
      const max = parsePercent(rule.errorRate.max);
      const n = max > 0 ? Math.ceil(Math.log(ERROR_RATE_LEVEL) / Math.log(1 - max)) : Infinity;
      items.push({
        rule: `errorRate ${rule.errorRate.max}`,
        candidate: n,
        why: `0 errors in ${n} requests shows the rate is below ${rule.errorRate.max} at 95%`,
      });
    } else if ('latency' in rule && (rule.latency.version ?? 'candidate') === 'candidate') {
      const n = forQuantile(rule.latency.percentile / 100);
      items.push({
        rule: `latency p${rule.latency.percentile}`,
        candidate: n,
        why: `${MIN_TAIL_OBSERVATIONS} requests beyond p${rule.latency.percentile}`,
      });
    } else if ('tail' in rule) {
      const ps = rule.tail.percentiles ?? DEFAULT_TAIL_PERCENTILES;
      const top = Math.max(...ps);
      const n = forQuantile(top / 100);
      items.push({
        rule: `tail ${ps.map((p) => `p${p}`).join('/')}`,
        candidate: n,
        why: `${MIN_TAIL_OBSERVATIONS} requests beyond p${top}`,
      });
    } else if ('compareLatency' in rule) {
      const p = rule.compareLatency.percentile ?? 50;
      items.push({
        rule: `compareLatency p${p}`,
        candidate: forQuantile(p / 100),
        why: `${MIN_TAIL_OBSERVATIONS} requests on each side of p${p}`,
      });
    } else if ('compareErrors' in rule) {
      const alpha = rule.compareErrors.alpha ?? 0.01;
      const margin = rule.compareErrors.maxIncrease ? parsePercent(rule.compareErrors.maxIncrease) : 0;
      if (opts.baselineErrorRate === undefined || weight === undefined || weight <= 0 || weight >= 100) {
        items.push({
          rule: 'compareErrors',
          why: 'needs the stable error rate and the step weight to plan; not counted',
        });
      } else {
        const power = opts.power ?? 0.8;
        const n = twoProportionSampleSize(
          opts.baselineErrorRate,
          margin,
          alpha,
          power,
          (100 - weight) / weight,
        );
        items.push({
          rule: 'compareErrors',
          candidate: n,
          why: `detects ${(opts.baselineErrorRate * 100).toFixed(2)}% → ${((2 * opts.baselineErrorRate + margin) * 100).toFixed(2)}% with power ${power} at α ${alpha}, ${weight}% weight`,
        });
      }
    }
  }
  const candidate = Math.max(...items.map((i) => i.candidate ?? 0));
  return { candidate, total: weight ? Math.ceil((candidate * 100) / weight) : undefined, items };
}

/** A person-readable plan, printed before traffic moves. */
export function describePlan(plan: SamplePlan): string {
  const head = `planned ${plan.candidate} candidate requests${plan.total !== undefined ? ` (${plan.total} in total at this weight)` : ''}`;
  return [head, ...plan.items.map((i) => `  ${i.rule}: ${i.candidate ?? 'not counted'} — ${i.why}`)].join(
    '\n',
  );
}
