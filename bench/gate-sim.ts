/**
 * `npm run bench:gate`: the gate of the `spec init` template against a seeded simulator with known truth.
 * Each scenario (gate-scenarios.ts) is run GATE_SIM_RUNS times (default 1,000) at 10% weight with ~2,000 candidate
 * requests per 60 s window, as a time series scraped every GATE_SIM_SCRAPE_S seconds (default 5) up to the
 * template's maxWindow. Two tables:
 * 1. the fixed window (judged once at 60 s) beside a Flagger-style threshold (request-success-rate ≥ 99%, P99
 *    ≤ 500 ms on the canary alone) and a Kayenta-style judge (Mann-Whitney on latency + a two-proportion z-test on
 *    errors, each one-sided at 1%, two groups 50/50, pass at 75);
 * 2. fixed vs sequential (the always-valid gate looking at every scrape, deciding early either way), with the
 *    naive peeking rate (the fixed tests re-run at every scrape) beside the sequential false alarms.
 * Targets are checked at the end (exit 1 if one is missed). GATE_SIM_SEED and GATE_SIM_ONLY=<name part>[,<name part>…] narrow it.
 */
import * as yaml from 'js-yaml';
import { SPEC_TEMPLATE } from '../src/spec/init-template.js';
import { buildPlan } from '../src/canary/index.js';
import type { ReleaseSpec } from '../src/spec/types.js';
import { windowShareOf } from '../src/stages/engine/window.js';
import { parseDurationMs, parsePercent } from '../src/util/units.js';
import { plannedSamples } from '../src/validators/sample-size.js';
import {
  histogramQuantile,
  mannWhitney,
  mannWhitneyHistograms,
  normalUpperTail,
} from '../src/validators/stats.js';
import type { EvidenceBundle } from '../src/validators/types.js';
import { median, runSequential } from './gate-sequential.js';
import { SCENARIOS, WINDOW_S, type GateUnderTest, type Scenario } from './gate-scenarios.js';

const RUNS = Number(process.env.GATE_SIM_RUNS ?? 1000);
const SEED = Number(process.env.GATE_SIM_SEED ?? 12);
const SCRAPE_S = Number(process.env.GATE_SIM_SCRAPE_S ?? 5);

const templateSpec = yaml.load(SPEC_TEMPLATE) as ReleaseSpec;
const template = templateSpec.gate!;
const ALPHA = parsePercent(template.alpha ?? '1%');
// A window is one of the release's: the first window of its first analysed step spends its part of gate.alpha.
const plan = buildPlan(templateSpec);
const firstAnalysed = plan.steps.find((s) => s.windowMs > 0)!.index;
const SHARE = windowShareOf(plan, firstAnalysed, 0);
const WINDOW_ALPHA = ALPHA * SHARE.share;
const MAX_WINDOW_S = parseDurationMs(template.maxWindow ?? '5m') / 1000;
const gateFor = (weight: number): GateUnderTest => ({
  minSamples: template.minSamples ?? 30,
  rules: template.rules,
  plannedSamples: plannedSamples(template, { weightPercent: weight }).candidate,
  alpha: ALPHA,
  alphaShare: SHARE.share,
  beta: template.beta === undefined ? undefined : parsePercent(template.beta),
});

type Verdict = 'pass' | 'fail' | 'inconclusive';

/** Flagger's built-in checks on the canary workload only (request-success-rate, request-duration P99). */
function flagger(b: EvidenceBundle): Verdict {
  const c = b.evidence.metrics!.hops['http-lb'].v2;
  const success = c.requests ? 1 - c.errors / c.requests : NaN;
  const p99 = histogramQuantile(b.evidence.metrics!.latency.v2, 0.99);
  return success >= 0.99 && p99 <= 500 ? 'pass' : 'fail';
}

/** Kayenta: Mann-Whitney on latency, two-proportion z on errors, each group 50 points, pass ≥ 75. */
function kayenta(b: EvidenceBundle): Verdict {
  const m = b.evidence.metrics!;
  const d = b.evidence.traces!.durations;
  const mw = b.evidence.traces!.sampling
    ? mannWhitneyHistograms(m.latency.v1, m.latency.v2)
    : mannWhitney(d.v1, d.v2);
  const s = m.hops['http-lb'].v1;
  const c = m.hops['http-lb'].v2;
  const pooled = (s.errors + c.errors) / (s.requests + c.requests);
  const se = Math.sqrt(pooled * (1 - pooled) * (1 / s.requests + 1 / c.requests));
  const pErr = se > 0 ? normalUpperTail((c.errors / c.requests - s.errors / s.requests) / se) : 1;
  const score = (mw.pGreater < 0.01 ? 0 : 50) + (pErr < 0.01 ? 0 : 50);
  return score >= 75 ? 'pass' : 'fail';
}

const correct = (s: Scenario, v: string) =>
  s.truth === 'healthy' ? v === 'pass' : s.truth === 'bad' ? v === 'fail' : v !== 'pass';
const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const t0 = Date.now();
console.log(
  `gate simulator: ${RUNS} seeded runs per scenario (seed ${SEED}), 10% weight, ~2,000 candidate requests per ${WINDOW_S} s window, a look every ${SCRAPE_S} s up to ${MAX_WINDOW_S} s`,
);
console.log(
  `the spec init template's gate: alpha ${pct(ALPHA)} for the release, ${pct(WINDOW_ALPHA)} for the window judged here (${SHARE.note}); rules ${template.rules.map((r) => JSON.stringify(r)).join(' ')}\n`,
);

interface Row {
  s: Scenario;
  n: number;
  fixed: Record<Verdict, number>;
  seq: Record<Verdict, number>;
  flagger: number;
  kayenta: number;
  right: [number, number, number, number];
  peeked: number;
  /** Sequential passes: seconds to promote; sequential and fixed fails: candidate requests seen at the fail. */
  promoteSeconds: number[];
  failCandidates: number[];
  fixedFailCandidates: number[];
  fired: Record<string, number>;
}
const rows: Row[] = [];
const only = process.env.GATE_SIM_ONLY;
for (const [index, s] of SCENARIOS.entries()) {
  if (only && !only.split(',').some((part) => s.name.includes(part))) continue;
  const gate = gateFor(s.weight ?? 10);
  const row: Row = {
    s,
    n: RUNS,
    fixed: { pass: 0, fail: 0, inconclusive: 0 },
    seq: { pass: 0, fail: 0, inconclusive: 0 },
    flagger: 0,
    kayenta: 0,
    right: [0, 0, 0, 0],
    peeked: 0,
    promoteSeconds: [],
    failCandidates: [],
    fixedFailCandidates: [],
    fired: {},
  };
  for (let run = 0; run < RUNS; run++) {
    const r = runSequential(s, SEED * 1_000_003 + index * 10_007 + run, {
      gate,
      scrapeS: SCRAPE_S,
      maxWindowS: MAX_WINDOW_S,
      peek: s.truth === 'healthy',
    });
    const fixed = (r.fixed === 'error' ? 'inconclusive' : r.fixed) as Verdict;
    const seq = (r.sequential === 'error' ? 'inconclusive' : r.sequential) as Verdict;
    row.fixed[fixed]++;
    row.seq[seq]++;
    const f = flagger(r.fixedBundle);
    const k = kayenta(r.fixedBundle);
    if (f === 'fail') row.flagger++;
    if (k === 'fail') row.kayenta++;
    [fixed, f, k, seq].forEach((x, i) => (row.right[i] += correct(s, x) ? 1 : 0));
    if (r.peeked) row.peeked++;
    if (seq === 'pass') row.promoteSeconds.push(r.seconds);
    if (seq === 'fail') row.failCandidates.push(r.candidates);
    if (fixed === 'fail') row.fixedFailCandidates.push(r.fixedCandidates);
    for (const rule of r.failed) row.fired[rule] = (row.fired[rule] ?? 0) + 1;
  }
  rows.push(row);
  process.stderr.write(`  ${s.name}: done (${((Date.now() - t0) / 1000).toFixed(0)} s)\n`);
}

const table = (head: string[], widths: number[], body: string[][]) => {
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' ');
  console.log(line(head));
  for (const b of body) console.log(line(b));
};

console.log(
  '1. fixed window (judged once at 60 s) beside the baselines — flagged = false alarms (healthy) or detection (bad)',
);
table(
  [
    'scenario',
    'truth',
    'clover-cd',
    'inconcl.',
    'flagger',
    'kayenta',
    'correct: clover',
    'flagger',
    'kayenta',
  ],
  [22, 10, 10, 9, 8, 8, 16, 8, 8],
  rows.map((r) => [
    r.s.name,
    r.s.truth,
    pct(r.fixed.fail / r.n),
    pct(r.fixed.inconclusive / r.n),
    pct(r.flagger / r.n),
    pct(r.kayenta / r.n),
    ...r.right.slice(0, 3).map((x) => pct(x / r.n)),
  ]),
);
console.log(
  `\n2. fixed vs sequential (always-valid tests at every scrape) — flagged = false alarms (healthy) or detection (bad);
   peeking = the fixed tests re-run at every scrape; promote = median seconds to a pass (fixed: ${WINDOW_S});
   req. to fail = median candidate requests seen when the gate failed`,
);
const med = (xs: number[], digits = 0) => (Number.isFinite(median(xs)) ? median(xs).toFixed(digits) : '-');
table(
  [
    'scenario',
    'truth',
    'fixed',
    'inconcl.',
    'peeking',
    'sequential',
    'inconcl.',
    'promote s',
    'req. to fail: fixed',
    'seq.',
    'correct',
    'rules that failed (sequential)',
  ],
  [22, 10, 7, 9, 8, 11, 9, 10, 20, 6, 8, 0],
  rows.map((r) => [
    r.s.name,
    r.s.truth,
    pct(r.fixed.fail / r.n),
    pct(r.fixed.inconclusive / r.n),
    r.s.truth === 'healthy' ? pct(r.peeked / r.n) : '-',
    pct(r.seq.fail / r.n),
    pct(r.seq.inconclusive / r.n),
    med(r.promoteSeconds, 1),
    med(r.fixedFailCandidates),
    med(r.failCandidates),
    pct(r.right[3] / r.n),
    ' ' +
      (Object.entries(r.fired)
        .map(([k, n]) => `${k} ${n}`)
        .join(', ') || '-'),
  ]),
);
const avg = (i: number) => rows.reduce((a, r) => a + r.right[i] / r.n, 0) / rows.length;
console.log(
  `\naverage correct: fixed ${pct(avg(0))}, flagger ${pct(avg(1))}, kayenta ${pct(avg(2))}, sequential ${pct(avg(3))}\n`,
);
const healthy = rows.filter((r) => r.s.truth === 'healthy');
const EXACT = new Set(['conservation', 'split']);
const bad = rows.filter((r) => r.s.truth === 'bad');
const checks: Array<[string, boolean]> = [
  ...healthy.map(
    (r) =>
      [
        `sequential false alarms ≤ the window's ${pct(WINDOW_ALPHA)} (the release's ${pct(ALPHA)} over its windows): ${r.s.name} ${pct(r.seq.fail / r.n)} (peeking ${pct(r.peeked / r.n)})`,
        r.seq.fail / r.n <= WINDOW_ALPHA,
      ] as [string, boolean],
  ),
  ...healthy.map(
    (r) =>
      [
        `sequential inconclusive ≤ 2%: ${r.s.name} ${pct(r.seq.inconclusive / r.n)}`,
        r.seq.inconclusive / r.n <= 0.02,
      ] as [string, boolean],
  ),
  ...healthy.map(
    (r) =>
      [
        `sequential promotes no later than fixed (${WINDOW_S} s): ${r.s.name} median ${med(r.promoteSeconds, 1)} s`,
        median(r.promoteSeconds) <= WINDOW_S,
      ] as [string, boolean],
  ),
  ...bad.map(
    (r) =>
      [`sequential detection ≥ 95%: ${r.s.name} ${pct(r.seq.fail / r.n)}`, r.seq.fail / r.n >= 0.95] as [
        string,
        boolean,
      ],
  ),
  // Conservation and split are exact counts judged when the window closes: their regressions are found then.
  ...bad
    .filter((r) => Object.keys(r.fired).some((k) => !EXACT.has(k)))
    .map(
      (r) =>
        [
          `sequential median candidate requests to fail ≤ ½ of the fixed window's: ${r.s.name} ${med(r.failCandidates)} vs ½ × ${med(r.fixedFailCandidates)}`,
          median(r.failCandidates) <= median(r.fixedFailCandidates) / 2,
        ] as [string, boolean],
    ),
  ...rows
    .filter((r) => r.s.truth === 'never-pass')
    .map(
      (r) =>
        [
          `never passed: ${r.s.name} (${r.seq.pass} sequential, ${r.fixed.pass} fixed passes)`,
          r.seq.pass === 0 && r.fixed.pass === 0,
        ] as [string, boolean],
    ),
];
const missed = checks.filter(([, ok]) => !ok);
console.log(
  `targets: ${checks.length - missed.length} of ${checks.length} met${missed.length ? '; MISSED:' : ''}`,
);
for (const [what] of missed) console.log(`  MISSED ${what}`);
console.log(`(${((Date.now() - t0) / 1000).toFixed(1)} s)`);
process.exitCode = missed.length ? 1 : 0;
