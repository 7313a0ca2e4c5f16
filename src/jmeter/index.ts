import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { InvalidInputError } from '../util/errors.js';
import { runBuiltin } from './builtin-engine.js';
import { findJMeter, requireJMeter, runJMeter } from './jmeter-runner.js';
import { analyzeJtl, type JtlAnalysis } from './jtl.js';
import { expectedSamples, newRunId, withDuration, withLoadTag, withTarget } from './plan.js';
import { renderJmx } from './render.js';
import type { LoadPlan, LoadRunResult, RunLoadOptions } from './types.js';

export {
  loadPlan,
  planFromDocument,
  withTarget,
  withDuration,
  expectedSamples,
  withLoadTag,
  newRunId,
  LOAD_HEADER,
} from './plan.js';
export { analyzeJtl, summarizeJtl, JTL_COLUMNS, JMETER_3_DEFAULT, type JtlAnalysis } from './jtl.js';
export { jtlSeries, type JtlSeries, type SeriesPoint } from './jtl-series.js';
export { renderJmx } from './render.js';
export {
  renderKubernetes,
  kubernetesObjects,
  LOAD_RELEASE_LABEL,
  LOAD_STEP_LABEL,
  loadObjectsName,
  type KubeDocument,
} from './kubernetes.js';
export { tailFile, StreamedJtl, STREAMED_LINE_PREFIX } from './jtl-stream.js';
export { evaluateCriteria, parseCriterion, type CriterionResult } from './criteria.js';
export {
  buildReport,
  renderJunit,
  renderHtml,
  renderText,
  STATS_COLUMNS,
  statsRow,
  type LoadReport,
} from './report.js';
export { findJMeter, requireJMeter, jmeterServerArgs, launcherDir, serveEngine } from './jmeter-runner.js';
export type * from './types.js';

/** Prepare the results file: never append to an old one silently. */
function resultsPath(opts: RunLoadOptions): string {
  if (!opts.resultsFile) return join(mkdtempSync(join(tmpdir(), 'clover-cd-load-')), 'results.jtl');
  const file = resolve(opts.resultsFile);
  if (existsSync(file)) {
    if (!opts.overwrite) {
      throw new InvalidInputError(
        `${opts.resultsFile} already exists; results are never appended to an old file`,
        [
          {
            file: opts.resultsFile,
            path: '',
            message: 'choose another --results file, or pass --force to overwrite it',
          },
        ],
      );
    }
    rmSync(file);
  }
  mkdirSync(dirname(file), { recursive: true });
  return file;
}

/** The plan as it will run: target origin and duration override applied, bounded. */
export function effectivePlan(plan: LoadPlan, opts: Pick<RunLoadOptions, 'target' | 'durationS'>): LoadPlan {
  return withDuration(opts.target ? withTarget(plan, opts.target) : plan, opts.durationS);
}

/** Run a plan and analyze its results; `runLoad` is this without the analysis handle. */
export async function runLoadDetailed(
  plan: LoadPlan,
  opts: RunLoadOptions = {},
): Promise<{ result: LoadRunResult; analysis: JtlAnalysis; plan: LoadPlan }> {
  const runId = opts.runId ?? newRunId();
  const p = withLoadTag(effectivePlan(plan, opts), runId);
  const remote = opts.remote?.filter(Boolean) ?? [];
  let engine: 'jmeter' | 'builtin';
  if (opts.engine === 'builtin') {
    if (remote.length)
      throw new InvalidInputError(
        "--remote needs the jmeter engine (distributed mode is JMeter's own); drop --engine builtin",
      );
    engine = 'builtin';
  } else if (opts.engine === 'jmeter' || remote.length) {
    requireJMeter(opts.jmeterHome);
    engine = 'jmeter';
  } else engine = findJMeter(opts.jmeterHome) ? 'jmeter' : 'builtin';

  const jtl = resultsPath(opts);
  const startedAt = Date.now();
  let interrupted: boolean;
  let reported: number | undefined;
  if (engine === 'jmeter') {
    const stem = join(dirname(jtl), basename(jtl).replace(/\.jtl$/i, ''));
    const jmx = `${stem}.jmx`;
    writeFileSync(jmx, renderJmx(p));
    const log = `${stem}.jmeter.log`;
    const onSpawn = (pid: number) => opts.onStart?.({ pid, engine: 'jmeter', jtl, log });
    ({ interrupted, reported } = await runJMeter({
      jmx,
      jtl,
      log,
      remote,
      jmeterHome: opts.jmeterHome,
      signal: opts.signal,
      onProgress: opts.onProgress,
      onSpawn,
    }));
  } else {
    opts.onStart?.({ pid: process.pid, engine: 'builtin', jtl });
    ({ interrupted } = await runBuiltin(p, { jtl, signal: opts.signal, onProgress: opts.onProgress }));
  }
  const endedAt = Date.now();
  const { result, analysis } = await resultOfRun(p, {
    engine,
    runId,
    jtl,
    startedAt,
    endedAt,
    interrupted,
    reported,
    engineHosts: remote,
  });
  return { result, analysis, plan: p };
}

/**
 * What a run's JTL says, against what the plan (as it ran: tagged, target and duration applied) sends with
 * that many engines: the local runners and a controller whose JTL was streamed back from a cluster.
 */
export async function resultOfRun(
  p: LoadPlan,
  r: {
    engine: 'jmeter' | 'builtin';
    runId: string;
    jtl: string;
    startedAt: number;
    endedAt: number;
    interrupted: boolean;
    reported?: number;
    engineHosts: string[];
  },
): Promise<{ result: LoadRunResult; analysis: JtlAnalysis }> {
  const userAgentByLabel = Object.fromEntries(
    p.requests.filter((q) => q.userAgent).map((q) => [q.label, q.userAgent!]),
  );
  const analysis = await analyzeJtl(r.jtl, { userAgentByLabel });
  const remote = r.engineHosts;
  const engines = Math.max(1, remote.length);
  const expected = expectedSamples(p, engines);
  const result: LoadRunResult = {
    engine: r.engine,
    runId: r.runId,
    jtlPath: r.jtl,
    startedAt: r.startedAt,
    endedAt: r.endedAt,
    expected: expected?.total,
    expectedByLabel: expected?.byLabel,
    summary: analysis.summary,
    interrupted: r.interrupted || undefined,
    engines: remote.length ? engines : undefined,
    engineHosts: remote.length ? remote : undefined,
  };
  const problem = countProblem(result, r.reported, p.durationS);
  if (problem) result.countProblem = problem;
  return { result, analysis };
}

/**
 * A run whose results do not hold what was sent is reported, never silently accepted: JMeter's own count
 * against the JTL's rows (a file read before it was complete), and the plan's count against the rows.
 */
export function countProblem(
  r: Pick<LoadRunResult, 'expected' | 'summary' | 'interrupted'>,
  reported: number | undefined,
  durationS?: number,
): string | undefined {
  const received = r.summary.total.count;
  const problems: string[] = [];
  if (reported !== undefined && reported !== received)
    problems.push(`JMeter counted ${reported} samples, the results file holds ${received}`);
  if (r.expected !== undefined && r.expected !== received) {
    const why = r.interrupted
      ? ' (the run was interrupted)'
      : durationS && received < r.expected
        ? ` (the plan's ${durationS}s duration ended the run first)`
        : '';
    problems.push(`received ${received} of the ${r.expected} samples the plan sends${why}`);
  }
  return problems.length ? problems.join('; ') : undefined;
}

/** Run a load plan. Unreachable targets are recorded as failed samples, not errors. */
export async function runLoad(plan: LoadPlan, opts: RunLoadOptions = {}): Promise<LoadRunResult> {
  return (await runLoadDetailed(plan, opts)).result;
}
