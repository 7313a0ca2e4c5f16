/**
 * Candidate vs baseline. Each comparison states its effect size in the user's units and holds its α:
 * - compareErrors: one-sided mid-p exact test (Farrington-Manning with a margin), overall or per route;
 * - compareLatency: ratio of medians (or another quantile) with a confidence bound, same meaning at any spread;
 * - tail: ratio of p95/p99 with a confidence bound, so a regression of the slowest requests alone fails.
 */
import { parsePercent } from '../util/units.js';
import { compareQuantiles, type QuantileComparison } from './quantiles.js';
import { compareProportions, type ProportionTest } from './stats.js';
import { telemetryOfBundle } from './metrics.js';
import { DEFAULT_MAX_ROUTES } from './budget.js';
import {
  empty,
  judgedRoutes,
  latencyPair,
  minSamplesShort,
  ms,
  pa,
  pct,
  pv,
  routeCounts,
  versionCounts,
  type Body,
  type Partial,
} from './rules-common.js';
import type { EvidenceBundle, VersionCounts } from './types.js';

export const DEFAULT_LATENCY_INCREASE = '10%';
export const DEFAULT_TAIL_INCREASE = '10%';
export const DEFAULT_TAIL_PERCENTILES = [95, 99];

const ratioText = (x: number) => (Number.isFinite(x) ? `${x.toFixed(2)}×` : 'n/a');

// ---------------------------------------------------------------- errors

interface ErrorTest extends ProportionTest {
  scope: string;
  alpha: number;
  stable: VersionCounts;
  candidate: VersionCounts;
}

export function compareErrors(b: EvidenceBundle, r: Body<'compareErrors'>, share?: number): Partial {
  const alpha = r.alpha ?? share ?? 0.01;
  // Under a budget the overall test and the routes each get half (the routes one fixed slot each).
  const budgeted = share !== undefined || b.alpha !== undefined;
  const perRoute = !!r.perRoute && r.route === undefined;
  const margin = r.maxIncrease ? parsePercent(r.maxIncrease) : 0;
  const { stable, candidate } = b.service;
  const scope = r.route !== undefined ? ` at ${r.route}` : '';
  const expected = `${candidate} error rate${scope} ≤ ${stable}'s${margin ? ` + ${r.maxIncrease}` : ''} (one-sided, α ${pa(alpha)}${r.perRoute ? ', and per route' : ''})`;
  const vc = versionCounts(b, r.route);
  if (!vc.ok) return { outcome: vc.outcome, observed: 'n/a', expected, source: vc.source, reason: vc.reason };
  const run = (name: string, s: VersionCounts, c: VersionCounts, a: number): ErrorTest => ({
    ...compareProportions(s.errors, s.requests, c.errors, c.requests, margin),
    scope: name,
    alpha: a,
    stable: s,
    candidate: c,
  });
  const describe = (t: ErrorTest) =>
    `${t.scope ? `${t.scope}: ` : ''}${candidate} ${pct(t.candidateRate)} (${t.candidate.errors}/${t.candidate.requests}) vs ${stable} ${pct(t.baselineRate)} (${t.stable.errors}/${t.stable.requests}), p = ${pv(t.p)}`;
  const s = vc.value[stable] ?? empty;
  const c = vc.value[candidate] ?? empty;
  const overall = run(r.route ?? '', s, c, budgeted && perRoute ? alpha / 2 : alpha);
  let observed = describe(overall);
  const short = minSamplesShort(b, { [stable]: s.requests, [candidate]: c.requests }, r.route === undefined);
  if (short) return { outcome: 'inconclusive', observed, expected, source: vc.source, reason: short };
  const tests = [overall];
  const skipped: string[] = [];
  let source = vc.source;
  if (perRoute) {
    const rc = routeCounts(b);
    if (!rc)
      skipped.push(
        `no per-route evidence (${telemetryOfBundle(b).labels.route} label or spans with http.url)`,
      );
    else {
      source += ` + ${rc.source}`;
      const judged = judgedRoutes(b, rc.routes, candidate);
      const routes = judged.map(([route]) => route).sort();
      for (const [route] of Object.entries(rc.routes))
        if (!routes.includes(route)) skipped.push(`${route} (beyond the ${routes.length} largest routes)`);
      // The route tests are one family (Bonferroni): α in total beside the overall test, or under a budget
      // half the rule's share in gate.maxRoutes fixed slots.
      const each = budgeted ? alpha / (2 * (b.maxRoutes ?? DEFAULT_MAX_ROUTES)) : alpha / routes.length;
      for (const route of routes) {
        const rs = rc.routes[route][stable] ?? empty;
        const rcand = rc.routes[route][candidate] ?? empty;
        if (minSamplesShort(b, { [stable]: rs.requests, [candidate]: rcand.requests }, false))
          skipped.push(`${route} (${rcand.requests} candidate requests)`);
        else tests.push(run(route, rs, rcand, each));
      }
      observed += `; ${tests.length - 1} route${tests.length === 2 ? '' : 's'} tested`;
    }
  }
  const failed = tests.filter((t) => t.p < t.alpha);
  const skippedText = skipped.length ? ` (not tested: ${skipped.join(', ')})` : '';
  const details = { tests: tests.map(({ stable: _s, candidate: _c, ...t }) => t), skipped };
  if (failed.length) {
    const worst = failed.sort((x, y) => x.p - y.p)[0];
    const where = worst.scope && worst !== overall ? ` at ${worst.scope}` : scope;
    return {
      outcome: 'fail',
      observed:
        describe(worst) +
        (worst === overall ? '' : `; overall ${pct(overall.candidateRate)} vs ${pct(overall.baselineRate)}`),
      expected,
      source,
      reason: `${candidate} has more errors than ${stable}${where} (${worst.method}, p = ${pv(worst.p)} < ${+worst.alpha.toPrecision(2)})${skippedText}`,
      details,
    };
  }
  return {
    outcome: 'pass',
    observed,
    expected,
    source,
    reason: `no significant increase (${overall.method})${skippedText}`,
    details,
  };
}

// ---------------------------------------------------------------- latency

function quantileResult(
  b: EvidenceBundle,
  q: number,
  margin: number,
  alpha: number,
  route: string | undefined,
): { ok: true; c: QuantileComparison; source: string } | { ok: false; result: Partial } {
  const pair = latencyPair(b, q, route);
  if (!pair.ok)
    return {
      ok: false,
      result: {
        outcome: pair.outcome,
        observed: 'n/a',
        expected: '',
        source: pair.source,
        reason: pair.reason,
      },
    };
  const { stable, candidate } = b.service;
  const short = minSamplesShort(
    b,
    { [stable]: pair.value.stable.dist.n, [candidate]: pair.value.candidate.dist.n },
    route === undefined,
  );
  if (short)
    return {
      ok: false,
      result: {
        outcome: 'inconclusive',
        observed: `${stable} ${pair.value.stable.dist.n}, ${candidate} ${pair.value.candidate.dist.n} samples`,
        expected: '',
        source: pair.source,
        reason: short,
      },
    };
  return {
    ok: true,
    c: compareQuantiles(pair.value.stable.dist, pair.value.candidate.dist, q, margin, alpha),
    source: pair.source,
  };
}

const quantileObserved = (b: EvidenceBundle, c: QuantileComparison) =>
  `p${+(c.q * 100).toFixed(2)} ${b.service.candidate} ${ms(c.candidate.value)} vs ${b.service.stable} ${ms(c.baseline.value)}: ${ratioText(c.ratio)} (lower bound ${ratioText(c.lower)}, p = ${Number.isFinite(c.p) ? pv(c.p) : 'n/a'}; n ${c.baseline.n} vs ${c.candidate.n})`;

export function compareLatency(b: EvidenceBundle, r: Body<'compareLatency'>, share?: number): Partial {
  const alpha = r.alpha ?? share ?? 0.01;
  const increase = r.maxIncrease ?? DEFAULT_LATENCY_INCREASE;
  const margin = parsePercent(increase);
  const pctl = r.percentile ?? 50;
  const q = pctl / 100;
  const { stable, candidate } = b.service;
  const name = pctl === 50 ? 'median' : `p${pctl}`;
  const expected = `${candidate}'s ${name}${r.route !== undefined ? ` at ${r.route}` : ''} ≤ ${stable}'s × ${1 + margin} (ratio of quantiles, one-sided α ${pa(alpha)})`;
  const deprecated =
    r.maxEffect !== undefined
      ? ` (maxEffect ${r.maxEffect} is no longer used: Cliff's δ depends on the spread; maxIncrease ${increase} applies)`
      : '';
  const res = quantileResult(b, q, margin, alpha, r.route);
  if (!res.ok) return { ...res.result, expected, reason: res.result.reason + deprecated };
  const c = res.c;
  const observed = quantileObserved(b, c);
  if (c.problem)
    return {
      outcome: 'inconclusive',
      observed,
      expected,
      source: res.source,
      reason: c.problem + deprecated,
    };
  const slower = c.p < alpha;
  return {
    outcome: slower ? 'fail' : 'pass',
    observed,
    expected,
    source: res.source,
    reason:
      (slower
        ? `${candidate}'s ${name} is ${ratioText(c.ratio)} ${stable}'s, significantly above ${1 + margin}× (at least ${ratioText(c.lower)} at ${(1 - alpha) * 100}% confidence)`
        : c.ratio > 1 + margin
          ? `${name} ratio ${ratioText(c.ratio)} is above ${1 + margin}× but within noise (p = ${pv(c.p)})`
          : `no significant slowdown of the ${name}`) + deprecated,
    details: { ...c },
  };
}

export function tail(b: EvidenceBundle, r: Body<'tail'>, share?: number): Partial {
  const alpha = r.alpha ?? share ?? 0.01;
  const increase = r.maxIncrease ?? DEFAULT_TAIL_INCREASE;
  const margin = parsePercent(increase);
  const percentiles = r.percentiles ?? DEFAULT_TAIL_PERCENTILES;
  const each = alpha / percentiles.length;
  const { stable, candidate } = b.service;
  const expected = `${candidate}'s ${percentiles.map((p) => `p${p}`).join(', ')}${r.route !== undefined ? ` at ${r.route}` : ''} ≤ ${stable}'s × ${1 + margin} (order-statistic interval, α ${pa(alpha)} in total)`;
  const results: QuantileComparison[] = [];
  let source = '';
  for (const p of percentiles) {
    const res = quantileResult(b, p / 100, margin, each, r.route);
    if (!res.ok) return { ...res.result, expected };
    results.push(res.c);
    source = res.source;
  }
  const observed = results.map((c) => quantileObserved(b, c)).join('; ');
  const details = { percentiles: results };
  const failed = results.filter((c) => !c.problem && c.p < each);
  if (failed.length) {
    const c = failed[failed.length - 1];
    return {
      outcome: 'fail',
      observed,
      expected,
      source,
      reason: `${candidate}'s p${+(c.q * 100).toFixed(2)} is ${ratioText(c.ratio)} ${stable}'s (at least ${ratioText(c.lower)} at ${+((1 - each) * 100).toFixed(2)}% confidence, allowed ${1 + margin}×): the slowest requests regressed`,
      details,
    };
  }
  const problem = results.find((c) => c.problem);
  if (problem)
    return { outcome: 'inconclusive', observed, expected, source, reason: problem.problem!, details };
  return { outcome: 'pass', observed, expected, source, reason: 'no significant tail regression', details };
}
