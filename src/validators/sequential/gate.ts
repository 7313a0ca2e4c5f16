/**
 * The sequential gate: the statistical rules re-evaluated at every look while the window is open. It fails at
 * the first look where any test rejects (α, from the budget); it passes at the first look where every rule has
 * ruled out a regression of its `detect` size (β) — once the minimum window and gate.minSamples on every version a rule judges
 * are reached; otherwise the window goes on to its end, where what is undecided is inconclusive. The same code
 * runs in the engine while the window is open and in `judgeBundle` over the looks the bundle kept, so a replay
 * reaches the same decision at the same look.
 */
import type { GateRule } from '../../spec/types.js';
import { formatDuration } from '../../util/units.js';
import type { Budget } from '../budget.js';
import { describeRule } from '../rules.js';
import type { Outcome, RuleResult } from '../types.js';
import type { MeshTelemetry } from '../../metrics/index.js';
import { serverSeries } from '../metrics.js';
import { handlerFor, type HandlerSetup, type LookData, type RuleHandler } from './rules.js';
import { isFailed, isPassed, type TestState } from './tests.js';

export interface SequentialSetup extends HandlerSetup {
  rules: GateRule[];
  budget: Budget;
  minSamples: number;
  /** The shortest window (ms): no pass before it. */
  minWindowMs: number;
  /** Where the looks come from, for the results' source. */
  source: string;
  /** What the series the looks count are called. */
  telemetry: MeshTelemetry;
}

export interface SequentialDecision {
  outcome: 'pass' | 'fail';
  /** ms since the window opened, and the look (1-based). */
  t: number;
  look: number;
}

export class SequentialGate {
  readonly handlers: Array<{ index: number; handler: RuleHandler }> = [];
  private prev?: LookData;
  private lastT = 0;
  looks = 0;
  decision?: SequentialDecision;

  constructor(readonly setup: SequentialSetup) {
    setup.rules.forEach((rule, index) => {
      const share = setup.budget.shares.find((s) => s.index === index)?.alpha ?? 0;
      const handler = share > 0 ? handlerFor(setup, rule, share) : undefined;
      if (handler) this.handlers.push({ index, handler });
    });
  }

  /** Whether a rule is judged here (statistical, with a share of the budget) rather than once at the end. */
  judges(index: number): boolean {
    return this.handlers.some((h) => h.index === index);
  }

  /** Take one look `t` ms after the window opened; returns the decision once there is one (later looks change nothing). */
  look(l: LookData, t: number, final = false): SequentialDecision | undefined {
    if (this.decision) return this.decision;
    this.looks++;
    this.lastT = t;
    const passDue = t >= this.setup.minWindowMs;
    for (const { handler } of this.handlers) handler.update(l, this.prev, t, passDue, final);
    this.prev = l;
    const tests = this.handlers.flatMap((h) => h.handler.tests);
    if (tests.some(isFailed)) return (this.decision = { outcome: 'fail', t, look: this.looks });
    // gate.minSamples on every version a rule judges (a blue/green preview has no stable traffic to count).
    const judged = new Set(this.handlers.flatMap((h) => h.handler.versions));
    const enough = [...judged].every((v) => (l.versions[v]?.requests ?? 0) >= this.setup.minSamples);
    if (passDue && enough && this.handlers.length && tests.every(isPassed))
      return (this.decision = { outcome: 'pass', t, look: this.looks });
    return undefined;
  }

  /**
   * Each judged rule's result as it stands (at the decision, or at the last look); undefined for a rule not
   * judged here, or when no look was taken (the window had no data: the fixed rules say why).
   */
  result(index: number, durations = false): RuleResult | undefined {
    const h = this.handlers.find((x) => x.index === index)?.handler;
    if (!h || !this.looks) return undefined;
    const t = this.setup.telemetry;
    const source = `${this.setup.source} ${h.reads === 'requests' ? serverSeries(t, t.requests) : durations ? 'span durations' : t.duration.bucket}`;
    const rule = describeRule(this.setup.rules[index]);
    const failed = h.tests.filter(isFailed);
    const main = h.tests[0];
    const at = (ms: number) => `${formatDuration(ms)} into the window`;
    const evidence = (x: TestState, side: 'fail' | 'pass') => {
      const p = x.trace[x.trace.length - 1];
      const v = side === 'fail' ? p?.fail : p?.pass;
      return v === undefined
        ? ''
        : ` (evidence ${v.toFixed(1)} ${v >= (side === 'fail' ? x.failThreshold : x.passThreshold) ? '≥' : '<'} ${(side === 'fail' ? x.failThreshold : x.passThreshold).toFixed(1)})`;
    };
    const details = {
      sequential: true,
      looks: this.looks,
      tests: h.tests.map(({ trace, ...x }) => ({ ...x, trace })),
    };
    const routesNote =
      h.tests.length > 1 ? `; ${h.tests.length - 1} route${h.tests.length === 2 ? '' : 's'} judged` : '';
    const src = `${source} (${this.looks} look${this.looks === 1 ? '' : 's'})`;
    if (failed.length) {
      const first = failed.sort((a, b) => a.failedAt! - b.failedAt!)[0];
      return {
        rule,
        outcome: 'fail',
        observed: `${first === main ? '' : `${first.label}: `}${first.observed}${first === main ? routesNote : `; overall ${main.observed}`}`,
        expected: h.expected,
        source: src,
        reason: `${h.failText(first)}, beyond chance ${at(first.failedAt!)}${evidence(first, 'fail')}`,
        details,
      };
    }
    const open = h.tests.filter((x) => !isPassed(x));
    const skipped = h.tests.filter((x) => !x.required).map((x) => x.label);
    const skippedText = skipped.length ? ` (too few requests to be required: ${skipped.join(', ')})` : '';
    if (!open.length) {
      const last = Math.max(...h.tests.map((x) => x.passedAt ?? 0));
      return {
        rule,
        outcome: 'pass',
        observed: main.observed + routesNote,
        expected: h.expected,
        source: src,
        reason: `${h.passText} (${at(last)})${evidence(main, 'pass')}${skippedText}`,
        details,
      };
    }
    const outcome: Outcome = 'inconclusive';
    const list = open.map((x) => `${x.label}: ${x.observed}${evidence(x, 'pass')}`).join('; ');
    return {
      rule,
      outcome,
      observed: main.observed + routesNote,
      expected: h.expected,
      source: src,
      reason: `undecided after ${formatDuration(this.lastT)}: neither a regression nor its absence is shown yet — ${list}${skippedText}`,
      details,
    };
  }
}
