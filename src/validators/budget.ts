/**
 * One false-alarm budget for the whole release. `gate.alpha` (default 1%) is the chance that the gate fails a
 * healthy canary in any of the release's windows; within a window it is spent across every statistical test
 * the gate runs by weighted Bonferroni: each rule that can fail a healthy canary on chance gets alpha × its
 * weight / the sum of weights (`alphaWeight`, default 1), and a rule's own `alpha` (or the split rule's
 * `confidence`) is an explicit share taken off the top. Inside a rule the share is split again, evenly: over
 * its percentiles (tail), and half to the overall test, half to the routes (perRoute: `gate.maxRoutes` equal
 * slots, so the split is fixed before any route is seen). Weighted Bonferroni holds at any stopping time for always-valid tests, so looks cost nothing: a
 * gate that re-evaluates at every scrape still fails a healthy canary with probability ≤ alpha in total.
 * Exact-count checks (conservation, count, share, l4) and metric thresholds are not statistical tests and take
 * no share.
 *
 * A release runs one window per analysed step, and a step analysed again after an inconclusive window runs
 * another: gate.alpha is the release's budget, and each window spends its share of it (`windowShare`).
 */
import { explicitAlpha, STATISTICAL_RULES } from '../spec/spec-checks.js';
import type { GateRule, GateSpec } from '../spec/types.js';
import { parsePercent } from '../util/units.js';

export const DEFAULT_ALPHA = 0.01;
export const DEFAULT_BETA = 0.05;
/** Routes judged per rule (equal shares of the rule's route half); the largest routes first. */
export const DEFAULT_MAX_ROUTES = 8;
export const BUDGET_METHOD = 'weighted Bonferroni';

export interface BudgetShare {
  /** Index of the rule in gate.rules; -1 for the release engine's own split check when no split rule is given. */
  index: number;
  kind: string;
  /** The rule's share of the budget. */
  alpha: number;
  weight: number;
  /** From the rule's own alpha (or confidence) rather than from its weight. */
  explicit: boolean;
  /** How the share is divided among the rule's tests, for a person. */
  split: string;
}

export interface Budget {
  /** What this window spends: the release's gate.alpha × the window's share. */
  total: number;
  /** The release's gate.alpha, when a window spends only part of it. */
  release?: number;
  beta: number;
  method: string;
  maxRoutes: number;
  shares: BudgetShare[];
  /** Part of the budget no rule uses (explicit shares below the total with no weighted rule left). */
  unspent: number;
}

type Gate = Pick<GateSpec, 'alpha' | 'beta' | 'rules' | 'maxRoutes' | 'windowShare'> & {
  /** The part of gate.alpha one window of a release spends (`windowShare`); the whole of it when absent. */
  share?: number;
};

/** One analysis window's part of the release's budget, and how it was worked out, for a person. */
export interface WindowShare {
  share: number;
  note: string;
}

/** The part of a step's share its first window spends; its repeats (after inconclusive windows) share the rest. */
export const FIRST_WINDOW_PART = 0.9;

/**
 * The part of the release's gate.alpha that one window spends, by Bonferroni over the windows a release can
 * run: each of the `analysed` steps gets an equal part; of it the step's first window spends 90%, and its
 * n-th repeat (after an inconclusive window, or after a held release is run again) 10% × 2^-n, so any number
 * of repeats adds up to the step's part and the release fails a healthy candidate with probability ≤ alpha.
 * `ordinal` is the step's place among the analysed steps (0-based), `attempt` the windows it has had before.
 */
export function windowShare(analysed: number, ordinal: number, attempt: number): WindowShare {
  const steps = Math.max(1, analysed);
  const part = attempt <= 0 ? FIRST_WINDOW_PART : (1 - FIRST_WINDOW_PART) * 2 ** -attempt;
  const share = part / steps;
  const which =
    attempt <= 0
      ? `its first window: ${FIRST_WINDOW_PART * 100}%`
      : `repeat ${attempt}: ${+(part * 100).toPrecision(3)}%`;
  return {
    share,
    note: `analysed step ${ordinal + 1} of ${steps} (1/${steps} of the release's budget), ${which} of the step's part`,
  };
}

const bodyOf = (rule: GateRule): Record<string, unknown> =>
  (Object.values(rule)[0] as Record<string, unknown> | undefined) ?? {};
const kindOf = (rule: GateRule): string => Object.keys(rule)[0];

function splitText(rule: GateRule, maxRoutes: number): string {
  const body = bodyOf(rule);
  const kind = kindOf(rule);
  if (kind === 'tail') {
    const n = Array.isArray(body.percentiles) ? body.percentiles.length : 2;
    return n > 1 ? `evenly over ${n} percentiles` : 'one test';
  }
  if ((kind === 'errorRate' || kind === 'compareErrors') && body.perRoute && body.route === undefined)
    return `½ overall, ½ over up to ${maxRoutes} routes (1/${2 * maxRoutes} each)`;
  return 'one test';
}

export function rateOf(v: string | number | undefined, fallback: number): number {
  return v === undefined ? fallback : parsePercent(v);
}

/** How gate.alpha is spent over the gate's rules. */
export function allocateBudget(gate: Gate): Budget {
  const release = rateOf(gate.alpha, DEFAULT_ALPHA);
  const asked = gate.share ?? gate.windowShare?.share;
  const share = asked !== undefined && asked > 0 && asked <= 1 ? asked : 1;
  const total = release * share;
  const beta = rateOf(gate.beta, DEFAULT_BETA);
  const maxRoutes = gate.maxRoutes ?? DEFAULT_MAX_ROUTES;
  const stat = gate.rules
    .map((rule, index) => ({ rule, index, kind: kindOf(rule) }))
    .filter((r) => STATISTICAL_RULES.has(r.kind));
  // The release engine checks the observed split on every weighted step, with or without a split rule: that
  // check is a test too, so it always has a share.
  if (!stat.some((r) => r.kind === 'split')) stat.push({ rule: { split: {} }, index: -1, kind: 'split' });
  // A rule's own alpha is a share of the release's budget too: a window spends the same part of it.
  const explicitSum = stat.reduce((s, r) => s + (explicitAlpha(r.rule) ?? 0) * share, 0);
  const weighted = stat.filter((r) => explicitAlpha(r.rule) === undefined);
  const weightOf = (r: (typeof stat)[number]) => {
    const w = bodyOf(r.rule).alphaWeight;
    return typeof w === 'number' ? w : 1;
  };
  const weightSum = weighted.reduce((s, r) => s + weightOf(r), 0);
  // Explicit shares above the total are refused by spec validation; a gate built without it (a program, a
  // hand-made bundle) still gives its other rules a share of the total rather than none, and says it is over.
  const left = total - explicitSum > 1e-12 ? total - explicitSum : total;
  const shares = stat.map((r): BudgetShare => {
    const own = explicitAlpha(r.rule);
    const weight = own === undefined ? weightOf(r) : 0;
    return {
      index: r.index,
      kind: r.kind,
      alpha: own !== undefined ? own * share : weightSum > 0 ? (left * weight) / weightSum : 0,
      weight,
      explicit: own !== undefined,
      split: splitText(r.rule, maxRoutes),
    };
  });
  return {
    total,
    ...(share < 1 ? { release } : {}),
    beta,
    method: BUDGET_METHOD,
    maxRoutes,
    shares,
    unspent: weighted.length ? 0 : Math.max(0, total - explicitSum),
  };
}

/** Confidence of the observed-split check (the split rule's, or the engine's own share of the budget). */
export function splitConfidence(gate: Gate): number {
  const budget = allocateBudget(gate);
  const split = budget.shares.find((s) => s.kind === 'split');
  return split && split.alpha > 0 ? 1 - split.alpha : 0.999;
}

/** The share of one rule (0 when it runs no statistical test). */
export function shareOf(budget: Budget, index: number): number {
  return budget.shares.find((s) => s.index === index)?.alpha ?? 0;
}

const p = (x: number) => `${+(x * 100).toPrecision(3)}%`;

/** The allocation as lines a person reads (report, --explain). */
export function describeBudget(budget: Budget, ruleText: (index: number) => string, note?: string): string[] {
  const lines = [
    `false-alarm budget: alpha ${p(budget.total)}${budget.release !== undefined ? ` (this window's part of the release's ${p(budget.release)}${note ? `: ${note}` : ''})` : ''} by ${budget.method}, spent over ${budget.shares.length} statistical rule(s); any number of looks (always-valid tests); a regression of a rule's 'detect' size passes with probability ≤ beta ${p(budget.beta)}`,
  ];
  for (const s of budget.shares)
    lines.push(
      `  ${p(s.alpha).padStart(7)}  ${s.index < 0 ? 'observed split (checked by the release engine on weighted steps; no split rule)' : ruleText(s.index)} — ${s.explicit ? 'its own alpha' : `weight ${s.weight}`}, ${s.split}`,
    );
  const spent = budget.shares.reduce((a, s) => a + s.alpha, 0);
  if (spent > budget.total + 1e-12)
    lines.push(
      `  over budget: the shares add up to ${p(spent)} (the rules' own alpha exceed gate.alpha; clover-cd spec validate refuses this)`,
    );
  if (budget.unspent > 1e-12)
    lines.push(`  ${p(budget.unspent).padStart(7)}  unspent (every statistical rule states its own alpha)`);
  return lines;
}
