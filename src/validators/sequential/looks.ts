/**
 * Looks: what the gate keeps of each metric snapshot while a window is open (the gated service's counts per
 * version and route, and its latency histograms), and the settings a sequential gate is built with — the same
 * for the engine's live gate and for the bundle the window ends in, so the replay makes the same decisions.
 */
import type { MeshTelemetry } from '../../metrics/index.js';
import type { ReleaseSpec } from '../../spec/types.js';
import { parsePercent } from '../../util/units.js';
import { DEFAULT_ALPHA, DEFAULT_BETA, DEFAULT_MAX_ROUTES, allocateBudget, rateOf } from '../budget.js';
import { DEFAULT_MIN_SAMPLES } from '../sample-size.js';
import type { EvidenceBundle, Look, LookCounts, MetricEvidence, VersionCounts } from '../types.js';
import type { SequentialGate } from './gate.js';
import { sequentialGateFor } from './judge.js';

const counts = (byVersion: Record<string, VersionCounts>): Record<string, LookCounts> =>
  Object.fromEntries(
    Object.entries(byVersion).map(([v, c]) => [v, { requests: c.requests, errors: c.errors }]),
  );

/** A look at the gated service from metric evidence counted since the window opened. */
export function lookOf(m: MetricEvidence, service: string, at: number): Look {
  const look: Look = { at, versions: counts(m.hops[service] ?? {}) };
  if (m.routes && Object.keys(m.routes).length)
    look.routes = Object.fromEntries(Object.entries(m.routes).map(([r, byV]) => [r, counts(byV)]));
  if (Object.keys(m.latency).length) look.latency = m.latency;
  if (m.routeLatency && Object.keys(m.routeLatency).length) look.routeLatency = m.routeLatency;
  return look;
}

/** The bundle fields a spec sets for the gate (the budget, the pass error, routes, sampling, the minimum). */
export function gateSettings(
  spec: ReleaseSpec,
): Pick<
  EvidenceBundle,
  | 'minSamples'
  | 'traceSampling'
  | 'rules'
  | 'alpha'
  | 'beta'
  | 'alphaShare'
  | 'alphaNote'
  | 'maxRoutes'
  | 'minRouteSamples'
> {
  const g = spec.gate;
  const w = g?.windowShare;
  return {
    minSamples: g?.minSamples ?? DEFAULT_MIN_SAMPLES,
    traceSampling: g?.traceSampling === undefined ? undefined : parsePercent(g.traceSampling),
    rules: g?.rules ?? [],
    alpha: rateOf(g?.alpha, DEFAULT_ALPHA),
    beta: rateOf(g?.beta, DEFAULT_BETA),
    ...(w && w.share < 1 ? { alphaShare: w.share, alphaNote: w.note } : {}),
    maxRoutes: g?.maxRoutes ?? DEFAULT_MAX_ROUTES,
    minRouteSamples: g?.minRouteSamples,
  };
}

/** The sequential gate a window of this spec is judged with (what judgeBundle will build from its bundle). */
export function sequentialGateForSpec(
  spec: ReleaseSpec,
  o: {
    candidateWeight?: number;
    plannedSamples?: number;
    minWindowMs: number;
    source: string;
    telemetry: MeshTelemetry;
  },
): SequentialGate {
  const settings = gateSettings(spec);
  const budget = allocateBudget({
    alpha: settings.alpha,
    beta: settings.beta,
    rules: settings.rules,
    maxRoutes: settings.maxRoutes,
    share: settings.alphaShare,
  });
  return sequentialGateFor(
    {
      ...settings,
      service: {
        name: spec.service.name,
        namespace: spec.service.namespace,
        stable: spec.service.stable,
        candidate: spec.service.candidate,
      },
      minWindowMs: o.minWindowMs,
      plannedSamples: o.plannedSamples,
      candidateWeight: o.candidateWeight,
      telemetry: o.telemetry,
      evidence: {
        metrics: {
          source: o.source === 'scrape' ? 'scrape' : 'prometheus',
          hops: {},
          latency: {},
          missing: [],
        },
      },
    },
    budget,
  );
}
