/**
 * The verdict: every rule judged on the bundle, combined worst-first (fail > error > inconclusive > pass,
 * Argo Rollouts' order), so evidence that the release is bad wins over a missing source. Pure: the same
 * bundle always gives the same verdict, which is what `gate --replay` relies on.
 */
import { exitCodeForOutcome } from '../contract/index.js';
import { allocateBudget, shareOf } from './budget.js';
import { evaluateRule } from './rules.js';
import type { EvidenceBundle, Outcome, RuleResult, Verdict } from './types.js';

const ORDER: Outcome[] = ['fail', 'error', 'inconclusive', 'pass'];

export function judgeBundle(bundle: EvidenceBundle): Verdict {
  // Bundles written before the budget keep each rule's own default α, so they replay as they were judged.
  const budget = bundle.alpha === undefined ? undefined : allocateBudget({ alpha: bundle.alpha, beta: bundle.beta, rules: bundle.rules, maxRoutes: bundle.maxRoutes });
  const evaluated = bundle.rules.map((r, i) => evaluateRule(bundle, r, budget ? shareOf(budget, i) : undefined));
  const counted = evaluated.filter((r) => !r.skipped);
  const results: RuleResult[] = evaluated.map(({ skipped: _skipped, ...r }) => r);
  let outcome: Outcome = counted.length ? ORDER.find((o) => counted.some((r) => r.outcome === o))! : 'inconclusive';
  // A source that was asked for and is down leaves the evidence incomplete: that is an infrastructure
  // error, unless the evidence that did arrive already shows the release is bad.
  const down = bundle.sources.filter((s) => s.status === 'down');
  if (down.length && outcome !== 'fail') outcome = 'error';
  const tally = ORDER.map((o) => [o, counted.filter((r) => r.outcome === o).length] as const).filter(([, n]) => n);
  const first = counted.find((r) => r.outcome === outcome && outcome !== 'pass');
  const downText = down.length ? ` [down: ${down.map((s) => `${s.name} ${s.url ?? ''}`.trim()).join(', ')}]` : '';
  const summary = (counted.length
    ? `${outcome.toUpperCase()}: ${tally.map(([o, n]) => `${n} ${o}`).join(', ')}${first ? ` (first: ${first.rule}: ${first.reason})` : ''}`
    : `${outcome.toUpperCase()}: no rule could be evaluated`) + downText;
  return budget ? { outcome, summary, results, budget } : { outcome, summary, results };
}

export function verdictExitCode(v: Pick<Verdict, 'outcome'>): number {
  return exitCodeForOutcome(v.outcome);
}
