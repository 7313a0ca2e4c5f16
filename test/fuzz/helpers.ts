/**
 * Shared by the fuzz suites: a fixed seed and a bounded number of runs (CI is reproducible and the whole
 * fuzz suite stays well under two minutes on two cores), mutations of real documents, and the contract
 * every rejection must keep: exit 2, a field path, a message a person can act on.
 */
import { expect, jest } from '@jest/globals';
import fc from 'fast-check';
import { fileURLToPath } from 'node:url';
import { InvalidInputError, type InputProblem } from '../../src/util/errors.js';

/**
 * `FUZZ_SEED=<n> FUZZ_RUNS=<n>` reproduce or widen a run: FUZZ_RUNS then sets every property's case count
 * (the per-property counts below keep CI fast). CI uses the defaults.
 */
export const SEED = Number(process.env.FUZZ_SEED ?? 20240516);
export const RUNS = Number(process.env.FUZZ_RUNS ?? 150);
const WIDENED = process.env.FUZZ_RUNS !== undefined;
export const params = (numRuns = RUNS) => ({
  seed: SEED,
  numRuns: WIDENED ? RUNS : numRuns,
  endOnFailure: true,
});
// A widened run takes longer: every test of a suite that imports this gets a limit that grows with the case count.
jest.setTimeout(60_000 * Math.max(1, RUNS / 150));

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const CORPUS = fileURLToPath(new URL('../../../shared/spinnaker-pipelines/', import.meta.url));

/** Words that mean a message leaked an implementation value instead of the user's input. */
const LEAKS =
  /\bundefined\b|\[object Object\]|\bNaN\b|TypeError|RangeError|ReferenceError|at .+\.(ts|js):\d+/;

export function expectActionable(problem: InputProblem | string): void {
  const text = typeof problem === 'string' ? problem : `${problem.path}: ${problem.message}`;
  // What the user wrote is quoted and may say anything ("undefined" is a fine header value).
  const ours = text.replace(/"(?:[^"\\]|\\.)*"/g, '"…"');
  expect(ours).not.toMatch(LEAKS);
  if (typeof problem !== 'string') expect(problem.message.length).toBeGreaterThan(5);
}

/** Run fn: it either returns (valid input) or throws InvalidInputError whose every problem is actionable. */
export function validOrInvalid<T>(
  fn: () => T,
): { ok: true; value: T } | { ok: false; error: InvalidInputError } {
  try {
    return { ok: true, value: fn() };
  } catch (err) {
    if (!(err instanceof InvalidInputError))
      throw new Error(`not an input error (exit 2): ${(err as Error)?.stack ?? String(err)}`);
    expect(err.exitCode).toBe(2);
    expectActionable(err.message);
    for (const p of err.problems) expectActionable(p);
    return { ok: false, error: err };
  }
}

export async function validOrInvalidAsync<T>(
  fn: () => Promise<T>,
): Promise<{ ok: true; value: T } | { ok: false; error: InvalidInputError }> {
  try {
    return { ok: true, value: await fn() };
  } catch (err) {
    if (!(err instanceof InvalidInputError))
      throw new Error(`not an input error (exit 2): ${(err as Error)?.stack ?? String(err)}`);
    expectActionable(err.message);
    for (const p of err.problems) expectActionable(p);
    return { ok: false, error: err };
  }
}

type Json = unknown;

/** Every path (as key lists) of a JSON document, for choosing where to mutate. */
export function pathsOf(doc: Json, limit = 5000): Array<Array<string | number>> {
  const out: Array<Array<string | number>> = [];
  const walk = (v: Json, path: Array<string | number>) => {
    if (out.length >= limit) return;
    out.push(path);
    if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...path, i]));
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, [...path, k]);
  };
  walk(doc, []);
  return out;
}

/** A copy of doc with the value at `path` replaced (or deleted when value is DELETE). */
export const DELETE = Symbol('delete');
export function setAt(doc: Json, path: Array<string | number>, value: unknown): Json {
  if (path.length === 0) return value === DELETE ? undefined : value;
  const copy = structuredClone(doc) as Record<string | number, unknown>;
  let cur = copy;
  for (const k of path.slice(0, -1)) cur = cur[k] as Record<string | number, unknown>;
  const last = path[path.length - 1];
  if (value === DELETE) {
    if (Array.isArray(cur)) cur.splice(Number(last), 1);
    else delete cur[last];
  } else cur[last] = value;
  return copy;
}

/** Hostile replacement values: wrong types, huge numbers, long strings, nesting, NUL bytes. */
export const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(
    null,
    true,
    false,
    0,
    -1,
    1e12,
    -1e12,
    0.5,
    99999,
    65536,
    '',
    ' ',
    'NaN',
    'undefined',
    '0s',
    '99999999999h',
    '200%',
    '-5%',
    '(*bad[',
    '$[[[',
    '\u0000',
    'x'.repeat(300),
    [],
    {},
    [null],
    [1, null],
    { '': 1 },
  ),
  fc.jsonValue({ maxDepth: 3 }),
  fc.string({ maxLength: 40 }),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
);

/** A mutation of a real document: one value replaced by a hostile one, or one key deleted. */
export function mutationOf(
  doc: Json,
): fc.Arbitrary<{ path: Array<string | number>; value: unknown; doc: Json }> {
  const paths = pathsOf(doc).filter((p) => p.length > 0);
  return fc
    .record({ i: fc.nat({ max: paths.length - 1 }), kind: fc.nat({ max: 3 }), value: hostileValue })
    .map(({ i, kind, value }) => {
      const path = paths[i];
      const v = kind === 0 ? DELETE : value;
      return { path, value: v === DELETE ? '(deleted)' : v, doc: setAt(doc, path, v) };
    });
}
