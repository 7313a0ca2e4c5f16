/**
 * The statistical rules as sequences of always-valid tests, one handler per rule kind. A handler turns each
 * look into evidence for its tests (tests.ts) and describes where it stands for a person. Thresholds and
 * margins come from the rule; each test's α from the rule's share of the budget (budget.ts); β from gate.beta.
 */
import type { GateRule } from '../../spec/types.js';
import { parseDurationMs, parsePercent } from '../../util/units.js';
import {
  DEFAULT_LATENCY_INCREASE,
  DEFAULT_TAIL_INCREASE,
  DEFAULT_TAIL_PERCENTILES,
} from '../rules-compare.js';
import { ms, pa, pct, type Body } from '../rules-common.js';
import type { Histogram, LookCounts } from '../types.js';
import {
  CANDIDATE_SHARE,
  differenceLower,
  differenceUpper,
  RateRatioTest,
  rateLimitEvidence,
} from './counts.js';
import type { MixtureTuning } from './mixture.js';
import {
  quantileLimitEvidence,
  quantileRatioEvidence,
  quantileRatioTest,
  rankedHistogram,
  rankedSamples,
  type Ranked,
} from './quantiles.js';
import { newTest, record, type TestState } from './tests.js';

/** Defaults of the pass side: the regression a rule must catch (it never passes one this large, at 1 − β). */
export const DEFAULT_ERRORS_DETECT = '1.5%';
export const DEFAULT_ROUTE_ERRORS_DETECT = '3%';
export const DEFAULT_LATENCY_DETECT = '25%';
export const DEFAULT_TAIL_DETECT = '50%';
/** Route tests are tuned (and plans made) for this many routes sharing the candidate's requests. */
export const TYPICAL_ROUTES = 4;

/** A latency rule's detect size: its own, else the default, but never less than twice its tolerance. */
export function detectOf(detect: string | undefined, maxIncrease: string, fallback: string): string {
  if (detect !== undefined) return detect;
  const twice = 2 * parsePercent(maxIncrease);
  return twice > parsePercent(fallback) ? `${+(twice * 100).toFixed(4)}%` : fallback;
}

/** One look as the handlers read it: a metric snapshot, or the window's trace evidence (with raw durations). */
export interface LookData {
  versions: Record<string, LookCounts>;
  routes?: Record<string, Record<string, LookCounts>>;
  latency?: Record<string, Histogram>;
  routeLatency?: Record<string, Record<string, Histogram>>;
  durations?: Record<string, ArrayLike<number>>;
}

export interface HandlerSetup {
  stable: string;
  candidate: string;
  beta: number;
  maxRoutes: number;
  minRouteSamples: number;
  /** Candidate requests the plan expects: the mixtures are tuned to be tightest there. */
  plannedCandidate: number;
  /** Stable requests per candidate request (the weight split). */
  stablePerCandidate: number;
}

/**
 * `passDue`: the pass side can decide at this look (the minimum window is reached). Before it, pass sides are not
 * searched: a side once shown stays shown, so showing it first at the minimum window decides at the same look.
 */
export interface RuleHandler {
  kind: string;
  tests: TestState[];
  update(look: LookData, prev: LookData | undefined, t: number, passDue: boolean, final: boolean): void;
  expected: string;
  /** What a failed test shows, and what a passed rule has ruled out, for a person. */
  failText(test: TestState): string;
  passText: string;
  /** What the rule reads: request counts, or latency (histograms, or span durations when the looks carry them). */
  reads: 'requests' | 'latency';
  /** The versions whose requests it judges (gate.minSamples applies to these). */
  versions: string[];
}

/** A search that did not reject stays below its threshold (a search cut short may have seen higher values). */
const below = (evidence: number, threshold: number) => Math.min(evidence, threshold - 1e-9);

const zero: LookCounts = { requests: 0, errors: 0 };
const tune = (tOpt: number, alphaOpt: number): MixtureTuning => ({ tOpt: Math.max(10, tOpt), alphaOpt });
const rateText = (c: LookCounts) =>
  `${pct(c.requests ? c.errors / c.requests : NaN)} (${c.errors} of ${c.requests})`;

/** Routes get fixed slots in the order they appear (the larger first when several appear at once). */
class RouteSlots {
  readonly routes: string[] = [];
  constructor(private readonly max: number) {}
  assign(routes: Record<string, Record<string, LookCounts>> | undefined, version: string): string[] {
    const fresh = Object.keys(routes ?? {})
      .filter((r) => !this.routes.includes(r))
      .sort(
        (a, b) =>
          (routes![b][version]?.requests ?? 0) - (routes![a][version]?.requests ?? 0) || (a < b ? -1 : 1),
      );
    for (const r of fresh) if (this.routes.length < this.max) this.routes.push(r);
    return this.routes;
  }
}

function errorRate(s: HandlerSetup, r: Body<'errorRate'>, alpha: number): RuleHandler {
  const version = r.version === 'stable' ? s.stable : s.candidate;
  const max = parsePercent(r.max);
  const routeMax = r.routeMax !== undefined ? parsePercent(r.routeMax) : Math.min(1, 2 * max);
  const perRoute = !!r.perRoute && r.route === undefined;
  const overallAlpha = perRoute ? alpha / 2 : alpha;
  const routeAlpha = alpha / (2 * s.maxRoutes);
  const tOpt = s.plannedCandidate * (version === s.stable ? s.stablePerCandidate : 1);
  const scope = r.route ?? 'overall';
  const main = newTest(scope, r.route ? `route ${r.route}` : 'overall', overallAlpha, s.beta);
  const tests = [main];
  const slots = new RouteSlots(s.maxRoutes);
  const judge = (
    test: TestState,
    c: LookCounts,
    limit: number,
    detect: number,
    a: number,
    t: number,
    routeTune: number,
    passDue: boolean,
  ) => {
    const e = rateLimitEvidence(c.errors, c.requests, limit, detect, {
      fail: tune(routeTune, a),
      pass: tune(routeTune, s.beta),
    });
    record(test, t, e.fail, passDue ? e.pass : undefined, rateText(c));
  };
  const where = (test: TestState) => (test.id === 'overall' ? '' : ` on ${test.id}`);
  return {
    kind: 'errorRate',
    reads: 'requests',
    versions: [version],
    tests,
    failText: (test) => `error rate${where(test)} above ${r.max}`,
    passText: `the error rate is shown below ${r.max}${perRoute ? ` (each route below ${pct(routeMax)})` : ''}`,
    expected: `≤ ${r.max} 5xx at ${version}${r.route ? ` on ${r.route}` : ''}: fails once above ${r.max} at α ${pa(overallAlpha)}, passes once below ${r.max} at β ${pa(s.beta)}${perRoute ? `; each route fails above ${r.max} at α ${pa(routeAlpha)}, passes below ${pct(routeMax)}` : ''}`,
    update(look, _prev, t, passDue) {
      const c =
        r.route !== undefined
          ? (look.routes?.[r.route]?.[version] ?? zero)
          : (look.versions[version] ?? zero);
      judge(main, c, max, max, overallAlpha, t, tOpt, passDue);
      if (!perRoute) return;
      for (const route of slots.assign(look.routes, version)) {
        let test = tests.find((x) => x.id === route);
        if (!test) tests.push((test = newTest(route, `route ${route}`, routeAlpha, s.beta)));
        const rc = look.routes?.[route]?.[version] ?? zero;
        test.required = rc.requests >= s.minRouteSamples;
        judge(test, rc, max, routeMax, routeAlpha, t, tOpt / TYPICAL_ROUTES, passDue);
      }
    },
  };
}

function latencyOf(look: LookData, version: string, route?: string): Ranked | undefined {
  if (route !== undefined) {
    const h = look.routeLatency?.[route]?.[version];
    return h ? rankedHistogram(h) : undefined;
  }
  const h = look.latency?.[version];
  if (h && (h.counts[h.counts.length - 1] ?? 0) > 0) return rankedHistogram(h);
  const d = look.durations?.[version];
  return d && d.length ? rankedSamples(Float64Array.from(d).sort()) : undefined;
}

function latency(s: HandlerSetup, r: Body<'latency'>, alpha: number): RuleHandler {
  const version = r.version === 'stable' ? s.stable : s.candidate;
  const limit = parseDurationMs(r.max);
  const q = r.percentile / 100;
  const test = newTest(r.route ?? 'overall', `p${r.percentile}`, alpha, s.beta);
  const tOpt = s.plannedCandidate * (version === s.stable ? s.stablePerCandidate : 1);
  return {
    kind: 'latency',
    reads: 'latency',
    versions: [version],
    tests: [test],
    failText: () => `p${r.percentile} above ${r.max}`,
    passText: `p${r.percentile} is shown at or below ${r.max}`,
    expected: `p${r.percentile} ≤ ${r.max} at ${version}${r.route ? ` on ${r.route}` : ''}: fails once above at α ${pa(alpha)}, passes once at or below at β ${pa(s.beta)}`,
    update(look, _prev, t, passDue) {
      const d = latencyOf(look, version, r.route);
      if (!d) return record(test, t, 0, undefined, 'no latency data yet');
      const e = quantileLimitEvidence(d, q, limit, { fail: tune(tOpt, alpha), pass: tune(tOpt, s.beta) });
      record(
        test,
        t,
        e.fail,
        passDue ? e.pass : undefined,
        `p${r.percentile} ≈ ${ms(d.quantile(q))} over ${d.n} requests (${pct(1 - d.atMost(limit) / d.n)} above ${r.max})`,
      );
    },
  };
}

function compareErrors(s: HandlerSetup, r: Body<'compareErrors'>, alpha: number): RuleHandler {
  const margin = r.maxIncrease ? parsePercent(r.maxIncrease) : 0;
  const detect = parsePercent(r.detect ?? DEFAULT_ERRORS_DETECT);
  const routeDetect = parsePercent(r.routeDetect ?? DEFAULT_ROUTE_ERRORS_DETECT);
  const perRoute = !!r.perRoute && r.route === undefined;
  const overallAlpha = perRoute ? alpha / 2 : alpha;
  const routeAlpha = alpha / (2 * s.maxRoutes);
  const main = newTest(r.route ?? 'overall', r.route ? `route ${r.route}` : 'overall', overallAlpha, s.beta);
  const tests = [main];
  const ratios = new Map<string, RateRatioTest>();
  const slots = new RouteSlots(s.maxRoutes);
  const countsOf = (look: LookData | undefined, scope: string) =>
    (scope === 'overall' ? look?.versions : look?.routes?.[scope]) ?? {};
  const judge = (
    test: TestState,
    look: LookData,
    prev: LookData | undefined,
    t: number,
    a: number,
    pass: number,
    tOpt: number,
    passDue: boolean,
  ) => {
    const cur = countsOf(look, test.id);
    const before = countsOf(prev, test.id);
    const c = cur[s.candidate] ?? zero;
    const st = cur[s.stable] ?? zero;
    const tuning = {
      candidate: tune(tOpt, a * CANDIDATE_SHARE),
      stable: tune(tOpt * s.stablePerCandidate, a * (1 - CANDIDATE_SHARE)),
    };
    let fail: number;
    if (margin === 0) {
      let ratio = ratios.get(test.id);
      if (!ratio) ratios.set(test.id, (ratio = new RateRatioTest(1)));
      const b = (v: string) => before[v] ?? zero;
      ratio.add({
        candidateErrors: c.errors - b(s.candidate).errors,
        stableErrors: st.errors - b(s.stable).errors,
        candidateRequests: c.requests - b(s.candidate).requests,
        stableRequests: st.requests - b(s.stable).requests,
      });
      fail = ratio.evidence();
    } else {
      // With an absolute margin the fail side is the lower bound of the difference: shown once above the margin.
      const low = differenceLower(
        { k: c.errors, n: c.requests },
        { k: st.errors, n: st.requests },
        a,
        tuning,
      );
      fail = low > margin ? test.failThreshold : 0;
    }
    const passDone = test.passedAt !== undefined || !passDue;
    const up = passDone
      ? NaN
      : differenceUpper({ k: c.errors, n: c.requests }, { k: st.errors, n: st.requests }, s.beta, {
          candidate: tune(tOpt, s.beta * CANDIDATE_SHARE),
          stable: tune(tOpt * s.stablePerCandidate, s.beta * (1 - CANDIDATE_SHARE)),
        });
    const observed = `${s.candidate} ${rateText(c)} vs ${s.stable} ${rateText(st)}`;
    record(
      test,
      t,
      fail,
      undefined,
      observed,
      passDone ? undefined : { value: up, shown: c.requests > 0 && st.requests > 0 && up <= pass },
    );
  };
  return {
    kind: 'compareErrors',
    reads: 'requests',
    versions: [s.stable, s.candidate],
    tests,
    failText: (test) =>
      `${s.candidate} has more errors than ${s.stable}${margin ? ` + ${r.maxIncrease}` : ''}${test.id === 'overall' ? '' : ` on ${test.id}`}`,
    passText: `an increase of ${pct(detect)}${perRoute ? ` (${pct(routeDetect)} on a route)` : ''} over ${s.stable}'s error rate is ruled out`,
    expected: `${s.candidate}'s error rate ≤ ${s.stable}'s${margin ? ` + ${r.maxIncrease}` : ''}${r.route ? ` on ${r.route}` : ''}: fails once ${margin ? 'the difference is above the margin' : 'higher (rate-ratio contrast)'} at α ${pa(overallAlpha)}, passes once an increase of ${pct(detect)} is ruled out at β ${pa(s.beta)}${perRoute ? `; each route fails at α ${pa(routeAlpha)}, passes once +${pct(routeDetect)} is ruled out` : ''}`,
    update(look, prev, t, passDue) {
      judge(main, look, prev, t, overallAlpha, detect, s.plannedCandidate, passDue);
      if (!perRoute) return;
      for (const route of slots.assign(look.routes, s.candidate)) {
        let test = tests.find((x) => x.id === route);
        if (!test) tests.push((test = newTest(route, `route ${route}`, routeAlpha, s.beta)));
        test.required = (look.routes?.[route]?.[s.candidate]?.requests ?? 0) >= s.minRouteSamples;
        judge(test, look, prev, t, routeAlpha, routeDetect, s.plannedCandidate / TYPICAL_ROUTES, passDue);
      }
    },
  };
}

function quantileComparison(
  s: HandlerSetup,
  kind: string,
  percentiles: number[],
  maxIncrease: string,
  detect: string,
  route: string | undefined,
  alpha: number,
): RuleHandler {
  const margin = parsePercent(maxIncrease);
  const passRatio = 1 + parsePercent(detect);
  const each = alpha / percentiles.length;
  const tests = percentiles.map((p) => newTest(`p${p}`, `p${p}`, each, s.beta));
  const tuning = (a: number) => ({
    candidate: tune(s.plannedCandidate, a),
    stable: tune(s.plannedCandidate * s.stablePerCandidate, a),
  });
  const name = (p: number) => (p === 50 ? 'median' : `p${p}`);
  return {
    kind,
    reads: 'latency',
    versions: [s.stable, s.candidate],
    tests,
    failText: (test) =>
      `${s.candidate}'s ${name(Number(test.id.slice(1)))} is above ${s.stable}'s × ${+(1 + margin).toFixed(3)}${kind === 'tail' ? ': the slowest requests regressed' : ''}`,
    passText: `a ratio of ${+passRatio.toFixed(3)} to ${s.stable}'s ${percentiles.map(name).join(', ')} is ruled out`,
    expected: `${s.candidate}'s ${percentiles.map(name).join(', ')}${route ? ` on ${route}` : ''} ≤ ${s.stable}'s × ${+(1 + margin).toFixed(3)}: fails once above at α ${pa(each)}${percentiles.length > 1 ? ' each' : ''}, passes once × ${+passRatio.toFixed(3)} is ruled out at β ${pa(s.beta)}`,
    update(look, _prev, t, passDue, final) {
      const c = latencyOf(look, s.candidate, route);
      const st = latencyOf(look, s.stable, route);
      percentiles.forEach((p, i) => {
        const test = tests[i];
        if (!c || !st) return record(test, t, 0, undefined, 'no latency data yet');
        const q = p / 100;
        const failTest = quantileRatioTest(c, st, q, 1 + margin, 'slower', test.failThreshold, tuning(each));
        // The pass side is searched only until shown; on the last look its evidence is kept for the picture.
        const passTest =
          passDue && (test.passedAt === undefined || final)
            ? quantileRatioTest(c, st, q, passRatio, 'faster', test.passThreshold, tuning(s.beta))
            : undefined;
        const ratio = c.quantile(q) / st.quantile(q);
        const observed = `${name(p)} ${ms(c.quantile(q))} vs ${ms(st.quantile(q))} (${Number.isFinite(ratio) ? ratio.toFixed(2) : 'n/a'}×; n ${st.n} vs ${c.n})`;
        const fail = failTest.rejected
          ? Math.max(test.failThreshold, quantileRatioEvidence(c, st, q, 1 + margin, 'slower', tuning(each)))
          : below(failTest.evidence, test.failThreshold);
        const pass =
          passTest &&
          (passTest.rejected
            ? Math.max(test.passThreshold, passTest.evidence)
            : below(passTest.evidence, test.passThreshold));
        record(test, t, fail, pass, observed);
      });
    },
  };
}

/** The handler of a statistical rule judged sequentially, or undefined for rules judged once at the end. */
export function handlerFor(s: HandlerSetup, rule: GateRule, alpha: number): RuleHandler | undefined {
  if ('errorRate' in rule) return errorRate(s, rule.errorRate, alpha);
  if ('latency' in rule) return latency(s, rule.latency, alpha);
  if ('compareErrors' in rule) return compareErrors(s, rule.compareErrors, alpha);
  if ('compareLatency' in rule) {
    const r = rule.compareLatency;
    const inc = r.maxIncrease ?? DEFAULT_LATENCY_INCREASE;
    return quantileComparison(
      s,
      'compareLatency',
      [r.percentile ?? 50],
      inc,
      detectOf(r.detect, inc, DEFAULT_LATENCY_DETECT),
      r.route,
      alpha,
    );
  }
  if ('tail' in rule) {
    const r = rule.tail;
    const inc = r.maxIncrease ?? DEFAULT_TAIL_INCREASE;
    return quantileComparison(
      s,
      'tail',
      r.percentiles ?? DEFAULT_TAIL_PERCENTILES,
      inc,
      detectOf(r.detect, inc, DEFAULT_TAIL_DETECT),
      r.route,
      alpha,
    );
  }
  return undefined;
}
