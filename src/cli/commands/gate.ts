import { writeFileSync } from 'node:fs';
import { redact } from '../../util/redact.js';
import type { Command } from 'commander';
import type { PlatformEndpoints } from '../../services/platform.js';
import type { ScrapeSnapshot } from '../../services/scrape.js';
import { InvalidInputError } from '../../util/errors.js';
import { sleep } from '../../util/retry.js';
import { formatDuration, parseDurationMs } from '../../util/units.js';
import type { EvidenceBundle, Look, Verdict } from '../../validators/types.js';
import { action, globalOptions } from '../context.js';
import { checkOutputPaths } from '../output-paths.js';
import { collectUrlFlag, parseDurationFlag, parseIntegerFlag, parseUrlFlag } from '../flags.js';
import { note, printResult, table } from '../output.js';

interface GateOptions {
  window?: string;
  since?: string;
  until?: string;
  platform?: 'sandbox' | 'kubernetes';
  weight?: string;
  prometheus?: string;
  jaeger?: string;
  scrape?: string[];
  redis?: string;
  evidenceDir?: string;
  report?: 'text' | 'junit' | 'markdown';
  junit?: string;
  properties?: string;
  markdown?: string;
  html?: string;
  replay?: string;
  requireL4?: boolean;
  clovisor?: string;
  explain?: boolean;
}

/** "2024-05-01T10:00:00Z", epoch ms, or "now". */
function parseTime(value: string, flag: string): number {
  if (value === 'now') return Date.now();
  const n = /^\d{10,}$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isFinite(n))
    throw new InvalidInputError(`${flag} must be an ISO-8601 time or epoch milliseconds, got "${value}"`);
  return n;
}

async function endpointsFor(opts: GateOptions): Promise<PlatformEndpoints> {
  let base: PlatformEndpoints = {};
  if (opts.platform === 'sandbox') {
    const { connectSandbox } = await import('../../sandbox/index.js');
    const sb = await connectSandbox();
    base = {
      scrapeTargets: [sb.urls.metrics],
      jaeger: sb.urls.jaeger,
      ingress: sb.urls.ingress,
      ...sb.platform.endpoints(),
    };
  }
  return {
    ...base,
    ...(opts.prometheus ? { prometheus: opts.prometheus } : {}),
    ...(opts.jaeger ? { jaeger: opts.jaeger } : {}),
    ...(opts.scrape?.length ? { scrapeTargets: opts.scrape } : {}),
  };
}

/**
 * What a replay needs: the judge and the reports only (no network client), so `gate --replay` and
 * `gate --help` stay fast; a live gate also loads the collectors (validators/index.js).
 */
async function judging() {
  const [
    { readBundle },
    { judgeBundle, verdictExitCode },
    { renderJUnit, renderMarkdown, renderText },
    { stageProperties, writeProperties },
    { statusForExitCode },
  ] = await Promise.all([
    import('../../validators/bundle.js'),
    import('../../validators/verdict.js'),
    import('../../validators/report.js'),
    import('../../stages/properties.js'),
    import('../../server/jobs.js'),
  ]);
  return {
    readBundle,
    judgeBundle,
    verdictExitCode,
    renderJUnit,
    renderMarkdown,
    renderText,
    stageProperties,
    writeProperties,
    statusForExitCode,
  };
}

async function emitReports(
  cmd: Command,
  opts: GateOptions,
  verdict: Verdict,
  bundle: EvidenceBundle,
  bundlePath?: string,
): Promise<void> {
  const {
    verdictExitCode,
    renderJUnit,
    renderMarkdown,
    renderText,
    stageProperties,
    writeProperties,
    statusForExitCode,
  } = await judging();
  if (opts.properties) {
    const exitCode = verdictExitCode(verdict);
    writeProperties(
      opts.properties,
      stageProperties({
        action: 'gate',
        release: bundle.release,
        exitCode,
        status: statusForExitCode(exitCode),
        summary: verdict.summary,
        weight: bundle.candidateWeight,
        verdict: verdict.outcome,
        evidence: bundlePath,
        junit: opts.junit,
      }),
    );
  }
  if (opts.junit) writeFileSync(opts.junit, redact(renderJUnit(verdict, bundle)));
  if (opts.markdown) writeFileSync(opts.markdown, redact(renderMarkdown(verdict, bundle)));
  if (opts.html) {
    const { writeGateHtml } = await import('../../reports/index.js');
    note(`gate report: ${writeGateHtml(bundle, verdict, bundlePath, opts.html)}`);
  }
  if (opts.report === 'junit') return void process.stdout.write(redact(renderJUnit(verdict, bundle)));
  if (opts.report === 'markdown') return void process.stdout.write(redact(renderMarkdown(verdict, bundle)));
  printResult(globalOptions(cmd).output, { verdict, bundlePath, window: bundle.window }, () =>
    renderText(verdict, bundle, bundlePath, { explain: opts.explain }),
  );
}

export function register(program: Command): void {
  const gate = program
    .command('gate')
    .description(
      'judge a release window on visibility evidence: pass 0, fail 1, inconclusive 3, infrastructure error 4',
    )
    .argument('[spec]', 'release spec (YAML or JSON)')
    .option(
      '--window <duration>',
      'window to judge: with Prometheus the last <duration>; with a direct scrape the next <duration>',
      (v: string) => (parseDurationFlag('--window', v), v.trim()),
    )
    .option('--since <time>', 'window start (ISO-8601 or epoch ms)')
    .option('--until <time>', 'window end (ISO-8601, epoch ms or "now"; default now)')
    .option(
      '--platform <kind>',
      'where endpoints come from: sandbox (the running sandbox) or kubernetes (spec and flags)',
    )
    .option('--weight <percent>', 'configured candidate weight, for the split rule', (v: string) =>
      String(parseIntegerFlag('--weight', v, { min: 0, max: 100 })),
    )
    .option('--prometheus <url>', 'Prometheus base URL (overrides the platform)', (v: string) =>
      parseUrlFlag('--prometheus', v),
    )
    .option('--jaeger <url>', 'Jaeger query base URL (overrides the platform)', (v: string) =>
      parseUrlFlag('--jaeger', v),
    )
    .option('--scrape <url...>', 'Prometheus text endpoints to scrape directly', collectUrlFlag('--scrape'))
    .option(
      '--redis <url>',
      "write Clover's visibility keys to this Redis (default $CLOVER_CD_REDIS_URL)",
      (v: string) => parseUrlFlag('--redis', v, ['redis:', 'rediss:']),
    )
    .option('--evidence-dir <dir>', 'where the evidence bundle is written (default .clover-cd/evidence)')
    .option('--report <kind>', 'print the verdict as text, junit or markdown instead of --output')
    .option('--junit <file>', 'also write a JUnit XML report (one testcase per rule) for Jenkins')
    .option('--markdown <file>', 'also write a Markdown report for a pull-request comment')
    .option(
      '--html <file>',
      'also write the gate report: one self-contained HTML page with the charts behind each rule (always written beside the evidence bundle too)',
    )
    .option(
      '--properties <file>',
      'also write the verdict as a key=value file (Spinnaker Jenkins stage `propertyFile`)',
    )
    .option('--require-l4', 'an l4 rule without clovisor evidence is inconclusive instead of skipped', false)
    .option(
      '--clovisor <url>',
      'a running `clovisor run --listen` for L4 evidence (default: the address in its state)',
    )
    .option('--replay <bundle>', 'judge a stored evidence bundle again, offline')
    .option(
      '--explain',
      'also show how the false-alarm budget (gate.alpha) was spent over the rules, and when the sequence decided',
      false,
    )
    .addHelpText(
      'after',
      `
Every run writes an evidence bundle (sources, queries, raw values, window, rules, verdict); --replay judges it
again with the same result. No data is never a pass: too few samples or absent series give 3, a source that is
down gives 4.

Examples:
  clover-cd gate release.yaml --window 2m --prometheus http://prometheus:9090 --weight 10
  clover-cd gate release.yaml --since 2024-05-01T10:00:00Z --until 2024-05-01T10:05:00Z --junit gate.xml
  clover-cd gate release.yaml --platform sandbox --window 30s --report markdown > comment.md
  clover-cd gate --replay .clover-cd/evidence/http-lb-canary-2024-05-01T10-05-00-000Z.json
  clover-cd gate --replay bundle.json --html report.html    # latency ECDFs, error intervals, split, flow, L4
  clover-cd gate --replay bundle.json --explain             # the budget per rule and the moment of the decision
  clover-cd gate preflight release.yaml --prometheus http://prometheus:9090
`,
    )
    .action(
      action(async (file: string | undefined, opts: GateOptions, cmd: Command) => {
        checkOutputPaths([
          { flag: '--properties', path: opts.properties, createsFolders: true },
          { flag: '--junit', path: opts.junit },
          { flag: '--markdown', path: opts.markdown },
        ]);
        if (opts.until && !opts.since)
          throw new InvalidInputError(
            `--until needs --since (the window start), got --until "${opts.until}" alone`,
          );
        if (opts.until) parseTime(opts.until, '--until');
        if (opts.since) parseTime(opts.since, '--since');
        const { readBundle, judgeBundle, verdictExitCode } = await judging();
        if (opts.replay) {
          const bundle = readBundle(opts.replay);
          const verdict = judgeBundle(bundle);
          if (bundle.verdict && bundle.verdict.outcome !== verdict.outcome) {
            note(`note: the bundle recorded ${bundle.verdict.outcome}; judged again now: ${verdict.outcome}`);
          }
          await emitReports(cmd, opts, verdict, bundle, opts.replay);
          return verdictExitCode(verdict);
        }
        if (!file) throw new InvalidInputError('give a release spec, or --replay <bundle.json>');
        if (opts.window && (opts.since || opts.until))
          throw new InvalidInputError('give either --window or --since/--until, not both');
        if (opts.report && !['text', 'junit', 'markdown'].includes(opts.report))
          throw new InvalidInputError(`--report must be text, junit or markdown, got "${opts.report}"`);
        if (opts.platform && !['sandbox', 'kubernetes'].includes(opts.platform))
          throw new InvalidInputError(`--platform must be sandbox or kubernetes, got "${opts.platform}"`);
        const weight = opts.weight === undefined ? undefined : Number(String(opts.weight).replace(/%$/, ''));
        if (weight !== undefined && !(weight >= 0 && weight <= 100))
          throw new InvalidInputError(`--weight must be a percentage from 0 to 100, got "${opts.weight}"`);
        const [{ loadSpec }, { runGate }, { selectMetrics }, { telemetryOf }, { watchWindow }] =
          await Promise.all([
            import('../../spec/load.js'),
            import('../../validators/index.js'),
            import('../../metrics/index.js'),
            import('../../routers/index.js'),
            import('../../stages/engine/window-watch.js'),
          ]);
        const { spec } = loadSpec(file);
        const endpoints = await endpointsFor(opts);
        const telemetry = telemetryOf(spec);
        const metrics = selectMetrics(spec.gate, endpoints, telemetry, spec.service.name);
        let window: { start: number; end: number };
        let scrapeBaseline: ScrapeSnapshot | undefined;
        let looked: { sequence: Look[]; minWindowMs: number } | undefined;
        if (opts.since) {
          window = {
            start: parseTime(opts.since, '--since'),
            end: opts.until ? parseTime(opts.until, '--until') : Date.now(),
          };
          if (window.end <= window.start) throw new InvalidInputError('--until must be after --since');
        } else {
          let ms: number;
          try {
            ms = parseDurationMs(
              opts.window ??
                spec.strategy.canary?.window ??
                spec.strategy.abTest?.window ??
                spec.strategy.blueGreen?.previewWindow ??
                '60s',
            );
          } catch (err) {
            throw new InvalidInputError(`--window: ${(err as Error).message}`);
          }
          if (metrics.source === 'scrape' && metrics.provider) {
            // A direct scrape can only measure a window it watches: snapshot now, look at every second (a
            // regression ends the window at once), judge.
            const opened = await metrics.provider.open();
            scrapeBaseline = opened.baseline;
            note(`watching ${metrics.provider.url} for ${formatDuration(ms)}`);
            const start = opened.start;
            const watched = await watchWindow(
              spec,
              endpoints,
              {
                step: 0,
                window: { start, baseline: scrapeBaseline },
                minMs: ms,
                maxMs: ms,
                early: true,
                candidateWeight: weight,
              },
              true,
              { wait: (t) => sleep(t), stopped: () => false, emit: () => undefined },
            );
            if (watched.decision === 'fail')
              note(`the rules decided FAIL after ${watched.looks.length} look(s): the window ends early`);
            looked = { sequence: watched.looks, minWindowMs: ms };
            window = { start, end: Date.now() };
          } else {
            const end = Date.now();
            window = { start: end - ms, end };
          }
        }
        const run = await runGate(spec, {
          window,
          endpoints,
          telemetry,
          candidateWeight: weight,
          evidenceDir: opts.evidenceDir,
          requireL4: opts.requireL4,
          clovisorUrl: opts.clovisor,
          redisUrl: opts.redis ?? process.env.CLOVER_CD_REDIS_URL,
          metricsWindow: scrapeBaseline ? { start: window.start, baseline: scrapeBaseline } : undefined,
          ...looked,
          onNote: note,
        });
        try {
          const { gateHtmlPath, writeGateHtml } = await import('../../reports/index.js');
          writeGateHtml(run.bundle, run.verdict, run.bundlePath, gateHtmlPath(run.bundlePath));
        } catch (err) {
          note(`the gate report beside the bundle could not be written: ${(err as Error).message}`);
        }
        await emitReports(cmd, opts, run.verdict, run.bundle, run.bundlePath);
        return verdictExitCode(run.verdict);
      }),
    );

  gate
    .command('preflight')
    .description(
      'before traffic moves: check the series and labels the rules need, the scrape interval against the window, and telemetry from both versions',
    )
    .argument('<spec>', 'release spec (YAML or JSON)')
    .option('--platform <kind>', 'sandbox or kubernetes')
    .option('--prometheus <url>', 'Prometheus base URL', (v: string) => parseUrlFlag('--prometheus', v))
    .option('--jaeger <url>', 'Jaeger query base URL', (v: string) => parseUrlFlag('--jaeger', v))
    .option('--scrape <url...>', 'Prometheus text endpoints to scrape directly', collectUrlFlag('--scrape'))
    .addHelpText(
      'after',
      '\nExit 0 when ready; 3 when series or versions are missing (or the query of a metric rule finds none); 2 when the window is too short for the scrape interval or Prometheus refuses the query of a metric rule; 4 when a source is down.\n\nExample:\n  clover-cd gate preflight release.yaml --prometheus http://prometheus:9090\n',
    )
    .action(
      action(async (file: string, opts: GateOptions, cmd: Command) => {
        const [{ loadSpec }, { preflight }, { telemetryOf }] = await Promise.all([
          import('../../spec/load.js'),
          import('../../validators/preflight.js'),
          import('../../routers/index.js'),
        ]);
        const { spec } = loadSpec(file);
        // Options written after the subcommand may have been taken by `gate` itself: read both.
        const merged = {
          ...(cmd.parent?.opts() as GateOptions),
          ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)),
        };
        const result = await preflight(spec, await endpointsFor(merged), telemetryOf(spec));
        printResult(globalOptions(cmd).output, result, (r) =>
          [
            table(
              ['check', 'status', 'detail'],
              r.checks.map((c) => [c.check, c.status.toUpperCase(), c.detail]),
            ),
            '',
            r.ok ? 'preflight: ready' : `preflight: not ready (exit ${r.exitCode})`,
          ].join('\n'),
        );
        return result.exitCode;
      }),
    );
}
