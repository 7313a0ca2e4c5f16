/**
 * The gate bench's seeded scenarios and their traffic, as a stream in time: requests arrive at a steady rate
 * (the window holds ~2,000 candidate requests at 10% weight), and the gate can be shown the state at any moment
 * — a look (what a scrape would show: counts and histograms of the gated service), or a whole evidence bundle
 * (hops, the load's tagged counts, root spans and span durations, as the gate collects them when a window closes).
 * A run of the SDC chain: load → proxy-access-control → http-lb (v1 stable, v2 candidate) on four routes; the
 * load's requests are tagged (clover_cd_load), user traffic is not.
 */
import type { GateRule } from '../src/spec/types.js';
import type { EvidenceBundle, Histogram, Look, VersionCounts } from '../src/validators/types.js';

export const WINDOW_S = 60;
export const ROUTES = ['/', '/clover/testurl', '/clover/api', '/clover/static'];
/** Istio's default duration buckets (ms). */
export const BUCKETS = [
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

export interface Scenario {
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

export const SCENARIOS: Scenario[] = [
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
  // Regressions nobody needs statistics to see, where deciding as soon as the evidence does pays most; last,
  // so the seeds of the scenarios above stay as they were.
  { name: 'errors 30% (obvious)', truth: 'bad', errorDelta: 0.3 },
  { name: 'median ×2 (obvious)', truth: 'bad', medianFactor: 2 },
];

export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
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

const counts = (): VersionCounts => ({ requests: 0, errors: 0, codes: {} });
function bump(c: VersionCounts, err: boolean, n = 1): void {
  c.requests += n;
  const code = err ? '503' : '200';
  c.codes[code] = (c.codes[code] ?? 0) + n;
  if (err) c.errors += n;
}
const copy = (c: VersionCounts): VersionCounts => ({
  requests: c.requests,
  errors: c.errors,
  codes: { ...c.codes },
});

export interface GateUnderTest {
  minSamples: number;
  rules: GateRule[];
  plannedSamples: number;
  /** The release's gate.alpha, and the part of it the window spends (validators/budget.ts windowShare). */
  alpha?: number;
  alphaShare?: number;
  beta?: number;
  traceSampling?: number;
}

/** One seeded run of a scenario, generated request by request as time passes. */
export class ScenarioStream {
  private readonly rnd: () => number;
  private readonly normal: () => number;
  readonly weight: number;
  private readonly share: number;
  /** Load requests per second. */
  readonly rate: number;
  private readonly sigma: number;
  private readonly drift: { latency: number; errors: number };
  private readonly baseError: number;
  private sent = 0;
  private userSent = 0;
  private t = 0;
  private proxy = 0;
  private lbTagged = 0;
  private latencySum = 0;
  private roots = 0;
  private readonly lb: Record<string, VersionCounts> = { v1: counts(), v2: counts() };
  private readonly tagged: Record<string, VersionCounts> = { v1: counts(), v2: counts() };
  private readonly routes: Record<string, Record<string, VersionCounts>> = Object.fromEntries(
    ROUTES.map((r) => [r, { v1: counts(), v2: counts() }]),
  );
  private readonly durations: Record<string, number[]> = { v1: [], v2: [] };
  private readonly bins: Record<string, number[]> = { v1: BUCKETS.map(() => 0), v2: BUCKETS.map(() => 0) };

  constructor(
    readonly s: Scenario,
    private readonly seed: number,
    private readonly gate: GateUnderTest,
  ) {
    this.rnd = mulberry32(seed);
    this.normal = () => Math.sqrt(-2 * Math.log(1 - this.rnd())) * Math.cos(2 * Math.PI * this.rnd());
    this.weight = s.weight ?? 10;
    this.share = s.observedShare ?? this.weight / 100;
    this.rate = (s.candidates ?? 2000) / (this.weight / 100) / WINDOW_S;
    this.sigma = s.sigma ?? 0.6;
    this.drift = s.drift ?? { latency: 1, errors: 1 };
    this.baseError = (s.baseError ?? 0.005) * this.drift.errors;
  }

  /** Seconds since the window opened. */
  get time(): number {
    return this.t;
  }

  get candidateRequests(): number {
    return this.lb.v2.requests;
  }

  /** Generate every request that arrives until `t` seconds. */
  advanceTo(t: number): void {
    const s = this.s;
    const until = Math.floor(t * this.rate);
    for (; this.sent < until; this.sent++) this.request(s);
    if (s.edges) {
      // Four times the load's rate of user traffic flows through the window.
      const users = Math.floor(4 * this.rate * t) - this.userSent;
      this.userSent += users;
      this.proxy += users;
      const uv2 = Math.round(users * this.share);
      bump(this.lb.v1, false, users - uv2);
      bump(this.lb.v2, false, uv2);
      this.roots += users;
    }
    this.t = t;
  }

  private request(s: Scenario): void {
    const rnd = this.rnd;
    this.proxy++;
    if (s.sampling === undefined || rnd() < s.sampling) this.roots++;
    if (s.loss && rnd() < s.loss) return; // lost between the proxy and http-lb: the proxy saw it, http-lb did not
    const v = rnd() < this.share ? 'v2' : 'v1';
    const cand = v === 'v2';
    const route = ROUTES[Math.floor(rnd() * ROUTES.length)];
    const err =
      rnd() <
      this.baseError + (cand ? (s.errorDelta ?? 0) + (route === ROUTES[0] ? (s.routeError ?? 0) : 0) : 0);
    const z = this.normal();
    let ms = s.bimodal
      ? rnd() < 0.85
        ? 30 * Math.exp(0.3 * z)
        : 250 * Math.exp(0.3 * z)
      : 50 * Math.exp(this.sigma * z);
    ms *= this.drift.latency;
    if (cand) ms *= s.medianFactor ?? 1;
    if (cand && s.tailFactor && z > 2.054) ms *= s.tailFactor; // z of p98: the slowest 2%
    const n = s.duplicate && rnd() < s.duplicate ? 2 : 1; // a retried request counted twice at http-lb
    bump(this.lb[v], err, n);
    bump(this.tagged[v], err, n);
    bump(this.routes[route][v], err, n);
    this.lbTagged += n;
    this.latencySum += ms;
    if (s.sampling === undefined || rnd() < s.sampling) this.durations[v].push(ms);
    this.bins[v][BUCKETS.findIndex((b) => ms <= b)]++;
  }

  private histogram(v: string): Histogram {
    let acc = 0;
    return { le: BUCKETS, counts: this.bins[v].map((x) => (acc += x)) };
  }

  /** What a scrape shows now: counts and histograms at the gated service since the window opened. */
  look(): Look {
    const c = (x: VersionCounts) => ({ requests: x.requests, errors: x.errors });
    return {
      at: Math.round(this.t * 1000),
      versions: { v1: c(this.lb.v1), v2: c(this.lb.v2) },
      routes: Object.fromEntries(
        ROUTES.map((r) => [r, { v1: c(this.routes[r].v1), v2: c(this.routes[r].v2) }]),
      ),
      latency: { v1: this.histogram('v1'), v2: this.histogram('v2') },
    };
  }

  /** The evidence bundle of the window [0, now], as the gate collects it when the window closes. */
  bundle(extra: Partial<EvidenceBundle> = {}): EvidenceBundle {
    const s = this.s;
    const rnd = mulberry32(this.seed ^ 0x5bd1e995);
    const windowS = this.t;
    const meanLb = this.latencySum / Math.max(1, this.lbTagged);
    const lb = { v1: copy(this.lb.v1), v2: copy(this.lb.v2) };
    const hops: Record<string, Record<string, VersionCounts>> = {
      'proxy-access-control': { v1: { requests: this.proxy, errors: 0, codes: {} } },
      'http-lb': lb,
    };
    let roots = this.roots;
    if (s.edges) {
      // Istio counts a request when it completes: what was in flight at each edge lands at one hop and not the
      // other (and root spans belong to the window the request started in).
      const rate = (4 * this.rate * windowS) / windowS;
      const atStart = poisson(rnd, rate * 0.002); // finished at http-lb before the start, at the proxy after it
      const atEnd = poisson(rnd, rate * 0.002); // finished at http-lb before the end, at the proxy after it
      hops['proxy-access-control'].v1.requests -= atEnd;
      const uv2 = Math.round(atStart * this.share);
      lb.v1.requests -= atStart - uv2;
      lb.v2.requests -= uv2;
      roots += poisson(rnd, rate * (meanLb / 1000)) - poisson(rnd, rate * (meanLb / 1000));
    }
    return {
      kind: 'clover-cd/evidence',
      version: 1,
      createdAt: new Date(0).toISOString(),
      release: 'sim',
      service: { name: 'http-lb', namespace: 'default', stable: 'v1', candidate: 'v2' },
      window: { start: 0, end: Math.max(1, Math.round(windowS * 1000)) },
      candidateWeight: this.weight,
      minSamples: this.gate.minSamples,
      plannedSamples: this.gate.plannedSamples,
      traceSampling: this.gate.traceSampling,
      rules: this.gate.rules,
      sources: [],
      evidence: {
        load: {
          engine: 'sim',
          runId: 'run-1',
          startedAt: 0,
          endedAt: Math.round(windowS * 1000),
          sent: this.sent,
          errors: 0,
          codes: {},
          userAgents: {},
          labels: {},
        },
        metrics: {
          source: 'prometheus',
          hops,
          tagged: {
            'proxy-access-control': { v1: { requests: this.sent, errors: 0, codes: {} } },
            'http-lb': { v1: copy(this.tagged.v1), v2: copy(this.tagged.v2) },
          },
          routes: Object.fromEntries(
            ROUTES.map((r) => [r, { v1: copy(this.routes[r].v1), v2: copy(this.routes[r].v2) }]),
          ),
          hopLatencyMs: { 'proxy-access-control': meanLb + 2, 'http-lb': meanLb },
          latency: { v1: this.histogram('v1'), v2: this.histogram('v2') },
          missing: [],
        },
        traces: {
          traces: roots,
          spans: roots * 2,
          rootSpans: roots,
          requests: [],
          versions: {},
          durations: { v1: [...this.durations.v1], v2: [...this.durations.v2] },
          hops: {},
          sampling: s.sampling === undefined ? undefined : { type: 'probabilistic', param: s.sampling },
        },
      },
      ...extra,
    };
  }
}
