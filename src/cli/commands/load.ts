// Over 400 lines: the load verbs (render, run, server, report), a register function and an action each, sharing flags, engine and report writers.
import { existsSync, writeFileSync } from 'node:fs';
import { redact } from '../../util/redact.js';
import { Option, type Command } from 'commander';
import cliProgress from 'cli-progress';
import type { JtlAnalysis, LoadProgress, LoadReport } from '../../jmeter/index.js';
import { ExitCode, InvalidInputError } from '../../util/errors.js';
import { defaultImage } from '../../contract/images.js';
import { action, acceptsOutputFile, globalOptions } from '../context.js';
import { parseHostPortListFlag, parseNumberFlag, parseUrlFlag } from '../flags.js';
import { onInterrupt } from '../interrupt.js';
import { checkOutputPaths } from '../output-paths.js';
import { note, printResult } from '../output.js';

/** The engine behind the verbs, loaded by loadEngine() when one runs: `--help` loads none of it. */
type TJmeterIndex = typeof import('../../jmeter/index.js');
let analyzeJtl: TJmeterIndex['analyzeJtl'],
  buildReport: TJmeterIndex['buildReport'],
  effectivePlan: TJmeterIndex['effectivePlan'],
  expectedSamples: TJmeterIndex['expectedSamples'],
  loadPlan: TJmeterIndex['loadPlan'],
  renderHtml: TJmeterIndex['renderHtml'],
  renderJmx: TJmeterIndex['renderJmx'],
  renderJunit: TJmeterIndex['renderJunit'],
  renderKubernetes: TJmeterIndex['renderKubernetes'],
  renderText: TJmeterIndex['renderText'],
  runLoadDetailed: TJmeterIndex['runLoadDetailed'],
  serveEngine: TJmeterIndex['serveEngine'],
  tailFile: TJmeterIndex['tailFile'],
  STREAMED_LINE_PREFIX: TJmeterIndex['STREAMED_LINE_PREFIX'];
type TStagesProperties = typeof import('../../stages/properties.js');
let stageProperties: TStagesProperties['stageProperties'],
  writeProperties: TStagesProperties['writeProperties'];
type TServerJobs = typeof import('../../server/jobs.js');
let statusForExitCode: TServerJobs['statusForExitCode'];
async function loadEngine(): Promise<void> {
  const [m0, m1, m2] = await Promise.all([
    import('../../jmeter/index.js'),
    import('../../stages/properties.js'),
    import('../../server/jobs.js'),
  ]);
  ({
    analyzeJtl,
    buildReport,
    effectivePlan,
    expectedSamples,
    loadPlan,
    renderHtml,
    renderJmx,
    renderJunit,
    renderKubernetes,
    renderText,
    runLoadDetailed,
    serveEngine,
    tailFile,
    STREAMED_LINE_PREFIX,
  } = m0);
  ({ stageProperties, writeProperties } = m1);
  ({ statusForExitCode } = m2);
}

const runIdFlag = (v: string): string => {
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(v))
    throw new InvalidInputError(`--run-id must be 1 to 64 letters, digits, ".", "_" or "-", got "${v}"`);
  return v;
};
const quantityFlag = (flag: string) => (v: string) => {
  if (!/^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$/.test(v))
    throw new InvalidInputError(`${flag} must be a Kubernetes quantity such as 500m, 2 or 2Gi, got "${v}"`);
  return v;
};

// Whole seconds: JMeter's ThreadGroup.duration is an integer property.
const seconds = (flag: string) => (v: string) =>
  parseNumberFlag(flag, v, { min: 0, exclusiveMin: true, max: 604_800, integer: true, unit: 'seconds' });
const engines = (flag: string) => (v: string) =>
  parseNumberFlag(flag, v, { min: 1, max: 1000, integer: true });
const port = (flag: string) => (v: string) => parseNumberFlag(flag, v, { min: 1, max: 65535, integer: true });

async function writeReports(
  report: LoadReport,
  o: { junit?: string; html?: string },
  analysis?: JtlAnalysis,
): Promise<void> {
  if (o.junit) {
    writeFileSync(o.junit, redact(renderJunit(report)));
    note(`wrote ${o.junit}`);
  }
  if (o.html) {
    // Charts over time per label (throughput, errors, latency percentiles); the plain table if the JTL has no rows.
    const { loadHtml } = await import('../../reports/index.js');
    writeFileSync(o.html, report.received ? await loadHtml(report, analysis) : redact(renderHtml(report)));
    note(`wrote ${o.html}`);
  }
}

/** A bar on a terminal; one line every 5 s otherwise (CI logs). */
function progressReporter(
  total: number | undefined,
  durationS: number | undefined,
): { update: (p: LoadProgress) => void; stop: () => void } {
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        stream: process.stderr,
        format: ' load {bar} {percentage}% | {sent} sent | {errors} errors | {elapsed}s',
        hideCursor: true,
      },
      cliProgress.Presets.shades_classic,
    );
    const byCount = total !== undefined;
    bar.start(byCount ? total : Math.max(1, Math.round(durationS ?? 1)), 0, {
      sent: 0,
      errors: 0,
      elapsed: 0,
    });
    return {
      update: (p) =>
        bar.update(byCount ? p.sent : Math.min(Math.round(p.elapsedS), durationS ?? 1), {
          sent: p.sent,
          errors: p.errors,
          elapsed: Math.round(p.elapsedS),
        }),
      stop: () => bar.stop(),
    };
  }
  let last = 0;
  return {
    update: (p) => {
      if (Date.now() - last < 5000) return;
      last = Date.now();
      note(
        `load: ${p.sent}${total !== undefined ? `/${total}` : ''} sent, ${p.errors} errors, ${Math.round(p.elapsedS)}s`,
      );
    },
    stop: () => undefined,
  };
}

interface RenderFlags {
  target?: string;
  duration?: number;
  kubernetes: boolean;
  engines: number;
  image: string;
  namespace: string;
  release?: string;
  step?: number;
  runId?: string;
  engineCpu?: string;
  engineMemory?: string;
}

function registerLoadRender(load: Command): void {
  acceptsOutputFile(
    load
      .command('render')
      .description(
        'render a plan to a JMeter .jmx (runs on JMeter 2.13 and 5.x), or to Kubernetes manifests for distributed JMeter',
      )
      .argument('<plan>', 'load plan (YAML/JSON)')
      .option(
        '--target <origin>',
        'replace scheme://host:port of every URL, e.g. http://ingress:8080',
        (v: string) => parseUrlFlag('--target', v),
      )
      .option('--duration <seconds>', 'override load_spec.duration', seconds('--duration'))
      .option(
        '--kubernetes',
        'render a controller Job (`load run --remote`) + engine StatefulSet (`load server`) instead of the .jmx',
        false,
      )
      .option('--engines <n>', 'jmeter-server engines (with --kubernetes)', engines('--engines'), 2)
      .option(
        '--image <image>',
        'JMeter image with clover-cd on PATH (with --kubernetes)',
        defaultImage('clover-cd-jmeter'),
      )
      .option('--namespace <ns>', 'namespace (with --kubernetes)', 'default')
      .option(
        '--release <name>',
        "the objects a release's step creates (with --kubernetes and --step): their name, labels, results on the controller's log",
      )
      .option('--step <n>', 'the step (1-based) of --release', engines('--step'))
      .option('--run-id <id>', "the controller's x-clover-cd-load value (with --kubernetes)", runIdFlag)
      .option(
        '--engine-cpu <quantity>',
        "each engine's CPU request (load.resources.cpu)",
        quantityFlag('--engine-cpu'),
      )
      .option(
        '--engine-memory <quantity>',
        "each engine's memory request and limit (load.resources.memory)",
        quantityFlag('--engine-memory'),
      )
      .addHelpText(
        'after',
        `
-o <file> writes the document to a file; without it the document goes to stdout. With --kubernetes,
the plan goes in a ConfigMap and --target/--duration become the controller's \`load run\` flags; every
container runs clover-cd in exec form (\`clover-cd load server\`, \`clover-cd load run --remote\`).

Examples:
  clover-cd load render examples/jmeter_testplan.yaml -o plan.jmx
  clover-cd load render plan.yaml --kubernetes --engines 4 --namespace load | kubectl apply -f -
  clover-cd load render plan.yaml --kubernetes --image registry.example.com/clover-cd/clover-cd-jmeter:0.1.0
  clover-cd load render plan.yaml --kubernetes --release sdc-canary --step 1 --namespace sdc   # what a release's step 1 creates
`,
      ),
  ).action(action(loadRender));
}

async function loadRender(file: string, o: RenderFlags, cmd: Command): Promise<number> {
  await loadEngine();
  const { outFile } = globalOptions(cmd);
  checkOutputPaths([{ flag: '-o', path: outFile }]);
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(o.namespace) || o.namespace.length > 63)
    throw new InvalidInputError(
      `--namespace must be a Kubernetes namespace (lower-case letters, digits and "-", at most 63), got "${o.namespace}"`,
    );
  if (!/^[^\s]+$/.test(o.image))
    throw new InvalidInputError(
      `--image must be an image reference such as ${defaultImage('clover-cd-jmeter')}, got "${o.image}"`,
    );
  const doc = o.kubernetes
    ? renderKubernetes(file, {
        engines: o.engines,
        image: o.image,
        namespace: o.namespace,
        target: o.target,
        durationS: o.duration,
        release: o.release,
        step: o.step === undefined ? undefined : o.step - 1,
        runId: o.runId,
        resources: o.engineCpu || o.engineMemory ? { cpu: o.engineCpu, memory: o.engineMemory } : undefined,
      })
    : renderJmx(effectivePlan(loadPlan(file), { target: o.target, durationS: o.duration }));
  if (outFile) {
    writeFileSync(outFile, doc);
    note(`wrote ${outFile}`);
  } else process.stdout.write(doc);
  return 0;
}

interface RunFlags {
  engine: 'auto' | 'jmeter' | 'builtin';
  remote?: string[];
  results?: string;
  force: boolean;
  duration?: number;
  target?: string;
  jmeterHome?: string;
  junit?: string;
  html?: string;
  properties?: string;
  runId?: string;
  streamResults: boolean;
}

function registerLoadRun(load: Command): void {
  load
    .command('run')
    .description(
      'run a plan with JMeter (local or distributed) or the builtin engine; exit 1 when a criterion trips',
    )
    .argument('<plan>', 'load plan (YAML/JSON)')
    .addOption(
      new Option('--engine <engine>', 'jmeter | builtin | auto (JMeter when installed)')
        .choices(['auto', 'jmeter', 'builtin'])
        .default('auto'),
    )
    .option(
      '--remote <hosts>',
      'JMeter remote engines host:port,... (distributed mode; load = engines x plan)',
      (v: string) => parseHostPortListFlag('--remote', v),
    )
    .option('--results <file>', 'JTL to write (default: a fresh temporary file)')
    .option('--force', 'overwrite an existing --results file', false)
    .option('--duration <seconds>', 'override load_spec.duration', seconds('--duration'))
    .option(
      '--target <origin>',
      'replace scheme://host:port of every URL, e.g. the mesh ingress',
      (v: string) => parseUrlFlag('--target', v),
    )
    .option('--jmeter-home <dir>', 'JMeter installation (default: $JMETER_HOME, PATH, /usr/share/jmeter)')
    .option('--junit <file>', 'also write JUnit XML (criteria and expected counts)')
    .option(
      '--html <file>',
      'also write an HTML report: throughput, errors and latency percentiles over time, per label (self-contained)',
    )
    .option(
      '--properties <file>',
      'also write the result as a key=value file (Spinnaker Jenkins stage `propertyFile`)',
    )
    .option(
      '--run-id <id>',
      'the x-clover-cd-load value every request carries (default: a fresh id)',
      runIdFlag,
    )
    .option(
      '--stream-results',
      'also write every JTL line to stdout as `jtl|<line>` while the run goes (a cluster reads it from the pod log)',
      false,
    )
    .addHelpText(
      'after',
      `
Exit codes: 0 done and criteria passed; 1 a criterion tripped; 2 bad plan or options;
4 JMeter missing or failed (its log lines are shown); 130 interrupted (the partial results are reported).
An unreachable target is not exit 4: its samples are recorded as errors and judged by the criteria.

Examples:
  clover-cd load run examples/jmeter_testplan.yaml --target http://127.0.0.1:8080
  clover-cd load run plan.yaml --engine jmeter --remote 10.0.0.5:1099,10.0.0.6:1099 --results run.jtl
  clover-cd load run plan.yaml --engine builtin --duration 30 -o json
`,
    )
    .action(action(loadRun));
}

async function loadRun(file: string, o: RunFlags, cmd: Command): Promise<number> {
  await loadEngine();
  const { output } = globalOptions(cmd);
  checkOutputPaths([
    { flag: '--results', path: o.results },
    { flag: '--junit', path: o.junit },
    { flag: '--html', path: o.html },
    { flag: '--properties', path: o.properties, createsFolders: true },
  ]);
  const plan = loadPlan(file);
  const remote = o.remote;
  const expected = expectedSamples(
    effectivePlan(plan, { durationS: o.duration }),
    Math.max(1, remote?.length ?? 0),
  );
  const controller = new AbortController();
  const onSigint = () => {
    note('interrupt: stopping the load, then reporting what was sent (Ctrl-C again to abort at once)');
    controller.abort();
    process.once('SIGINT', () => process.exit(ExitCode.interrupted));
  };
  process.once('SIGINT', onSigint);
  const progress = progressReporter(expected?.total, o.duration ?? plan.durationS);
  let tail: { stop(): void } | undefined;
  let run;
  try {
    run = await runLoadDetailed(plan, {
      runId: o.runId,
      onStart: ({ jtl }) => {
        if (o.streamResults)
          tail = tailFile(jtl, (line) => process.stdout.write(`${STREAMED_LINE_PREFIX}${line}\n`));
      },
      engine: o.engine,
      remote,
      resultsFile: o.results,
      overwrite: o.force,
      durationS: o.duration,
      target: o.target,
      jmeterHome: o.jmeterHome,
      signal: controller.signal,
      onProgress: progress.update,
    });
  } finally {
    tail?.stop();
    progress.stop();
    process.removeListener('SIGINT', onSigint);
  }
  const { result, analysis } = run;
  note(
    `${result.engine} run: ${result.summary.total.count} samples in ${((result.endedAt - result.startedAt) / 1000).toFixed(1)}s, results in ${result.jtlPath}`,
  );
  if (result.countProblem) note(`results incomplete: ${result.countProblem}`);
  const report = buildReport(result.jtlPath, analysis, {
    criteria: plan.criteria,
    expected:
      result.expected !== undefined
        ? { total: result.expected, byLabel: result.expectedByLabel ?? {} }
        : undefined,
    interrupted: result.interrupted,
  });
  printResult(
    output,
    { engine: result.engine, startedAt: result.startedAt, endedAt: result.endedAt, ...report },
    () => renderText(report),
  );
  await writeReports(report, o, analysis);
  const exitCode = result.interrupted ? ExitCode.interrupted : report.passed ? 0 : ExitCode.failed;
  if (o.properties) writeRunProperties(o.properties, result, exitCode, o.junit);
  return exitCode;
}

/** The run as a Jenkins `propertyFile`; a plan run has no release, so that key is left out rather than written empty. */
function writeRunProperties(
  file: string,
  result: Awaited<ReturnType<TJmeterIndex['runLoadDetailed']>>['result'],
  exitCode: number,
  junit: string | undefined,
): void {
  const t = result.summary.total;
  const summary = `${t.count} requests with ${result.engine}, ${(t.errorRate * 100).toFixed(2)}% errors, p95 ${Math.round(t.p95)} ms`;
  const props = {
    ...stageProperties({
      action: 'load',
      release: '',
      exitCode,
      status: statusForExitCode(exitCode),
      summary,
      junit,
      extra: {
        CLOVER_CD_REQUESTS: t.count,
        CLOVER_CD_ERROR_RATE: t.errorRate,
        CLOVER_CD_JTL: result.jtlPath,
      },
    }),
    CLOVER_CD_RELEASE: undefined,
  };
  writeProperties(file, props);
}

interface ServerFlags {
  port: number;
  localPort: number;
  hostname: string;
  jmeterHome?: string;
}

function registerLoadServer(load: Command): void {
  load
    .command('server')
    .description(
      'run a JMeter engine (jmeter-server) in the foreground for `load run --remote`, started as `load run` starts JMeter',
    )
    .option('--port <n>', 'RMI registry port the controller connects to', port('--port'), 1099)
    .option(
      '--local-port <n>',
      "the engine's own RMI port (fixed, so a Service or firewall can admit it)",
      port('--local-port'),
      50000,
    )
    .option(
      '--hostname <name>',
      'the name or address controllers reach this engine by (java.rmi.server.hostname)',
      '127.0.0.1',
    )
    .option('--jmeter-home <dir>', 'JMeter installation (default: $JMETER_HOME, PATH, /usr/share/jmeter)')
    .addHelpText(
      'after',
      `
Each engine runs the whole plan the controller sends, so load = engines x plan. The engines of
\`load render --kubernetes\` run this command. Exit 130 when stopped (SIGTERM, Ctrl-C), 4 when JMeter is
missing or cannot start, else JMeter's own exit code.

Examples:
  clover-cd load server --port 1099 --local-port 50000 --hostname 10.0.0.5
  clover-cd load run plan.yaml --engine jmeter --remote 10.0.0.5:1099 --results run.jtl   # on the controller
`,
    )
    .action(action(loadServer));
}

async function loadServer(o: ServerFlags): Promise<number> {
  await loadEngine();
  if (!/^[A-Za-z0-9.:-]+$/.test(o.hostname))
    throw new InvalidInputError(`--hostname must be a host name or address, got "${o.hostname}"`);
  const controller = new AbortController();
  const stop = onInterrupt((why) => {
    note(`${why}: stopping jmeter-server`);
    controller.abort();
  });
  try {
    return await serveEngine({
      port: o.port,
      localPort: o.localPort,
      hostname: o.hostname,
      jmeterHome: o.jmeterHome,
      signal: controller.signal,
    });
  } finally {
    stop();
  }
}

interface ReportFlags {
  plan?: string;
  engines: number;
  junit?: string;
  html?: string;
}

function registerLoadReport(load: Command): void {
  load
    .command('report')
    .description(
      'statistics of a JTL (with or without a header line), expected counts and criteria of a plan',
    )
    .argument('<jtl>', 'JMeter results file (CSV)')
    .option('--plan <file>', 'plan whose criteria and expected counts apply')
    .option('--engines <n>', 'engines that ran the plan (distributed mode)', engines('--engines'), 1)
    .option('--junit <file>', 'write JUnit XML')
    .option(
      '--html <file>',
      'write an HTML report: throughput, errors and latency percentiles over time, per label (self-contained)',
    )
    .addHelpText(
      'after',
      `
Exit 0 when the plan's criteria pass (or there are none), 1 when one trips, 2 when the file cannot be read.

Examples:
  clover-cd load report run.jtl
  clover-cd load report run.jtl --plan examples/jmeter_testplan.yaml --output json
  clover-cd load report run.jtl --plan plan.yaml --junit load.xml --html load.html
`,
    )
    .action(action(loadReport));
}

async function loadReport(jtl: string, o: ReportFlags, cmd: Command): Promise<number> {
  await loadEngine();
  const { output } = globalOptions(cmd);
  checkOutputPaths([
    { flag: '--junit', path: o.junit },
    { flag: '--html', path: o.html },
  ]);
  if (!existsSync(jtl)) throw new InvalidInputError(`cannot read ${jtl}: no such file`);
  const plan = o.plan ? loadPlan(o.plan) : undefined;
  const userAgentByLabel = Object.fromEntries(
    (plan?.requests ?? []).filter((r) => r.userAgent).map((r) => [r.label, r.userAgent!]),
  );
  const analysis = await analyzeJtl(jtl, { userAgentByLabel, requireSamples: true });
  const report = buildReport(jtl, analysis, {
    criteria: plan?.criteria,
    expected: plan ? expectedSamples(plan, o.engines) : undefined,
  });
  printResult(output, report, renderText);
  await writeReports(report, o, analysis);
  return report.passed ? 0 : ExitCode.failed;
}

export function register(program: Command): void {
  const load = program
    .command('load')
    .description('JMeter load: render plans to .jmx, run them (JMeter or builtin engine), report JTL results')
    .addHelpText(
      'after',
      `
Plans use Clover's jmeter_testplan.yaml form (load_spec + url_list), with optional headers, body, think_time,
throughput, timeout, assert and criteria. See src/jmeter/README.md.

Examples:
  clover-cd load render examples/jmeter_testplan.yaml -o plan.jmx
  clover-cd load run examples/jmeter_testplan.yaml --target http://127.0.0.1:8080 --results run1.jtl
  clover-cd load report run1.jtl --plan examples/jmeter_testplan.yaml --junit load.xml
`,
    );
  for (const registerSub of [registerLoadRender, registerLoadRun, registerLoadServer, registerLoadReport])
    registerSub(load);
}
