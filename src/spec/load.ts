import { dirname, resolve } from 'node:path';
import { InvalidInputError } from '../util/errors.js';
import { MB, readDocument } from './input.js';
import type { LoadedSpec, ReleaseSpec, StrategyKind } from './types.js';
import { referencedFileProblems, validateSpec } from './validate.js';

/** Largest spec, plan or config file read (the biggest real ones are a few kB). */
export const MAX_YAML_BYTES = 4 * MB;

/**
 * Parse a YAML or JSON file through the input layer (input.ts): a bounded regular file, syntax errors with
 * line and column, bounded depth and alias expansion. Every failure is exit 2 naming the file.
 */
export function readYamlFile(file: string, what = 'a YAML or JSON document'): unknown {
  return readDocument(file, { maxBytes: MAX_YAML_BYTES, what });
}

export function strategyKindOf(spec: ReleaseSpec): StrategyKind {
  if (spec.strategy.canary) return 'canary';
  if (spec.strategy.blueGreen) return 'blueGreen';
  return 'abTest';
}

/**
 * The spec with every file it names (`load.plan`, `service.candidateManifests`) made absolute against `base`,
 * so every command and host reads the same files whatever its working directory. `base` is the spec file's
 * folder; a spec without a file (`clover-cd stage --spec-env`) says which base it uses. Inline documents stay.
 */
export function resolveSpecFiles(spec: ReleaseSpec, base: string): ReleaseSpec {
  const abs = (p: unknown) => (typeof p === 'string' ? resolve(base, p) : p);
  const out = { ...spec };
  if (spec.load && typeof spec.load.plan === 'string')
    out.load = { ...spec.load, plan: resolve(base, spec.load.plan) };
  if (spec.service.candidateManifests)
    out.service = {
      ...spec.service,
      candidateManifests: spec.service.candidateManifests.map(abs) as string[],
    };
  return out;
}

export interface LoadSpecOptions {
  /**
   * `required` (default): a load plan or manifest the spec names that cannot be used makes the spec invalid.
   * `optional`: for commands that send no load and deploy nothing (traffic, rollback, abort, status) — they
   * must work when such a file is gone; its problems come back as `warnings`.
   */
  files?: 'required' | 'optional';
}

/** Load and validate a release spec; throws InvalidInputError (exit 2) listing every problem. Named files come back absolute. */
export function loadSpec(file: string, opts: LoadSpecOptions = {}): LoadedSpec {
  const abs = resolve(file);
  const doc = readYamlFile(abs, 'a release spec (YAML or JSON)');
  const dir = dirname(abs);
  const optional = opts.files === 'optional';
  const problems = validateSpec(doc, file, dir, { files: !optional });
  if (problems.length) {
    throw new InvalidInputError(
      `${file}: the release spec is invalid (${problems.length} problem${problems.length > 1 ? 's' : ''})`,
      problems,
    );
  }
  const warnings = optional
    ? referencedFileProblems(doc as ReleaseSpec, file, dir).map((p) => ({
        ...p,
        severity: 'warning' as const,
      }))
    : [];
  const spec = resolveSpecFiles(doc as ReleaseSpec, dir);
  return {
    spec,
    file: abs,
    dir,
    strategyKind: strategyKindOf(spec),
    ...(warnings.length ? { warnings } : {}),
  };
}
