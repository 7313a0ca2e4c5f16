import { readdirSync } from 'node:fs';
import { watchPipes } from './interrupt.js';
import { Command, CommanderError, Option } from 'commander';
import { CLOVER_CD_VERSION } from '../contract/images.js';
import { changesMade } from '../util/changes.js';
import { CloverError, ExitCode, InvalidInputError } from '../util/errors.js';
import { redact } from '../util/redact.js';
import { OUTPUT_FORMATS } from './output.js';

/**
 * Each file in commands/ is named after its verb and exports `register(program)` for that verb group;
 * main.ts owns only parsing and exit codes. Only the invoked verb's module is loaded (heavy clients such
 * as Kubernetes or gRPC stay unloaded for other commands); root `--help` and unknown verbs load them all.
 */
const COMMANDS_DIR = new URL('./commands/', import.meta.url);

function commandFiles(): string[] {
  return readdirSync(COMMANDS_DIR)
    .filter((f) => /\.(ts|js)$/.test(f) && !f.endsWith('.d.ts'))
    .sort();
}

/** The verb in argv: the first word that is not an option or the value of a global option. */
export function invokedVerb(args: string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '-o' || a === '--output') i++;
    else if (!a.startsWith('-')) return a;
  }
  return undefined;
}

async function loadRegistrars(verb?: string): Promise<Array<(program: Command) => void>> {
  if (verb === '--version') return [];
  const all = commandFiles();
  const own = verb ? all.filter((f) => f.replace(/\.(ts|js)$/, '') === verb) : [];
  const files = own.length ? own : all;
  const mods = await Promise.all(
    files.map((f) => import(new URL(f, COMMANDS_DIR).href) as Promise<{ register: (p: Command) => void }>),
  );
  return mods.map((m) => m.register);
}

export async function buildProgram(verb?: string): Promise<Command> {
  const program = new Command('clover-cd')
    .description(
      'Release micro-services on Kubernetes + Istio through Spinnaker and Jenkins, gated on visibility evidence.',
    )
    .version(CLOVER_CD_VERSION, '--version', 'print the clover-cd version')
    .addOption(
      new Option(
        '-o, --output <format>',
        `output format: ${OUTPUT_FORMATS.join('|')} (render commands: or a file to write)`,
      ).default('text'),
    )
    .option('-v, --verbose', 'print more detail on stderr', false)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .addHelpText(
      'after',
      `
Exit codes:
  0  passed / done                1  gate failed (promotion refused, rollback done if asked)
  2  invalid input or usage       3  inconclusive (not enough evidence; nothing promoted)
  4  infrastructure error         130 interrupted (traffic left in the last safe state)

Examples:
  clover-cd spec init -f release.yaml          write a commented example spec
  clover-cd spec validate release.yaml         check a spec without touching anything
  clover-cd pipeline render release.yaml       print the Spinnaker pipeline JSON
`,
    );
  for (const register of await loadRegistrars(verb)) register(program);
  // Every subcommand inherits exit-code handling for usage errors.
  const visit = (c: Command) => {
    c.exitOverride();
    c.showHelpAfterError('(run with --help for usage)');
    c.commands.forEach(visit);
  };
  program.commands.forEach(visit);
  return program;
}

export function reportError(err: unknown): number {
  if (err instanceof CommanderError) {
    if (
      err.code === 'commander.helpDisplayed' ||
      err.code === 'commander.version' ||
      err.code === 'commander.help'
    )
      return 0;
    // commander already printed its message
    return ExitCode.invalid;
  }
  if (err instanceof CloverError) {
    process.stderr.write(redact(`error: ${err.message}\n`));
    for (const d of err.details) process.stderr.write(redact(`  - ${d}\n`));
    reportChanges(err instanceof InvalidInputError);
    return err.exitCode;
  }
  const e = err as Error;
  process.stderr.write(redact(`error: ${e?.message ?? String(err)}\n`));
  if (process.env.CLOVER_CD_DEBUG && e?.stack) process.stderr.write(redact(e.stack) + '\n');
  reportChanges(false);
  return ExitCode.infrastructure;
}

/** After an error: what this command had already written and how to finish it — or, for bad input, that it wrote nothing. */
function reportChanges(invalidInput: boolean): void {
  const changes = changesMade();
  if (!changes.length) {
    if (invalidInput) process.stderr.write('nothing was changed.\n');
    return;
  }
  process.stderr.write('changed before the error:\n');
  for (const c of changes) process.stderr.write(redact(`  - ${c.subject}: ${c.now}\n`));
  for (const f of new Set(changes.map((c) => c.finish).filter(Boolean)))
    process.stderr.write(redact(`to finish: ${f}\n`));
}

export async function main(argv: string[]): Promise<number> {
  const args = argv.slice(2);
  const verb = invokedVerb(args) ?? (args.includes('--version') ? '--version' : undefined);
  const program = await buildProgram(verb);
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    return reportError(err);
  }
}

// A reader that stops early (`| head`) is not an error of ours: stop writing quietly, or roll back first.
watchPipes();

const invokedDirectly = process.argv[1] && /clover-cd(\.js)?$|cli\/main\.(ts|js)$/.test(process.argv[1]);
if (invokedDirectly) {
  const code = await main(process.argv);
  process.exitCode = code;
}
