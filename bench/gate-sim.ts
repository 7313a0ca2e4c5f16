/**
 * `npm run bench:gate`: the gate against a seeded simulator with known truth. Each scenario is run 200 times
 * (2,000 candidate requests per run, 50% weight) through the real rules (judgeBundle), beside a
 * Flagger-style fixed threshold on the same data (candidate success rate ≥ 99%, p99 ≤ 500 ms).
 * Targets: false alarms ≤ 1% on healthy; detection ≥ 95% for errors +5% and latency +100%.
 */
import { judgeBundle } from '../src/validators/verdict.js';
import { histogramQuantile } from '../src/validators/stats.js';
import type { EvidenceBundle, Histogram, VersionCounts } from '../src/validators/types.js';
import type { GateRule } from '../src/spec/types.js';

const RUNS = Number(process.env.GATE_SIM_RUNS ?? 200);
const CANDIDATE_REQUESTS = 2000;
const WEIGHT = 50;
const BASE_ERROR = 0.005;
const BASE_MEDIAN_MS = 50;
const SIGMA = 0.5;
/** Istio's default duration buckets (ms). */
const BUCKETS = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000, Infinity];

const RULES: GateRule[] = [
  { conservation: { hops: ['proxy-access-control', 'http-lb'], tolerance: 0 } },
  { split: { confidence: 0.999 } },
  { errorRate: { max: '1%' } },
  { latency: { percentile: 99, max: '500ms' } },
  { compareErrors: { alpha: 0.01, maxIncrease: '0.5%' } },
  { compareLatency: { alpha: 0.01, maxEffect: 0.1 } },
];

interface Scenario {
  name: string;
  bad: boolean;
  errorDelta?: number;
  latencyFactor?: number;
  loss?: number;
  candidateShare?: number;
}

const SCENARIOS: Scenario[] = [
  { name: 'healthy', bad: false },
  { name: 'errors +1%', bad: true, errorDelta: 0.01 },
  { name: 'errors +5%', bad: true, errorDelta: 0.05 },
  { name: 'latency +20%', bad: true, latencyFactor: 1.2 },
  { name: 'latency +100%', bad: true, latencyFactor: 2 },
  { name: 'request loss 0.5%', bad: true, loss: 0.005 },
  { name: 'split skew 50→45%', bad: true, candidateShare: 0.45 },
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

function simulate(s: Scenario, seed: number): EvidenceBundle {
  const rnd = mulberry32(seed);
  const normal = () => Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
  const share = s.candidateShare ?? WEIGHT / 100;
  const sent = Math.round(CANDIDATE_REQUESTS / (WEIGHT / 100));
  const versions: Record<string, VersionCounts> = { v1: { requests: 0, errors: 0, codes: {} }, v2: { requests: 0, errors: 0, codes: {} } };
  const durations: Record<string, number[]> = { v1: [], v2: [] };
  const bins: Record<string, number[]> = { v1: BUCKETS.map(() => 0), v2: BUCKETS.map(() => 0) };
  let lost = 0;
  for (let i = 0; i < sent; i++) {
    if (s.loss && rnd() < s.loss) {
      lost++;
      continue;
    }
    const v = rnd() < share ? 'v2' : 'v1';
    const cand = v === 'v2';
    const err = rnd() < BASE_ERROR + (cand ? (s.errorDelta ?? 0) : 0);
    const ms = BASE_MEDIAN_MS * Math.exp(SIGMA * normal()) * (cand ? (s.latencyFactor ?? 1) : 1);
    const c = versions[v];
    c.requests++;
    const code = err ? '503' : '200';
    c.codes[code] = (c.codes[code] ?? 0) + 1;
    if (err) c.errors++;
    durations[v].push(ms);
    bins[v][BUCKETS.findIndex((b) => ms <= b)]++;
  }
  const cumulative = (b: number[]): Histogram => {
    let acc = 0;
    return { le: BUCKETS, counts: b.map((x) => (acc += x)) };
  };
  const ingress = sent - lost;
  return {
    kind: 'clover-cd/evidence',
    version: 1,
    createdAt: new Date(0).toISOString(),
    release: 'sim',
    service: { name: 'http-lb', namespace: 'default', stable: 'v1', candidate: 'v2' },
    window: { start: 0, end: 60_000 },
    candidateWeight: WEIGHT,
    minSamples: 100,
    rules: RULES,
    sources: [],
    evidence: {
      load: { engine: 'sim', sent, errors: 0, codes: {}, userAgents: {}, labels: {} },
      // The request is lost between the proxy and the load balancer: the proxy saw it, http-lb did not.
      metrics: {
        source: 'prometheus',
        hops: { 'proxy-access-control': { v1: { requests: sent, errors: 0, codes: {} } }, 'http-lb': versions },
        latency: { v1: cumulative(bins.v1), v2: cumulative(bins.v2) },
        missing: [],
      },
      traces: { traces: ingress, spans: ingress * 2, rootSpans: sent, requests: [], versions, durations, hops: {} },
    },
  };
}

/** Flagger's built-in checks on the canary workload only (request-success-rate, request-duration P99). */
function flagger(b: EvidenceBundle): boolean {
  const c = b.evidence.metrics!.hops['http-lb'].v2;
  const success = c.requests ? 1 - c.errors / c.requests : NaN;
  const p99 = histogramQuantile(b.evidence.metrics!.latency.v2, 0.99);
  return !(success >= 0.99) || !(p99 <= 500);
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`.padStart(7);
const t0 = Date.now();
console.log(`gate simulator: ${RUNS} seeded runs per scenario, ${CANDIDATE_REQUESTS} candidate requests at ${WEIGHT}%, baseline errors ${BASE_ERROR * 100}%, median ${BASE_MEDIAN_MS} ms`);
console.log(`${'scenario'.padEnd(20)} ${'clover-cd'.padStart(10)} ${'flagger'.padStart(9)}  ${'inconcl.'.padStart(8)}  rules that failed (clover-cd)`);
const figures: Record<string, { clover: number; flagger: number }> = {};
for (const s of SCENARIOS) {
  let clover = 0;
  let flag = 0;
  let inconclusive = 0;
  const fired: Record<string, number> = {};
  for (let run = 0; run < RUNS; run++) {
    const b = simulate(s, 1000 * SCENARIOS.indexOf(s) + run + 1);
    const v = judgeBundle(b);
    if (v.outcome === 'fail') clover++;
    if (v.outcome === 'inconclusive') inconclusive++;
    for (const r of v.results) if (r.outcome === 'fail') fired[r.rule.split(' ')[0]] = (fired[r.rule.split(' ')[0]] ?? 0) + 1;
    if (flagger(b)) flag++;
  }
  figures[s.name] = { clover: clover / RUNS, flagger: flag / RUNS };
  const label = s.bad ? 'detect' : 'false alarm';
  console.log(
    `${s.name.padEnd(20)} ${pct(clover / RUNS)}    ${pct(flag / RUNS)}  ${pct(inconclusive / RUNS)}  ${label}; ${Object.entries(fired).map(([k, n]) => `${k} ${n}`).join(', ') || '-'}`,
  );
}
const checks: Array<[string, number, string, boolean]> = [
  ['false alarms on healthy', figures.healthy.clover, '≤ 1%', figures.healthy.clover <= 0.01],
  ['detection, errors +5%', figures['errors +5%'].clover, '≥ 95%', figures['errors +5%'].clover >= 0.95],
  ['detection, latency +100%', figures['latency +100%'].clover, '≥ 95%', figures['latency +100%'].clover >= 0.95],
];
console.log('');
for (const [what, value, target, ok] of checks) console.log(`${what.padEnd(28)} ${pct(value)}  target ${target}  ${ok ? 'OK' : 'MISSED'}`);
console.log(`(${((Date.now() - t0) / 1000).toFixed(1)} s)`);
process.exitCode = checks.every((c) => c[3]) ? 0 : 1;
