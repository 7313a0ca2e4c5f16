/**
 * Statistics the rules use. Pure, allocation-light (a million samples are judged in well under a second):
 * Mann-Whitney U with tie correction and effect size, binomial intervals, proportion tests, quantiles.
 */
import jstatPkg from 'jstat';
import { errorFunction, probit } from 'simple-statistics';
import type { Histogram } from './types.js';

const { jStat } = jstatPkg;

/** Standard normal upper tail P(Z > z). */
export function normalUpperTail(z: number): number {
  if (!Number.isFinite(z)) return z > 0 ? 0 : 1;
  return 0.5 * (1 - errorFunction(z / Math.SQRT2));
}

export interface MannWhitneyResult {
  nBaseline: number;
  nCandidate: number;
  /** U of the candidate: count of (candidate > baseline) pairs, ties counted half. */
  u: number;
  z: number;
  /** One-sided p-value for "candidate is larger" (slower / more). */
  pGreater: number;
  /** Vargha-Delaney A = P(candidate > baseline) + ½P(tie), Kayenta's "cles". */
  cles: number;
  /** Cliff's delta = 2A − 1, in [-1, 1]; > 0 means the candidate tends to be larger. */
  cliffsDelta: number;
}

/**
 * Mann-Whitney U over grouped data: for each distinct value (ascending), how many baseline and candidate
 * observations have it. Samples and histogram bins both reduce to this, so one walk serves both.
 */
export function mannWhitneyGrouped(groups: Iterable<[number, number]>): MannWhitneyResult {
  let nx = 0;
  let ny = 0;
  let rankSumY = 0;
  let tieTerm = 0;
  let below = 0;
  for (const [a, b] of groups) {
    const t = a + b;
    if (t === 0) continue;
    const avgRank = below + (t + 1) / 2;
    rankSumY += b * avgRank;
    tieTerm += t * t * t - t;
    below += t;
    nx += a;
    ny += b;
  }
  const n = nx + ny;
  if (nx === 0 || ny === 0)
    return { nBaseline: nx, nCandidate: ny, u: NaN, z: NaN, pGreater: NaN, cles: NaN, cliffsDelta: NaN };
  const u = rankSumY - (ny * (ny + 1)) / 2;
  const mean = (nx * ny) / 2;
  const variance = ((nx * ny) / 12) * (n + 1 - tieTerm / (n * (n - 1)));
  const diff = u - mean;
  // Continuity correction toward zero, as R's wilcox.test (which Kayenta ports).
  const z = variance > 0 ? (diff - Math.sign(diff) * 0.5) / Math.sqrt(variance) : 0;
  const cles = u / (nx * ny);
  return {
    nBaseline: nx,
    nCandidate: ny,
    u,
    z,
    pGreater: variance > 0 ? normalUpperTail(z) : 0.5,
    cles,
    cliffsDelta: 2 * cles - 1,
  };
}

/** Mann-Whitney U on raw samples (baseline, candidate). Sorts copies as typed arrays. */
export function mannWhitney(baseline: ArrayLike<number>, candidate: ArrayLike<number>): MannWhitneyResult {
  const x = Float64Array.from(baseline).sort();
  const y = Float64Array.from(candidate).sort();
  function* groups(): Generator<[number, number]> {
    let i = 0;
    let j = 0;
    while (i < x.length || j < y.length) {
      const v = j >= y.length || (i < x.length && x[i] <= y[j]) ? x[i] : y[j];
      let a = 0;
      let b = 0;
      while (i < x.length && x[i] === v) {
        i++;
        a++;
      }
      while (j < y.length && y[j] === v) {
        j++;
        b++;
      }
      yield [a, b];
    }
  }
  return mannWhitneyGrouped(groups());
}

/** Mann-Whitney U on two cumulative histograms with the same bucket bounds (ordinal data, bins as ties). */
export function mannWhitneyHistograms(baseline: Histogram, candidate: Histogram): MannWhitneyResult {
  const bins = (h: Histogram) => h.counts.map((c, i) => c - (i ? h.counts[i - 1] : 0));
  const bx = bins(baseline);
  const by = bins(candidate);
  return mannWhitneyGrouped(bx.map((a, i) => [Math.max(0, a), Math.max(0, by[i] ?? 0)] as [number, number]));
}

export interface Interval {
  low: number;
  high: number;
}

/** Wilson score interval for k successes in n trials at a two-sided confidence. */
export function wilsonInterval(k: number, n: number, confidence: number): Interval {
  if (n === 0) return { low: 0, high: 1 };
  const z = probit(1 - (1 - confidence) / 2);
  const p = k / n;
  const denom = 1 + (z * z) / n;
  const centre = (p + (z * z) / (2 * n)) / denom;
  const half = (z * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n))) / denom;
  // At k = 0 or k = n the Wilson bound is exactly 0 or 1; floating point lands just inside it, which would
  // put a configured 0% / 100% weight "outside" an all-or-nothing observation.
  return { low: k === 0 ? 0 : Math.max(0, centre - half), high: k === n ? 1 : Math.min(1, centre + half) };
}

/** Clopper-Pearson (exact) interval for k of n at a two-sided confidence. */
export function exactBinomialInterval(k: number, n: number, confidence: number): Interval {
  if (n === 0) return { low: 0, high: 1 };
  const a = (1 - confidence) / 2;
  return {
    low: k === 0 ? 0 : jStat.beta.inv(a, k, n - k + 1),
    high: k === n ? 1 : jStat.beta.inv(1 - a, k + 1, n - k),
  };
}

/** P(X ≥ k) for X ~ Binomial(n, p): how surprising k errors are if the true rate were p. */
export function binomialUpperTail(k: number, n: number, p: number): number {
  if (k <= 0) return 1;
  if (k > n) return 0;
  if (n > 5000) {
    // Normal approximation with continuity correction; the exact sum is slow and no more useful here.
    const sd = Math.sqrt(n * p * (1 - p));
    return sd === 0 ? (k <= n * p ? 1 : 0) : normalUpperTail((k - 0.5 - n * p) / sd);
  }
  return Math.max(0, Math.min(1, 1 - jStat.binomial.cdf(k - 1, n, p)));
}

export interface ProportionTest {
  method: 'mid-p-exact' | 'farrington-manning';
  baselineRate: number;
  candidateRate: number;
  /** One-sided p for "candidate rate exceeds baseline rate + margin". */
  p: number;
}

/** ln Γ(x), for hypergeometric and binomial terms. */
const lnGamma = (x: number): number => jStat.gammaln(x);
const lnChoose = (n: number, k: number) => lnGamma(n + 1) - lnGamma(k + 1) - lnGamma(n - k + 1);

/**
 * Upper tail of the hypergeometric distribution (N items, K marked, n drawn): P(X > k) and P(X = k), summed
 * outward from k with the ratio of consecutive terms (no factorials of large numbers).
 */
export function hypergeometricTail(
  k: number,
  N: number,
  K: number,
  n: number,
): { greater: number; equal: number } {
  const lo = Math.max(0, n - (N - K));
  const hi = Math.min(n, K);
  if (k > hi) return { greater: 0, equal: 0 };
  if (k < lo) return { greater: 1, equal: 0 };
  const equal = Math.exp(lnChoose(K, k) + lnChoose(N - K, n - k) - lnChoose(N, n));
  let term = equal;
  let greater = 0;
  for (let x = k; x < hi; x++) {
    term *= ((K - x) * (n - x)) / ((x + 1) * (N - K - n + x + 1));
    greater += term;
    if (term < greater * 1e-15) break;
  }
  return { greater: Math.min(1, greater), equal };
}

/**
 * One-sided test that the candidate's error rate exceeds the baseline's by more than `margin`, calibrated at
 * any weight split and base rate:
 * - margin 0: the mid-p version of Fisher's exact test (conditional on the total errors: P(X > k) + ½P(X = k)
 *   under the hypergeometric law). Exact tests hold α at 10/90 splits and 0.05% rates where the pooled z-test
 *   does not; mid-p removes most of Fisher's conservatism (Lancaster 1961; Agresti, Categorical Data Analysis, section 3.5).
 * - margin > 0: the Farrington-Manning score test, whose variance is taken at the maximum-likelihood rates
 *   restricted to "candidate = baseline + margin" (Farrington & Manning 1990), the standard non-inferiority test.
 */
export function compareProportions(
  kBase: number,
  nBase: number,
  kCand: number,
  nCand: number,
  margin = 0,
): ProportionTest {
  const baselineRate = nBase ? kBase / nBase : 0;
  const candidateRate = nCand ? kCand / nCand : 0;
  if (!nBase || !nCand)
    return { method: margin ? 'farrington-manning' : 'mid-p-exact', baselineRate, candidateRate, p: 1 };
  if (margin === 0) {
    const t = hypergeometricTail(kCand, nBase + nCand, kBase + kCand, nCand);
    return {
      method: 'mid-p-exact',
      baselineRate,
      candidateRate,
      p: Math.max(0, Math.min(1, t.greater + 0.5 * t.equal)),
    };
  }
  const z = farringtonManningZ(kCand, nCand, kBase, nBase, margin);
  return { method: 'farrington-manning', baselineRate, candidateRate, p: normalUpperTail(z) };
}

/**
 * Score statistic for H0: p1 − p2 = δ (group 1 = candidate). The restricted MLE is the closed-form root of
 * Farrington & Manning's cubic (1990, eq. 2.7; as in Miettinen & Nurminen without their n/(n−1) factor).
 */
export function farringtonManningZ(k1: number, n1: number, k2: number, n2: number, delta: number): number {
  const p1 = k1 / n1;
  const p2 = k2 / n2;
  const theta = n2 / n1;
  const a = 1 + theta;
  const b = -(1 + theta + p1 + theta * p2 + delta * (theta + 2));
  const c = delta * delta + delta * (2 * p1 + theta + 1) + p1 + theta * p2;
  const d = -p1 * delta * (1 + delta);
  const v = b ** 3 / (27 * a ** 3) - (b * c) / (6 * a * a) + d / (2 * a);
  const uu = (b * b) / (9 * a * a) - c / (3 * a);
  const u = (v < 0 ? -1 : 1) * Math.sqrt(Math.max(0, uu));
  const w = u === 0 ? Math.PI / 3 : (Math.PI + Math.acos(Math.max(-1, Math.min(1, v / u ** 3)))) / 3;
  const r1 = Math.min(1, Math.max(0, 2 * u * Math.cos(w) - b / (3 * a)));
  const r2 = Math.min(1, Math.max(0, r1 - delta));
  const se = Math.sqrt((r1 * (1 - r1)) / n1 + (r2 * (1 - r2)) / n2);
  return se > 0 ? (p1 - p2 - delta) / se : p1 - p2 - delta > 0 ? Infinity : -Infinity;
}

/** Quantile (0..1) of samples, linear interpolation between order statistics. */
export function quantile(samples: ArrayLike<number>, q: number): number {
  if (!samples.length) return NaN;
  const s = Float64Array.from(samples).sort();
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}

/** Prometheus' histogram_quantile: linear interpolation inside the bucket that holds the rank. */
export function histogramQuantile(h: Histogram, q: number): number {
  const total = h.counts[h.counts.length - 1] ?? 0;
  if (!total) return NaN;
  const rank = q * total;
  for (let i = 0; i < h.le.length; i++) {
    if (h.counts[i] >= rank) {
      if (!Number.isFinite(h.le[i])) return i > 0 ? h.le[i - 1] : NaN; // the +Inf bucket answers its lower bound
      const lower = i > 0 ? h.le[i - 1] : 0;
      const below = i > 0 ? h.counts[i - 1] : 0;
      const inBucket = h.counts[i] - below;
      return inBucket > 0 ? lower + ((h.le[i] - lower) * (rank - below)) / inBucket : h.le[i];
    }
  }
  return h.le[h.le.length - 1];
}

export function histogramTotal(h: Histogram | undefined): number {
  return h?.counts[h.counts.length - 1] ?? 0;
}

export function mean(samples: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < samples.length; i++) s += samples[i];
  return samples.length ? s / samples.length : NaN;
}
