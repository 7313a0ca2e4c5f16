import type { Command } from 'commander';
import { formatDuration } from '../../util/units.js';
import { action, globalOptions } from '../context.js';
import { note, printResult, table } from '../output.js';

export function register(program: Command): void {
  program
    .command('demo')
    .description(
      'the whole release on a local sandbox: a healthy http-lb v2 is promoted, a faulty one rolled back',
    )
    .option('--spec <file>', 'release spec to run (default: examples/sdc-canary.yaml)')
    .option('--out <dir>', 'where evidence bundles and reports go (default: .clover-cd/demo-<time>)')
    .addHelpText(
      'after',
      `
Starts the SDC sandbox, renders the canary pipeline from the spec, and runs it locally as Spinnaker would
(webhook stages call a local stage server: traffic shift, JMeter load — real JMeter when installed, the
builtin engine otherwise — and the gate). Then stages a v2 that fails 30% of its requests and shows the same
pipeline rolling it back. Prints steps, weights, requests sent and seen per version, verdicts and reasons.
Exit 0 when v2 was promoted in the first run and rolled back in the second.

Example:
  npx clover-cd demo
`,
    )
    .action(
      action(async (opts: { spec?: string; out?: string }, cmd: Command) => {
        const { runDemo } = await import('../../stages/demo.js');
        const { runPipelineLocally } = await import('../../server/local-pipeline.js');
        const ac = new AbortController();
        const onSigint = () => ac.abort(new Error('interrupted'));
        process.once('SIGINT', onSigint);
        try {
          const r = await runDemo({
            runPipeline: runPipelineLocally,
            specFile: opts.spec,
            outDir: opts.out,
            signal: ac.signal,
            onNote: note,
            onEvent: (_s, e) => {
              if (e.type === 'stage-end' && e.stage.status !== 'SKIPPED')
                note(`  ${e.stage.name}: ${e.stage.status}${e.stage.message ? ` — ${e.stage.message}` : ''}`);
            },
          });
          printResult(globalOptions(cmd).output, r, (d) => {
            const rows: Array<Array<string | number>> = [];
            for (const s of d.scenarios) {
              for (const st of s.steps) {
                rows.push([
                  s.name,
                  `${st.weight}%`,
                  st.sent ?? '',
                  Object.entries(st.seen)
                    .map(([v, n]) => `${v} ${n}`)
                    .join(', '),
                  st.verdict,
                  st.reasons.join('; ').slice(0, 110) || '-',
                ]);
              }
            }
            const outcomes = d.scenarios.map(
              (s) =>
                `${s.ok ? 'ok ' : 'BAD'} ${s.name}: expected ${s.expected}, got ${s.outcome} (pipeline ${s.status}, exit ${s.exitCode}, v2 now ${s.finalWeight}%, ${formatDuration(s.durationMs)})`,
            );
            return [
              table(['scenario', 'weight', 'sent', 'seen at http-lb', 'verdict', 'reasons'], rows),
              '',
              ...outcomes,
              '',
              `evidence bundles and reports:`,
              ...d.scenarios.flatMap((s) => s.reports.map((p) => `  ${p}`)),
              '',
              `${d.ok ? 'demo passed' : 'demo FAILED'} in ${formatDuration(d.durationMs)}; everything is under ${d.outDir}`,
            ].join('\n');
          });
          return ac.signal.aborted ? 130 : r.ok ? 0 : 1;
        } finally {
          process.off('SIGINT', onSigint);
        }
      }),
    );
}
