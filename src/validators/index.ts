/**
 * The gate: collect evidence for a window, judge it, and write the evidence bundle every time (pass, fail,
 * inconclusive or error), so any verdict can be replayed offline with `judgeBundle`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { redactDeep } from '../util/redact.js';
import { join, resolve } from 'node:path';
import type { ReleaseSpec } from '../spec/types.js';
import { collectEvidence } from './collect.js';
import type { EvidenceBundle, GateContext, GateRun } from './types.js';
import { judgeBundle } from './verdict.js';

export { judgeBundle, verdictExitCode } from './verdict.js';
export { checkSplit, describeRule, evaluateRule } from './rules.js';
export { collectEvidence, loadEvidence } from './collect.js';
export { explainLines, renderJUnit, renderMarkdown, renderText } from './report.js';
export {
  allocateBudget,
  describeBudget,
  splitConfidence,
  windowShare,
  type Budget,
  type WindowShare,
} from './budget.js';
export { preflight } from './preflight.js';
export {
  plannedSamples,
  describePlan,
  DEFAULT_MIN_SAMPLES,
  type SamplePlan,
  type SamplePlanOptions,
} from './sample-size.js';
export { readBundle } from './bundle.js';
export type * from './types.js';

/** Bundles hold every trace duration of a window: large, but bounded. */

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

export async function runGate(spec: ReleaseSpec, ctx: GateContext): Promise<GateRun> {
  const bundle = await collectEvidence(spec, ctx);
  const verdict = judgeBundle(bundle);
  bundle.verdict = verdict;
  const bundlePath = writeBundle(bundle, ctx.evidenceDir ?? defaultEvidenceDir());
  return { verdict, bundle, bundlePath };
}
