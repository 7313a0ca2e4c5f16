/**
 * Conservation on production traffic. Three kinds of count, each compared the way it can be:
 * - the load's own requests, told apart from user traffic by the `clover_cd_load` label (the load engines'
 *   `x-clover-cd-load: <run id>` header, surfaced by Istio Telemetry tagOverrides): exact — load sent = tagged
 *   requests at every hop (÷ fan-out), within the rule's tolerance (default 0) when the run lay inside the window;
 * - all traffic hop to hop: Istio counts a request when it completes, so requests in flight at the window's
 *   edges are counted at one hop and not yet (or already) at the next. The allowance is what was in flight
 *   (Little's law: concurrency = arrival rate × the outer hop's mean latency) at both edges, plus 3σ of
 *   Poisson noise on it, added to the rule's tolerance;
 * - root spans: the tracer keeps a sample. Below 100% (spec gate.traceSampling, or the root spans' own
 *   sampler.type / sampler.param tags) they are scaled by 1/rate with a binomial allowance, and never exact;
 *   a sampler whose rate is unknown (ratelimiting, remote, or no tags at all) is left out with the rate the
 *   counts imply shown — unless the root spans match the metric count as they are (nothing sampled away).
 *   A trace store that says it dropped spans of the window (Jaeger's `errors`) is left out the same way.
 * Every source covers the interval the metric snapshots were taken at (metrics.interval); what stays uncertain
 * at its edges (how long a snapshot took, the spread of scrape times) × the arrival rate is added to the allowance.
 * Bundles written before tags and hop latencies existed are judged as before (no allowance to derive).
 */
import { parsePercent } from '../util/units.js';
import { serverSeries, telemetryOfBundle } from './metrics.js';
import { noData, type Body, type Partial } from './rules-common.js';
import type { EvidenceBundle, VersionCounts } from './types.js';

interface Count {
  name: string;
  value: number;
  /** What it is compared with, and how far off it may be. */
  reference: number;
  referenceName: string;
  tolerance: number;
  source: string;
  /** Scaled (sampled traces): shown as an estimate. */
  estimate?: boolean;
}

const sum = (byVersion: Record<string, VersionCounts>) =>
  Object.values(byVersion).reduce((s, c) => s + c.requests, 0);
const list = (byVersion: Record<string, VersionCounts>) =>
  Object.keys(byVersion)
    .sort()
    .map((v) => `${v} ${byVersion[v].requests}`)
    .join(' + ');

/**
 * Share of requests traced, or why it is not known. `untagged`: no spec setting and no sampler tags — the rate
 * is unknown, but the sandbox and 100% tracers look exactly like that, so the counts decide (see conservation).
 */
export function traceSamplingRate(b: EvidenceBundle): { rate?: number; how: string; untagged?: boolean } {
  if (b.traceSampling !== undefined)
    return { rate: b.traceSampling, how: `gate.traceSampling ${+(b.traceSampling * 100).toFixed(3)}%` };
  const s = b.evidence.traces?.sampling;
  if (!s) return { rate: 1, how: 'no sampler tags on root spans and no gate.traceSampling', untagged: true };
  const tag = `sampler.type=${s.type}, sampler.param=${s.param}`;
  if (s.type === 'probabilistic') return { rate: s.param, how: tag };
  if (s.type === 'const') return { rate: s.param ? 1 : 0, how: tag };
  return { how: `${tag}: the share of requests kept is not known` };
}

/**
 * Requests in flight at the two window edges for a hop with `count` requests, plus 3σ of noise. With
 * Prometheus, hops on different pods are scraped at different phases of the interval, so each hop's count
 * covers a window shifted by up to one interval: under steady traffic the shifts at both edges cancel but
 * for Poisson noise over 2 × rate × interval, which is added to the noise term.
 */
function edgeAllowance(b: EvidenceBundle, hop: string, count: number, spanMs?: number): number {
  const latencyMs = Math.max(b.evidence.metrics?.hopLatencyMs?.[hop] ?? 0, spanMs ?? 0);
  const seconds = (b.window.end - b.window.start) / 1000;
  if (!latencyMs || seconds <= 0) return 0;
  const rate = count / seconds;
  const inFlight = 2 * rate * (latencyMs / 1000);
  const phase = 2 * rate * ((b.evidence.metrics?.scrapeIntervalMs ?? 0) / 1000);
  return Math.ceil(inFlight + skewAllowance(b, rate) + 3 * Math.sqrt(inFlight + phase));
}

/** Requests that may fall on either side of an edge because the snapshot's instant is only known within a skew. */
function skewAllowance(b: EvidenceBundle, rate: number): number {
  const skewMs = b.evidence.metrics?.interval?.uncertaintyMs ?? 0;
  return 2 * rate * (skewMs / 1000);
}

export function conservation(b: EvidenceBundle, r: Body<'conservation'>): Partial {
  const hops = r.hops ?? [b.service.name];
  const fan = r.fanOut ?? {};
  const userTol = (ref: number) =>
    typeof r.tolerance === 'string' ? parsePercent(r.tolerance) * ref : (r.tolerance ?? 0);
  const m = b.evidence.metrics;
  const t = b.evidence.traces;
  const load = b.evidence.load;
  const telemetry = telemetryOfBundle(b);
  const counts: Count[] = [];
  const notes: string[] = [];
  const missing: string[] = [];
  const shown: string[] = [];

  // All traffic per hop (metrics, or span counts without metrics).
  const hopTotals: Array<{ hop: string; value: number; source: string }> = [];
  for (const hop of hops) {
    const byVersion = m?.hops[hop];
    if (m && !byVersion) missing.push(serverSeries(telemetry, telemetry.requests, { service: hop }));
    if (byVersion) hopTotals.push({ hop, value: sum(byVersion) / (fan[hop] ?? 1), source: m.source });
    else if (!m && t?.hops[hop] !== undefined)
      hopTotals.push({ hop, value: t.hops[hop] / (fan[hop] ?? 1), source: 'jaeger' });
  }
  const fanText = (hop: string) => (fan[hop] && fan[hop] !== 1 ? ` (÷${fan[hop]})` : '');
  if (load) shown.push(`load sent = ${load.sent}`);
  for (const h of hopTotals)
    shown.push(
      `${h.hop} (${m?.hops[h.hop] ? list(m.hops[h.hop]) : 'spans'}) = ${h.value * (fan[h.hop] ?? 1)}${fanText(h.hop)}`,
    );

  // 1. The load's own requests: exact.
  const tagged = m?.tagged && load?.runId ? m.tagged : undefined;
  const inside =
    !load?.startedAt ||
    (load.startedAt >= b.window.start && (load.endedAt ?? load.startedAt) <= b.window.end);
  if (load && tagged) {
    for (const hop of hops) {
      const byVersion = tagged[hop] ?? {};
      const value = sum(byVersion) / (fan[hop] ?? 1);
      shown.push(
        `${hop} tagged ${load.runId} (${list(byVersion) || 'none'}) = ${value * (fan[hop] ?? 1)}${fanText(hop)}`,
      );
      counts.push({
        name: `${hop} tagged`,
        value,
        reference: load.sent,
        referenceName: 'load sent',
        tolerance: userTol(load.sent) + (inside ? 0 : edgeAllowance(b, hop, value)),
        source: m!.source,
      });
    }
    if (!inside)
      notes.push('the load ran across the window edges: tagged counts get the in-flight allowance');
  } else if (load && m && !tagged && load.runId) {
    notes.push(
      `no ${telemetry.labels.load} label on the metrics: load requests cannot be told apart from user traffic`,
    );
  }

  // 2. All traffic, hop to hop (and the load, when its requests are the only ones that can be counted).
  const first = hopTotals[0];
  if (first) {
    const allowance = edgeAllowance(b, first.hop, first.value);
    if (load && !tagged) {
      counts.push({
        name: `${first.hop}`,
        value: first.value,
        reference: load.sent,
        referenceName: 'load sent',
        tolerance: userTol(load.sent) + allowance,
        source: first.source,
      });
    }
    for (const h of hopTotals.slice(1)) {
      counts.push({
        name: h.hop,
        value: h.value,
        reference: first.value,
        referenceName: first.hop,
        tolerance: userTol(first.value) + allowance,
        source: h.source,
      });
    }
    const skew = m?.interval?.uncertaintyMs;
    if (allowance)
      notes.push(
        `in flight at the window edges: ±${allowance} (${first.hop} ${+(m?.hopLatencyMs?.[first.hop] ?? 0).toFixed(1)} ms mean latency${skew ? `; snapshot instants known to ±${+skew.toFixed(1)} ms` : ''})`,
      );
  }

  // 3. Root spans: a sample unless the sampler keeps everything.
  if (t) {
    const s = traceSamplingRate(b);
    const useTagged = t.taggedRootSpans !== undefined && load?.runId;
    const roots = useTagged ? t.taggedRootSpans! : t.rootSpans;
    const ref = useTagged
      ? { value: load!.sent, name: 'load sent', tol: userTol(load!.sent) }
      : first
        ? {
            value: first.value,
            name: first.hop,
            // Root spans are counted by their start, the hop when it completes: the root spans' own length
            // (ingress to response) is what can fall on either side of an edge.
            tol: userTol(first.value) + edgeAllowance(b, first.hop, first.value, t.rootMeanMs),
          }
        : load
          ? { value: load.sent, name: 'load sent', tol: userTol(load.sent) }
          : undefined;
    const label = useTagged ? `root spans tagged ${load!.runId}` : 'root spans';
    if (!useTagged && first && t.rootMeanMs !== undefined) {
      const rootEdge = edgeAllowance(b, first.hop, first.value, t.rootMeanMs);
      if (rootEdge > edgeAllowance(b, first.hop, first.value))
        notes.push(`root spans ±${rootEdge} in flight (${+t.rootMeanMs.toFixed(1)} ms mean, start to end)`);
    }
    // An unknown sampler beside metric counts: root spans that match them as they are were all kept; fewer are
    // a sample of unknown size, not a loss (more than the requests no sampling explains: they are still compared).
    const unknownShare =
      s.untagged && first && ref && roots < ref.value - ref.tol - 1e-9 ? roots / ref.value : undefined;
    if (t.incomplete) {
      shown.push(`${label} = ${roots} (not used)`);
      notes.push(`root spans left out: the trace store says the window is incomplete (${t.incomplete})`);
    } else if (unknownShare !== undefined) {
      shown.push(`${label} = ${roots} (not used: ~${+(unknownShare * 100).toPrecision(3)}% of ${ref!.name})`);
      notes.push(
        `root spans left out: the trace sampling rate is unknown (${s.how}) and the spans are ~${+(unknownShare * 100).toPrecision(3)}% of the requests — set gate.traceSampling (Istio's default is 1%) to count them`,
      );
    } else if (s.rate === undefined || s.rate <= 0) {
      shown.push(`${label} = ${roots} (not used)`);
      notes.push(`root spans left out: ${s.how}`);
    } else if (ref) {
      if (s.rate < 1) {
        const spread = Math.ceil(4 * Math.sqrt((ref.value * (1 - s.rate)) / s.rate));
        shown.push(
          `${label} = ${roots} (÷ ${+(s.rate * 100).toFixed(3)}% ≈ ${Math.round(roots / s.rate)} ± ${spread})`,
        );
        notes.push(`traces are sampled (${s.how}): root spans are an estimate, not an exact count`);
        counts.push({
          name: label,
          value: roots / s.rate,
          reference: ref.value,
          referenceName: ref.name,
          tolerance: ref.tol + spread,
          source: 'jaeger',
          estimate: true,
        });
      } else {
        shown.push(`${label} = ${roots}`);
        counts.push({
          name: label,
          value: roots,
          reference: ref.value,
          referenceName: ref.name,
          tolerance: ref.tol,
          source: 'jaeger',
        });
        if (roots < ref.value / 2)
          notes.push('far fewer root spans than requests: if the tracer samples, set gate.traceSampling');
      }
    } else shown.push(`${label} = ${roots}`);
  }

  const observed = shown.join('; ') || 'no counts';
  const source =
    [
      ...new Set([...(load ? ['load'] : []), ...hopTotals.map((h) => h.source), ...(t ? ['jaeger'] : [])]),
    ].join(' + ') || 'none';
  const expected = `load's requests equal at every hop${r.tolerance ? ` within ${r.tolerance}` : ''}; hops balance within what was in flight at the window edges${Object.keys(fan).length ? ` (fan-out ${JSON.stringify(fan)})` : ''}`;
  const noteText = notes.length ? ` [${notes.join('; ')}]` : '';
  const refTotal = load?.sent ?? first?.value ?? 0;
  if (missing.length && !hopTotals.some((h) => h.value > 0)) {
    const nd = noData(b, missing.join(', '));
    if (!nd.ok)
      return { outcome: nd.outcome, observed, expected, source: nd.source, reason: nd.reason + noteText };
  }
  if (!counts.length) {
    const nd = noData(b, 'two independent counts (load, metrics per hop, root spans)');
    return {
      outcome: nd.ok ? 'inconclusive' : nd.outcome,
      observed,
      expected,
      source,
      reason: (nd.ok ? 'fewer than two counts to compare' : nd.reason) + noteText,
    };
  }
  if (refTotal === 0)
    return {
      outcome: 'inconclusive',
      observed,
      expected,
      source,
      reason: `nothing to conserve in the window${noteText}`,
    };
  const details = { counts, missing, notes };
  if (missing.length)
    return {
      outcome: 'fail',
      observed,
      expected,
      source,
      reason: `series missing while ${load ? `load sent = ${load.sent}` : 'traffic flowed'}: ${missing.join(', ')}${noteText}`,
      details,
    };
  const off = counts
    .map((c) => ({ ...c, diff: c.value - c.reference }))
    .filter((c) => Math.abs(c.diff) > c.tolerance + 1e-9);
  if (!off.length)
    return {
      outcome: 'pass',
      observed,
      expected,
      source,
      reason: `every count matches within its allowance (${counts.map((c) => `${c.name} ±${+c.tolerance.toFixed(1)}`).join(', ')})${noteText}`,
      details,
    };
  const why = off
    .map(
      (c) =>
        `${c.name} vs ${c.referenceName} (${c.reference}): ${c.diff < 0 ? `${+(-c.diff).toFixed(1)} lost` : `${+c.diff.toFixed(1)} extra`}${c.tolerance ? ` (allowance ${+c.tolerance.toFixed(1)})` : ''}`,
    )
    .join('; ');
  return {
    outcome: 'fail',
    observed,
    expected,
    source,
    reason: `counts disagree: ${why}${noteText}`,
    details,
  };
}
