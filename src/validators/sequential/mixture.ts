/**
 * The beta-binomial mixture supermartingale of Howard, Ramdas, McAuliffe & Sekhon ("Time-uniform, nonparametric,
 * nonasymptotic confidence sequences", Ann. Statist. 49(2), 2021, section 3.2; the same construction as
 * `BetaBinomialMixture` in github.com/gostevehoward/confseq, src/confseq/uniform_boundaries.h), the one building
 * block of the gate's always-valid tests on counts and on quantiles.
 *
 * For n observations in [0, 1] with mean at most p (Bernoulli trials, or a fractional count), the mixture over
 * alternatives θ > p of the likelihood ratios (θ/p)^k ((1−θ)/(1−p))^(n−k), weighted by a Beta prior centred on p,
 * is a nonnegative supermartingale: by Ville's inequality it exceeds 1/α at ANY time with probability ≤ α.
 * That is what makes a look at every scrape free. In closed form (with the prior truncated to θ > p):
 *
 *     ln M = −k ln p − (n−k) ln(1−p) + ln B_{1−p}(r/p + n − k, r/(1−p) + k) − ln B_{1−p}(r/p, r/(1−p))
 *
 * where B_x is the incomplete beta function and r sets the prior's precision. r is tuned so the boundary is
 * tightest near `tOpt` observations (Howard et al.'s ρ for the normal mixture at v = p(1−p)·tOpt), and must be
 * fixed before the data are seen: the callers derive it from the plan, never from the counts.
 */

const LN_SQRT_2PI = 0.5 * Math.log(2 * Math.PI);

/** ln Γ(x) for x > 0: Stirling's series above 10 (absolute error < 1e-13), the recurrence below. */
export function lnGamma(x: number): number {
  if (x < 10) {
    let shift = 0;
    while (x < 10) {
      shift += Math.log(x);
      x += 1;
    }
    return lnGamma(x) - shift;
  }
  const inv = 1 / x;
  const inv2 = inv * inv;
  const series = inv * (1 / 12 - inv2 * (1 / 360 - inv2 * (1 / 1260 - inv2 * (1 / 1680 - inv2 / 1188))));
  return (x - 0.5) * Math.log(x) - x + LN_SQRT_2PI + series;
}

export const lnBeta = (a: number, b: number): number => lnGamma(a) + lnGamma(b) - lnGamma(a + b);

/** Continued fraction of the incomplete beta function (modified Lentz), as in Numerical Recipes' betacf. */
function betaContinuedFraction(x: number, a: number, b: number): number {
  const tiny = 1e-300;
  const qab = a + b;
  const qap = a + 1;
  const qam = a - 1;
  let c = 1;
  let d = 1 - (qab * x) / qap;
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 100_000; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((qam + m2) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (qab + m) * x) / ((a + m2) * (qap + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-14) break;
  }
  return h;
}

/** ln I_x(a, b), the regularized incomplete beta function, without underflow far in its tails. */
export function lnRegularizedBeta(x: number, a: number, b: number): number {
  if (x <= 0) return -Infinity;
  if (x >= 1) return 0;
  const lnFront = a * Math.log(x) + b * Math.log1p(-x) - lnBeta(a, b);
  if (x < (a + 1) / (a + b + 2)) return lnFront + Math.log(betaContinuedFraction(x, a, b)) - Math.log(a);
  // Past the mode: I = 1 − I_{1−x}(b, a), computed as ln1p of a small negative number.
  const rest = Math.exp(lnFront + Math.log(betaContinuedFraction(1 - x, b, a)) - Math.log(b));
  return Math.log1p(-Math.min(rest, 1 - 1e-16));
}

/** ln of the incomplete beta function B_x(a, b) = I_x(a, b)·B(a, b). */
const lnIncompleteBeta = (x: number, a: number, b: number): number =>
  lnRegularizedBeta(x, a, b) + lnBeta(a, b);

/** Where the mixture is tuned to be tightest, and at which error level (both fixed before any data). */
export interface MixtureTuning {
  /** Observations at which the boundary should be tightest (the planned count). */
  tOpt: number;
  /** The error level the test will be run at. */
  alphaOpt: number;
}

/**
 * Prior precision r of the one-sided mixture (confseq's BetaBinomialMixture::optimal_r with the one-sided
 * normal mixture's ρ): ρ = v / (2 ln(1/(2α)) + ln(1 + 2 ln(1/(2α)))) at v = p(1−p)·tOpt.
 */
export function mixturePrecision(p: number, t: MixtureTuning): number {
  const gh = p * (1 - p);
  const l = Math.log(1 / (2 * Math.min(0.25, t.alphaOpt)));
  const rho = (gh * Math.max(1, t.tOpt)) / (2 * l + Math.log(1 + 2 * l));
  return Math.max(rho - gh, 1e-3 * gh);
}

export type Side = 'above' | 'below';

/**
 * ln M: the evidence, after k "successes" in n observations, that their rate is above p (`above`; the null is
 * rate ≤ p) or below p (`below`; the null is rate ≥ p). k may be fractional (observations in [0, 1]).
 * Reject the null at level α once ln M ≥ ln(1/α); under the null that happens with probability ≤ α over
 * all looks together.
 */
export function bernoulliEvidence(
  k: number,
  n: number,
  p: number,
  side: Side,
  tuning: MixtureTuning,
): number {
  if (n <= 0) return 0;
  if (side === 'below') return bernoulliEvidence(n - k, n, 1 - p, 'above', tuning);
  if (p <= 0) return k > 0 ? Infinity : 0;
  if (p >= 1) return 0;
  const r = mixturePrecision(p, tuning);
  const x = 1 - p;
  const a0 = r / p;
  const b0 = r / (1 - p);
  return (
    -k * Math.log(p) -
    (n - k) * Math.log1p(-p) +
    lnIncompleteBeta(x, a0 + n - k, b0 + k) -
    lnIncompleteBeta(x, a0, b0)
  );
}

/** The always-valid upper bound of a rate after k of n: the largest p the `below` test at level α does not reject. */
export function bernoulliUpper(k: number, n: number, alpha: number, tuning: MixtureTuning): number {
  const hat = n > 0 ? Math.min(1, Math.max(0, k / n)) : 0;
  if (n <= 0 || hat >= 1) return 1;
  const threshold = Math.log(1 / alpha);
  return 1 - boundary((q) => bernoulliEvidence(k, n, 1 - q, 'below', tuning) >= threshold, 1 - hat);
}

/** The always-valid lower bound of a rate after k of n: the smallest p the `above` test at level α does not reject. */
export function bernoulliLower(k: number, n: number, alpha: number, tuning: MixtureTuning): number {
  const hat = n > 0 ? Math.min(1, Math.max(0, k / n)) : 0;
  if (n <= 0 || hat <= 0) return 0;
  const threshold = Math.log(1 / alpha);
  return boundary((p) => bernoulliEvidence(k, n, p, 'above', tuning) >= threshold, hat);
}

/** Both bounds: the confidence sequence at level α on each side. */
export function bernoulliBounds(
  k: number,
  n: number,
  alpha: number,
  tuning: MixtureTuning,
): { low: number; high: number } {
  return { low: bernoulliLower(k, n, alpha, tuning), high: bernoulliUpper(k, n, alpha, tuning) };
}

/**
 * In (0, hi): the largest value still rejected, where `rejected` holds near 0 and not at `hi` (the evidence
 * grows monotonically away from the estimate). Bisection to 1e-7 relative (rates are shown to 4 digits).
 */
function boundary(rejected: (p: number) => boolean, hi: number): number {
  let lo = 0;
  if (!rejected(hi * 1e-12)) return 0;
  for (let i = 0; i < 60 && hi - lo > 1e-7 * hi; i++) {
    const mid = (lo + hi) / 2;
    if (rejected(mid)) lo = mid;
    else hi = mid;
  }
  return lo;
}
