import { Option, type Command } from 'commander';
import type { LoadedSpec } from '../../spec/types.js';
import type { PlatformChoice, TrafficResult } from '../../stages/index.js';
import { formatProblem, InvalidInputError } from '../../util/errors.js';
import { parseIntegerFlag, parseUrlFlag } from '../flags.js';
import { checkOutputPaths } from '../output-paths.js';
import { action, globalOptions } from '../context.js';
import { note, printResult } from '../output.js';

/** Options every traffic/release command takes to choose where it runs. */
export function platformOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option('--platform <kind>', 'where the release runs')
        .choices(['sandbox', 'kubernetes'])
        .default('sandbox'),
    )
    .option('--state-dir <dir>', 'sandbox state directory (default $CLOVER_CD_STATE_DIR or ./.clover-cd)')
    .option('--kubeconfig <file>', 'kubeconfig (default $KUBECONFIG, ~/.kube/config, or in-cluster)')
    .option('--context <name>', 'kubeconfig context')
    .option('--in-cluster', 'use the pod service account')
    .option('--prometheus <url>', 'Prometheus API for evidence (kubernetes)', (v: string) =>
      parseUrlFlag('--prometheus', v),
    )
    .option('--jaeger <url>', 'Jaeger query API (kubernetes)', (v: string) => parseUrlFlag('--jaeger', v))
    .option('--ingress <url>', 'where load is sent (kubernetes)', (v: string) =>
      parseUrlFlag('--ingress', v),
    );
}

export function renderTraffic(r: TrafficResult): string {
  const lines = [
    `${r.routes}: ${r.stable.version} ${r.stable.weight}%  ${r.candidate.version} ${r.candidate.weight}%${r.matchRoute ? '  (+ match route to ' + r.candidate.version + ')' : ''}${r.mirrorPercent ? `  (mirroring ${r.mirrorPercent}%)` : ''}`,
    `  ${r.message}`,
  ];
  if (r.state)
    lines.push(
      `  release ${r.state.release}: ${r.state.phase}, step ${r.state.step + 1}${r.state.lastVerdict ? `, last verdict ${r.state.lastVerdict.outcome}` : ''}`,
    );
  return lines.join('\n');
}

/** `--properties FILE`: the key=value file a Spinnaker Jenkins stage reads (`propertyFile`). */
export const propertiesOption = (cmd: Command): Command =>
  cmd.option(
    '--properties <file>',
    'also write the result as a key=value file (Spinnaker Jenkins stage `propertyFile`)',
  );

export function register(program: Command): void {
  const traffic = program
    .command('traffic')
    .description('shift Istio traffic between the stable and candidate versions of a release spec')
    .addHelpText(
      'after',
      `
Only the weights of the managed route change, and only the match route clover-cd adds is added or removed
(a JSON merge patch guarded by resourceVersion): other writers' routes stay. Rollback always means 100% on
stable, checked on observed traffic when the spec has load. Traffic moves to the candidate only once its
Deployment is ready. Every command is idempotent: running it again when the routes already say so changes
nothing.

Examples:
  clover-cd traffic set examples/sdc-canary.yaml --weight 10
  clover-cd traffic set examples/sdc-canary.yaml --step 2 --platform kubernetes --context prod
  clover-cd traffic get examples/sdc-canary.yaml -o json
  clover-cd traffic promote examples/sdc-canary.yaml
  clover-cd traffic rollback examples/sdc-canary.yaml
`,
    );

  // The engine (Kubernetes client included) loads when a verb runs, not for --help.
  type Engine = typeof import('../../stages/index.js');
  const run = (
    fn: (
      spec: LoadedSpec,
      o: PlatformChoice & Record<string, unknown>,
      engine: Engine,
      messages: { file: string },
    ) => Promise<TrafficResult>,
  ) =>
    action(async (file: string, o: PlatformChoice & Record<string, unknown>, cmd: Command) => {
      const format = globalOptions(cmd).output;
      checkOutputPaths([
        {
          flag: '--properties',
          path: typeof o.properties === 'string' ? o.properties : undefined,
          createsFolders: true,
        },
      ]);
      const [{ loadSpec }, engine, { stageProperties, writeProperties }, { statusForExitCode }] =
        await Promise.all([
          import('../../spec/load.js'),
          import('../../stages/index.js'),
          import('../../stages/properties.js'),
          import('../../server/jobs.js'),
        ]);
      // Traffic by hand sends no load but the rollback's check, which does without it: a load plan or manifest
      // that is gone never stops a command that moves traffic back.
      const loaded = loadSpec(file, { files: 'optional' });
      for (const w of loaded.warnings ?? []) note(`warning: ${formatProblem(w)}`);
      const r = await fn(loaded, o, engine, { file });
      printResult(format, r, renderTraffic);
      if (typeof o.properties === 'string') {
        writeProperties(
          o.properties,
          stageProperties({
            action: cmd.name() === 'set' ? 'traffic' : cmd.name(),
            release: r.release,
            exitCode: r.exitCode,
            status: statusForExitCode(r.exitCode),
            summary: r.message,
            weight: r.candidate.weight,
          }),
        );
      }
      return r.exitCode;
    });

  platformOptions(
    propertiesOption(traffic.command('set'))
      .description('set the candidate weight, or the traffic of one step of the plan')
      .argument('<spec>', 'release spec')
      .option('--weight <n>', 'candidate weight in percent (0-100)')
      .option('--step <k>', 'step number of the plan (1-based), e.g. 2 for the second canary weight')
      .addHelpText(
        'after',
        '\nExamples:\n  clover-cd traffic set release.yaml --weight 25\n  clover-cd traffic set release.yaml --step 1\n',
      ),
  ).action(
    run(async (loaded, o, { openPlatform, setTraffic }, messages) => {
      if ((o.weight === undefined) === (o.step === undefined))
        throw new InvalidInputError('give exactly one of --weight N or --step K');
      const flag = o.weight !== undefined ? '--weight' : '--step';
      const n = parseIntegerFlag(
        flag,
        String(o.weight ?? o.step),
        flag === '--weight' ? { min: 0, max: 100 } : { min: 1 },
      );
      if (flag === '--step') {
        // A step the plan does not have is known from the spec: refused naming --step before a platform is opened.
        const { CLI_FLAGS, checkStepParams } = await import('../../stages/actions.js');
        checkStepParams('traffic', loaded.spec, { step: n }, CLI_FLAGS);
      }
      const platform = await openPlatform(o);
      return setTraffic(
        platform,
        loaded.spec,
        o.weight !== undefined ? { weight: n } : { step: n },
        messages,
      );
    }),
  );

  platformOptions(
    traffic
      .command('get')
      .description('show the current split and release state')
      .argument('<spec>', 'release spec')
      .addHelpText('after', '\nExample:\n  clover-cd traffic get release.yaml -o yaml\n'),
  ).action(
    run(async (loaded, o, { getTraffic, openPlatform }) => getTraffic(await openPlatform(o), loaded.spec)),
  );

  platformOptions(
    propertiesOption(traffic.command('promote'))
      .description('send 100% to the candidate and remove match/mirror routes')
      .argument('<spec>', 'release spec')
      .addHelpText('after', '\nExample:\n  clover-cd traffic promote release.yaml\n'),
  ).action(
    run(async (loaded, o, { promote, openPlatform }, messages) =>
      promote(await openPlatform(o), loaded.spec, messages),
    ),
  );

  platformOptions(
    propertiesOption(traffic.command('rollback'))
      .description(
        "send 100% to stable (clover-cd's match/mirror routes removed) and check it on observed traffic",
      )
      .argument('<spec>', 'release spec')
      .addHelpText('after', '\nExample:\n  clover-cd traffic rollback release.yaml\n'),
  ).action(
    run(async (loaded, o, { rollback, openPlatform }, messages) =>
      rollback(await openPlatform(o), loaded.spec, messages),
    ),
  );
}
