/**
 * Exit codes shared by every command (see README "Exit codes"). Each error class carries its code so the
 * CLI maps failures without knowing where they came from.
 */
export const ExitCode = {
  ok: 0,
  failed: 1,
  invalid: 2,
  inconclusive: 3,
  infrastructure: 4,
  interrupted: 130,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

export class CloverError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCodeValue,
    readonly details: string[] = [],
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** One problem in an input file: where it is, and what was expected there. */
export interface InputProblem {
  file?: string;
  /** JSON-pointer-like path, e.g. `strategy.canary.steps[2]`. Empty for the document root. */
  path: string;
  message: string;
  /** Stage or object the problem belongs to, when it is not obvious from the path. */
  subject?: string;
  /** `error` blocks the command; `warning` is reported but does not change the exit code. */
  severity?: 'error' | 'warning';
}

export function formatProblem(p: InputProblem): string {
  const where = [p.file, p.path || '(root)'].filter(Boolean).join(': ');
  const subject = p.subject ? ` [${p.subject}]` : '';
  return `${where}${subject}: ${p.message}`;
}

/** Bad input or usage (exit 2). Nothing was changed. */
export class InvalidInputError extends CloverError {
  constructor(
    message: string,
    readonly problems: InputProblem[] = [],
  ) {
    super(message, ExitCode.invalid, problems.map(formatProblem));
  }
}

/** A dependency was unreachable or refused after retries (exit 4). */
export class InfrastructureError extends CloverError {
  constructor(
    readonly system: string,
    readonly target: string,
    message: string,
    readonly hint?: string,
  ) {
    super(`${system} (${target}): ${message}${hint ? `\n  check: ${hint}` : ''}`, ExitCode.infrastructure);
  }
}

/** Evidence was insufficient to decide (exit 3). */
export class InconclusiveError extends CloverError {
  constructor(message: string, details: string[] = []) {
    super(message, ExitCode.inconclusive, details);
  }
}

/** The evidence says the release is bad, or a run failed its criteria (exit 1). */
export class FailedError extends CloverError {
  constructor(message: string, details: string[] = []) {
    super(message, ExitCode.failed, details);
  }
}

export class InterruptedError extends CloverError {
  constructor(message: string) {
    super(message, ExitCode.interrupted);
  }
}
