import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import type { Platform } from '../../services/platform.js';
import type { ReleaseSpec } from '../../spec/types.js';
import type { PlatformChoice, ReleaseProgress, ReleaseResult } from '../../stages/index.js';
import { formatProblem } from '../../util/errors.js';
import { formatDuration } from '../../util/units.js';
import { checkOutputPaths } from '../output-paths.js';
import { parseDurationMs } from '../../util/units.js';
import { parseDurationFlag } from '../flags.js';
import { action, globalOptions } from '../context.js';
import { note, printResult, table } from '../output.js';
import { AWAITING_JUDGMENT, PHASE_PROPERTY, STEP_PROPERTY } from '../../contract/index.js';
import { parseIntegerFlag } from '../flags.js';
import { platformOptions } from './traffic.js';
import { onInterrupt } from '../interrupt.js';

/** The engine loads when a verb runs, not for --help (the Kubernetes client alone takes about a second). */
async function engine() {
  const [{ loadSpec }, stages, { stageProperties, writeProperties }, { statusForExitCode }] =
    await Promise.all([
      import('../../spec/load.js'),
      import('../../stages/index.js'),
      import('../../stages/properties.js'),
      import('../../server/jobs.js'),
    ]);
  return { loadSpec, ...stages, stageProperties, writeProperties, statusForExitCode };
}

/** One stderr line per thing a person watching the release wants to see. */
function liveView(): (e: ReleaseProgress) => void {
  let lastLoad = 0;
  let steps: Array<{ kind: string; weight: number }> = [];
  const paced = new Set<number>();
  const label = (i: number) => `step ${i + 1}/${steps.length} (${steps[i]?.kind} ${steps[i]?.weight}%)`;
  return (e) => {
    switch (e.type) {
      case 'start':
        steps = e.steps;
        note(
          `release ${e.release}: ${e.strategy}, ${steps.map((s) => `${s.kind} ${s.weight}%`).join(' → ')}${e.resumed ? ` — resuming at ${e.state.phase}, step ${e.state.step + 1}` : ''}`,
        );
        for (const p of e.samples) {
          note(
            `  ${label(p.step)}: a healthy canary decides after ~${p.candidate} candidate requests${p.total !== undefined ? ` (${p.total} in total)` : ''}; window ${formatDuration(p.windowMs)} at least (a regression fails it sooner), up to ${formatDuration(p.maxWindowMs)} until the rules decide; fails a healthy canary with probability ≤ ${+(p.alpha * 100).toPrecision(2)}% (its part of gate.alpha)`,
          );
        }
        break;
      case 'window':
        if (!e.closed && !paced.has(e.step) && e.observed >= 20 && e.elapsedMs >= 5000 && e.planned > 0) {
          // Once the rate is known: when a healthy canary is expected to decide (a regression decides sooner).
          paced.add(e.step);
          const perS = (e.observed * 1000) / e.elapsedMs;
          note(
            `${label(e.step)}: ${perS.toFixed(1)} candidate requests/s: a healthy canary decides in ~${formatDuration(Math.max(0, (e.planned / perS) * 1000 - e.elapsedMs))} more (plan ~${e.planned})`,
          );
        }
        if (e.closed) {
          const rate = e.elapsedMs > 0 ? (e.observed * 1000) / e.elapsedMs : 0;
          note(
            `${label(e.step)}: window closed after ${formatDuration(e.elapsedMs)} with ${e.observed} candidate requests (${rate.toFixed(1)}/s; plan ~${e.planned}): ${e.decision ? `the rules decided ${e.decision.toUpperCase()}` : 'no decision yet at the longest window'}`,
          );
        }
        break;
      case 'ready':
        note(`waiting for ${e.workload}: ${e.message}`);
        break;
      case 'shift':
        note(`${label(e.step)}: traffic shifted to ${e.weight}% (${Math.round(e.ms)} ms)`);
        break;
      case 'load':
        if (Date.now() - lastLoad > 2000) {
          lastLoad = Date.now();
          note(
            `${label(e.step)}: load ${e.sent} requests, ${e.errors} errors, ${formatDuration(e.elapsedS * 1000)}`,
          );
        }
        break;
      case 'verdict':
        note(
          `${label(e.step)}: verdict ${e.outcome.toUpperCase()} — ${e.summary}${e.bundlePath ? ` (evidence ${e.bundlePath})` : ''}`,
        );
        break;
      case 'split':
        note(
          `${label(e.step)}: observed ${e.candidate} candidate / ${e.stable} stable requests (weight ${e.weight}%): ${e.outcome}`,
        );
        break;
      case 'judgment':
        note(`${label(e.step)}: ${e.approved ? 'approved' : 'rejected'}`);
        break;
      case 'promote':
        note(`promoted: 100% to the candidate (${Math.round(e.ms)} ms)`);
        break;
      case 'rollback':
        note(`rolled back${e.reason ? ` (${e.reason})` : ''}: ${e.verified} (${Math.round(e.ms)} ms)`);
        break;
    }
  };
}

const renderResult = (r: ReleaseResult) =>
  [
    `release ${r.release}: ${r.state.phase}${r.resumed ? ' (resumed)' : ''}`,
    `  ${r.message}`,
    r.state.lastVerdict
      ? `  last verdict: ${r.state.lastVerdict.outcome} at step ${r.state.lastVerdict.step + 1} — ${r.state.lastVerdict.summary}`
      : '',
  ]
    .filter(Boolean)
    .join('\n');

async function ask(step: number): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const a = await rl.question(`step ${step + 1} passed. Go on? [y/N] `);
    return /^y(es)?$/i.test(a.trim());
  } finally {
    rl.close();
  }
}

interface RunFlags extends PlatformChoice {
  autoApprove?: boolean;
  restart?: boolean;
  evidenceDir?: string;
  properties?: string;
  approve?: string;
}

function registerReleaseRun(release: Command): void {
  platformOptions(
    release
      .command('run', { isDefault: true })
      .description('run (or resume) the release of a spec')
      .argument('<spec>', 'release spec')
      .option('--auto-approve', 'approve judgment steps without asking')
      .option(
        '--restart',
        'start again after a finished run of the same candidate (a rollback left half-way is finished first)',
      )
      .option('--evidence-dir <dir>', 'where evidence bundles are written')
      .option(
        '--properties <file>',
        'also write the outcome as a key=value file (Spinnaker Jenkins stage `propertyFile`)',
      )
      .option(
        '--approve <step>',
        'approve the judgment pending at this 1-based step (once), then go on; stops again at the next judgment',
      )
      .addHelpText(
        'after',
        `
Exit 0 promoted, 1 rolled back on a failed gate, 3 inconclusive — or waiting for approval: then the
--properties file says ${PHASE_PROPERTY}=${AWAITING_JUDGMENT} and ${STEP_PROPERTY}=<step>; answer with
--approve <step> (or roll back with \`release abort\`) —, 4 infrastructure, 130 interrupted.

Examples:
  clover-cd release run release.yaml --auto-approve -o json
  clover-cd release run release.yaml --properties clover-cd.properties   # in CI: stops at a judgment, exit 3
  clover-cd release run release.yaml --approve 1 --properties clover-cd.properties
`,
      ),
  ).action(action(releaseRun));
}

async function releaseRun(file: string, o: RunFlags, cmd: Command): Promise<number> {
  const approveStep =
    o.approve === undefined ? undefined : parseIntegerFlag('--approve', o.approve, { min: 1 });
  const format = globalOptions(cmd).output;
  checkOutputPaths([{ flag: '--properties', path: o.properties, createsFolders: true }]);
  const { loadSpec, openPlatform, runRelease, writeProperties, stageProperties, statusForExitCode } =
    await engine();
  const loaded = loadSpec(file);
  const platform = await openPlatform(o);
  const controller = new AbortController();
  const stop = onInterrupt((why) => {
    note(
      `${why}: stopping the load and rolling back to ${loaded.spec.service.stable}… (Ctrl-C again quits at once; the next run finishes the rollback)`,
    );
    controller.abort(new Error(why));
  });
  try {
    const r = await runRelease(platform, loaded.spec, {
      autoApprove: o.autoApprove,
      restart: o.restart,
      evidenceDir: o.evidenceDir,
      file,
      signal: controller.signal,
      onEvent: liveView(),
      judge: (step) =>
        approveStep === step + 1
          ? Promise.resolve(true)
          : process.stdin.isTTY
            ? ask(step)
            : Promise.resolve(undefined),
    });
    printResult(format, r, renderResult);
    if (o.properties) {
      const v = r.state.lastVerdict;
      writeProperties(
        o.properties,
        stageProperties({
          action: 'release',
          release: r.release,
          exitCode: r.exitCode,
          status: statusForExitCode(r.exitCode),
          summary: r.message,
          weight: r.state.weight,
          verdict: v?.outcome,
          extra:
            r.awaitingJudgment !== undefined
              ? { [PHASE_PROPERTY]: AWAITING_JUDGMENT, [STEP_PROPERTY]: r.awaitingJudgment + 1 }
              : { [PHASE_PROPERTY]: r.state.phase, [STEP_PROPERTY]: r.state.step + 1 },
        }),
      );
    }
    return r.exitCode;
  } finally {
    stop();
  }
}

interface StatusFlags extends PlatformChoice {
  watch?: boolean;
  interval: string;
  timeout: string;
}

function registerReleaseStatus(release: Command): void {
  platformOptions(
    release
      .command('status')
      .description(
        'show the release state kept with the routes, however the release was run (CLI, stage server, Jenkins)',
      )
      .argument('<spec>', 'release spec')
      .option(
        '--watch',
        'follow the release live until it ends: weights, step, time left in the window, samples collected vs planned, last verdict',
      )
      .option(
        '--interval <duration>',
        'with --watch: how often the state is read',
        (v: string) => (parseDurationFlag('--interval', v), v.trim()),
        '1s',
      )
      .option(
        '--timeout <duration>',
        'with --watch: stop watching after this long (exit 3 if the release has not ended)',
        (v: string) => (parseDurationFlag('--timeout', v), v.trim()),
        '6h',
      )
      .addHelpText(
        'after',
        `
With --watch the view is redrawn in place on a terminal; without one (CI logs, pipes) one line is printed per
change (phase, step, weights, window, verdict). It ends when the release is promoted, rolled back or held (the
exit code is the release's: 0 promoted, 1 rolled back on a failed gate, 3 inconclusive or held), on Ctrl-C
(130), or after --timeout (3). Samples are counted from the shift with Prometheus; with a direct scrape, from
when the watch saw the window open ("at least").

Examples:
  clover-cd release status release.yaml -o json
  clover-cd release status release.yaml --watch
  clover-cd release status release.yaml --watch --interval 2s --timeout 30m | tee release.log
`,
      ),
  ).action(action(releaseShowStatus));
}

type Engine = Awaited<ReturnType<typeof engine>>;
type ReleaseStatus = Awaited<ReturnType<Engine['releaseStatus']>>;

async function releaseShowStatus(file: string, o: StatusFlags, cmd: Command): Promise<number> {
  const { loadSpec, openPlatform, releaseStatus, describeRollbackCheck } = await engine();
  const loaded = loadSpec(file, { files: 'optional' }); // status reads the routes only
  if (o.watch) return watch(() => openPlatform(o), loaded.spec, o);
  const r = await releaseStatus(await openPlatform(o), loaded.spec);
  const data = {
    release: r.release,
    strategy: r.plan.strategy,
    steps: r.plan.steps.map((s) => ({ kind: s.kind, weight: s.weight })),
    routes: r.routes,
    state: r.state ?? null,
  };
  printResult(globalOptions(cmd).output, data, (d) => statusText(d, loaded.spec, describeRollbackCheck));
  return 0;
}

/** `status --watch`: follows the release until it ends, a signal, or --timeout. */
async function watch(platform: () => Promise<Platform>, spec: ReleaseSpec, o: StatusFlags): Promise<number> {
  const controller = new AbortController();
  const stop = onInterrupt(() => controller.abort());
  try {
    const { watchRelease } = await import('../watch.js'); // loads the engine: only when watching
    return await watchRelease(await platform(), spec, {
      intervalMs: parseDurationMs(o.interval),
      timeoutMs: parseDurationMs(o.timeout),
      tty: Boolean(process.stdout.isTTY),
      write: (t) => void process.stdout.write(t),
      signal: controller.signal,
    });
  } finally {
    stop();
  }
}

interface StatusData {
  release: string;
  strategy: string;
  steps: Array<{ kind: string; weight: number }>;
  routes: ReleaseStatus['routes'];
  state: NonNullable<ReleaseStatus['state']> | null;
}

function statusText(
  d: StatusData,
  spec: ReleaseSpec,
  describeRollbackCheck: Engine['describeRollbackCheck'],
): string {
  if (!d.state) return `release ${d.release}: not started on this platform`;
  const s = d.state;
  return [
    `release ${d.release} (${d.strategy}): ${s.phase}, candidate ${s.weight}%`,
    table(
      ['step', 'kind', 'weight', ''],
      d.steps.map((st, i) => [
        String(i + 1),
        st.kind,
        `${st.weight}%`,
        i < s.step || s.phase === 'promoted' ? 'done' : i === s.step ? s.phase : '',
      ]),
    ),
    `routes: ${spec.service.stable} ${d.routes.stableWeight}% / ${spec.service.candidate} ${d.routes.weight}%${d.routes.matchRoute ? ' + match route' : ''}${d.routes.mirrorPercent ? ` (mirroring ${d.routes.mirrorPercent}%)` : ''}`,
    ...(s.verdicts ?? []).map((v) => `verdict step ${v.step + 1}: ${v.outcome} at ${v.at} — ${v.summary}`),
    !s.verdicts?.length && s.lastVerdict
      ? `last verdict: ${s.lastVerdict.outcome} (step ${s.lastVerdict.step + 1}) — ${s.lastVerdict.summary}`
      : '',
    s.window
      ? `window of step ${s.window.step + 1}: ${new Date(s.window.start).toISOString()} – ${new Date(s.window.end).toISOString()}${s.window.loadRunId ? `, load run ${s.window.loadRunId}` : ''}${s.window.plannedSamples !== undefined ? `, ${s.window.observedSamples ?? '?'} of ${s.window.plannedSamples} planned candidate requests` : ''}; waiting for the gate`
      : '',
    s.rollbackCheck ? `rollback: ${describeRollbackCheck(spec, s)}` : '',
    s.runId ? `run: ${s.runId}` : '',
    s.reason ? `reason: ${s.reason}` : '',
    `started ${s.startedAt}, updated ${s.updatedAt}`,
  ]
    .filter(Boolean)
    .join('\n');
}

function registerReleaseAbort(release: Command): void {
  platformOptions(
    release
      .command('abort')
      .description('roll back a release in progress (from any shell) and verify traffic is back on stable')
      .argument('<spec>', 'release spec')
      .addHelpText('after', '\nExample:\n  clover-cd release abort release.yaml\n'),
  ).action(action(releaseAbort));
}

async function releaseAbort(file: string, o: PlatformChoice, cmd: Command): Promise<number> {
  const { loadSpec, openPlatform, abortRelease } = await engine();
  const loaded = loadSpec(file, { files: 'optional' }); // a rollback never depends on the load plan
  for (const w of loaded.warnings ?? []) note(`warning: ${formatProblem(w)}`);
  const r = await abortRelease(await openPlatform(o), loaded.spec, { file });
  printResult(globalOptions(cmd).output, r, renderResult);
  return r.exitCode;
}

export function register(program: Command): void {
  const release = program
    .command('release')
    .description('run a whole release: shift → load → gate → next step, promote or roll back')
    .addHelpText(
      'after',
      `
State lives with the routes (annotation clover-cd.io/release-state on the VirtualService): if the command
is killed, running it again resumes the release (or finishes its rollback). Ctrl-C, SIGTERM or a closed
output pipe stop the load, roll back to stable and exit 130. Nothing shifts before the candidate is ready
(service.readyTimeout, default 5m; exit 4 when it is not).

Examples:
  clover-cd sandbox up --detach && clover-cd release examples/sdc-canary.yaml --auto-approve
  clover-cd release examples/sdc-canary.yaml --platform kubernetes --context prod --prometheus http://prometheus:9090
  clover-cd release status examples/sdc-canary.yaml
  clover-cd release abort examples/sdc-canary.yaml
`,
    );
  for (const registerSub of [registerReleaseRun, registerReleaseStatus, registerReleaseAbort])
    registerSub(release);
}
