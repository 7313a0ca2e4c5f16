/**
 * Gate rules: each reads the evidence bundle and returns a result that shows what was observed, what was
 * expected, which source it came from and why it passed, failed or could not decide. Pure.
 * No data is never a pass: too few samples → inconclusive; the needed source down → error.
 */
import type { GateRule } from '../spec/types.js';
import { evaluateL4Rule } from '../clovisor/evidence.js';
import { parseDurationMs, parsePercent } from '../util/units.js';
import {
  binomialUpperTail,
  compareProportions,
  histogramQuantile,
  histogramTotal,
  mannWhitney,
  mannWhitneyHistograms,
  quantile,
  wilsonInterval,
} from './stats.js';
import type { EvidenceBundle, Histogram, Outcome, RuleResult, SourceName, VersionCounts } from './types.js';

type Body<K extends string> = Extract<GateRule, Record<K, unknown>>[K & keyof Extract<GateRule, Record<K, unknown>>];

const pct = (x: number, digits = 2) => (Number.isFinite(x) ? `${+(x * 100).toFixed(digits)}%` : 'n/a');
const ms = (x: number) => (Number.isFinite(x) ? `${+x.toFixed(1)}ms` : 'n/a');
const pv = (p: number) => (p < 1e-6 ? '< 1e-6' : p.toPrecision(2));

/** A rule result with everything but the rule text, before it is labelled. */
type Partial = Omit<RuleResult, 'rule'>;

/** Where a rule's data came from, or why there is none. */
type Lookup<T> = { ok: true; value: T; source: string } | { ok: false; outcome: Outcome; source: string; reason: string };

function sourceDown(b: EvidenceBundle, name: SourceName) {
  return b.sources.find((s) => s.name === name && s.status === 'down');
}

/** Per-version request counts at the gated service: metrics first (Istio's own counts), then traces. */
function versionCounts(b: EvidenceBundle): Lookup<Record<string, VersionCounts>> {
  const m = b.evidence.metrics;
  const hop = m?.hops[b.service.name];
  if (m && hop) return { ok: true, value: hop, source: `${m.source} istio_requests_total{reporter="destination",destination_service_name="${b.service.name}"}` };
  const t = b.evidence.traces;
  if (t && Object.keys(t.versions).length) return { ok: true, value: t.versions, source: `jaeger spans of ${b.service.name}` };
  return noData(b, `istio_requests_total{reporter="destination",destination_service_name="${b.service.name}"} by destination_version`);
}

function noData<T>(b: EvidenceBundle, series: string): Lookup<T> {
  const down = (['prometheus', 'scrape', 'jaeger'] as SourceName[]).map((n) => sourceDown(b, n)).find(Boolean);
  if (down) return { ok: false, outcome: 'error', source: down.name, reason: `${down.name} is down: ${down.error ?? 'unreachable'}` };
  const any = b.evidence.metrics?.source ?? (b.evidence.traces ? 'jaeger' : 'none');
  return { ok: false, outcome: 'inconclusive', source: any, reason: `no data in the window: expected series ${series}` };
}

const empty: VersionCounts = { requests: 0, errors: 0, codes: {} };

function minSamplesShort(b: EvidenceBundle, counts: Record<string, number>): string | undefined {
  const short = Object.entries(counts).filter(([, n]) => n < b.minSamples);
  if (!short.length) return undefined;
  return `too few samples: ${short.map(([v, n]) => `${v} has ${n}`).join(', ')} (minSamples ${b.minSamples})`;
}

// ---------------------------------------------------------------- conservation

function conservation(b: EvidenceBundle, r: Body<'conservation'>): Partial {
  const hops = r.hops ?? [b.service.name];
  const fan = r.fanOut ?? {};
  const counts: Array<{ name: string; value: number; factor: number; source: string }> = [];
  const missing: string[] = [];
  if (b.evidence.load) counts.push({ name: 'load sent', value: b.evidence.load.sent, factor: 1, source: 'load' });
  const m = b.evidence.metrics;
  for (const hop of hops) {
    const byVersion = m?.hops[hop];
    if (m && !byVersion) missing.push(`istio_requests_total{reporter="destination",destination_service_name="${hop}"}`);
    if (byVersion) {
      const total = Object.values(byVersion).reduce((s, c) => s + c.requests, 0);
      counts.push({ name: `${hop} (${Object.keys(byVersion).sort().map((v) => `${v} ${byVersion[v].requests}`).join(' + ')})`, value: total, factor: fan[hop] ?? 1, source: m.source });
    } else if (!m && b.evidence.traces?.hops[hop] !== undefined) {
      counts.push({ name: `${hop} spans`, value: b.evidence.traces.hops[hop], factor: fan[hop] ?? 1, source: 'jaeger' });
    }
  }
  if (b.evidence.traces) counts.push({ name: 'root spans', value: b.evidence.traces.rootSpans, factor: 1, source: 'jaeger' });
  const observed = counts.map((c) => `${c.name} = ${c.value}${c.factor !== 1 ? ` (÷${c.factor})` : ''}`).join('; ') || 'no counts';
  const source = [...new Set(counts.map((c) => c.source))].join(' + ') || 'none';
  const tolText = r.tolerance === undefined ? '0' : String(r.tolerance);
  const expected = `all counts equal within ${tolText}${Object.keys(fan).length ? ` (fan-out ${JSON.stringify(fan)})` : ''}`;
  if (missing.length && !counts.some((c) => c.value > 0)) {
    const nd = noData(b, missing.join(', '));
    if (!nd.ok) return { outcome: nd.outcome, observed, expected, source: nd.source, reason: nd.reason };
  }
  if (counts.length < 2) {
    const nd = noData(b, 'two independent counts (load, metrics per hop, root spans)');
    return { outcome: nd.ok ? 'inconclusive' : nd.outcome, observed, expected, source, reason: nd.ok ? 'fewer than two counts to compare' : nd.reason };
  }
  const ref = counts[0];
  if (ref.value === 0) return { outcome: 'inconclusive', observed, expected, source, reason: `${ref.name} is 0: nothing to conserve in the window` };
  const tol = typeof r.tolerance === 'string' ? parsePercent(r.tolerance) * ref.value : (r.tolerance ?? 0);
  const off = counts.slice(1).map((c) => ({ ...c, diff: c.value / c.factor - ref.value })).filter((c) => Math.abs(c.diff) > tol);
  const details = { counts, tolerance: tol, missing };
  if (missing.length) {
    return { outcome: 'fail', observed, expected, source, reason: `series missing while ${ref.name} = ${ref.value}: ${missing.join(', ')}`, details };
  }
  if (!off.length) return { outcome: 'pass', observed, expected, source, reason: `every count matches ${ref.name} (${ref.value}) within ${+tol.toFixed(2)}`, details };
  const why = off.map((c) => `${c.name}: ${c.diff < 0 ? `${-c.diff} lost` : `${c.diff} extra`}`).join('; ');
  return { outcome: 'fail', observed, expected, source, reason: `counts disagree with ${ref.name} (${ref.value}): ${why}`, details };
}

// ---------------------------------------------------------------- split

export interface SplitCheck {
  outcome: Outcome;
  share: number;
  interval: { low: number; high: number };
  reason: string;
}

/** Is `weightPercent` inside the binomial interval of the candidate's observed share? */
export function checkSplit(counts: { stable: number; candidate: number }, weightPercent: number, confidence = 0.999): SplitCheck {
  const n = counts.stable + counts.candidate;
  const interval = wilsonInterval(counts.candidate, n, confidence);
  const share = n ? counts.candidate / n : NaN;
  const w = weightPercent / 100;
  if (!n) return { outcome: 'inconclusive', share, interval, reason: 'no requests observed' };
  const inside = w >= interval.low && w <= interval.high;
  const ci = `${pct(interval.low)}..${pct(interval.high)} at ${confidence * 100}% confidence`;
  return {
    outcome: inside ? 'pass' : 'fail',
    share,
    interval,
    reason: inside
      ? `configured ${weightPercent}% lies in the observed interval ${ci}`
      : `configured ${weightPercent}% lies outside the observed interval ${ci}: traffic does not follow the weights`,
  };
}

function split(b: EvidenceBundle, r: Body<'split'>): Partial {
  const conf = r.confidence ?? 0.999;
  const expected = b.candidateWeight === undefined ? 'candidate share = configured weight' : `candidate share = ${b.candidateWeight}% (binomial interval, ${conf * 100}%)`;
  const vc = versionCounts(b);
  if (!vc.ok) return { outcome: vc.outcome, observed: 'n/a', expected, source: vc.source, reason: vc.reason };
  const stable = (vc.value[b.service.stable] ?? empty).requests;
  const candidate = (vc.value[b.service.candidate] ?? empty).requests;
  const observed = `${b.service.candidate} ${candidate} of ${stable + candidate} (${pct(candidate / (stable + candidate || 1))})`;
  if (b.candidateWeight === undefined) return { outcome: 'inconclusive', observed, expected, source: vc.source, reason: 'the configured candidate weight is not known (pass --weight)' };
  const total = stable + candidate;
  if (total < b.minSamples) return { outcome: 'inconclusive', observed, expected, source: vc.source, reason: `too few samples: ${total} requests (minSamples ${b.minSamples})` };
  const c = checkSplit({ stable, candidate }, b.candidateWeight, conf);
  return { outcome: c.outcome, observed, expected, source: vc.source, reason: c.reason, details: { ...c } };
}

// ---------------------------------------------------------------- thresholds

function errorRate(b: EvidenceBundle, r: Body<'errorRate'>): Partial {
  const version = r.version === 'stable' ? b.service.stable : b.service.candidate;
  const max = parsePercent(r.max);
  const expected = `≤ ${r.max} 5xx at ${version}`;
  const vc = versionCounts(b);
  if (!vc.ok) return { outcome: vc.outcome, observed: 'n/a', expected, source: vc.source, reason: vc.reason };
  const c = vc.value[version] ?? empty;
  const rate = c.requests ? c.errors / c.requests : NaN;
  const observed = `${pct(rate)} (${c.errors} of ${c.requests})`;
  const short = minSamplesShort(b, { [version]: c.requests });
  if (short) return { outcome: 'inconclusive', observed, expected, source: vc.source, reason: short };
  if (rate <= max) return { outcome: 'pass', observed, expected, source: vc.source, reason: `error rate within the limit` };
  // Above the limit: fail only when the excess is more than noise (one-sided binomial test at 5%).
  const p = binomialUpperTail(c.errors, c.requests, max);
  if (p < 0.05) return { outcome: 'fail', observed, expected, source: vc.source, reason: `error rate above ${r.max} (p = ${pv(p)} that a ${r.max} rate gives ${c.errors} errors)`, details: { p } };
  return { outcome: 'inconclusive', observed, expected, source: vc.source, reason: `above ${r.max} but within noise at ${c.requests} requests (p = ${pv(p)}): more samples needed`, details: { p } };
}

/** Latency distribution of a version: Istio's histogram if present, else trace span durations. */
function latencyOf(b: EvidenceBundle, version: string): Lookup<{ histogram?: Histogram; samples?: number[]; n: number }> {
  const h = b.evidence.metrics?.latency[version];
  if (h && histogramTotal(h) > 0) return { ok: true, value: { histogram: h, n: histogramTotal(h) }, source: `${b.evidence.metrics!.source} istio_request_duration_milliseconds` };
  const s = b.evidence.traces?.durations[version];
  if (s && s.length) return { ok: true, value: { samples: s, n: s.length }, source: 'jaeger span durations' };
  return noData(b, `istio_request_duration_milliseconds_bucket{reporter="destination",destination_service_name="${b.service.name}",destination_version="${version}"}`);
}

function latency(b: EvidenceBundle, r: Body<'latency'>): Partial {
  const version = r.version === 'stable' ? b.service.stable : b.service.candidate;
  const max = parseDurationMs(r.max);
  const expected = `p${r.percentile} ≤ ${r.max} at ${version}`;
  const l = latencyOf(b, version);
  if (!l.ok) return { outcome: l.outcome, observed: 'n/a', expected, source: l.source, reason: l.reason };
  const q = r.percentile / 100;
  const value = l.value.histogram ? histogramQuantile(l.value.histogram, q) : quantile(l.value.samples!, q);
  const observed = `p${r.percentile} = ${ms(value)} over ${l.value.n} requests`;
  const short = minSamplesShort(b, { [version]: l.value.n });
  if (short) return { outcome: 'inconclusive', observed, expected, source: l.source, reason: short };
  return value <= max
    ? { outcome: 'pass', observed, expected, source: l.source, reason: 'latency within the limit' }
    : { outcome: 'fail', observed, expected, source: l.source, reason: `p${r.percentile} is ${ms(value - max)} above ${r.max}` };
}

interface Selector {
  route?: string;
  status?: number | string;
  userAgent?: string;
}

/** Requests in scope (matching the route) and matching every selector, from traces or the load's labels. */
function selectRequests(b: EvidenceBundle, s: Selector): Lookup<{ scope: number; matched: number }> {
  const statusOk = (code: string) => s.status === undefined || String(s.status) === code || (/^\dxx$/i.test(String(s.status)) && code[0] === String(s.status)[0]);
  const load = b.evidence.load;
  const isLabel = s.route !== undefined && load?.labels[s.route] !== undefined;
  const t = b.evidence.traces;
  if (t && !isLabel) {
    const routeOk = (url: string) => s.route === undefined || url === s.route || pathOf(url) === s.route || url.endsWith(s.route);
    let scope = 0;
    let matched = 0;
    for (const g of t.requests) {
      if (!routeOk(g.url)) continue;
      scope += g.count;
      if (statusOk(g.status) && (s.userAgent === undefined || g.userAgent === s.userAgent)) matched += g.count;
    }
    return { ok: true, value: { scope, matched }, source: 'jaeger root spans (http.url, http.status_code, user_agent)' };
  }
  if (load) {
    const stats = s.route !== undefined ? load.labels[s.route] : { count: load.sent, codes: load.codes, userAgents: load.userAgents, errors: load.errors };
    if (!stats) return { ok: false, outcome: 'inconclusive', source: 'load', reason: `no requests labelled "${s.route}" in the load results` };
    if (s.status !== undefined && s.userAgent !== undefined) {
      return { ok: false, outcome: 'inconclusive', source: 'load', reason: 'status and user agent together need trace evidence (the load summary counts them separately)' };
    }
    const matched =
      s.status !== undefined
        ? Object.entries(stats.codes).filter(([c]) => statusOk(c)).reduce((a, [, n]) => a + n, 0)
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
  [s.route !== undefined ? `route ${s.route}` : 'all requests', s.status !== undefined ? `status ${s.status}` : '', s.userAgent !== undefined ? `user-agent ${s.userAgent}` : '']
    .filter(Boolean)
    .join(', ');

function count(b: EvidenceBundle, r: Body<'count'>): Partial {
  const expected =
    r.expect === 'all' ? `every request of ${r.route ?? 'the window'} matches` : r.expect === 'none' ? 'no request matches' : `exactly ${r.expect} requests match`;
  const sel = selectRequests(b, r);
  if (!sel.ok) return { outcome: sel.outcome, observed: 'n/a', expected, source: sel.source, reason: sel.reason };
  const { scope, matched } = sel.value;
  const observed = `${matched} of ${scope} requests (${describeSelector(r)})`;
  if (scope === 0) return { outcome: 'inconclusive', observed, expected, source: sel.source, reason: `no requests for ${r.route ?? 'the window'}` };
  const ok = r.expect === 'all' ? matched === scope : r.expect === 'none' ? matched === 0 : matched === r.expect;
  return { outcome: ok ? 'pass' : 'fail', observed, expected, source: sel.source, reason: ok ? 'count as expected' : `count differs by ${r.expect === 'all' ? scope - matched : r.expect === 'none' ? matched : matched - r.expect}` };
}

function share(b: EvidenceBundle, r: Body<'share'>): Partial {
  const want = parsePercent(r.expect);
  const tol = parsePercent(r.tolerance);
  const expected = `${r.expect} ± ${r.tolerance} of ${r.route ?? 'requests'}`;
  const sel = selectRequests(b, r);
  if (!sel.ok) return { outcome: sel.outcome, observed: 'n/a', expected, source: sel.source, reason: sel.reason };
  const { scope, matched } = sel.value;
  const observed = `${pct(matched / (scope || 1))} (${matched} of ${scope}, ${describeSelector(r)})`;
  if (scope < b.minSamples) return { outcome: 'inconclusive', observed, expected, source: sel.source, reason: `too few samples: ${scope} requests (minSamples ${b.minSamples})` };
  const ok = Math.abs(matched / scope - want) <= tol + 1e-12;
  return { outcome: ok ? 'pass' : 'fail', observed, expected, source: sel.source, reason: ok ? 'share within tolerance' : `share is ${pct(Math.abs(matched / scope - want))} away from ${r.expect}` };
}

// ---------------------------------------------------------------- comparisons

function compareLatency(b: EvidenceBundle, r: Body<'compareLatency'>): Partial {
  const alpha = r.alpha ?? 0.01;
  const maxEffect = r.maxEffect ?? 0.1;
  const { stable, candidate } = b.service;
  const expected = `${candidate} not slower than ${stable} (Mann-Whitney, α ${alpha}, Cliff's δ ≤ ${maxEffect})`;
  const t = b.evidence.traces?.durations;
  let res;
  let source: string;
  if (t && (t[stable]?.length ?? 0) >= b.minSamples && (t[candidate]?.length ?? 0) >= b.minSamples) {
    res = mannWhitney(t[stable], t[candidate]);
    source = 'jaeger span durations';
  } else {
    const ls = latencyOf(b, stable);
    const lc = latencyOf(b, candidate);
    const bad = [ls, lc].find((l) => !l.ok);
    if (bad && !bad.ok) return { outcome: bad.outcome, observed: 'n/a', expected, source: bad.source, reason: bad.reason };
    if (!ls.ok || !lc.ok) throw new Error('unreachable');
    const short = minSamplesShort(b, { [stable]: ls.value.n, [candidate]: lc.value.n });
    if (short) return { outcome: 'inconclusive', observed: `${stable} ${ls.value.n}, ${candidate} ${lc.value.n} samples`, expected, source: ls.source, reason: short };
    source = ls.source;
    res =
      ls.value.histogram && lc.value.histogram
        ? mannWhitneyHistograms(ls.value.histogram, lc.value.histogram)
        : mannWhitney(ls.value.samples ?? [], lc.value.samples ?? []);
  }
  const observed = `Cliff's δ = ${res.cliffsDelta.toFixed(3)}, p = ${pv(res.pGreater)} (n ${res.nBaseline} vs ${res.nCandidate})`;
  const short = minSamplesShort(b, { [stable]: res.nBaseline, [candidate]: res.nCandidate });
  if (short) return { outcome: 'inconclusive', observed, expected, source, reason: short };
  const slower = res.pGreater < alpha && res.cliffsDelta > maxEffect;
  return {
    outcome: slower ? 'fail' : 'pass',
    observed,
    expected,
    source,
    reason: slower
      ? `${candidate} is slower than ${stable}: P(candidate > baseline) = ${pct(res.cles, 1)}`
      : res.pGreater < alpha
        ? `difference is significant but small (δ ${res.cliffsDelta.toFixed(3)} ≤ ${maxEffect})`
        : 'no significant slowdown',
    details: { ...res },
  };
}

function compareErrors(b: EvidenceBundle, r: Body<'compareErrors'>): Partial {
  const alpha = r.alpha ?? 0.01;
  const margin = r.maxIncrease ? parsePercent(r.maxIncrease) : 0;
  const { stable, candidate } = b.service;
  const expected = `${candidate} error rate ≤ ${stable}'s${margin ? ` + ${r.maxIncrease}` : ''} (one-sided, α ${alpha})`;
  const vc = versionCounts(b);
  if (!vc.ok) return { outcome: vc.outcome, observed: 'n/a', expected, source: vc.source, reason: vc.reason };
  const s = vc.value[stable] ?? empty;
  const c = vc.value[candidate] ?? empty;
  const t = compareProportions(s.errors, s.requests, c.errors, c.requests, margin);
  const observed = `${candidate} ${pct(t.candidateRate)} (${c.errors}/${c.requests}) vs ${stable} ${pct(t.baselineRate)} (${s.errors}/${s.requests}), p = ${pv(t.p)}`;
  const short = minSamplesShort(b, { [stable]: s.requests, [candidate]: c.requests });
  if (short) return { outcome: 'inconclusive', observed, expected, source: vc.source, reason: short };
  const worse = t.p < alpha;
  return {
    outcome: worse ? 'fail' : 'pass',
    observed,
    expected,
    source: vc.source,
    reason: worse ? `${candidate} has more errors than ${stable} (${t.method})` : `no significant increase (${t.method})`,
    details: { ...t },
  };
}

function l4(b: EvidenceBundle, r: Body<'l4'>): Partial & { skipped?: boolean } {
  const required = r.required ?? b.requireL4 ?? false;
  const evidence = b.evidence.l4;
  const result = evaluateL4Rule(r, evidence, { stable: b.service.stable, candidate: b.service.candidate });
  const down = b.sources.find((s) => s.name === 'clovisor' && s.status !== 'ok');
  if (result.outcome === 'inconclusive' && !evidence && down?.error) result.reason += ` (${down.error})`;
  // Missing L4 evidence blocks only a rule that requires it; evidence that arrived is always judged.
  return { observed: result.observed, expected: result.expected, source: result.source, outcome: result.outcome, reason: result.reason, skipped: result.outcome === 'inconclusive' && !evidence && !required };
}

/** A one-line reading of a rule, as shown in reports. */
export function describeRule(rule: GateRule): string {
  const [kind, body] = Object.entries(rule)[0] as [string, Record<string, unknown>];
  const parts = Object.entries(body ?? {}).map(([k, v]) => `${k} ${typeof v === 'object' ? JSON.stringify(v) : v}`);
  return parts.length ? `${kind} (${parts.join(', ')})` : kind;
}

type Evaluator = (b: EvidenceBundle, body: never) => Partial & { skipped?: boolean };
const EVALUATORS: Record<string, Evaluator> = { conservation, split, errorRate, latency, count, share, compareLatency, compareErrors, l4 };

export function evaluateRule(b: EvidenceBundle, rule: GateRule): RuleResult & { skipped?: boolean } {
  const [kind, body] = Object.entries(rule)[0];
  const evaluator = EVALUATORS[kind];
  if (!evaluator) return { rule: describeRule(rule), outcome: 'error', observed: 'n/a', expected: 'a known rule', source: 'spec', reason: `unknown rule "${kind}"` };
  return { rule: describeRule(rule), ...evaluator(b, (body ?? {}) as never) };
}
