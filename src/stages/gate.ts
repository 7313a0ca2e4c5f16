/**
 * The gate's edges for the engine: a window is opened through the metrics provider of the spec and platform
 * (a scrape snapshot when metrics are scraped directly), closed by the gate or by a split observation.
 */
import { exitCodeForOutcome } from '../contract/index.js';
import {
  gateQueries,
  requestsByVersion,
  selectMetrics,
  type MetricsProvider,
  type MetricsSelection,
  type MetricsWindow,
} from '../metrics/index.js';
import { telemetryOf } from '../routers/index.js';
import type { Platform, PlatformEndpoints } from '../services/platform.js';
import type { ReleaseSpec } from '../spec/types.js';
import { checkSplit, runGate, type GateRun, type LoadRunResultLike, type Look } from '../validators/index.js';
import { metricEvidence } from '../validators/metrics.js';
import { lookOf } from '../validators/sequential/looks.js';
import { writeGateHtml } from '../reports/index.js';

/** Start of an observation window: its time, and a scrape snapshot when metrics are scraped directly. */
export type WindowStart = MetricsWindow;

/** The spec's metrics source and provider on a platform, reading its mesh's telemetry. */
export const metricsOf = (spec: ReleaseSpec, endpoints: PlatformEndpoints): MetricsSelection =>
  selectMetrics(spec.gate, endpoints, telemetryOf(spec), spec.service.name);
const providerOf = (spec: ReleaseSpec, endpoints: PlatformEndpoints): MetricsProvider | undefined =>
  metricsOf(spec, endpoints).provider;

export async function openWindow(spec: ReleaseSpec, endpoints: PlatformEndpoints): Promise<WindowStart> {
  const provider = providerOf(spec, endpoints);
  return provider ? provider.open() : { start: Date.now() };
}

/** Close a window as plain data the gate judges later, in this process or another (a direct scrape records what it counted). */
export async function closeWindow(
  spec: ReleaseSpec,
  endpoints: PlatformEndpoints,
  w: WindowStart,
): Promise<WindowStart> {
  const provider = providerOf(spec, endpoints);
  return provider ? provider.close(w, gateQueries(spec.service.name, telemetryOf(spec))) : w;
}

export interface GateStageOptions {
  window: WindowStart;
  end?: number;
  load?: LoadRunResultLike;
  candidateWeight?: number;
  evidenceDir?: string;
  /** Candidate requests the step's plan expects (the sequential tests are tuned for it). */
  plannedSamples?: number;
  /** The looks taken while the window was open, and its shortest length: the bundle keeps them for replay. */
  sequence?: Look[];
  minWindowMs?: number;
}

export async function runGateStage(
  platform: Platform,
  spec: ReleaseSpec,
  opts: GateStageOptions,
): Promise<GateRun & { exitCode: number; reportPath?: string }> {
  const run = await runGate(spec, {
    window: { start: opts.window.start, end: opts.end ?? Date.now() },
    endpoints: platform.endpoints(),
    telemetry: telemetryOf(spec),
    load: opts.load,
    candidateWeight: opts.candidateWeight,
    evidenceDir: opts.evidenceDir,
    metricsWindow: opts.window,
    plannedSamples: opts.plannedSamples,
    sequence: opts.sequence,
    minWindowMs: opts.minWindowMs,
  });
  const exitCode = exitCodeForOutcome(run.verdict.outcome);
  // The gate report beside the bundle (same name, .html); a report that cannot be written never changes the verdict.
  let reportPath: string | undefined;
  try {
    reportPath = writeGateHtml(run.bundle, run.verdict, run.bundlePath);
  } catch {
    reportPath = undefined;
  }
  return { ...run, exitCode, reportPath };
}

/** Whether requests per version can be observed at all: a Prometheus API, or endpoints to scrape. */
export function canObserveSplit(spec: ReleaseSpec, endpoints: PlatformEndpoints): boolean {
  return providerOf(spec, endpoints) !== undefined;
}

/**
 * Requests per version the service received in a window until now. `settle: false` reads what the
 * metrics backend has now (a window still growing); by default it waits for a scrape past now.
 */
export async function observeSplit(
  spec: ReleaseSpec,
  endpoints: PlatformEndpoints,
  w: WindowStart,
  opts: { settle?: boolean } = {},
): Promise<{ stable: number; candidate: number }> {
  const provider = providerOf(spec, endpoints);
  if (!provider) return { stable: 0, candidate: 0 };
  const byVersion = await requestsByVersion(provider, w, Date.now(), spec.service.name, telemetryOf(spec), {
    settle: opts.settle,
  });
  return { stable: byVersion[spec.service.stable] ?? 0, candidate: byVersion[spec.service.candidate] ?? 0 };
}

/** One look at the gated service while its window is open: counts and histograms since the window opened. */
export async function takeLook(
  spec: ReleaseSpec,
  endpoints: PlatformEndpoints,
  w: WindowStart,
): Promise<Look | undefined> {
  const provider = providerOf(spec, endpoints);
  if (!provider) return undefined;
  const inc = await provider.increases(w, Date.now(), gateQueries(spec.service.name, telemetryOf(spec)), {
    settle: false,
  });
  const evidence = metricEvidence(provider.source, inc, spec.service.name, telemetryOf(spec));
  return lookOf(evidence, spec.service.name, Date.now());
}

/** How often the window is looked at: the metrics backend's scrape interval, or every second for a direct scrape. */
export function lookCadenceMs(spec: ReleaseSpec, endpoints: PlatformEndpoints): number {
  return providerOf(spec, endpoints)?.scrapeIntervalMs ?? 1000;
}

export { checkSplit };
