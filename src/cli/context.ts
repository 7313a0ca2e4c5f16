import type { Command } from 'commander';
import { InvalidInputError } from '../util/errors.js';
import { OUTPUT_FORMATS, type OutputFormat } from './output.js';

/** Global options, read from the root command so every subcommand sees the same values. */
export interface GlobalOptions {
  output: OutputFormat;
  verbose: boolean;
  /**
   * For commands that write a document (`pipeline render`, `load render`), `-o <file>` names the file to
   * write, as in `clover-cd pipeline render spec.yaml -o pipeline.json`; `-o json|yaml|text` is still a format.
   */
  outFile?: string;
}

const FILE_OUTPUT = Symbol('acceptsOutputFile');

/** Mark a command whose `-o` may name an output file instead of a format. */
export function acceptsOutputFile(cmd: Command): Command {
  (cmd as unknown as Record<symbol, boolean>)[FILE_OUTPUT] = true;
  return cmd;
}

export function globalOptions(cmd: Command): GlobalOptions {
  let root = cmd;
  while (root.parent) root = root.parent;
  const o = root.opts<{ output?: string; verbose?: boolean }>();
  const value = o.output ?? 'text';
  const verbose = Boolean(o.verbose);
  if ((OUTPUT_FORMATS as string[]).includes(value)) return { output: value as OutputFormat, verbose };
  if ((cmd as unknown as Record<symbol, boolean>)[FILE_OUTPUT])
    return { output: 'text', verbose, outFile: value };
  throw new InvalidInputError(`--output must be one of ${OUTPUT_FORMATS.join(', ')}, got "${value}"`);
}

/** Wrap an action so its resolved value (an exit code) becomes the process exit code. */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<number | void> | number | void) {
  return async (...args: A): Promise<void> => {
    const code = await fn(...args);
    if (typeof code === 'number') process.exitCode = code;
  };
}
