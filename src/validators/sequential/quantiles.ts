/**
 * Always-valid tests on latency quantiles (Howard & Ramdas, "Sequential estimation of quantiles with applications
 * to A/B-testing and best-arm identification", Bernoulli 28(3), 2022; the two-arm test is confseq's
 * QuantileABTest in github.com/gostevehoward/confseq, src/confseq/uniform_boundaries.h). The count of
 * observations at or below a fixed value x is a Bernoulli sum with mean F(x), so the beta-binomial mixture of
 * mixture.ts tests any statement "F(x) ≥ q" or "F(x) ≤ q" at every look.
 *
 * - Against an absolute limit (latency { percentile, max }): fail once F(max) < q is shown (the quantile is above
 *   max), pass once F(max) > q is shown.
 * - Candidate vs stable with a ratio (compareLatency, tail): "the candidate's q-quantile is at most ratio × the
 *   stable one's" means there is an x (the candidate's quantile) with F_c(x) ≥ q and F_s(x/ratio) ≤ q, so the
 *   product of the two arms' evidence at that x is a supermartingale (independent arms) and its infimum over all
 *   x is a valid test statistic. `slower` (fail side) tests ratio = 1 + maxIncrease; `faster` (pass side) tests
 *   the mirror statement at ratio = 1 + detect. The infimum is bounded from below over intervals of x by
 *   monotonicity (branch and bound), so a rejection is never claimed on a grid point alone.
 *
 * Span durations are read as they are; an Istio histogram through Prometheus' own reading of it (linear inside
 * a bucket, the +Inf bucket at the last bound): a count of fractional observations in [0, 1] is still sub-Bernoulli,
 * so the tests are exact for the quantile histogram_quantile reports.
 */
import type { Histogram } from '../types.js';
import { bernoulliEvidence, type MixtureTuning } from './mixture.js';

/** A latency distribution as counts at or below any value. */
export interface Ranked {
  n: number;
  /** Observations ≤ x. */
  atMost(x: number): number;
  /** Observations < x. */
  below(x: number): number;
  /** Values where the counts change most (bucket bounds, or sample quantiles), ascending. */
  points: number[];
  /** The value at share q (display, starting points). */
  quantile(q: number): number;
}

export function rankedSamples(sorted: Float64Array): Ranked {
  const n = sorted.length;
  const upper = (x: number) => {
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (sorted[mid] <= x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  const lower = (x: number) => {
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (sorted[mid] < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  const points: number[] = [];
  if (n) for (let i = 0; i <= 64; i++) points.push(sorted[Math.min(n - 1, Math.floor((i * (n - 1)) / 64))]);
  return {
    n,
    atMost: upper,
    below: lower,
    points: [...new Set(points)],
    quantile: (q) => (n ? sorted[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))] : NaN),
  };
}

export function rankedHistogram(h: Histogram): Ranked {
  const le = h.le.map((x) => (x === null ? Infinity : x));
  const n = h.counts[h.counts.length - 1] ?? 0;
  const finite = le.filter((x) => Number.isFinite(x));
  const last = finite.length ? finite[finite.length - 1] : 0;
  const lastCount = finite.length ? h.counts[finite.length - 1] : 0;
  const count = (x: number): number => {
    if (x <= 0) return 0;
    if (x > last) return n;
    for (let i = 0; i < le.length; i++) {
      if (x <= le[i]) {
        const lo = i ? le[i - 1] : 0;
        const below = i ? h.counts[i - 1] : 0;
        return below + ((h.counts[i] - below) * (x - lo)) / (le[i] - lo);
      }
    }
    return n;
  };
  return {
    n,
    // The +Inf bucket's observations sit at the last finite bound, as histogram_quantile places them.
    atMost: (x) => (x >= last ? n : count(x)),
    below: (x) => (x > last ? n : x === last ? lastCount : count(x)),
    points: finite,
    quantile: (q) => {
      const rank = q * n;
      for (let i = 0; i < le.length; i++) {
        if (h.counts[i] >= rank) {
          if (!Number.isFinite(le[i])) return last;
          const lo = i ? le[i - 1] : 0;
          const below = i ? h.counts[i - 1] : 0;
          return h.counts[i] > below ? lo + ((le[i] - lo) * (rank - below)) / (h.counts[i] - below) : le[i];
        }
      }
      return last;
    },
  };
}

/** Evidence that the q-quantile is above `limit` (fail) and at or below it (pass). */
export function quantileLimitEvidence(
  d: Ranked,
  q: number,
  limit: number,
  tuning: { fail: MixtureTuning; pass: MixtureTuning },
): { fail: number; pass: number } {
  const k = d.atMost(limit);
  return {
    fail: bernoulliEvidence(k, d.n, q, 'below', tuning.fail),
    pass: bernoulliEvidence(k, d.n, q, 'above', tuning.pass),
  };
}

export interface QuantileComparisonTest {
  /** The infimum over x of the two arms' evidence reached ln(1/level). */
  rejected: boolean;
  /** The smallest evidence seen (an upper bound of the infimum), for display. */
  evidence: number;
}

const MAX_DEPTH = 24;

/**
 * `slower`: is the candidate's q-quantile above ratio × the stable one's? `faster`: is it below? Rejects once the
 * infimum over x of the evidence reaches `threshold` = ln(1/level).
 */
export function quantileRatioTest(
  cand: Ranked,
  stable: Ranked,
  q: number,
  ratio: number,
  direction: 'slower' | 'faster',
  threshold: number,
  tuning: { candidate: MixtureTuning; stable: MixtureTuning },
): QuantileComparisonTest {
  if (!cand.n || !stable.n) return { rejected: false, evidence: 0 };
  const slower = direction === 'slower';
  // Each arm's evidence as a function of x: candidate side and stable side, monotone in opposite directions.
  const cEv = (count: number) =>
    bernoulliEvidence(count, cand.n, q, slower ? 'below' : 'above', tuning.candidate);
  const sEv = (count: number) =>
    bernoulliEvidence(count, stable.n, q, slower ? 'above' : 'below', tuning.stable);
  const g = (x: number) =>
    slower
      ? cEv(cand.atMost(x)) + sEv(stable.below(x / ratio))
      : cEv(cand.below(x)) + sEv(stable.atMost(x / ratio));
  // On [u, v]: slower — candidate evidence falls with x, stable evidence rises; faster — the reverse.
  const lowerBound = (u: number, v: number) =>
    slower
      ? cEv(cand.atMost(v)) + sEv(stable.below(u / ratio))
      : cEv(cand.below(u)) + sEv(stable.atMost(v / ratio));
  let best = g(cand.quantile(q));
  if (best < threshold) return { rejected: false, evidence: best };
  const cuts = [...new Set([...cand.points, ...stable.points.map((p) => p * ratio)])]
    .filter((x) => x > 0 && Number.isFinite(x))
    .sort((a, b) => a - b);
  if (!cuts.length) return { rejected: false, evidence: best };
  // Above the largest cut every count is n (g is constant there); below the smallest, counts fall to 0.
  const lo = cuts[0] / 2;
  const hi = cuts[cuts.length - 1] * 2;
  for (const x of [lo, hi]) {
    best = Math.min(best, g(x));
    if (best < threshold) return { rejected: false, evidence: best };
  }
  const stack: Array<[number, number, number]> = [];
  const edges = [0, lo, ...cuts, hi];
  for (let i = 0; i + 1 < edges.length; i++) stack.push([edges[i], edges[i + 1], 0]);
  while (stack.length) {
    const [u, v, depth] = stack.pop()!;
    if (lowerBound(u, v) >= threshold) continue;
    const mid = u > 0 ? Math.sqrt(u * v) : v / 2;
    best = Math.min(best, g(mid));
    if (best < threshold || depth >= MAX_DEPTH) return { rejected: false, evidence: best };
    stack.push([u, mid, depth + 1], [mid, v, depth + 1]);
  }
  return { rejected: true, evidence: best };
}

/** The smallest evidence over the distributions' cut points: a display figure for the pictures, not a decision. */
export function quantileRatioEvidence(
  cand: Ranked,
  stable: Ranked,
  q: number,
  ratio: number,
  direction: 'slower' | 'faster',
  tuning: { candidate: MixtureTuning; stable: MixtureTuning },
): number {
  if (!cand.n || !stable.n) return 0;
  const slower = direction === 'slower';
  const g = (x: number) =>
    slower
      ? bernoulliEvidence(cand.atMost(x), cand.n, q, 'below', tuning.candidate) +
        bernoulliEvidence(stable.below(x / ratio), stable.n, q, 'above', tuning.stable)
      : bernoulliEvidence(cand.below(x), cand.n, q, 'above', tuning.candidate) +
        bernoulliEvidence(stable.atMost(x / ratio), stable.n, q, 'below', tuning.stable);
  let best = g(cand.quantile(q));
  for (const x of [...cand.points, ...stable.points.map((p) => p * ratio)])
    if (x > 0 && Number.isFinite(x)) best = Math.min(best, g(x));
  return best;
}
