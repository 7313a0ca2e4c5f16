/**
 * The gate stage and the observed-traffic checks of the traffic engineer's side: a window is opened
 * (a scrape snapshot when there is no Prometheus), and closed by the gate or by a split observation.
 */
import { exitCodeForOutcome } from '../contract/index.js';
import { scrapeTargets, counterDeltas, type ScrapeSnapshot } from '../services/scrape.js';
import type { Platform, PlatformEndpoints } from '../services/platform.js';
import type { ReleaseSpec } from '../spec/types.js';
import { checkSplit, observedSplit, runGate, type GateRun } from '../validators/index.js';
import { metricEvidence } from '../validators/metrics.js';
import type { LoadRunResult } from '../jmeter/types.js';

const KEEP = (n: string) => n === 'istio_requests_total' || n === 'istio_request_duration_milliseconds';

/** Start of an observation window: its time, and a scrape snapshot when metrics are scraped directly. */
export interface WindowStart {
  start: number;
  baseline?: ScrapeSnapshot;
}

export async function openWindow(spec: ReleaseSpec, endpoints: PlatformEndpoints): Promise<WindowStart> {
  const start = Date.now();
  const targets = spec.gate?.metrics?.targets ?? endpoints.scrapeTargets ?? [];
  const scraped = (spec.gate?.metrics?.source ?? (endpoints.prometheus ? 'prometheus' : 'scrape')) === 'scrape' && targets.length;
  return { start, baseline: scraped ? await scrapeTargets(targets, { keep: KEEP }) : undefined };
}

export interface GateStageOptions {
  window: WindowStart;
  end?: number;
  load?: LoadRunResult;
  candidateWeight?: number;
  evidenceDir?: string;
}

export async function runGateStage(platform: Platform, spec: ReleaseSpec, opts: GateStageOptions): Promise<GateRun & { exitCode: number }> {
  const run = await runGate(spec, {
    window: { start: opts.window.start, end: opts.end ?? Date.now() },
    endpoints: platform.endpoints(),
    load: opts.load,
    candidateWeight: opts.candidateWeight,
    evidenceDir: opts.evidenceDir,
    scrapeBaseline: opts.window.baseline,
  });
  const exitCode = exitCodeForOutcome(run.verdict.outcome);
  return { ...run, exitCode };
}

/** Whether requests per version can be observed at all: a Prometheus API, or endpoints to scrape. */
export function canObserveSplit(spec: ReleaseSpec, endpoints: PlatformEndpoints): boolean {
  const source = spec.gate?.metrics?.source ?? (endpoints.prometheus ? 'prometheus' : 'scrape');
  return source === 'prometheus' ? Boolean(spec.gate?.metrics?.url ?? endpoints.prometheus) : (spec.gate?.metrics?.targets ?? endpoints.scrapeTargets ?? []).length > 0;
}

/** Requests per version the service received in a window (Prometheus, or the scrape deltas). */
export async function observeSplit(spec: ReleaseSpec, endpoints: PlatformEndpoints, w: WindowStart): Promise<{ stable: number; candidate: number }> {
  const versions = { stable: spec.service.stable, candidate: spec.service.candidate };
  if (!w.baseline) return observedSplit(endpoints, { start: w.start, end: Date.now() }, spec.service.name, versions);
  const after = await scrapeTargets(w.baseline.targets, { keep: KEEP });
  const hop = metricEvidence('scrape', counterDeltas(w.baseline, after), spec.service.name).hops[spec.service.name] ?? {};
  return { stable: hop[versions.stable]?.requests ?? 0, candidate: hop[versions.candidate]?.requests ?? 0 };
}

export { checkSplit };
