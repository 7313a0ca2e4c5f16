// Over 400 lines: the built-in rules, each a short evaluator over the same evidence types.
/**
 * Gate rules: each reads the evidence bundle and returns a result that shows what was observed, what was
 * expected, which source it came from and why it passed, failed or could not decide. Pure.
 * No data is never a pass: too few samples → inconclusive; the needed source down → error.
 */
import type { GateRule } from '../spec/types.js';
import { evaluateL4Rule } from '../clovisor/evidence.js';
import { parseDurationMs, parsePercent } from '../util/units.js';
import { conservation } from './conservation.js';
import { compareErrors, compareLatency, tail } from './rules-compare.js';
import { metric } from './metric-rule.js';
import { DEFAULT_MAX_ROUTES } from './budget.js';
import {
  empty,
  judgedRoutes,
  latencyOf,
  minSamplesShort,
  ms,
  noData,
  pct,
  pv,
  routeCounts,
  versionCounts,
  type Body,
  type Lookup,
  type Partial,
} from './rules-common.js';
import { binomialUpperTail, wilsonInterval } from './stats.js';
import { estimateQuantile } from './quantiles.js';
import type { EvidenceBundle, Outcome, RuleResult, VersionCounts } from './types.js';

// ---------------------------------------------------------------- split

export interface SplitCheck {
  outcome: Outcome;
  share: number;
  interval: { low: number; high: number };
  reason: string;
}

/** Is `weightPercent` inside the binomial interval of the candidate's observed share? */
export function checkSplit(
  counts: { stable: number; candidate: number },
  weightPercent: number,
  confidence = 0.999,
): SplitCheck {
  const n = counts.stable + counts.candidate;
  const interval = wilsonInterval(counts.candidate, n, confidence);
  const share = n ? counts.candidate / n : NaN;
  const w = weightPercent / 100;
  if (!n) return { outcome: 'inconclusive', share, interval, reason: 'no requests observed' };
  const inside = w >= interval.low && w <= interval.high;
  const ci = `${pct(interval.low)}..${pct(interval.high)} at ${+(confidence * 100).toPrecision(4)}% confidence`;
  return {
    outcome: inside ? 'pass' : 'fail',
    share,
    interval,
    reason: inside
      ? `configured ${weightPercent}% lies in the observed interval ${ci}`
      : `configured ${weightPercent}% lies outside the observed interval ${ci}: traffic does not follow the weights`,
  };
}

function split(b: EvidenceBundle, r: Body<'split'>, share?: number): Partial {
  const conf = r.confidence ?? (share !== undefined ? 1 - share : 0.999);
  const expected =
    b.candidateWeight === undefined
      ? 'candidate share = configured weight'
      : `candidate share = ${b.candidateWeight}% (binomial interval, ${+(conf * 100).toPrecision(4)}%)`;
  const vc = versionCounts(b);
  if (!vc.ok) return { outcome: vc.outcome, observed: 'n/a', expected, source: vc.source, reason: vc.reason };
  const stable = (vc.value[b.service.stable] ?? empty).requests;
  const candidate = (vc.value[b.service.candidate] ?? empty).requests;
  const observed = `${b.service.candidate} ${candidate} of ${stable + candidate} (${pct(candidate / (stable + candidate || 1))})`;
  if (b.candidateWeight === undefined)
    return {
      outcome: 'inconclusive',
      observed,
      expected,
      source: vc.source,
      reason: 'the configured candidate weight is not known (pass --weight)',
    };
  const total = stable + candidate;
  if (total < b.minSamples)
    return {
      outcome: 'inconclusive',
      observed,
      expected,
      source: vc.source,
      reason: `too few samples: ${total} requests (minSamples ${b.minSamples})`,
    };
  const c = checkSplit({ stable, candidate }, b.candidateWeight, conf);
  return { outcome: c.outcome, observed, expected, source: vc.source, reason: c.reason, details: { ...c } };
}

// ---------------------------------------------------------------- thresholds

function errorRateOf(
  c: VersionCounts,
  max: number,
  label: string,
  level: number,
): { outcome: Outcome; observed: string; reason: string; p?: number } {
  const rate = c.requests ? c.errors / c.requests : NaN;
  const observed = `${pct(rate)} (${c.errors} of ${c.requests})`;
  if (rate <= max) return { outcome: 'pass', observed, reason: 'error rate within the limit' };
  // Above the limit: fail only when the excess is more than noise (one-sided binomial test at the rule's level).
  const p = binomialUpperTail(c.errors, c.requests, max);
  if (p < level)
    return {
      outcome: 'fail',
      observed,
      reason: `error rate${label} above ${pct(max)} (p = ${pv(p)} that a ${pct(max)} rate gives ${c.errors} errors)`,
      p,
    };
  return {
    outcome: 'inconclusive',
    observed,
    reason: `above ${pct(max)}${label} but within noise at ${c.requests} requests (p = ${pv(p)}): more samples needed`,
    p,
  };
}

function errorRate(b: EvidenceBundle, r: Body<'errorRate'>, share?: number): Partial {
  const version = r.version === 'stable' ? b.service.stable : b.service.candidate;
  const max = parsePercent(r.max);
  // Without a budget (bundles written before it) the excess is judged at 5%, as it always was.
  const level = r.alpha ?? share ?? 0.05;
  const routeLevel =
    share === undefined && r.alpha === undefined ? level : level / (2 * (b.maxRoutes ?? DEFAULT_MAX_ROUTES));
  const overallLevel = r.perRoute && r.route === undefined && routeLevel !== level ? level / 2 : level;
  const at = r.route !== undefined ? ` at ${r.route}` : '';
  const expected = `≤ ${r.max} 5xx at ${version}${at}${r.perRoute ? ' (and on every route)' : ''}`;
  const vc = versionCounts(b, r.route);
  if (!vc.ok) return { outcome: vc.outcome, observed: 'n/a', expected, source: vc.source, reason: vc.reason };
  const c = vc.value[version] ?? empty;
  const overall = errorRateOf(c, max, at, overallLevel);
  const short = minSamplesShort(b, { [version]: c.requests }, r.route === undefined);
  if (short)
    return {
      outcome: 'inconclusive',
      observed: overall.observed,
      expected,
      source: vc.source,
      reason: short,
    };
  if (overall.outcome === 'fail' || !r.perRoute || r.route !== undefined)
    return {
      outcome: overall.outcome,
      observed: overall.observed,
      expected,
      source: vc.source,
      reason: overall.reason,
      details: overall.p === undefined ? undefined : { p: overall.p },
    };
  const rc = routeCounts(b);
  if (!rc)
    return {
      outcome: overall.outcome,
      observed: overall.observed,
      expected,
      source: vc.source,
      reason: `${overall.reason} (no per-route evidence)`,
    };
  const perRoute = judgedRoutes(b, rc.routes, version)
    .filter(([, byVersion]) => (byVersion[version]?.requests ?? 0) >= b.minSamples)
    .map(([route, byVersion]) => ({
      route,
      ...errorRateOf(byVersion[version], max, ` at ${route}`, routeLevel),
    }));
  const failed = perRoute.find((x) => x.outcome === 'fail');
  if (failed)
    return {
      outcome: 'fail',
      observed: `${failed.route}: ${failed.observed}; overall ${overall.observed}`,
      expected,
      source: rc.source,
      reason: `${failed.reason}, although the overall rate is ${overall.observed}`,
    };
  const unsure = perRoute.find((x) => x.outcome === 'inconclusive');
  const outcome = overall.outcome === 'inconclusive' || unsure ? 'inconclusive' : 'pass';
  return {
    outcome,
    observed: `${overall.observed}; ${perRoute.length} routes`,
    expected,
    source: `${vc.source} + ${rc.source}`,
    reason: unsure && overall.outcome === 'pass' ? unsure.reason : overall.reason,
  };
}

function latency(b: EvidenceBundle, r: Body<'latency'>): Partial {
  const version = r.version === 'stable' ? b.service.stable : b.service.candidate;
  const max = parseDurationMs(r.max);
  const expected = `p${r.percentile} ≤ ${r.max} at ${version}${r.route !== undefined ? ` on ${r.route}` : ''}`;
  const l = latencyOf(b, version, r.route);
  if (!l.ok) return { outcome: l.outcome, observed: 'n/a', expected, source: l.source, reason: l.reason };
  const q = r.percentile / 100;
  const value = estimateQuantile({ ...l.value.dist }, q).value;
  const observed = `p${r.percentile} = ${ms(value)} over ${l.value.dist.n} requests`;
  const short = minSamplesShort(b, { [version]: l.value.dist.n }, r.route === undefined);
  if (short) return { outcome: 'inconclusive', observed, expected, source: l.source, reason: short };
  if (Number.isNaN(value))
    return {
      outcome: 'inconclusive',
      observed,
      expected,
      source: l.source,
      reason: `too few samples for p${r.percentile}, or it lies in the histogram's +Inf bucket`,
    };
  return value <= max
    ? { outcome: 'pass', observed, expected, source: l.source, reason: 'latency within the limit' }
    : {
        outcome: 'fail',
        observed,
        expected,
        source: l.source,
        reason: `p${r.percentile} is ${ms(value - max)} above ${r.max}`,
      };
}

interface Selector {
  route?: string;
  status?: number | string;
  userAgent?: string;
}

/** Requests in scope (matching the route) and matching every selector, from traces or the load's labels. */
function selectRequests(b: EvidenceBundle, s: Selector): Lookup<{ scope: number; matched: number }> {
  const statusOk = (code: string) =>
    s.status === undefined ||
    String(s.status) === code ||
    (/^\dxx$/i.test(String(s.status)) && code[0] === String(s.status)[0]);
  const load = b.evidence.load;
  const isLabel = s.route !== undefined && load?.labels[s.route] !== undefined;
  const t = b.evidence.traces;
  if (t && !isLabel) {
    const routeOk = (url: string) =>
      s.route === undefined || url === s.route || pathOf(url) === s.route || url.endsWith(s.route);
    let scope = 0;
    let matched = 0;
    for (const g of t.requests) {
      if (!routeOk(g.url)) continue;
      scope += g.count;
      if (statusOk(g.status) && (s.userAgent === undefined || g.userAgent === s.userAgent))
        matched += g.count;
    }
    return {
      ok: true,
      value: { scope, matched },
      source: 'jaeger root spans (http.url, http.status_code, user_agent)',
    };
  }
  if (load) {
    const stats =
      s.route !== undefined
        ? load.labels[s.route]
        : { count: load.sent, codes: load.codes, userAgents: load.userAgents, errors: load.errors };
    if (!stats)
      return {
        ok: false,
        outcome: 'inconclusive',
        source: 'load',
        reason: `no requests labelled "${s.route}" in the load results`,
      };
    if (s.status !== undefined && s.userAgent !== undefined) {
      return {
        ok: false,
        outcome: 'inconclusive',
        source: 'load',
        reason:
          'status and user agent together need trace evidence (the load summary counts them separately)',
      };
    }
    const matched =
      s.status !== undefined
        ? Object.entries(stats.codes)
            .filter(([c]) => statusOk(c))
            .reduce((a, [, n]) => a + n, 0)
        : s.userAgent !== undefined
          ? (stats.userAgents[s.userAgent] ?? 0)
          : stats.count;
    return { ok: true, value: { scope: stats.count, matched }, source: `load (${load.engine}) results` };
  }
  return noData(b, 'traces with http.url / http.status_code / user_agent tags, or load results');
}

function pathOf(url: string): string {
  try {
    return new URL(url).pathname;
  } catch {
    return url;
  }
}

const describeSelector = (s: Selector) =>
  [
    s.route !== undefined ? `route ${s.route}` : 'all requests',
    s.status !== undefined ? `status ${s.status}` : '',
    s.userAgent !== undefined ? `user-agent ${s.userAgent}` : '',
  ]
    .filter(Boolean)
    .join(', ');

function count(b: EvidenceBundle, r: Body<'count'>): Partial {
  const expected =
    r.expect === 'all'
      ? `every request of ${r.route ?? 'the window'} matches`
      : r.expect === 'none'
        ? 'no request matches'
        : `exactly ${r.expect} requests match`;
  const sel = selectRequests(b, r);
  if (!sel.ok)
    return { outcome: sel.outcome, observed: 'n/a', expected, source: sel.source, reason: sel.reason };
  const { scope, matched } = sel.value;
  const observed = `${matched} of ${scope} requests (${describeSelector(r)})`;
  if (scope === 0)
    return {
      outcome: 'inconclusive',
      observed,
      expected,
      source: sel.source,
      reason: `no requests for ${r.route ?? 'the window'}`,
    };
  const ok =
    r.expect === 'all' ? matched === scope : r.expect === 'none' ? matched === 0 : matched === r.expect;
  return {
    outcome: ok ? 'pass' : 'fail',
    observed,
    expected,
    source: sel.source,
    reason: ok
      ? 'count as expected'
      : `count differs by ${r.expect === 'all' ? scope - matched : r.expect === 'none' ? matched : matched - r.expect}`,
  };
}

function share(b: EvidenceBundle, r: Body<'share'>): Partial {
  const want = parsePercent(r.expect);
  const tol = parsePercent(r.tolerance);
  const expected = `${r.expect} ± ${r.tolerance} of ${r.route ?? 'requests'}`;
  const sel = selectRequests(b, r);
  if (!sel.ok)
    return { outcome: sel.outcome, observed: 'n/a', expected, source: sel.source, reason: sel.reason };
  const { scope, matched } = sel.value;
  const observed = `${pct(matched / (scope || 1))} (${matched} of ${scope}, ${describeSelector(r)})`;
  if (scope < b.minSamples)
    return {
      outcome: 'inconclusive',
      observed,
      expected,
      source: sel.source,
      reason: `too few samples: ${scope} requests (minSamples ${b.minSamples})`,
    };
  const ok = Math.abs(matched / scope - want) <= tol + 1e-12;
  return {
    outcome: ok ? 'pass' : 'fail',
    observed,
    expected,
    source: sel.source,
    reason: ok
      ? 'share within tolerance'
      : `share is ${pct(Math.abs(matched / scope - want))} away from ${r.expect}`,
  };
}

function l4(b: EvidenceBundle, r: Body<'l4'>): Partial & { skipped?: boolean } {
  const required = r.required ?? b.requireL4 ?? false;
  const evidence = b.evidence.l4;
  const result = evaluateL4Rule(r, evidence, { stable: b.service.stable, candidate: b.service.candidate });
  const down = b.sources.find((s) => s.name === 'clovisor' && s.status !== 'ok');
  if (result.outcome === 'inconclusive' && !evidence && down?.error) result.reason += ` (${down.error})`;
  // Missing L4 evidence blocks only a rule that requires it; evidence that arrived is always judged.
  return {
    observed: result.observed,
    expected: result.expected,
    source: result.source,
    outcome: result.outcome,
    reason: result.reason,
    skipped: result.outcome === 'inconclusive' && !evidence && !required,
  };
}

/** A one-line reading of a rule, as shown in reports. */
export function describeRule(rule: GateRule): string {
  const [kind, body] = Object.entries(rule)[0] as [string, Record<string, unknown>];
  const parts = Object.entries(body ?? {}).map(
    ([k, v]) => `${k} ${typeof v === 'object' ? JSON.stringify(v) : v}`,
  );
  return parts.length ? `${kind} (${parts.join(', ')})` : kind;
}

/** `share`: the rule's part of the false-alarm budget (undefined for bundles written before it). */
type Evaluator = (b: EvidenceBundle, body: never, share?: number) => Partial & { skipped?: boolean };
const EVALUATORS: Record<string, Evaluator> = {
  conservation,
  split,
  errorRate,
  latency,
  count,
  share,
  compareLatency,
  compareErrors,
  tail,
  l4,
  metric,
};

export function evaluateRule(
  b: EvidenceBundle,
  rule: GateRule,
  share?: number,
): RuleResult & { skipped?: boolean } {
  const [kind, body] = Object.entries(rule)[0];
  const evaluator = EVALUATORS[kind];
  if (!evaluator)
    return {
      rule: describeRule(rule),
      outcome: 'error',
      observed: 'n/a',
      expected: 'a known rule',
      source: 'spec',
      reason: `unknown rule "${kind}"`,
    };
  return { rule: describeRule(rule), ...evaluator(b, (body ?? {}) as never, share) };
}
