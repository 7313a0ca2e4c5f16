/**
 * The verdict: every rule judged on the bundle, combined worst-first (fail > error > inconclusive > pass,
 * Argo Rollouts' order), so evidence that the release is bad wins over a missing source. Pure: the same
 * bundle always gives the same verdict, which is what `gate --replay` relies on.
 *
 * A bundle with a budget (`alpha`) is judged sequentially: its statistical rules are always-valid tests run
 * over the looks it kept (or once over its final evidence); exact-count rules (conservation, split, count,
 * share, l4) are judged on the evidence of the window the decision closed. A bundle written before the budget
 * is judged once with the fixed-horizon tests (`judgeFixed`), as it was when it was written.
 */
import { exitCodeForOutcome } from '../contract/index.js';
import { allocateBudget, shareOf, type Budget } from './budget.js';
import { evaluateRule } from './rules.js';
import { runSequence, type SequenceRun } from './sequential/judge.js';
import type { EvidenceBundle, Outcome, RuleResult, Verdict } from './types.js';

const ORDER: Outcome[] = ['fail', 'error', 'inconclusive', 'pass'];

const budgetOf = (b: EvidenceBundle): Budget | undefined =>
  b.alpha === undefined
    ? undefined
    : allocateBudget({
        alpha: b.alpha,
        beta: b.beta,
        rules: b.rules,
        maxRoutes: b.maxRoutes,
        share: b.alphaShare,
      });

/**
 * Judge a bundle. `sequence`: the sequential run already made over this bundle's looks (the bench hands over
 * the one it ran look by look; anything else lets the bundle's looks be run again).
 */
export function judgeBundle(bundle: EvidenceBundle, opts: { sequence?: SequenceRun } = {}): Verdict {
  const budget = budgetOf(bundle);
  if (!budget) return judgeFixed(bundle);
  const seq = opts.sequence ?? runSequence(bundle, budget);
  const verdict = combine(
    bundle,
    (r, i) => seq.gate.result(i, seq.durations) ?? evaluateRule(bundle, r, shareOf(budget, i)),
    budget,
  );
  const g = seq.gate;
  if (g.looks && g.handlers.length) {
    const d = g.decision;
    const at = d ? seq.times[d.look - 1] : seq.times[seq.times.length - 1];
    verdict.decision = {
      outcome: d?.outcome ?? 'inconclusive',
      at,
      look: d?.look ?? g.looks,
      looks: seq.times.length,
      afterMs: at - bundle.window.start,
    };
  }
  return verdict;
}

/**
 * Every rule judged once on the window's evidence with the fixed-horizon tests (each at its share of the
 * budget when there is one): how bundles written before the budget are judged, and the bench's fixed baseline.
 */
export function judgeFixed(bundle: EvidenceBundle, budget = budgetOf(bundle)): Verdict {
  return combine(bundle, (r, i) => evaluateRule(bundle, r, budget ? shareOf(budget, i) : undefined), budget);
}

function combine(
  bundle: EvidenceBundle,
  judge: (rule: EvidenceBundle['rules'][number], i: number) => RuleResult & { skipped?: boolean },
  budget: Budget | undefined,
): Verdict {
  const evaluated = bundle.rules.map(judge);
  const counted = evaluated.filter((r) => !r.skipped);
  const results: RuleResult[] = evaluated.map(({ skipped: _skipped, ...r }) => r);
  let outcome: Outcome = counted.length
    ? ORDER.find((o) => counted.some((r) => r.outcome === o))!
    : 'inconclusive';
  // A source that was asked for and is down leaves the evidence incomplete: that is an infrastructure
  // error, unless the evidence that did arrive already shows the release is bad.
  const down = bundle.sources.filter((s) => s.status === 'down');
  if (down.length && outcome !== 'fail') outcome = 'error';
  const tally = ORDER.map((o) => [o, counted.filter((r) => r.outcome === o).length] as const).filter(
    ([, n]) => n,
  );
  const first = counted.find((r) => r.outcome === outcome && outcome !== 'pass');
  const downText = down.length
    ? ` [down: ${down.map((s) => `${s.name} ${s.url ?? ''}`.trim()).join(', ')}]`
    : '';
  const summary =
    (counted.length
      ? `${outcome.toUpperCase()}: ${tally.map(([o, n]) => `${n} ${o}`).join(', ')}${first ? ` (first: ${first.rule}: ${first.reason})` : ''}`
      : `${outcome.toUpperCase()}: no rule could be evaluated`) + downText;
  return budget ? { outcome, summary, results, budget } : { outcome, summary, results };
}

export function verdictExitCode(v: Pick<Verdict, 'outcome'>): number {
  return exitCodeForOutcome(v.outcome);
}
