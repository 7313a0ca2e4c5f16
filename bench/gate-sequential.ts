/**
 * The bench's sequential mode: each seeded run replayed as a time series, the gate looking at every scrape.
 * Beside it, for the same runs: the fixed-window gate (judged once at the end of the step's window) and the
 * naive peeking baseline (the fixed tests re-run at every scrape, failing at the first look that fails).
 */
import { allocateBudget } from '../src/validators/budget.js';
import { sequentialGateFor } from '../src/validators/sequential/judge.js';
import type { EvidenceBundle, Look } from '../src/validators/types.js';
import { judgeBundle, judgeFixed } from '../src/validators/verdict.js';
import { ScenarioStream, WINDOW_S, type GateUnderTest, type Scenario } from './gate-scenarios.js';

export interface SequentialOptions {
  gate: GateUnderTest;
  scrapeS: number;
  maxWindowS: number;
  /** Re-run the fixed tests at every look (the peeking baseline): only where false alarms are counted. */
  peek: boolean;
}

export interface RunOutcome {
  fixed: string;
  sequential: string;
  /** The peeking baseline failed at some look. */
  peeked: boolean;
  /** When the sequential gate decided (or the window ended): seconds and candidate requests. */
  seconds: number;
  candidates: number;
  /** Candidate requests in the fixed window. */
  fixedCandidates: number;
  /** Rules that failed in the sequential verdict. */
  failed: string[];
  /** The fixed window's bundle, for the other baselines. */
  fixedBundle: EvidenceBundle;
}

/** The fixed tests alone on a look's counts and histograms (no span durations: a scrape has none). */
const peekBundle = (b: EvidenceBundle): EvidenceBundle => ({
  ...b,
  evidence: { ...b.evidence, traces: undefined },
});

export function runSequential(s: Scenario, seed: number, o: SequentialOptions): RunOutcome {
  const stream = new ScenarioStream(s, seed, o.gate);
  const traceSampling = s.sampling;
  const settings = { alpha: o.gate.alpha, alphaShare: o.gate.alphaShare, beta: o.gate.beta, traceSampling };
  const budget = allocateBudget({
    alpha: o.gate.alpha,
    beta: o.gate.beta,
    rules: o.gate.rules,
    share: o.gate.alphaShare,
  });
  const template = stream.bundle({ ...settings, minWindowMs: WINDOW_S * 1000 });
  const gate = sequentialGateFor(template, budget);
  const looks: Look[] = [];
  let fixed: string | undefined;
  let fixedBundle: EvidenceBundle | undefined;
  let peeked = false;
  let decidedAt: number | undefined;
  let final: EvidenceBundle | undefined;
  for (let t = o.scrapeS; t <= o.maxWindowS + 1e-9; t += o.scrapeS) {
    stream.advanceTo(t);
    if (decidedAt === undefined) {
      const look = stream.look();
      looks.push(look);
      const d = gate.look(look, look.at, t + o.scrapeS > o.maxWindowS + 1e-9);
      if (o.peek && !peeked) peeked = judgeFixed(peekBundle(stream.bundle(settings))).outcome === 'fail';
      if (d || t + o.scrapeS > o.maxWindowS + 1e-9) {
        decidedAt = t;
        final = stream.bundle({ ...settings, minWindowMs: WINDOW_S * 1000, sequence: looks });
      }
    }
    if (Math.abs(t - WINDOW_S) < 1e-9) {
      fixedBundle = stream.bundle(settings);
      fixed = judgeFixed(fixedBundle).outcome;
    }
    if (decidedAt !== undefined && fixed !== undefined && !(o.peek && !peeked)) break;
  }
  const v = judgeBundle(final!, { sequence: { gate, times: looks.map((l) => l.at) } });
  const at = gate.decision ? gate.decision.t / 1000 : decidedAt!;
  const look = looks[(gate.decision?.look ?? looks.length) - 1];
  return {
    fixed: fixed ?? 'inconclusive',
    sequential: v.outcome,
    peeked,
    seconds: at,
    candidates: look.versions.v2?.requests ?? 0,
    failed: v.results.filter((r) => r.outcome === 'fail').map((r) => r.rule.split(' ')[0]),
    fixedBundle: fixedBundle!,
    fixedCandidates: fixedBundle!.evidence.metrics!.hops['http-lb']?.v2?.requests ?? 0,
  };
}

export const median = (xs: number[]): number => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
