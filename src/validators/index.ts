/**
 * The gate: collect evidence for a window, judge it, and write the evidence bundle every time (pass, fail,
 * inconclusive or error), so any verdict can be replayed offline with `judgeBundle`.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { redactDeep } from '../util/redact.js';
import { join, resolve } from 'node:path';
import type { PlatformEndpoints } from '../services/platform.js';
import { createPrometheusClient } from '../services/prometheus.js';
import type { ReleaseSpec } from '../spec/types.js';
import { InvalidInputError } from '../util/errors.js';
import { collectEvidence, increases } from './collect.js';
import { metricEvidence } from './metrics.js';
import type { EvidenceBundle, GateContext, GateRun } from './types.js';
import { judgeBundle } from './verdict.js';

export { judgeBundle, verdictExitCode } from './verdict.js';
export { checkSplit, describeRule, evaluateRule } from './rules.js';
export { collectEvidence, loadEvidence } from './collect.js';
export { renderJUnit, renderMarkdown, renderText } from './report.js';
export { preflight } from './preflight.js';
export { plannedSamples, describePlan, DEFAULT_MIN_SAMPLES, type SamplePlan, type SamplePlanOptions } from './sample-size.js';
export type * from './types.js';

export function defaultEvidenceDir(): string {
  return join(process.env.CLOVER_CD_STATE_DIR ?? '.clover-cd', 'evidence');
}

export function writeBundle(bundle: EvidenceBundle, dir: string): string {
  mkdirSync(dir, { recursive: true });
  const stamp = bundle.createdAt.replace(/[:.]/g, '-');
  const path = resolve(dir, `${bundle.release}-${stamp}.json`);
  // Sources carry URLs and error messages: userinfo and registered secrets are masked, the JSON stays valid.
  writeFileSync(path, JSON.stringify(redactDeep(bundle), null, 1) + '\n');
  return path;
}

/** Read a bundle for replay; anything that is not one is bad input (exit 2). */
export function readBundle(file: string): EvidenceBundle {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new InvalidInputError(`cannot read evidence bundle ${file}: ${(err as Error).message}`, [{ file, path: '', message: 'expected a JSON evidence bundle written by clover-cd gate' }]);
  }
  const b = doc as Partial<EvidenceBundle>;
  const problems = [];
  if (b?.kind !== 'clover-cd/evidence') problems.push({ file, path: 'kind', message: `expected "clover-cd/evidence", found ${JSON.stringify(b?.kind)}` });
  if (b?.version !== 1) problems.push({ file, path: 'version', message: `expected 1, found ${JSON.stringify(b?.version)}` });
  for (const k of ['service', 'window', 'rules', 'sources', 'evidence'] as const) if (b?.[k] === undefined) problems.push({ file, path: k, message: 'required field is missing' });
  if (problems.length) throw new InvalidInputError(`${file} is not a clover-cd evidence bundle`, problems);
  return b as EvidenceBundle;
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
