/**
 * `npm run bench:gate`: the gate against a seeded simulator with known truth, beside two baselines judging
 * the same data:
 * - Flagger-style fixed thresholds on the canary alone (request-success-rate ≥ 99%, request-duration P99 ≤ 500 ms);
 * - a Kayenta-style judge: Mann-Whitney on latency + a two-proportion z-test on errors (each one-sided at
 *   1%, Kayenta's 98% two-sided interval), two metric groups scored 50/50, pass at 75: one failing group fails.
 * Each scenario is run 200 times (GATE_SIM_RUNS) at 10% weight with ~2,000 candidate requests, seeded.
 * A run of the SDC chain: load → proxy-access-control → http-lb (v1 stable, v2 candidate) on four routes;
 * the load's requests are tagged (clover_cd_load), user traffic is not.
 * Targets (issue 12): false alarms ≤ 1% in every healthy scenario, detection ≥ 95% in every bad one, the
 * 300-request bad canary never passed, clover-cd never > 1 point below a baseline in correct verdicts and
 * above both on average.
 */
import type { GateRule } from '../src/spec/types.js';
import { plannedSamples } from '../src/validators/sample-size.js';
import {
  histogramQuantile,
  mannWhitney,
  mannWhitneyHistograms,
  normalUpperTail,
} from '../src/validators/stats.js';
import type { EvidenceBundle, Histogram, VersionCounts } from '../src/validators/types.js';
import { judgeBundle } from '../src/validators/verdict.js';

const RUNS = Number(process.env.GATE_SIM_RUNS ?? 200);
const SEED = Number(process.env.GATE_SIM_SEED ?? 12);
const WINDOW_S = 60;
const ROUTES = ['/', '/clover/testurl', '/clover/api', '/clover/static'];
/** Istio's default duration buckets (ms). */
const BUCKETS = [
  0.5,
  1,
  5,
  10,
  25,
  50,
  100,
  250,
  500,
  1000,
  2500,
  5000,
  10000,
  30000,
  60000,
  300000,
  600000,
  1800000,
  3600000,
  Infinity,
];

/** The spec a user would write for this service (see the spec init template). */
const GATE = {
  minSamples: 100,
  rules: [
    { conservation: { hops: ['proxy-access-control', 'http-lb'] } },
    { split: { confidence: 0.9999 } },
    { errorRate: { max: '5%' } },
    { compareErrors: { alpha: 0.002, perRoute: true } },
    { compareLatency: { alpha: 0.01, maxIncrease: '5%' } },
    { tail: { percentiles: [95, 99], alpha: 0.01, maxIncrease: '10%' } },
  ] as GateRule[],
};
const PLANNED = plannedSamples(GATE).candidate;

interface Scenario {
  name: string;
  /** healthy: a pass is right; bad: a fail is right; never-pass: anything but a pass is right. */
  truth: 'healthy' | 'bad' | 'never-pass';
  candidates?: number;
  weight?: number;
  baseError?: number;
  sigma?: number;
  bimodal?: boolean;
  errorDelta?: number;
  /** Extra error rate of the candidate on the first route only. */
  routeError?: number;
  medianFactor?: number;
  /** The slowest 2% of the candidate's requests take this much longer (p99 moves, the median does not). */
  tailFactor?: number;
  /** Both versions slower / more errors by these factors (a shared dependency degrading). */
  drift?: { latency: number; errors: number };
  loss?: number;
  duplicate?: number;
  observedShare?: number;
  sampling?: number;
  /** User traffic (untagged) runs through the window's edges beside the load. */
  edges?: boolean;
}

const SCENARIOS: Scenario[] = [
  { name: 'healthy', truth: 'healthy' },
  { name: 'healthy, weight 5%', truth: 'healthy', weight: 5 },
  { name: 'base errors 0.05%', truth: 'healthy', baseError: 0.0005 },
  { name: 'base errors 2%', truth: 'healthy', baseError: 0.02 },
  { name: 'heavy tail σ 1.2', truth: 'healthy', sigma: 1.2 },
  { name: 'bimodal latency', truth: 'healthy', bimodal: true },
  { name: 'low traffic (1,200)', truth: 'healthy', candidates: 1200 },
  { name: 'both versions drift', truth: 'healthy', drift: { latency: 2.5, errors: 2.5 } },
  { name: 'traces sampled 1%', truth: 'healthy', sampling: 0.01 },
  { name: 'traffic across edges', truth: 'healthy', edges: true },
  { name: 'errors +2% on 2%', truth: 'bad', baseError: 0.02, errorDelta: 0.02 },
  { name: '503 on 3% of 1 route', truth: 'bad', routeError: 0.03 },
  { name: 'p99 +50% only', truth: 'bad', tailFactor: 1.5 },
  { name: 'median +30% σ 0.6', truth: 'bad', medianFactor: 1.3 },
  { name: 'median +30% σ 1.2', truth: 'bad', medianFactor: 1.3, sigma: 1.2 },
  { name: '0.2% silent loss', truth: 'bad', loss: 0.002 },
  { name: '0.2% dup. retries', truth: 'bad', duplicate: 0.002 },
  { name: 'split 10% seen 14%', truth: 'bad', observedShare: 0.14 },
  {
    name: '300-request bad',
    truth: 'never-pass',
    candidates: 300,
    baseError: 0.02,
    errorDelta: 0.02,
    tailFactor: 1.5,
  },
];

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const counts = (): VersionCounts => ({ requests: 0, errors: 0, codes: {} });
function bump(c: VersionCounts, err: boolean, n = 1): void {
  c.requests += n;
  const code = err ? '503' : '200';
  c.codes[code] = (c.codes[code] ?? 0) + n;
  if (err) c.errors += n;
}
function poisson(rnd: () => number, mean: number): number {
  if (mean > 30)
    return Math.max(
      0,
      Math.round(
        mean + Math.sqrt(mean) * Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd()),
      ),
    );
  const l = Math.exp(-mean);
  let k = 0;
  for (let p = rnd(); p > l; p *= rnd()) k++;
  return k;
}

function simulate(s: Scenario, seed: number): EvidenceBundle {
  const rnd = mulberry32(seed);
  const normal = () => Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
  const weight = s.weight ?? 10;
  const share = s.observedShare ?? weight / 100;
  const sent = Math.round((s.candidates ?? 2000) / (weight / 100));
  const sigma = s.sigma ?? 0.6;
  const drift = s.drift ?? { latency: 1, errors: 1 };
  const baseError = (s.baseError ?? 0.005) * drift.errors;
  const lb: Record<string, VersionCounts> = { v1: counts(), v2: counts() };
  const tagged: Record<string, VersionCounts> = { v1: counts(), v2: counts() };
  const routes: Record<string, Record<string, VersionCounts>> = Object.fromEntries(
    ROUTES.map((r) => [r, { v1: counts(), v2: counts() }]),
  );
  const durations: Record<string, number[]> = { v1: [], v2: [] };
  const bins: Record<string, number[]> = { v1: BUCKETS.map(() => 0), v2: BUCKETS.map(() => 0) };
  let proxy = 0;
  let lbTagged = 0;
  let latencySum = 0;
  let roots = 0;
  for (let i = 0; i < sent; i++) {
    proxy++;
    if (s.sampling === undefined || rnd() < s.sampling) roots++;
    if (s.loss && rnd() < s.loss) continue; // lost between the proxy and http-lb: the proxy saw it, http-lb did not
    const v = rnd() < share ? 'v2' : 'v1';
    const cand = v === 'v2';
    const route = ROUTES[Math.floor(rnd() * ROUTES.length)];
    const err =
      rnd() < baseError + (cand ? (s.errorDelta ?? 0) + (route === ROUTES[0] ? (s.routeError ?? 0) : 0) : 0);
    const z = normal();
    let ms = s.bimodal
      ? rnd() < 0.85
        ? 30 * Math.exp(0.3 * z)
        : 250 * Math.exp(0.3 * z)
      : 50 * Math.exp(sigma * z);
    ms *= drift.latency;
    if (cand) ms *= s.medianFactor ?? 1;
    if (cand && s.tailFactor && z > 2.054) ms *= s.tailFactor; // z of p98: the slowest 2%
    const n = s.duplicate && rnd() < s.duplicate ? 2 : 1; // a retried request counted twice at http-lb
    bump(lb[v], err, n);
    bump(tagged[v], err, n);
    bump(routes[route][v], err, n);
    lbTagged += n;
    latencySum += ms;
    if (s.sampling === undefined || rnd() < s.sampling) durations[v].push(ms);
    bins[v][BUCKETS.findIndex((b) => ms <= b)]++;
  }
  const cumulative = (b: number[]): Histogram => {
    let acc = 0;
    return { le: BUCKETS, counts: b.map((x) => (acc += x)) };
  };
  const meanLb = latencySum / Math.max(1, lbTagged);
  const hopLatencyMs = { 'proxy-access-control': meanLb + 2, 'http-lb': meanLb };
  const hops: Record<string, Record<string, VersionCounts>> = {
    'proxy-access-control': { v1: { requests: proxy, errors: 0, codes: {} } },
    'http-lb': lb,
  };
  if (s.edges) {
    // Four times the load's rate of user traffic flows through the window. Istio counts a request when it
    // completes, so what was in flight at each edge lands at one hop and not the other (and root spans
    // belong to the window the request started in).
    const user = 4 * sent;
    const rate = user / WINDOW_S;
    const atStart = poisson(rnd, rate * 0.002); // finished at http-lb before the start, at the proxy after it
    const atEnd = poisson(rnd, rate * 0.002); // finished at http-lb before the end, at the proxy after it
    const userLb = user - atStart;
    const userProxy = user - atEnd;
    hops['proxy-access-control'].v1.requests += userProxy;
    const uv2 = Math.round(userLb * share);
    bump(lb.v1, false, userLb - uv2);
    bump(lb.v2, false, uv2);
    roots += user + poisson(rnd, rate * (meanLb / 1000)) - poisson(rnd, rate * (meanLb / 1000));
  }
  return {
    kind: 'clover-cd/evidence',
    version: 1,
    createdAt: new Date(0).toISOString(),
    release: 'sim',
    service: { name: 'http-lb', namespace: 'default', stable: 'v1', candidate: 'v2' },
    window: { start: 0, end: WINDOW_S * 1000 },
    candidateWeight: weight,
    minSamples: GATE.minSamples,
    plannedSamples: PLANNED,
    rules: GATE.rules,
    sources: [],
    evidence: {
      load: {
        engine: 'sim',
        runId: 'run-1',
        startedAt: 1000,
        endedAt: WINDOW_S * 1000 - 1000,
        sent,
        errors: 0,
        codes: {},
        userAgents: {},
        labels: {},
      },
      metrics: {
        source: 'prometheus',
        hops,
        tagged: {
          'proxy-access-control': { v1: { requests: sent, errors: 0, codes: {} } },
          'http-lb': tagged,
        },
        routes,
        hopLatencyMs,
        latency: { v1: cumulative(bins.v1), v2: cumulative(bins.v2) },
        missing: [],
      },
      traces: {
        traces: roots,
        spans: roots * 2,
        rootSpans: roots,
        requests: [],
        versions: {},
        durations,
        hops: {},
        sampling: s.sampling === undefined ? undefined : { type: 'probabilistic', param: s.sampling },
      },
    },
  };
}

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

const correct = (s: Scenario, v: Verdict) =>
  s.truth === 'healthy' ? v === 'pass' : s.truth === 'bad' ? v === 'fail' : v !== 'pass';
const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const t0 = Date.now();
console.log(
  `gate simulator: ${RUNS} seeded runs per scenario (seed ${SEED}), 10% weight, ~2,000 candidate requests, planned sample size ${PLANNED}`,
);
console.log(`rules: ${GATE.rules.map((r) => JSON.stringify(r)).join(' ')}`);
console.log(
  'flagged = false alarms (healthy) or detection (bad); correct = pass on healthy, fail on bad, not pass on never-pass\n',
);
const head = [
  'scenario',
  'truth',
  'clover-cd',
  'inconcl.',
  'flagger',
  'kayenta',
  'correct: clover',
  'flagger',
  'kayenta',
];
const widths = [22, 10, 10, 9, 8, 8, 16, 8, 8];
const row = (cells: string[]) =>
  cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' ');
console.log(row(head) + '  rules that failed (clover-cd)');
const results: Array<{
  s: Scenario;
  flagged: number;
  inconclusive: number;
  passed: number;
  correct: [number, number, number];
}> = [];
const only = process.env.GATE_SIM_ONLY;
for (const [index, s] of SCENARIOS.entries()) {
  if (only && !s.name.includes(only)) continue;
  const tally = { clover: 0, flagger: 0, kayenta: 0, inconclusive: 0, passed: 0 };
  const right = [0, 0, 0];
  const fired: Record<string, number> = {};
  for (let run = 0; run < RUNS; run++) {
    const b = simulate(s, SEED * 1_000_003 + index * 10_007 + run);
    const v = judgeBundle(b);
    const c = v.outcome as Verdict;
    const f = flagger(b);
    const k = kayenta(b);
    if (c === 'fail') tally.clover++;
    if (c === 'inconclusive') tally.inconclusive++;
    if (c === 'pass') tally.passed++;
    if (f === 'fail') tally.flagger++;
    if (k === 'fail') tally.kayenta++;
    [c, f, k].forEach((x, i) => (right[i] += correct(s, x) ? 1 : 0));
    for (const r of v.results)
      if (r.outcome === 'fail') fired[r.rule.split(' ')[0]] = (fired[r.rule.split(' ')[0]] ?? 0) + 1;
  }
  const rates = right.map((x) => x / RUNS) as [number, number, number];
  results.push({
    s,
    flagged: tally.clover / RUNS,
    inconclusive: tally.inconclusive / RUNS,
    passed: tally.passed,
    correct: rates,
  });
  const cells = [
    s.name,
    s.truth,
    pct(tally.clover / RUNS),
    pct(tally.inconclusive / RUNS),
    pct(tally.flagger / RUNS),
    pct(tally.kayenta / RUNS),
    ...rates.map(pct),
  ];
  console.log(
    `${row(cells)}  ${
      Object.entries(fired)
        .map(([k, n]) => `${k} ${n}`)
        .join(', ') || '-'
    }`,
  );
}
const avg = [0, 1, 2].map((i) => results.reduce((a, r) => a + r.correct[i], 0) / results.length);
console.log(`${row(['average correct', '', '', '', '', '', ...avg.map(pct)])}\n`);
const checks: Array<[string, boolean]> = [
  ...results
    .filter((r) => r.s.truth === 'healthy')
    .map((r) => [`false alarms ≤ 1%: ${r.s.name} ${pct(r.flagged)}`, r.flagged <= 0.01] as [string, boolean]),
  ...results
    .filter((r) => r.s.truth === 'bad')
    .map((r) => [`detection ≥ 95%: ${r.s.name} ${pct(r.flagged)}`, r.flagged >= 0.95] as [string, boolean]),
  ...results
    .filter((r) => r.s.truth === 'never-pass')
    .map((r) => [`never passed: ${r.s.name} (${r.passed} passes)`, r.passed === 0] as [string, boolean]),
  ...results.map(
    (r) =>
      [
        `correct within 1 point of the best baseline: ${r.s.name} ${pct(r.correct[0])} vs ${pct(Math.max(r.correct[1], r.correct[2]))}`,
        r.correct[0] >= Math.max(r.correct[1], r.correct[2]) - 0.01,
      ] as [string, boolean],
  ),
  [
    `average correct above both baselines: ${pct(avg[0])} vs flagger ${pct(avg[1])}, kayenta ${pct(avg[2])}`,
    avg[0] > avg[1] && avg[0] > avg[2],
  ],
];
const missed = checks.filter(([, ok]) => !ok);
console.log(
  `targets: ${checks.length - missed.length} of ${checks.length} met${missed.length ? '; MISSED:' : ''}`,
);
for (const [what] of missed) console.log(`  MISSED ${what}`);
console.log(`(${((Date.now() - t0) / 1000).toFixed(1)} s)`);
process.exitCode = missed.length ? 1 : 0;
