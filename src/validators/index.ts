/**
 * The gate: collect evidence for a window, judge it, and write the evidence bundle every time (pass, fail,
 * inconclusive or error), so any verdict can be replayed offline with `judgeBundle`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { PlatformEndpoints } from '../services/platform.js';
import { createPrometheusClient } from '../services/prometheus.js';
import type { ReleaseSpec } from '../spec/types.js';
import { MB, readDocument } from '../spec/input.js';
import { InvalidInputError } from '../util/errors.js';
import { bundleProblems } from './bundle-schema.js';
import { collectEvidence, increases } from './collect.js';
import { metricEvidence } from './metrics.js';
import type { EvidenceBundle, GateContext, GateRun } from './types.js';
import { judgeBundle } from './verdict.js';

export { judgeBundle, verdictExitCode } from './verdict.js';
export { checkSplit, describeRule, evaluateRule } from './rules.js';
export { collectEvidence, loadEvidence } from './collect.js';
export { renderJUnit, renderMarkdown, renderText } from './report.js';
export { preflight } from './preflight.js';
export type * from './types.js';

/** Bundles hold every trace duration of a window: large, but bounded. */
const MAX_BUNDLE_BYTES = 256 * MB;
const BUNDLE_LIMITS = { maxDepth: 16, maxValues: 20_000_000, maxString: 1_000_000 };

export function defaultEvidenceDir(): string {
  return join(process.env.CLOVER_CD_STATE_DIR ?? '.clover-cd', 'evidence');
}

export function writeBundle(bundle: EvidenceBundle, dir: string): string {
  mkdirSync(dir, { recursive: true });
  const stamp = bundle.createdAt.replace(/[:.]/g, '-');
  const path = resolve(dir, `${bundle.release}-${stamp}.json`);
  writeFileSync(path, JSON.stringify(bundle, null, 1) + '\n');
  return path;
}

/** Read a bundle for replay: bounded, parsed and checked against its schema; anything else is exit 2. */
export function readBundle(file: string): EvidenceBundle {
  const doc = readDocument(file, { maxBytes: MAX_BUNDLE_BYTES, what: 'a JSON evidence bundle written by clover-cd gate', json: true, structure: BUNDLE_LIMITS });
  const problems = bundleProblems(doc, file);
  if (problems.length) throw new InvalidInputError(`${file} is not a valid clover-cd evidence bundle (${problems.length} problem${problems.length > 1 ? 's' : ''})`, problems);
  return doc as EvidenceBundle;
}

export async function runGate(spec: ReleaseSpec, ctx: GateContext): Promise<GateRun> {
  const bundle = await collectEvidence(spec, ctx);
  const verdict = judgeBundle(bundle);
  bundle.verdict = verdict;
  const bundlePath = writeBundle(bundle, ctx.evidenceDir ?? defaultEvidenceDir());
  return { verdict, bundle, bundlePath };
}

/**
 * Observed requests per version at `service` over a window, from Prometheus (or, without one, nothing:
 * callers treat zero as "no evidence"). For verifying a shift or a rollback by observed traffic.
 */
export async function observedSplit(
  endpoints: PlatformEndpoints,
  window: { start: number; end: number },
  service: string,
  versions: { stable: string; candidate: string },
): Promise<{ stable: number; candidate: number }> {
  if (!endpoints.prometheus) return { stable: 0, candidate: 0 };
  const prom = createPrometheusClient(endpoints.prometheus);
  const q = `sum by (destination_service_name, destination_workload, destination_version, response_code) (istio_requests_total{reporter="destination",destination_service_name="${service}"})`;
  const inc = increases(await prom.instant(q, window.start), await prom.instant(q, window.end), 'istio_requests_total');
  const hop = metricEvidence('prometheus', inc, service).hops[service] ?? {};
  return { stable: hop[versions.stable]?.requests ?? 0, candidate: hop[versions.candidate]?.requests ?? 0 };
}
