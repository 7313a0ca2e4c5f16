/**
 * The gate: collect evidence for a window, judge it, and write the evidence bundle every time (pass, fail,
 * inconclusive or error), so any verdict can be replayed offline with `judgeBundle`.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { redactDeep } from '../util/redact.js';
import { join, resolve } from 'node:path';
import type { ReleaseSpec } from '../spec/types.js';
import { InvalidInputError } from '../util/errors.js';
import { collectEvidence } from './collect.js';
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

