/**
 * The sequential gate over an evidence bundle: the looks the bundle kept (taken while the window was open), or
 * — for a window judged once (a past window, traces only) — one look made of the window's final evidence.
 */
import { telemetryOfBundle } from '../metrics.js';
import type { Budget } from '../budget.js';
import type { EvidenceBundle, Look, LookCounts, VersionCounts } from '../types.js';
import { SequentialGate } from './gate.js';
import type { LookData } from './rules.js';

/** Candidate requests the mixtures are tuned for when the bundle has no plan. */
export const DEFAULT_PLANNED = 1000;

const lookCounts = (byVersion: Record<string, VersionCounts | LookCounts>): Record<string, LookCounts> =>
  Object.fromEntries(
    Object.entries(byVersion).map(([v, c]) => [v, { requests: c.requests, errors: c.errors }]),
  );

/** One look made of a bundle's final evidence: metric counts and histograms, else trace counts and durations. */
export function finalLook(b: EvidenceBundle): LookData | undefined {
  const m = b.evidence.metrics;
  const t = b.evidence.traces;
  const hop = m?.hops[b.service.name];
  const both = (d?: Record<string, number[]>) =>
    !!d && [b.service.stable, b.service.candidate].every((v) => (d[v]?.length ?? 0) > 0);
  if (hop && Object.keys(hop).length) {
    const look: LookData = { versions: lookCounts(hop) };
    if (m!.routes)
      look.routes = Object.fromEntries(Object.entries(m!.routes).map(([r, byV]) => [r, lookCounts(byV)]));
    // Span durations, when both versions have them, measure latency more finely than the histogram buckets.
    if (both(t?.durations)) look.durations = t!.durations;
    else look.latency = m!.latency;
    if (m!.routeLatency) look.routeLatency = m!.routeLatency;
    return look;
  }
  if (t && Object.keys(t.versions).length) {
    const look: LookData = { versions: lookCounts(t.versions), durations: t.durations };
    if (t.routes)
      look.routes = Object.fromEntries(Object.entries(t.routes).map(([r, byV]) => [r, lookCounts(byV)]));
    return look;
  }
  return undefined;
}

export interface SequenceRun {
  gate: SequentialGate;
  /** Epoch ms of each look. */
  times: number[];
  /** The looks read span durations (a window judged once on traces). */
  durations?: boolean;
}

/** The sequential gate a bundle's settings describe (the looks are fed by the caller). */
export function sequentialGateFor(
  b: Pick<
    EvidenceBundle,
    | 'service'
    | 'rules'
    | 'minSamples'
    | 'minRouteSamples'
    | 'minWindowMs'
    | 'plannedSamples'
    | 'candidateWeight'
    | 'evidence'
    | 'telemetry'
  >,
  budget: Budget,
): SequentialGate {
  const w = b.candidateWeight;
  return new SequentialGate({
    stable: b.service.stable,
    candidate: b.service.candidate,
    rules: b.rules,
    budget,
    beta: budget.beta,
    maxRoutes: budget.maxRoutes,
    minSamples: b.minSamples,
    minRouteSamples: b.minRouteSamples ?? b.minSamples,
    minWindowMs: b.minWindowMs ?? 0,
    plannedCandidate: b.plannedSamples ?? DEFAULT_PLANNED,
    stablePerCandidate: w !== undefined && w > 0 && w < 100 ? (100 - w) / w : 1,
    source: b.evidence.metrics?.source ?? 'jaeger',
    telemetry: telemetryOfBundle(b),
  });
}

export function runSequence(b: EvidenceBundle, budget: Budget): SequenceRun {
  const gate = sequentialGateFor(b, budget);
  const looks: Array<Look | (LookData & { at: number })> = b.sequence?.length ? b.sequence : [];
  if (!looks.length) {
    const last = finalLook(b);
    if (last) looks.push({ ...last, at: b.window.end });
  }
  const times: number[] = [];
  looks.forEach((l, i) => {
    times.push(l.at);
    gate.look(l, l.at - b.window.start, i === looks.length - 1);
  });
  return { gate, times, durations: looks.some((l) => 'durations' in l && l.durations !== undefined) };
}
