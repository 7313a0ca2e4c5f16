import { existsSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { MESHES, type Mesh } from '../../contract/index.js';
import { InvalidInputError } from '../../util/errors.js';
import { checkOutputPaths } from '../output-paths.js';
import { action, globalOptions } from '../context.js';
import { note, printResult } from '../output.js';

export function register(program: Command): void {
  const spec = program
    .command('spec')
    .description('create and check release specs (apiVersion clover-cd/v1, kind Release)')
    .addHelpText(
      'after',
      '\nExamples:\n  clover-cd spec init -f release.yaml\n  clover-cd spec validate examples/sdc-canary.yaml\n',
    );

  spec
    .command('validate')
    .description('validate a release spec: schema, weights, windows, gate rules, referenced files')
    .argument('<file>', 'release spec (YAML or JSON)')
    .addHelpText(
      'after',
      '\nExit 0 when valid; exit 2 with every problem (file, field path, expected vs found) otherwise. With gate.requestRate\n(e.g. 50/s) it also warns, on stderr, about a step whose rules cannot decide within maxWindow at that rate.\n\nExample:\n  clover-cd spec validate examples/sdc-canary.yaml --output json\n',
    )
    .action(
      action(async (file: string, _opts: unknown, cmd: Command) => {
        // The loader (schema compiler included) loads when the verb runs, not for --help.
        const [{ loadSpec }, { canaryWeights }, { planWarnings }, { parseDurationMs }] = await Promise.all([
          import('../../spec/load.js'),
          import('../../spec/validate.js'),
          import('../../validators/sample-size.js'),
          import('../../util/units.js'),
        ]);
        const { output } = globalOptions(cmd);
        let loaded;
        try {
          loaded = loadSpec(file);
        } catch (err) {
          // -o json|yaml: the findings are in the document as well as on stderr.
          if (err instanceof InvalidInputError && output !== 'text')
            printResult(
              output,
              {
                valid: false,
                file,
                problems: err.problems.length ? err.problems : [{ file, path: '', message: err.message }],
              },
              () => '',
            );
          throw err;
        }
        const { spec: s, strategyKind } = loaded;
        // A rule that cannot decide within maxWindow at the stated request rate is worth knowing before a release.
        const window =
          s.strategy.canary?.window ?? s.strategy.blueGreen?.previewWindow ?? s.strategy.abTest?.window;
        const weights = s.strategy.canary
          ? canaryWeights(s.strategy.canary)
          : [s.strategy.blueGreen ? 100 : 50];
        const warnings =
          s.gate && window
            ? planWarnings(
                s.gate,
                weights.map((weight) => ({ weight, windowMs: parseDurationMs(window) })),
              )
            : [];
        for (const w of warnings) note(`warning: ${w}`);
        const summary = {
          valid: true,
          file,
          release: s.metadata.name,
          service: `${s.service.name}.${s.service.namespace}`,
          strategy: strategyKind,
          steps: s.strategy.canary ? canaryWeights(s.strategy.canary) : undefined,
          stable: s.service.stable,
          candidate: s.service.candidate,
          rules: (s.gate?.rules ?? []).map((r) => Object.keys(r)[0]),
          warnings,
        };
        printResult(output, summary, (d) =>
          [
            `${d.file}: valid`,
            `  release   ${d.release} (${d.strategy}${d.steps ? ` ${d.steps.join('% → ')}%` : ''})`,
            `  service   ${d.service}: ${d.stable} → ${d.candidate}`,
            `  gate      ${d.rules.length ? d.rules.join(', ') : '(no rules)'}`,
          ].join('\n'),
        );
        return 0;
      }),
    );

  spec
    .command('init')
    .description('write a commented example release spec')
    .option('-f, --file <path>', 'file to write (default: print to stdout)')
    .option('--force', 'overwrite an existing file', false)
    .option('--mesh <mesh>', `the mesh whose routes carry the release: ${MESHES.join(', ')}`, 'istio')
    .addHelpText(
      'after',
      "\nExamples:\n  clover-cd spec init -f release.yaml && clover-cd spec validate release.yaml\n  clover-cd spec init --mesh gateway-api -f release.yaml   the service's HTTPRoute and a Service per version\n",
    )
    .action(
      action(async (opts: { file?: string; force: boolean; mesh: string }) => {
        if (!(MESHES as readonly string[]).includes(opts.mesh))
          throw new InvalidInputError(`--mesh: expected one of ${MESHES.join(', ')}, got "${opts.mesh}"`);
        const { specTemplate } = await import('../../spec/init-template.js');
        const template = specTemplate(opts.mesh as Mesh);
        if (!opts.file) {
          process.stdout.write(template);
          return 0;
        }
        checkOutputPaths([{ flag: '--file', path: opts.file }]);
        if (existsSync(opts.file) && !opts.force) {
          throw new InvalidInputError(`${opts.file} already exists; use --force to overwrite it`);
        }
        writeFileSync(opts.file, template);
        note(`wrote ${opts.file}; check it with: clover-cd spec validate ${opts.file}`);
        return 0;
      }),
    );
}
