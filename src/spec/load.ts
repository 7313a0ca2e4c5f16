import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import * as yaml from 'js-yaml';
import { InvalidInputError } from '../util/errors.js';
import type { LoadedSpec, ReleaseSpec, StrategyKind } from './types.js';
import { validateSpec } from './validate.js';

/** Parse a YAML or JSON file, turning syntax errors into exit-2 errors with line and column. */
export function readYamlFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new InvalidInputError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    return yaml.load(text, { filename: file });
  } catch (err) {
    const e = err as { mark?: { line: number; column: number }; reason?: string; message: string };
    const where = e.mark ? `${file}:${e.mark.line + 1}:${e.mark.column + 1}` : file;
    throw new InvalidInputError(`${where}: not valid YAML: ${e.reason ?? e.message}`);
  }
}

export function strategyKindOf(spec: ReleaseSpec): StrategyKind {
  if (spec.strategy.canary) return 'canary';
  if (spec.strategy.blueGreen) return 'blueGreen';
  return 'abTest';
}

/** Load and validate a release spec; throws InvalidInputError (exit 2) listing every problem. */
export function loadSpec(file: string): LoadedSpec {
  const abs = resolve(file);
  const doc = readYamlFile(abs);
  const dir = dirname(abs);
  const problems = validateSpec(doc, file, dir);
  if (problems.length) {
    throw new InvalidInputError(`${file}: the release spec is invalid (${problems.length} problem${problems.length > 1 ? 's' : ''})`, problems);
  }
  const spec = doc as ReleaseSpec;
  return { spec, file: abs, dir, strategyKind: strategyKindOf(spec) };
}
