/**
 * Reading an evidence bundle for `gate --replay`: bounded, parsed and checked against its schema (exit 2
 * naming the field), kept apart from the collectors so a replay loads no network client.
 */
import { MB, readDocument } from '../spec/input.js';
import { InvalidInputError } from '../util/errors.js';
import { bundleProblems } from './bundle-schema.js';
import type { EvidenceBundle } from './types.js';

const MAX_BUNDLE_BYTES = 256 * MB;
const BUNDLE_LIMITS = { maxDepth: 16, maxValues: 20_000_000, maxString: 1_000_000 };

/** Read a bundle for replay: bounded, parsed and checked against its schema; anything else is exit 2. */
export function readBundle(file: string): EvidenceBundle {
  const doc = readDocument(file, {
    maxBytes: MAX_BUNDLE_BYTES,
    what: 'a JSON evidence bundle written by clover-cd gate',
    json: true,
    structure: BUNDLE_LIMITS,
  });
  const problems = bundleProblems(doc, file);
  if (problems.length)
    throw new InvalidInputError(
      `${file} is not a valid clover-cd evidence bundle (${problems.length} problem${problems.length > 1 ? 's' : ''})`,
      problems,
    );
  return doc as EvidenceBundle;
}
