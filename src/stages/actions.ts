import { statusForExitCode, exitCodeForOutcome } from '../contract/index.js';
import type { Platform } from '../services/platform.js';
import type { ReleaseSpec } from '../spec/types.js';
import { InvalidInputError, type InputProblem } from '../util/errors.js';
import { parseDurationMs } from '../util/units.js';
import { ReleaseEngine, describeRollbackCheck, describeState, type ReleaseProgress } from './engine/index.js';
import { buildPlan, stepProblem, type ReleasePlan, type ReleaseState } from '../canary/index.js';
import type { StageAction } from '../contract/index.js';
import {
  JobStopped,
  type StageFunction,
  type StageOutcome,
  type StageParams,
  type StageRegistry,
} from './action-types.js';

/**
 * The stage actions the stage server (and `clover-cd stage`, and the local pipeline runner) runs: each is
 * one action of the release engine, so a pipeline only schedules what `release run` does. The load action's
 * window is kept with the release state; the gate action judges that window, so Spinnaker's separate Load
 * and Gate stages judge exactly the load that was sent, on whatever host each runs. A canceled job rolls
 * the release back.
 */
export interface BindingOptions {
  platform: Platform;
  evidenceDir?: string;
  /** The spec file, for messages (`clover-cd stage --spec`); requests carry their spec inline. */
  file?: string;
  /** How messages name `step` and `weight`: request fields (the stage server) or flags (`clover-cd stage`). */
  names?: ParamNames;
}

/** What a host calls the step and weight parameters in its messages and problem paths. */
export interface ParamNames {
  step: string;
  weight: string;
}
export const REQUEST_FIELDS: ParamNames = { step: 'step', weight: 'weight' };
export const CLI_FLAGS: ParamNames = { step: '--step', weight: '--weight' };

/**
 * The 0-based plan step a request names: `step` (1-based, what rendered pipelines send), or for older
 * pipelines a `weight` that is a step's weight. Exit 2 / HTTP 400 when it names no step of the plan;
 * `why` says why a step is needed when the request names none.
 */
export function stepOf(
  plan: ReleasePlan,
  params: StageParams,
  names: ParamNames = REQUEST_FIELDS,
  why?: string,
): number {
  const steps = plan.steps.map((s) => `${s.index + 1}: ${s.kind} ${s.weight}%`).join(', ');
  if (params.step !== undefined) {
    const problem = stepProblem(plan, params.step, names.step);
    if (problem)
      throw new InvalidInputError(`${plan.release}: ${problem}`, [{ path: names.step, message: problem }]);
    const s = plan.steps[params.step - 1];
    if (params.weight !== undefined && params.weight !== s.weight) {
      throw new InvalidInputError(
        `${names.weight} ${params.weight} differs from step ${params.step}'s weight ${s.weight}`,
        [{ path: names.weight, message: `expected ${s.weight} (or leave it out)` }],
      );
    }
    return params.step - 1;
  }
  if (params.weight !== undefined) {
    const i = plan.steps.findIndex(
      (s) => s.weight === params.weight && (s.kind === 'weight' || s.kind === 'switch'),
    );
    if (i >= 0) return i;
    throw new InvalidInputError(
      `${names.weight} ${params.weight} is not a step of release ${plan.release} (steps ${steps}); give ${names.step}`,
      [{ path: names.weight, message: 'expected the weight of a plan step' }],
    );
  }
  const expected = `expected 1..${plan.steps.length}${why ? `: ${why}` : ''}`;
  throw new InvalidInputError(
    `the action needs ${names.step} (1..${plan.steps.length}) for release ${plan.release}${why ? `: ${why}` : ''}`,
    [{ path: names.step, message: expected }],
  );
}

/**
 * `step` / `weight` checked against the spec's plan alone, before any platform is opened (exit 2 naming
 * them); `traffic` always needs one (load and gate may continue the step the release stands at).
 */
export function checkStepParams(
  action: StageAction,
  spec: ReleaseSpec,
  params: StageParams,
  names: ParamNames = REQUEST_FIELDS,
): void {
  if (namesStep(params) || action === 'traffic') stepOf(buildPlan(spec), params, names);
}

/** The 0-based step the release stands at, when a release is in progress: what an action without a step continues. */
function currentStep(s: ReleaseState | undefined): number | undefined {
  return s && s.step >= 0 && !['promoted', 'rolledBack', 'failed'].includes(s.phase) ? s.step : undefined;
}

const noCurrentStep = (s: ReleaseState | undefined) =>
  `no step was given and ${s ? `the release is ${describeState(s)}` : 'the release has not started'}, so there is no current step to continue`;

/** The step an action runs: the one the request names, else (by hand) the step the release stands at in `s`. */
function stepFor(
  plan: ReleasePlan,
  params: StageParams,
  s: ReleaseState | undefined,
  names?: ParamNames,
): number {
  if (namesStep(params)) return stepOf(plan, params, names);
  return currentStep(s) ?? stepOf(plan, params, names, noCurrentStep(s));
}

const namesStep = (params: StageParams) => params.step !== undefined || params.weight !== undefined;
const resolveStep = async (engine: ReleaseEngine, params: StageParams, names?: ParamNames): Promise<number> =>
  stepFor(engine.plan, params, namesStep(params) ? undefined : await engine.state(), names);

/** The engine action each stage action needs a release in progress for. */
const NEEDS_RELEASE: Partial<Record<StageAction, 'shift' | 'analyze' | 'promote'>> = {
  traffic: 'shift',
  load: 'analyze',
  gate: 'analyze',
  promote: 'promote',
};

/**
 * What an action needs from the release as its routes record it, checked before the stage server answers
 * 202: the step to act on (given, or the current one) and a release in progress. Problems are exit 2 /
 * HTTP 400 with the field; a platform that cannot be read now is left to the job, which reports it.
 */
export function stageAdmission(opts: Pick<BindingOptions, 'platform'>) {
  return async (action: StageAction, spec: ReleaseSpec, params: StageParams): Promise<InputProblem[]> => {
    const want = NEEDS_RELEASE[action];
    if (!want) return [];
    const engine = new ReleaseEngine(opts.platform, spec, { runId: params.execution?.id });
    let s: ReleaseState | undefined;
    try {
      s = await engine.state();
    } catch {
      return [];
    }
    try {
      const k = want === 'promote' ? undefined : stepFor(engine.plan, params, s);
      const missing = engine.notInProgress(s, want, k);
      return missing ? [{ path: namesStep(params) ? 'step' : '', message: missing }] : [];
    } catch (err) {
      if (err instanceof InvalidInputError) return err.problems;
      throw err;
    }
  };
}

/** The candidate weight of the step a request names (for stage outputs such as CLOVER_CD_WEIGHT). */
export function weightOfRequest(spec: ReleaseSpec, params: StageParams): number | undefined {
  if (params.step === undefined) return params.weight;
  return buildPlan(spec).steps[params.step - 1]?.weight ?? params.weight;
}

/** One line of job progress per engine event. */
function progressLine(e: ReleaseProgress): string | undefined {
  switch (e.type) {
    case 'ready':
      return `waiting for ${e.workload}: ${e.message}`;
    case 'shift':
      return `step ${e.step + 1}: ${e.weight}% shifted`;
    case 'load':
      return `load: ${e.sent} requests sent, ${e.errors} errors, ${Math.round(e.elapsedS)}s`;
    case 'window':
      return `step ${e.step + 1}: ${e.observed} of ${e.planned} planned candidate requests after ${Math.round(e.elapsedMs / 1000)}s${e.closed ? ' (window closed)' : ''}`;
    case 'verdict':
      return `step ${e.step + 1}: ${e.summary}`;
    case 'split':
      return `step ${e.step + 1}: observed ${e.candidate} candidate / ${e.stable} stable requests (${e.outcome})`;
    case 'rollback':
      return `rolled back: ${e.verified}`;
    default:
      return undefined;
  }
}

/**
 * A job stopped because its replica shuts down or lost its lease is handed over (another replica runs it
 * again); any other stop — a cancel from Orca, Ctrl-C on `clover-cd stage` — is an interrupt: roll back.
 */
const wasCanceled = (signal: AbortSignal) =>
  signal.aborted && !(signal.reason instanceof JobStopped && signal.reason.handedOver);

const routesLine = (spec: ReleaseSpec, s: ReleaseState) =>
  `${describeState(s)}: ${spec.service.stable} ${100 - s.weight}% / ${spec.service.candidate} ${s.weight}%`;

export function stageRegistry(opts: BindingOptions): StageRegistry {
  /** Every action runs through a fresh engine for its spec; a canceled job rolls the release back. */
  const bind =
    (act: (engine: ReleaseEngine, params: StageParams) => Promise<StageOutcome>): StageFunction =>
    async (spec, params, signal, progress) => {
      const engine = new ReleaseEngine(opts.platform, spec, {
        file: opts.file,
        evidenceDir: opts.evidenceDir,
        signal,
        runId: params.execution?.id,
        onEvent: (e) => {
          const line = progressLine(e);
          if (line) progress(line);
        },
      });
      try {
        return await act(engine, params);
      } catch (err) {
        if (!wasCanceled(signal)) throw err;
        progress('canceled: rolling back to stable');
        const rb = await new ReleaseEngine(opts.platform, spec, {
          file: opts.file,
          runId: params.execution?.id,
        }).rollback({ reason: 'the pipeline was canceled' });
        return { status: 'CANCELED', message: `canceled; ${routesLine(spec, rb.state)}` };
      }
    };

  return {
    deploy: bind(async (engine) => {
      const r = await engine.prepare({ restart: true });
      const plan = engine
        .samplePlan()
        .map((p) => `step ${p.step + 1} needs ${p.candidate} candidate requests`);
      return {
        status: 'SUCCEEDED',
        message: `release ${engine.plan.release} ${r.resumed ? 'resumed' : 'prepared'}: ${routesLine(engine.spec, r.state)}${plan.length ? `; ${plan.join(', ')}` : ''}`,
      };
    }),
    traffic: bind(async (engine, params) => {
      const state = await engine.shift(stepOf(engine.plan, params, opts.names));
      return { status: 'SUCCEEDED', message: routesLine(engine.spec, state) };
    }),
    load: bind(async (engine, params) => {
      const k = await resolveStep(engine, params, opts.names);
      // The engine keeps the window with the release state: the gate action judges it, whichever host runs it.
      const w = await engine.runLoad(k, {
        windowMs: params.window ? parseDurationMs(params.window) : undefined,
      });
      if (wasCanceled(engine.opts.signal!)) throw new Error('canceled');
      const t = w.load?.summary.total;
      return {
        status: 'SUCCEEDED',
        message: t
          ? `${t.count} requests sent with ${w.load!.engine} (${(t.errorRate * 100).toFixed(2)}% errors, p95 ${Math.round(t.p95)} ms)`
          : `observed ${Math.round((w.end - w.window.start) / 1000)}s of traffic`,
        reports: w.load?.jtlPath ? { jtl: w.load.jtlPath } : undefined,
      };
    }),
    gate: bind(async (engine, params) => {
      const k = await resolveStep(engine, params, opts.names);
      const r = await engine.analyze(k);
      return {
        status: statusForExitCode(exitCodeForOutcome(r.outcome)),
        verdict: { outcome: r.outcome, summary: r.summary, results: r.results },
        message: r.summary,
        reports: r.bundlePath ? { evidence: r.bundlePath } : undefined,
      };
    }),
    promote: bind(async (engine) => {
      const state = await engine.promote();
      return { status: 'SUCCEEDED', message: routesLine(engine.spec, state) };
    }),
    rollback: bind(async (engine) => {
      const { state, observed } = await engine.rollback({ reason: 'rolled back by the pipeline' });
      return state.phase === 'failed'
        ? { status: 'ERROR', message: state.reason }
        : {
            status: 'SUCCEEDED',
            message: `${routesLine(engine.spec, state)}; ${describeRollbackCheck(engine.spec, state, observed)}`,
          };
    }),
  };
}
