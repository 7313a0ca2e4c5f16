/**
 * Reading an evidence bundle for `gate --replay`: kept apart from the collectors so a replay loads no
 * network client.
 */
import { readFileSync } from 'node:fs';
import { InvalidInputError } from '../util/errors.js';
import type { EvidenceBundle } from './types.js';

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
