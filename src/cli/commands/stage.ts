import type { Command } from 'commander';
import { exitCodeForStatus, STAGE_ACTIONS } from '../../contract/index.js';
import type { ReleaseSpec } from '../../spec/types.js';
import { formatProblem, InvalidInputError } from '../../util/errors.js';
import { checkOutputPaths } from '../output-paths.js';
import { action, globalOptions } from '../context.js';
import { parseDurationFlag, parseIntegerFlag } from '../flags.js';
import { onInterrupt } from '../interrupt.js';
import { note, printResult } from '../output.js';

interface StageOptions {
  spec?: string;
  specEnv?: string;
  weight?: string;
  step?: string;
  window?: string;
  executionId?: string;
  platform?: string;
  stateDir?: string;
  kubeconfig?: string;
  context?: string;
  evidenceDir?: string;
  properties?: string;
  propertyFormat: 'file' | 'spinnaker';
}

const ACTIONS: readonly string[] = STAGE_ACTIONS;

/**
 * `clover-cd stage <action>`: one release action, as a Jenkins job or a Spinnaker Run Job runs it (the
 * generated jenkins / runJobManifest stages call exactly this). The same stage functions as the stage
 * server. Nothing is kept in the working directory: what a later action needs (the load window the gate
 * judges) is kept by the engine with the release state, so each action may run in a pod or agent of its own.
 */
export function register(program: Command): void {
  program
    .command('stage')
    .description(
      'run one release action (deploy|traffic|load|gate|promote|rollback) as a CI job or Run Job would, with an exit code and properties for Spinnaker',
    )
    .argument('<action>', ACTIONS.join('|'))
    .option('--spec <file>', 'release spec file')
    .option(
      '--spec-env <name>',
      'environment variable holding the spec as JSON (Run Job) or base64 JSON (Jenkins SPEC parameter)',
    )
    .option('--weight <percent>', 'candidate weight (traffic; the split rule of gate)')
    .option(
      '--step <n>',
      'plan step, 1-based (traffic, load, gate); empty means none, as a Run Job passes a blank step',
    )
    .option(
      '--window <duration>',
      "override the plan step's load window (load); by default the window comes from the plan",
    )
    .option(
      '--execution-id <id>',
      'the pipeline execution this action belongs to (default $CLOVER_CD_EXECUTION_ID): a new one starts a new release',
    )
    .option('--platform <kind>', 'sandbox or kubernetes', 'kubernetes')
    .option(
      '--state-dir <dir>',
      'sandbox state directory, to reach a sandbox (default $CLOVER_CD_STATE_DIR or .clover-cd)',
    )
    .option('--kubeconfig <file>', 'kubeconfig (platform kubernetes)')
    .option('--context <name>', 'kubeconfig context (platform kubernetes)')
    .option('--evidence-dir <dir>', 'where gate evidence bundles are written')
    .option(
      '--properties <file>',
      'write the result as a key=value file (Spinnaker Jenkins stage `propertyFile`)',
    )
    .option(
      '--property-format <format>',
      'file (key=value) or spinnaker (SPINNAKER_PROPERTY_ lines on stdout, for Run Job)',
      'file',
    )
    .addHelpText(
      'after',
      `
Properties written (each becomes a stage output, \${CLOVER_CD_STATUS} etc.): CLOVER_CD_ACTION, CLOVER_CD_RELEASE,
CLOVER_CD_EXIT_CODE, CLOVER_CD_STATUS, CLOVER_CD_SUMMARY, CLOVER_CD_WEIGHT, CLOVER_CD_VERDICT, CLOVER_CD_EVIDENCE.

Exit codes: 0 succeeded, 1 gate failed, 3 inconclusive, 4 infrastructure error, 130 interrupted.

Files the spec names (load.plan, service.candidateManifests) are read relative to the spec file's folder;
with --spec-env, where there is no file, relative to the working directory (a rendered pipeline's spec
carries them inline, so a Run Job or Jenkins build needs none). Each action keeps what the next one needs
(the load window, the load run id, the planned sample size) with the release state on the routes: every
action may run in its own pod, agent or empty folder.

Examples:
  clover-cd stage traffic --spec release.yaml --weight 10 --properties build.properties
  clover-cd stage load --spec release.yaml --window 60s && clover-cd stage gate --spec release.yaml --weight 10
  clover-cd stage gate --spec-env CLOVER_CD_SPEC --property-format spinnaker     # in a Spinnaker Run Job
`,
    )
    .action(
      action(async (act: string, opts: StageOptions, cmd: Command) => {
        if (!ACTIONS.includes(act))
          throw new InvalidInputError(`unknown action "${act}"; expected one of ${ACTIONS.join(', ')}`);
        if (!['file', 'spinnaker'].includes(opts.propertyFormat))
          throw new InvalidInputError(
            `--property-format must be file or spinnaker, got "${opts.propertyFormat}"`,
          );
        checkOutputPaths([{ flag: '--properties', path: opts.properties, createsFolders: true }]);
        const params = {
          weight:
            opts.weight === undefined
              ? undefined
              : parseIntegerFlag('--weight', opts.weight, { min: 0, max: 100 }),
          step:
            opts.step === undefined || opts.step === ''
              ? undefined
              : parseIntegerFlag('--step', opts.step, { min: 1 }),
          window:
            opts.window === undefined
              ? undefined
              : (parseDurationFlag('--window', opts.window), opts.window.trim()),
          execution:
            (opts.executionId ?? process.env.CLOVER_CD_EXECUTION_ID)
              ? {
                  id: (opts.executionId ?? process.env.CLOVER_CD_EXECUTION_ID)!,
                  pipeline: process.env.CLOVER_CD_PIPELINE ?? '',
                }
              : undefined,
        };
        const spec = await readSpec(opts, act);
        const { CLI_FLAGS, checkStepParams, stageRegistry, weightOfRequest } =
          await import('../../stages/actions.js');
        if (['traffic', 'load', 'gate'].includes(act))
          checkStepParams(act as 'traffic', spec, params, CLI_FLAGS);
        const { openPlatform } = await import('../../stages/index.js');
        const { stageProperties, formatProperties, writeProperties } =
          await import('../../stages/properties.js');
        const platform = await openPlatform({
          platform: opts.platform,
          stateDir: opts.stateDir,
          kubeconfig: opts.kubeconfig,
          context: opts.context,
        });
        const fn = stageRegistry({
          platform,
          evidenceDir: opts.evidenceDir,
          file: opts.spec,
          names: CLI_FLAGS,
        })[act as 'gate']!;
        const ac = new AbortController();
        const stop = onInterrupt((why) => {
          note(`${why}: stopping and rolling back to ${spec.service.stable}…`);
          ac.abort(new Error(why));
        });
        let out;
        try {
          out = await fn(spec, params, ac.signal, (m) => note(m), {
            jobId: `cli-${process.pid}`,
            attempt: 1,
          });
        } finally {
          stop();
        }
        const exitCode = exitCodeForStatus(out.status);
        const props = stageProperties({
          action: act,
          release: spec.metadata.name,
          exitCode,
          status: out.status,
          summary: out.message ?? out.verdict?.summary,
          weight: weightOfRequest(spec, params),
          verdict: out.verdict?.outcome,
          evidence: out.reports?.evidence,
        });
        if (opts.properties) writeProperties(opts.properties, props);
        if (opts.propertyFormat === 'spinnaker')
          process.stdout.write(formatProperties(props, 'spinnaker-log'));
        else
          printResult(
            globalOptions(cmd).output,
            {
              action: act,
              release: spec.metadata.name,
              status: out.status,
              exitCode,
              message: out.message,
              verdict: out.verdict,
              reports: out.reports,
            },
            (d) => `${d.release} ${d.action}: ${d.status}${d.message ? ` — ${d.message}` : ''}`,
          );
        return exitCode;
      }),
    );
}

/** Actions that send no load and deploy nothing: a load plan or manifest that is gone does not stop them. */
const WITHOUT_FILES = ['traffic', 'promote', 'rollback'];

async function readSpec(opts: StageOptions, act: string): Promise<ReleaseSpec> {
  const files = WITHOUT_FILES.includes(act) ? 'optional' : 'required';
  if (opts.spec) {
    const loaded = (await import('../../spec/load.js')).loadSpec(opts.spec, { files });
    for (const w of loaded.warnings ?? []) note(`warning: ${formatProblem(w)}`);
    return loaded.spec;
  }
  if (!opts.specEnv) throw new InvalidInputError('give the spec: --spec <file> or --spec-env <VAR>');
  const raw = process.env[opts.specEnv];
  if (!raw) throw new InvalidInputError(`environment variable ${opts.specEnv} is empty`);
  let doc: unknown;
  try {
    doc = JSON.parse(raw.trim().startsWith('{') ? raw : Buffer.from(raw, 'base64').toString('utf8'));
  } catch (err) {
    throw new InvalidInputError(`${opts.specEnv}: not JSON or base64 JSON: ${(err as Error).message}`);
  }
  const [{ validateSpec }, { resolveSpecFiles }] = await Promise.all([
    import('../../spec/validate.js'),
    import('../../spec/load.js'),
  ]);
  // Rendered pipelines carry the candidate manifests inline: the job has no checkout of the spec's repository.
  const inline = (await import('../../stages/inline-manifests.js')).splitInlineManifests(
    doc,
    `$${opts.specEnv}`,
  );
  // No file, no folder: files the spec still names are relative to the working directory (said in --help).
  const base = process.cwd();
  const problems = [
    ...inline.problems,
    ...validateSpec(inline.spec, `$${opts.specEnv} (files relative to the working directory ${base})`, base, {
      files: files === 'required',
    }),
  ].filter((p) => p.severity !== 'warning');
  if (problems.length)
    throw new InvalidInputError(
      `${opts.specEnv}: invalid release spec: ${problems.map(formatProblem).join('; ')}`,
      problems,
    );
  return resolveSpecFiles(inline.spec as ReleaseSpec, base);
}
