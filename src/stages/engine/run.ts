/**
 * `release run` as a host of the engine: a loop that asks the state machine for the next action and has
 * the engine perform it, re-reading the state stored with the routes before each one — so a run killed at
 * any point (even SIGKILL) is resumed by running the same command again, and `release abort` from another
 * shell is seen at the next action. An interrupt (the signal) stops the load at once, rolls back and ends
 * with exit 130.
 */
import { exitCodeOf, initialState, isActive, nextAction, type ReleaseState } from '../../canary/index.js';
import type { Platform } from '../../services/platform.js';
import type { ReleaseSpec } from '../../spec/types.js';
import { InterruptedError } from '../../util/errors.js';
import { planFor, ReleaseEngine } from './engine.js';
import type { EngineOptions } from './types.js';

export interface RunReleaseOptions extends EngineOptions {
  autoApprove?: boolean;
  /** Start again after a finished (promoted or rolled back) run of the same candidate, or after a rollback left half-way (finished first). */
  restart?: boolean;
  /** Asked at a judgment step when not auto-approving; without it (or when it answers undefined) the run stops there (exit 3). */
  judge?: (step: number, state: ReleaseState) => Promise<boolean | undefined>;
}

export interface ReleaseResult {
  exitCode: number;
  release: string;
  state: ReleaseState;
  resumed: boolean;
  message: string;
  /** Set when the run stopped (exit 3) at a judgment nobody answered: the 0-based step waiting for approval. */
  awaitingJudgment?: number;
}

const result = (
  engine: ReleaseEngine,
  state: ReleaseState,
  resumed: boolean,
  message?: string,
  exitCode = exitCodeOf(state),
): ReleaseResult => ({
  exitCode,
  release: engine.plan.release,
  state,
  resumed,
  message: message ?? state.reason ?? state.phase,
});

export async function runRelease(
  platform: Platform,
  spec: ReleaseSpec,
  opts: RunReleaseOptions = {},
): Promise<ReleaseResult> {
  planFor(spec, opts.file); // exit 2, nothing changed, when a step cannot reach minSamples
  const engine = new ReleaseEngine(platform, spec, opts);
  const signal = opts.signal;
  let start: Awaited<ReturnType<ReleaseEngine['prepare']>>;
  try {
    start = await engine.prepare({ restart: opts.restart });
  } catch (err) {
    if (!signal?.aborted) throw err;
    throw new InterruptedError('interrupted while preparing the release: no traffic was moved');
  }
  if (opts.restart && start.state.phase === 'rollingBack') {
    // Asked to release again while a rollback was left half-way (a killed run, a rollback that stopped with
    // an error): finish it — traffic back on stable, checked — then start again, as asked.
    const rb = await engine.rollback();
    if (rb.state.phase !== 'rolledBack')
      return result(
        engine,
        rb.state,
        false,
        `the unfinished rollback could not be verified, so the release was not started again: ${rb.state.reason ?? rb.state.phase}`,
      );
    start = await engine.prepare({ restart: true });
  }
  if (start.finished) {
    const s = start.state;
    return result(
      engine,
      s,
      false,
      `release ${engine.plan.release} already ${s.phase}${s.reason ? `: ${s.reason}` : ''} (run with --restart to release again)`,
    );
  }
  if (start.state.held) start.state = await engine.resume();
  opts.onEvent?.({
    type: 'start',
    release: engine.plan.release,
    strategy: engine.plan.strategy,
    steps: engine.plan.steps.map((s) => ({ kind: s.kind, weight: s.weight })),
    resumed: start.resumed,
    state: start.state,
    samples: engine.samplePlan(),
  });

  for (let guard = 0; guard < 1000; guard++) {
    // The stored state is the truth: another process (release abort, traffic set) may have moved it.
    let state = (await engine.state()) ?? start.state;
    if (signal?.aborted && isActive(state) && state.phase !== 'rollingBack')
      state = await engine.abort('interrupted');
    const action = nextAction(engine.plan, state);
    opts.onEvent?.({ type: 'state', state });
    try {
      switch (action.kind) {
        case 'shift':
          await engine.shift(action.step);
          break;
        case 'analyze':
          await engine.analyze(action.step);
          break;
        case 'awaitJudgment': {
          const approved = opts.autoApprove
            ? true
            : opts.judge
              ? await opts.judge(action.step, state)
              : undefined;
          if (approved === undefined) {
            return {
              ...result(
                engine,
                state,
                start.resumed,
                `step ${action.step + 1} passed and waits for approval: re-run with --approve ${action.step + 1} (or --auto-approve) to go on, or run \`clover-cd release abort\` to roll back`,
                3,
              ),
              awaitingJudgment: action.step,
            };
          }
          await engine.decide(approved);
          break;
        }
        case 'advance':
          await engine.decide(true);
          break;
        case 'promote':
          await engine.promote();
          break;
        case 'rollback':
          await engine.rollback();
          break;
        case 'hold':
          return result(
            engine,
            state,
            start.resumed,
            `${state.reason ?? `holding at step ${action.step + 1}`}`,
            3,
          );
        case 'done':
          return result(engine, state, start.resumed);
      }
    } catch (err) {
      // An action cut short by the interrupt: the next turn rolls back.
      if (!signal?.aborted) throw err;
    }
  }
  throw new InterruptedError('the release loop did not finish within 1000 actions');
}

/** `release abort`: roll back now (from any process), verify, and record why. */
export async function abortRelease(
  platform: Platform,
  spec: ReleaseSpec,
  opts: EngineOptions & { reason?: string } = {},
): Promise<ReleaseResult> {
  const engine = new ReleaseEngine(platform, spec, opts);
  const before = await engine.state();
  if (!before || (!isActive(before) && before.phase !== 'failed')) {
    const message = before
      ? `nothing to abort: release ${before.release} is ${before.phase}${before.phase === 'promoted' ? ' (clover-cd traffic rollback moves traffic back by hand)' : ''}`
      : 'nothing to abort: no release state is recorded with the routes';
    return result(
      engine,
      before ?? initialState(engine.plan, spec.service.candidate, new Date()),
      false,
      message,
      0,
    );
  }
  if (isActive(before) && before.phase !== 'rollingBack')
    await engine.abort(opts.reason ?? 'aborted by the user');
  const { state } = await engine.rollback();
  return result(engine, state, false, undefined, state.phase === 'rolledBack' ? 0 : exitCodeOf(state));
}

export async function releaseStatus(
  platform: Platform,
  spec: ReleaseSpec,
): Promise<{
  exitCode: number;
  release: string;
  plan: ReleaseEngine['plan'];
  state?: ReleaseState;
  routes: Awaited<ReturnType<ReleaseEngine['observe']>>['routes'];
}> {
  const engine = new ReleaseEngine(platform, spec);
  const snap = await engine.observe();
  const state = snap.state && snap.state.release === engine.plan.release ? snap.state : undefined;
  return { exitCode: 0, release: engine.plan.release, plan: engine.plan, state, routes: snap.routes };
}
