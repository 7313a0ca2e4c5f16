import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import { MB, readDocument } from '../spec/input.js';
import { InvalidInputError } from '../util/errors.js';
import { formatDuration } from '../util/units.js';
import { action, globalOptions } from './context.js';
import { note, printResult, table } from './output.js';

/**
 * `clover-cd pipeline run <spec|pipeline.json> --local`: registered on the `pipeline` group by
 * commands/pipeline.ts. Runs the pipeline with src/pipelines/local-run against the sandbox.
 */
/** An event file: a JSON object with a string "type" (exit 2 naming the file otherwise). */
function readEvent(file: string): Record<string, unknown> & { type: string } {
  const doc = readDocument(file, { maxBytes: MB, what: 'a trigger event (JSON)', json: true });
  if (
    !doc ||
    typeof doc !== 'object' ||
    Array.isArray(doc) ||
    typeof (doc as { type?: unknown }).type !== 'string'
  ) {
    throw new InvalidInputError(
      `${file}: expected a JSON object with a "type" (docker, webhook, git, jenkins, pipeline, manual)`,
      [{ file, path: 'type', message: 'expected a trigger type' }],
    );
  }
  return doc as Record<string, unknown> & { type: string };
}

export function registerRun(group: Command): void {
  group
    .command('run')
    .description(
      'execute a pipeline locally against the sandbox, as Spinnaker would (webhook stages call a local stage server)',
    )
    .argument('<file>', 'release spec (rendered first) or pipeline JSON')
    .option(
      '--local',
      'run here against the sandbox (required: runs in Spinnaker use `pipeline execute`)',
      false,
    )
    .option('--auto-approve', 'answer manual judgments with "continue"', false)
    .option('--evidence-dir <dir>', 'where gate evidence bundles are written')
    .option(
      '-p, --param <key=value>',
      'pipeline parameter, as `pipeline execute --param` (repeatable)',
      (v: string, acc: string[]) => [...acc, v],
      [] as string[],
    )
    .option(
      '--docker-tag <tag>',
      "start as the pipeline's docker trigger does for a push of this tag (Echo names the image <registry>/<repository>, the registry from the trigger, else index.docker.io)",
    )
    .option(
      '--event <file>',
      'start as Echo does for this event (JSON): {"type": "docker", "tag": ...} | {"type": "webhook", "source": ..., "payload": {...}} | {"type": "jenkins", "properties": {...}} | {"type": "git", "branch": ..., "payload": {...}} | {"type": "pipeline", "parentArtifacts": [...]}',
    )
    .option(
      '--orca-config <file>',
      'orca-local.yml with the preconfigured webhook types (default for a spec: what `pipeline orca-config` prints for it)',
    )
    .addHelpText(
      'after',
      `
Uses the sandbox started by \`clover-cd sandbox up --detach\`, or starts one for the run. Stage types a local
run cannot execute end the run TERMINAL and are listed (never skipped). Manual judgments prompt on a
terminal; elsewhere pass --auto-approve.

An event fires the trigger it matches with the artifacts Echo gives it; an event Echo would ignore (a tag the
pattern refuses, an artifact the trigger's expected artifacts do not match) starts nothing. Parameters get their
defaults and expected artifacts are bound as Orca does at start; a deployManifest binds its required artifacts
(the trigger's image) into the manifests as Clouddriver does. Preconfigured webhook stages (spinnaker.stages:
preconfigured) take URL, headers and status fields from --orca-config.

The local stage server checks callers as the shipped one does (a bearer token; Orca's mesh identity when the spec
states spinnaker.stageServer.meshAuth, the run then standing in for both sidecars). Inline webhook stages send no
credentials, as in Orca; a secret reference in --orca-config resolves to the run's token. A stage the server refuses
(401/403) ends its task TERMINAL, as in Orca.

Exit codes: 0 the pipeline succeeded; 1 a gate failed (rolled back); 2 the trigger would not start it;
3 inconclusive; 4 a stage could not run or the stage server refused it.

Examples:
  clover-cd pipeline run examples/sdc-canary.yaml --local --auto-approve
  clover-cd pipeline render examples/sdc-bluegreen.yaml -o bg.json && clover-cd pipeline run bg.json --local
  clover-cd pipeline run examples/sdc-canary.yaml --local --auto-approve --docker-tag opnfv-7.1.0
  echo '{"type":"webhook","source":"dockerhub","payload":{"repository":{"repo_name":"opnfv/clover-ns-nginx-lb"},"push_data":{"tag":"opnfv-7.1.0"}}}' > push.json
  clover-cd pipeline run release.yaml --local --auto-approve --event push.json
  clover-cd pipeline run examples/sdc-canary.yaml --local --auto-approve --param tag=opnfv-7.1.0
  clover-cd pipeline orca-config release.yaml -o orca.yml && clover-cd pipeline run pipeline.json --local --orca-config orca.yml
`,
    )
    .action(
      action(
        async (
          file: string,
          opts: {
            local: boolean;
            autoApprove: boolean;
            evidenceDir?: string;
            param: string[];
            dockerTag?: string;
            event?: string;
            orcaConfig?: string;
          },
          cmd: Command,
        ) => {
          if (!opts.local)
            throw new InvalidInputError(
              'add --local to run the pipeline here against the sandbox; to run it in Spinnaker: clover-cd pipeline save + pipeline execute',
            );
          const { runPipelineLocally } = await import('../server/local-pipeline.js');
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
          const parameters: Record<string, string> = {};
          for (const p of opts.param) {
            const i = p.indexOf('=');
            if (i <= 0) throw new InvalidInputError(`--param expects key=value, got "${p}"`);
            parameters[p.slice(0, i)] = p.slice(i + 1);
          }
          if (opts.event && opts.dockerTag !== undefined)
            throw new InvalidInputError('give --docker-tag or --event, not both');
          const event = opts.event ? readEvent(opts.event) : undefined;
          const trigger = event
            ? {
                ...event,
                parameters: {
                  ...((event.parameters as Record<string, unknown> | undefined) ?? {}),
                  ...parameters,
                },
              }
            : opts.dockerTag !== undefined
              ? { type: 'docker', tag: opts.dockerTag, parameters }
              : { type: 'manual', user: 'clover-cd', parameters };
          const r = await runPipelineLocally({
            file,
            trigger,
            orcaConfig: opts.orcaConfig,
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
            stages: r.execution.stages.map((s) => ({
              refId: s.refId,
              name: s.name,
              type: s.type,
              status: s.status,
              durationMs: s.endTime && s.startTime ? s.endTime - s.startTime : undefined,
              message: s.message,
            })),
            jobs: r.jobs,
          };
          printResult(globalOptions(cmd).output, data, (d) =>
            [
              table(
                ['#', 'stage', 'type', 'status', 'took', 'result'],
                d.stages.map((s) => [
                  s.refId,
                  s.name,
                  s.type,
                  s.status,
                  s.durationMs === undefined ? '' : formatDuration(s.durationMs),
                  (s.message ?? '').slice(0, 90),
                ]),
              ),
              '',
              `pipeline ${d.pipeline}: ${d.status} (exit ${d.exitCode})${d.unsupported.length ? `; stage types that cannot run locally: ${d.unsupported.join(', ')}` : ''}`,
            ].join('\n'),
          );
          return r.exitCode;
        },
      ),
    );
}
