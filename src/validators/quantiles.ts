/**
 * Quantile comparisons whose effect size means the same at any spread: the ratio of the candidate's
 * quantile to the baseline's (median for compareLatency, p95/p99 for the tail rule), with a confidence bound.
 *
 * The standard error of each log-quantile comes from the distance between two order statistics around it,
 * the distribution-free method of Price & Bonett ("Distribution-free confidence intervals for difference and
 * ratio of medians", J. Stat. Comput. Simul. 72, 2002), extended from the median to any quantile:
 * se(ln Q̂) ≈ (ln X₍ᵣ₊ₕ₎ − ln X₍ᵣ₋ₕ₎) / (2z), with r = nq and h = z·√(nq(1−q)). It needs no density estimate and no assumption on the shape, so a heavy tail or two
 * modes widen the interval instead of breaking it. Both sides combine in quadrature on the log scale.
 *
 * Raw samples and Istio histograms are read through the same inverse CDF (linear inside a bucket, as
 * Prometheus' histogram_quantile), so the histogram fallback estimates the same ratio rather than a smaller one.
 */
import { probit } from 'simple-statistics';
import { normalUpperTail } from './stats.js';
import type { Histogram } from './types.js';

/** z that sets the order statistics used to measure the spread around a quantile (a ~95% window). */
const Z_SPREAD = 1.96;
/** Observations needed on each side of a quantile before its interval means anything. */
export const MIN_TAIL_OBSERVATIONS = 10;
/** Latencies are compared on the log scale; a 0 ms reading (clock resolution) counts as 1 µs. */
const FLOOR_MS = 0.001;

export interface Distribution {
  n: number;
  sorted?: Float64Array;
  histogram?: Histogram;
}

const sortedCache = new WeakMap<ArrayLike<number>, Float64Array>();

/** A sample set as a distribution (sorted once per array, then cached). */
export function fromSamples(samples: ArrayLike<number>): Distribution {
  let sorted = sortedCache.get(samples);
  if (!sorted) sortedCache.set(samples, (sorted = Float64Array.from(samples).sort()));
  return { n: sorted.length, sorted };
}

export function fromHistogram(h: Histogram): Distribution {
  return { n: h.counts[h.counts.length - 1] ?? 0, histogram: h };
}

/**
 * Value at a continuous rank (0..n, the number of observations at or below it). NaN outside the data or
 * inside a histogram's +Inf bucket (no upper bound to interpolate to).
 */
export function valueAtRank(d: Distribution, rank: number): number {
  if (!d.n || rank < 0 || rank > d.n) return NaN;
  if (d.sorted) {
    // Order statistic i (1-based) sits at rank i − ½ (Hazen), so the median of 1..n is the sample median.
    const pos = Math.min(d.n - 1, Math.max(0, rank - 0.5));
    const lo = Math.floor(pos);
    const hi = Math.ceil(pos);
    return d.sorted[lo] + (d.sorted[hi] - d.sorted[lo]) * (pos - lo);
  }
  const h = d.histogram!;
  for (let i = 0; i < h.le.length; i++) {
    if (h.counts[i] >= rank) {
      if (!Number.isFinite(h.le[i])) return NaN;
      const lower = i > 0 ? h.le[i - 1] : 0;
      const below = i > 0 ? h.counts[i - 1] : 0;
      const inBucket = h.counts[i] - below;
      return inBucket > 0 ? lower + ((h.le[i] - lower) * (rank - below)) / inBucket : h.le[i];
    }
  }
  return NaN;
}

export interface QuantileEstimate {
  q: number;
  n: number;
  value: number;
  /** Standard error of ln(value); NaN when the data cannot give one. */
  logSe: number;
  /** Why there is no estimate, for a person. */
  problem?: string;
}

export function estimateQuantile(d: Distribution, q: number): QuantileEstimate {
  const need = Math.ceil(MIN_TAIL_OBSERVATIONS / Math.min(q, 1 - q));
  if (d.n < need)
    return {
      q,
      n: d.n,
      value: NaN,
      logSe: NaN,
      problem: `p${+(q * 100).toFixed(2)} needs ≥ ${need} samples (has ${d.n})`,
    };
  const rank = q * d.n;
  const h = Z_SPREAD * Math.sqrt(d.n * q * (1 - q));
  const value = valueAtRank(d, rank);
  const low = valueAtRank(d, Math.max(0, rank - h));
  const high = valueAtRank(d, Math.min(d.n, rank + h));
  if (!Number.isFinite(value) || !Number.isFinite(high)) {
    return {
      q,
      n: d.n,
      value,
      logSe: NaN,
      problem: `p${+(q * 100).toFixed(2)} lies in the histogram's +Inf bucket (no upper bound)`,
    };
  }
  const ln = (x: number) => Math.log(Math.max(FLOOR_MS, x));
  return { q, n: d.n, value, logSe: (ln(high) - ln(low)) / (2 * Z_SPREAD) };
}

export interface QuantileComparison {
  q: number;
  baseline: QuantileEstimate;
  candidate: QuantileEstimate;
  /** candidate / baseline */
  ratio: number;
  /** One-sided (1 − α) lower confidence bound of the ratio. */
  lower: number;
  /** One-sided p for "ratio > 1 + margin". */
  p: number;
  problem?: string;
}

/** Is the candidate's q-quantile more than (1 + margin) × the baseline's? One-sided, on the log ratio. */
export function compareQuantiles(
  base: Distribution,
  cand: Distribution,
  q: number,
  margin: number,
  alpha: number,
): QuantileComparison {
  const b = estimateQuantile(base, q);
  const c = estimateQuantile(cand, q);
  const problem = b.problem ? `baseline ${b.problem}` : c.problem ? `candidate ${c.problem}` : undefined;
  if (problem) return { q, baseline: b, candidate: c, ratio: c.value / b.value, lower: NaN, p: NaN, problem };
  const ln = (x: number) => Math.log(Math.max(FLOOR_MS, x));
  const logRatio = ln(c.value) - ln(b.value);
  // A zero spread (every reading the same) still has the resolution of the data: keep the error positive.
  const se = Math.max(1e-9, Math.hypot(b.logSe, c.logSe));
  const z = (logRatio - Math.log(1 + margin)) / se;
  return {
    q,
    baseline: b,
    candidate: c,
    ratio: Math.exp(logRatio),
    lower: Math.exp(logRatio - probit(1 - alpha) * se),
    p: normalUpperTail(z),
  };
}
