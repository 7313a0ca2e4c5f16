/**
 * One always-valid test as the gate runs it look after look: a fail side (evidence that the rule's tolerance
 * is exceeded, at the test's share α of the budget) and a pass side (evidence that a regression of the rule's
 * `detect` size is ruled out, at β). Each side is decided once: fail at the first look whose evidence reaches
 * ln(1/α), pass at the first look whose evidence reaches ln(1/β) — running intersections of confidence
 * sequences are confidence sequences, so a side that has been shown stays shown. A test passed can still fail
 * later (a regression between the tolerance and `detect`); a failed test ends the gate.
 */
export interface EvidencePoint {
  /** ms since the window opened. */
  t: number;
  fail: number;
  pass?: number;
  /** A pass side decided by a bound (a difference of confidence sequences): the bound, to set against `detect`. */
  bound?: number;
}

export interface TestState {
  /** "overall", a route, "p99"... */
  id: string;
  label: string;
  /** ln(1/α) and ln(1/β). */
  failThreshold: number;
  passThreshold: number;
  alpha: number;
  /** A route below the minimum size need not pass (it can still fail). */
  required: boolean;
  failedAt?: number;
  passedAt?: number;
  /** What the last look showed, for a person. */
  observed: string;
  /** The evidence at every look, for the pictures. */
  trace: EvidencePoint[];
}

export function newTest(id: string, label: string, alpha: number, beta: number): TestState {
  return {
    id,
    label,
    failThreshold: Math.log(1 / alpha),
    passThreshold: Math.log(1 / beta),
    alpha,
    required: true,
    observed: 'no data yet',
    trace: [],
  };
}

/**
 * Record one look's evidence. `pass` may be skipped (undefined) once the side is shown or while it cannot be
 * (before the data exist); `passShown` lets a side that is decided by a bound rather than an evidence value
 * (a difference of confidence sequences) say so directly.
 */
export function record(
  test: TestState,
  t: number,
  fail: number,
  pass: number | undefined,
  observed: string,
  bound?: { value: number; shown: boolean },
): void {
  test.observed = observed;
  const point: EvidencePoint = { t, fail: round(fail) };
  if (pass !== undefined) point.pass = round(pass);
  if (bound) point.bound = +bound.value.toPrecision(4);
  test.trace.push(point);
  const passShown = bound ? bound.shown : undefined;
  if (test.failedAt === undefined && fail >= test.failThreshold) test.failedAt = t;
  if (test.passedAt === undefined && (passShown ?? (pass !== undefined && pass >= test.passThreshold)))
    test.passedAt = t;
}

/** Evidence is kept to 0.01 (it is compared with thresholds of a few units); ±Infinity stays as it is. */
const round = (x: number) => (Number.isFinite(x) ? Math.round(x * 100) / 100 : x);

export const isFailed = (t: TestState) => t.failedAt !== undefined;
export const isPassed = (t: TestState) => t.passedAt !== undefined || !t.required;
