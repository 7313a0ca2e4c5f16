import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import { InvalidInputError } from '../util/errors.js';
import { formatDuration } from '../util/units.js';
import { action, globalOptions } from './context.js';
import { note, printResult, table } from './output.js';

/**
 * `clover-cd pipeline run <spec|pipeline.json> --local`: registered on the `pipeline` group by
 * commands/pipeline.ts. Runs the pipeline with src/pipelines/local-run against the sandbox.
 */
export function registerRun(group: Command): void {
  group
    .command('run')
    .description('execute a pipeline locally against the sandbox, as Spinnaker would (webhook stages call a local stage server)')
    .argument('<file>', 'release spec (rendered first) or pipeline JSON')
    .option('--local', 'run here against the sandbox (required: runs in Spinnaker use `pipeline execute`)', false)
    .option('--auto-approve', 'answer manual judgments with "continue"', false)
    .option('--evidence-dir <dir>', 'where gate evidence bundles are written')
    .addHelpText(
      'after',
      `
Uses the sandbox started by \`clover-cd sandbox up --detach\`, or starts one for the run. Stage types a local
run cannot execute end the run TERMINAL and are listed (never skipped). Manual judgments prompt on a
terminal; elsewhere pass --auto-approve.

Exit codes: 0 the pipeline succeeded; 1 a gate failed (rolled back); 3 inconclusive; 4 a stage could not run.

Examples:
  clover-cd pipeline run examples/sdc-canary.yaml --local --auto-approve
  clover-cd pipeline render examples/sdc-bluegreen.yaml -o bg.json && clover-cd pipeline run bg.json --local
`,
    )
    .action(
      action(async (file: string, opts: { local: boolean; autoApprove: boolean; evidenceDir?: string }, cmd: Command) => {
        if (!opts.local) throw new InvalidInputError('add --local to run the pipeline here against the sandbox; to run it in Spinnaker: clover-cd pipeline save + pipeline execute');
        const { runPipelineLocally } = await import('../stages/local-pipeline.js');
        const judge = process.stdin.isTTY
          ? async (r: { stage: string; instructions?: string; inputs: string[] }) => {
              const rl = createInterface({ input: process.stdin, output: process.stderr });
              try {
                if (r.instructions) note(r.instructions);
                const choices = r.inputs.length ? r.inputs : ['continue', 'stop'];
                for (;;) {
                  const a = (await rl.question(`${r.stage} [${choices.join('/')}]: `)).trim();
                  if (choices.includes(a)) return a;
                }
              } finally {
                rl.close();
              }
            }
          : undefined;
        const r = await runPipelineLocally({
          file,
          autoApprove: opts.autoApprove,
          judge,
          evidenceDir: opts.evidenceDir,
          onNote: note,
          onEvent: (e) => {
            if (e.type === 'stage-start') note(`▶ ${e.stage.name}`);
            else if (e.type === 'stage-progress') note(`  ${e.message}`);
            else note(`  ${e.stage.status}${e.stage.message ? `: ${e.stage.message}` : ''}`);
          },
        });
        const data = {
          pipeline: r.execution.name,
          status: r.execution.status,
          exitCode: r.exitCode,
          unsupported: r.execution.unsupported,
          stages: r.execution.stages.map((s) => ({ refId: s.refId, name: s.name, type: s.type, status: s.status, durationMs: s.endTime && s.startTime ? s.endTime - s.startTime : undefined, message: s.message })),
          jobs: r.jobs,
        };
        printResult(globalOptions(cmd).output, data, (d) =>
          [
            table(
              ['#', 'stage', 'type', 'status', 'took', 'result'],
              d.stages.map((s) => [s.refId, s.name, s.type, s.status, s.durationMs === undefined ? '' : formatDuration(s.durationMs), (s.message ?? '').slice(0, 90)]),
            ),
            '',
            `pipeline ${d.pipeline}: ${d.status} (exit ${d.exitCode})${d.unsupported.length ? `; stage types that cannot run locally: ${d.unsupported.join(', ')}` : ''}`,
          ].join('\n'),
        );
        return r.exitCode;
      }),
    );
}
