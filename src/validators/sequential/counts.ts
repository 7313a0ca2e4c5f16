/**
 * Always-valid tests on request counts:
 * - a rate against an absolute limit (errorRate): the one-sided beta-binomial mixture of mixture.ts on the
 *   candidate's error stream — fail when the evidence that the rate is above `max` reaches ln(1/α), pass when
 *   the evidence that it is below `detect` reaches ln(1/β);
 * - candidate vs stable (compareErrors), the fail side: the rate-ratio contrast of Lindon & Malek
 *   ("Anytime-Valid Inference for Multinomial Count Data", NeurIPS 2022). Errors of the two versions are two
 *   point processes; given that an error happened in a look's interval, it is the candidate's with the null
 *   probability θ0 = the candidate's share of that interval's requests, so a traffic share that moves between
 *   looks (a busy minute, a weight that is not exactly met) is handled look by look. Under the alternative the
 *   candidate's rate is ρ times the stable one's: θ(ρ) = ρθ0 / (ρθ0 + 1 − θ0). A mixture over ρ > ρ0 of those
 *   likelihood ratios (a discrete prior on a log grid) is a supermartingale whenever ρ ≤ ρ0, for any θ0 path.
 *   Conditional on the requests, a look's errors are hypergeometric, which is smaller in convex order than the
 *   binomial (Hoeffding 1963), so the binomial ratios stay valid.
 * - candidate vs stable, the pass side and absolute margins: the difference of the two versions' confidence
 *   sequences (a union bound: the level is split between them): pass once the candidate's upper bound is within
 *   `detect` of the stable one's lower bound; with a `maxIncrease` margin, fail once the candidate's lower bound
 *   is more than the margin above the stable one's upper bound. The stable version has most of the traffic and
 *   its sequence is narrow at any level, so it gets a fifth of the level and the candidate four fifths.
 */
import { bernoulliEvidence, bernoulliLower, bernoulliUpper, type MixtureTuning } from './mixture.js';

/** Evidence (ln M) that a rate is above `limit` (fail side) and below `detect` (pass side). */
export function rateLimitEvidence(
  k: number,
  n: number,
  limit: number,
  detect: number,
  tuning: { fail: MixtureTuning; pass: MixtureTuning },
): { fail: number; pass: number } {
  return {
    fail: bernoulliEvidence(k, n, limit, 'above', tuning.fail),
    pass: bernoulliEvidence(k, n, detect, 'below', tuning.pass),
  };
}

/** Log grid of rate ratios (relative to ρ0) the mixture spreads its weight over: ×1.05 to ×33, evenly in log. */
const RATIO_GRID = Array.from({ length: 36 }, (_, i) => 0.05 + (i * (3.5 - 0.05)) / 35);
/** Prior weights on the grid: half-normal in the log ratio (scale ln 3), so doublings weigh more than ×30. */
const PRIOR_SCALE = Math.log(3);
const LOG_WEIGHTS = (() => {
  const w = RATIO_GRID.map((u) => Math.exp(-(u * u) / (2 * PRIOR_SCALE * PRIOR_SCALE)));
  const sum = w.reduce((a, b) => a + b, 0);
  return w.map((x) => Math.log(x / sum));
})();

/** The rate-ratio contrast of two versions' errors, fed look by look with what each look added. */
export class RateRatioTest {
  private readonly logRatios: Float64Array;
  private readonly rhos: number[];
  /** Errors judged so far (those that fell in intervals where both versions had requests). */
  errors = 0;
  candidateErrors = 0;
  /** Sum of θ0 over judged errors: the candidate's errors expected under the null. */
  expected = 0;

  constructor(readonly rho0 = 1) {
    this.rhos = RATIO_GRID.map((u) => rho0 * Math.exp(u));
    this.logRatios = new Float64Array(this.rhos.length);
  }

  /** What one interval added: errors and requests of each version. */
  add(d: {
    candidateErrors: number;
    stableErrors: number;
    candidateRequests: number;
    stableRequests: number;
  }): void {
    const e = d.candidateErrors + d.stableErrors;
    const reqs = d.candidateRequests + d.stableRequests;
    if (e <= 0 || reqs <= 0 || d.candidateRequests <= 0 || d.stableRequests <= 0) return;
    const theta0 = d.candidateRequests / reqs;
    const x = d.candidateErrors;
    for (let i = 0; i < this.rhos.length; i++) {
      const theta = (this.rhos[i] * theta0) / (this.rhos[i] * theta0 + 1 - theta0);
      // Against the null's boundary ρ0 (not 1): the ratio θ(ρ)/θ(ρ0) is what stays a supermartingale for ρ ≤ ρ0.
      const t0 = (this.rho0 * theta0) / (this.rho0 * theta0 + 1 - theta0);
      this.logRatios[i] += x * Math.log(theta / t0) + (e - x) * Math.log((1 - theta) / (1 - t0));
    }
    this.errors += e;
    this.candidateErrors += x;
    this.expected += e * theta0;
  }

  /** ln M: the mixture (the prior's weights over the grid) of the likelihood ratios so far. */
  evidence(): number {
    let max = -Infinity;
    for (let i = 0; i < this.logRatios.length; i++) max = Math.max(max, this.logRatios[i] + LOG_WEIGHTS[i]);
    let sum = 0;
    for (let i = 0; i < this.logRatios.length; i++) sum += Math.exp(this.logRatios[i] + LOG_WEIGHTS[i] - max);
    return max + Math.log(sum);
  }
}

/** How a difference's level is split between the two versions' sequences. */
export const CANDIDATE_SHARE = 0.8;

type Counts = { k: number; n: number };
type PairTuning = { candidate: MixtureTuning; stable: MixtureTuning };

/**
 * The candidate's rate minus the stable one's, bounded with confidence 1 − level: from above (`upper`, the
 * candidate's upper bound minus the stable one's lower bound) or from below (the reverse).
 */
function difference(c: Counts, s: Counts, level: number, tuning: PairTuning, upper: boolean): number {
  const [cBound, sBound] = upper ? [bernoulliUpper, bernoulliLower] : [bernoulliLower, bernoulliUpper];
  return (
    cBound(c.k, c.n, level * CANDIDATE_SHARE, tuning.candidate) -
    sBound(s.k, s.n, level * (1 - CANDIDATE_SHARE), tuning.stable)
  );
}

export const differenceUpper = (c: Counts, s: Counts, level: number, tuning: PairTuning): number =>
  difference(c, s, level, tuning, true);
export const differenceLower = (c: Counts, s: Counts, level: number, tuning: PairTuning): number =>
  difference(c, s, level, tuning, false);
