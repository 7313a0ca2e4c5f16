/**
 * A release as a pure state machine. The state is small and serialisable (it lives in an annotation on
 * the VirtualService), every transition is a function of (plan, state, event), and `nextAction` tells the
 * driver what to do next — so a process killed at any point resumes from the last written state.
 */
import type { ReleasePlan } from './plan.js';

export type ReleasePhase =
  | 'initialized'
  | 'progressing'
  | 'awaitingJudgment'
  | 'promoting'
  | 'promoted'
  | 'rollingBack'
  | 'rolledBack'
  | 'failed';

export type VerdictOutcome = 'pass' | 'fail' | 'inconclusive' | 'error';

/** Why a release is rolling back, which decides the exit code once it is rolled back. */
export type RollbackCause = 'fail' | 'inconclusive' | 'abort' | 'rejected' | 'verification' | 'manual';

/** One analysis verdict as recorded with the release (every host records it the same way). */
export interface RecordedVerdict {
  step: number;
  outcome: VerdictOutcome;
  summary: string;
  at: string;
}

/** Verdicts kept with the release: enough for `release status` and a dashboard, small enough for an annotation. */
export const MAX_RECORDED_VERDICTS = 20;

/**
 * An analysis window as the load action closed it, kept with the release until a verdict is recorded for
 * its step, so the gate action — another process, another pod — judges exactly that window.
 */
export interface RecordedWindow {
  step: number;
  /** epoch ms */
  start: number;
  end: number;
  /** The load run's id (the header every one of its requests carried), when load was sent. */
  loadRunId?: string;
  /** Candidate requests the rules need, and those seen when the window closed. */
  plannedSamples?: number;
  observedSamples?: number;
  /** The rest of what the gate reads (the load's results, counters only the window's watcher could read): plain data. */
  evidence?: Record<string, unknown>;
}

export interface ReleaseState {
  release: string;
  strategy: ReleasePlan['strategy'];
  candidate: string;
  phase: ReleasePhase;
  /** Index of the current step in plan.steps (-1 before the first shift). */
  step: number;
  /** Whether the current step's traffic shift has been applied (and verified). */
  shifted: boolean;
  /** Inconclusive (or errored) analyses of the current step so far. */
  inconclusive: number;
  /**
   * Windows judged at `step` (never reset by a resume): which part of the release's false-alarm budget the
   * step's next window spends. Absent in states recorded before it.
   */
  analyses?: { step: number; count: number };
  /** Candidate weight on the managed route as last written. */
  weight: number;
  lastVerdict?: RecordedVerdict;
  /** Every verdict of this release, oldest first (at most MAX_RECORDED_VERDICTS). */
  verdicts?: RecordedVerdict[];
  cause?: RollbackCause;
  /**
   * After a rollback: whether traffic back on stable was observed ('observed'), could not be observed for
   * lack of traffic ('unobserved'), or was not checked (no load to send: 'unchecked').
   */
  rollbackCheck?: 'observed' | 'unobserved' | 'unchecked';
  /**
   * What the check was made with: the spec's load, or only the traffic the service already had (the
   * load could not be sent; `rollbackNote` says why).
   */
  rollbackTraffic?: 'load' | 'live';
  rollbackNote?: string;
  /** The run that owns the release: a pipeline execution id, or absent for the CLI. */
  runId?: string;
  /** Inconclusive past every bound with onInconclusive: hold — the weight is kept and the run stopped. */
  held?: boolean;
  /** The current step's closed analysis window, not yet judged. */
  window?: RecordedWindow;
  /** Human-readable reason of the last decision. */
  reason?: string;
  startedAt: string;
  updatedAt: string;
}

export type ReleaseEvent =
  | { type: 'shifted'; weight: number }
  | { type: 'verdict'; outcome: VerdictOutcome; summary: string }
  /** The load action closed step `window.step`'s analysis window: kept until that step's verdict. */
  | { type: 'windowClosed'; window: RecordedWindow }
  | { type: 'approve' }
  | { type: 'reject'; reason?: string }
  | { type: 'abort'; reason?: string }
  /** A new run takes over a held release: analyse the step again. */
  | { type: 'resume' }
  | { type: 'promoted' }
  /** Routes written back to 100% stable (the state says so in the same write); verification follows. */
  | { type: 'restored' }
  | {
      type: 'rolledBack';
      check?: ReleaseState['rollbackCheck'];
      traffic?: ReleaseState['rollbackTraffic'];
      note?: string;
    }
  | { type: 'verificationFailed'; reason: string }
  /** An operator set traffic by hand (`traffic set`): recorded, the release holds at that step. */
  | { type: 'setByHand'; weight: number; step: number }
  /** An operator promoted by hand (`traffic promote`), whatever the phase. */
  | { type: 'promotedByHand' }
  /** An operator asked for a rollback by hand (`traffic rollback`), whatever the phase; the rollback follows. */
  | { type: 'rollbackByHand'; reason?: string };

export type ReleaseAction =
  | { kind: 'shift'; step: number }
  | { kind: 'analyze'; step: number }
  | { kind: 'awaitJudgment'; step: number }
  /** A step without analysis and without judgment: record it as passed (send `approve`). */
  | { kind: 'advance'; step: number }
  | { kind: 'promote' }
  | { kind: 'rollback' }
  /** Held at a step (inconclusive past every bound): the run stops here with exit 3. */
  | { kind: 'hold'; step: number }
  | { kind: 'done'; exitCode: number };

export function initialState(plan: ReleasePlan, candidate: string, now: Date): ReleaseState {
  const at = now.toISOString();
  return {
    release: plan.release,
    strategy: plan.strategy,
    candidate,
    phase: 'initialized',
    step: -1,
    shifted: false,
    inconclusive: 0,
    weight: 0,
    startedAt: at,
    updatedAt: at,
  };
}

export const isTerminal = (s: ReleaseState): boolean =>
  s.phase === 'promoted' || s.phase === 'rolledBack' || s.phase === 'failed';
/** Phases in which traffic is (or may be) on the candidate and a run is not finished. */
export const isActive = (s: ReleaseState): boolean => !isTerminal(s);

/** Exit code of a finished release (README "Exit codes"). */
export function exitCodeOf(s: ReleaseState): number {
  if (s.phase === 'promoted') return 0;
  if (s.phase === 'failed') return 4;
  if (s.phase !== 'rolledBack') return 0;
  switch (s.cause) {
    case 'inconclusive':
      return 3;
    case 'abort':
      return 130;
    case 'verification':
      return 4;
    // fail, rejected, manual: the candidate was not promoted
    default:
      return 1;
  }
}

export function nextAction(plan: ReleasePlan, s: ReleaseState): ReleaseAction {
  switch (s.phase) {
    case 'initialized':
      return { kind: 'shift', step: 0 };
    case 'progressing':
      if (!s.shifted) return { kind: 'shift', step: s.step };
      if (s.held) return { kind: 'hold', step: s.step };
      return plan.steps[s.step].windowMs > 0 ? { kind: 'analyze', step: s.step } : afterPassAction(plan, s);
    case 'awaitingJudgment':
      return { kind: 'awaitJudgment', step: s.step };
    case 'promoting':
      return { kind: 'promote' };
    case 'rollingBack':
      return { kind: 'rollback' };
    default:
      return { kind: 'done', exitCode: exitCodeOf(s) };
  }
}

/** A step with no analysis window (blue/green preview) passes as soon as it is shifted. */
function afterPassAction(plan: ReleasePlan, s: ReleaseState): ReleaseAction {
  return plan.steps[s.step].judgment
    ? { kind: 'awaitJudgment', step: s.step }
    : { kind: 'advance', step: s.step };
}

/** Windows step `k` has had judged so far. */
export function analysesOf(s: Pick<ReleaseState, 'analyses' | 'step' | 'inconclusive'>, k: number): number {
  if (s.analyses) return s.analyses.step === k ? s.analyses.count : 0;
  // A state recorded before the count: the step's inconclusive windows are the ones it has had.
  return s.step === k ? s.inconclusive : 0;
}

function advance(plan: ReleasePlan, s: ReleaseState, at: string, reason: string): ReleaseState {
  const last = s.step + 1 >= plan.steps.length;
  if (last) return { ...s, phase: 'promoting', window: undefined, updatedAt: at, reason };
  return {
    ...s,
    phase: 'progressing',
    step: s.step + 1,
    shifted: false,
    inconclusive: 0,
    window: undefined,
    updatedAt: at,
    reason,
  };
}

function rollingBack(s: ReleaseState, cause: RollbackCause, reason: string, at: string): ReleaseState {
  return { ...s, phase: 'rollingBack', cause, reason, window: undefined, updatedAt: at };
}

/**
 * The next state. Events that make no sense in a phase (a verdict while promoting, a second `promoted`)
 * leave the state unchanged, which is what makes replays after a crash harmless.
 */
export function transition(plan: ReleasePlan, s: ReleaseState, e: ReleaseEvent, now: Date): ReleaseState {
  const at = now.toISOString();
  // By-hand changes apply in any phase: the operator's word wins, and the state says what was done.
  if (e.type === 'setByHand') {
    return {
      ...s,
      held: false,
      phase: 'progressing',
      step: e.step,
      shifted: true,
      weight: e.weight,
      cause: undefined,
      rollbackCheck: undefined,
      rollbackTraffic: undefined,
      rollbackNote: undefined,
      window: undefined,
      updatedAt: at,
      reason: `set by hand to ${e.weight}%`,
    };
  }
  if (e.type === 'promotedByHand')
    return {
      ...s,
      phase: 'promoted',
      weight: 100,
      updatedAt: at,
      reason: `${s.candidate} promoted to 100% by hand`,
    };
  if (e.type === 'rollbackByHand') {
    if (s.phase === 'rolledBack' || s.phase === 'rollingBack') return s;
    return rollingBack(s, 'manual', e.reason ?? 'rolled back by hand', at);
  }
  if (e.type === 'resume')
    return s.held
      ? { ...s, held: false, inconclusive: 0, updatedAt: at, reason: `step ${s.step + 1}: analysing again` }
      : s;
  if (e.type === 'abort') {
    if (isTerminal(s) || s.phase === 'rollingBack') return s;
    // Nothing shifted yet: there is nothing to roll back, but the run still ends rolled back.
    return rollingBack(s, 'abort', e.reason ?? 'aborted by the user', at);
  }
  switch (s.phase) {
    case 'initialized':
    case 'progressing': {
      if (e.type === 'shifted') {
        const step = s.phase === 'initialized' ? 0 : s.step;
        return {
          ...s,
          phase: 'progressing',
          step,
          shifted: true,
          weight: e.weight,
          updatedAt: at,
          reason: `step ${step + 1}: ${e.weight}% to ${s.candidate}`,
        };
      }
      if (e.type === 'verificationFailed') return rollingBack(s, 'verification', e.reason, at);
      if (s.phase !== 'progressing' || !s.shifted) return s;
      const step = plan.steps[s.step];
      if (e.type === 'windowClosed')
        return e.window.step === s.step ? { ...s, window: e.window, updatedAt: at } : s;
      if (e.type === 'verdict') {
        const lastVerdict = { step: s.step, outcome: e.outcome, summary: e.summary, at };
        // A window is judged once: another analysis of the step runs a window of its own.
        s = {
          ...s,
          window: undefined,
          verdicts: [...(s.verdicts ?? []), lastVerdict].slice(-MAX_RECORDED_VERDICTS),
          analyses: { step: s.step, count: analysesOf(s, s.step) + 1 },
        };
        if (e.outcome === 'pass') {
          const passed = { ...s, lastVerdict, inconclusive: 0 };
          if (step.judgment)
            return {
              ...passed,
              phase: 'awaitingJudgment',
              updatedAt: at,
              reason: `step ${s.step + 1} passed; waiting for approval`,
            };
          return advance(plan, passed, at, `step ${s.step + 1} passed`);
        }
        if (e.outcome === 'fail')
          return { ...rollingBack(s, 'fail', `step ${s.step + 1} failed: ${e.summary}`, at), lastVerdict };
        // inconclusive or error: hold the weight and analyse again, within the spec's limit.
        const inconclusive = s.inconclusive + 1;
        if (inconclusive > plan.maxInconclusive && plan.onInconclusive === 'hold') {
          return {
            ...s,
            lastVerdict,
            inconclusive,
            held: true,
            updatedAt: at,
            reason: `step ${s.step + 1} ${e.outcome} ${inconclusive} time(s): holding at ${s.weight}% (gate.onInconclusive: hold); run the release again to analyse more, or abort it`,
          };
        }
        if (inconclusive > plan.maxInconclusive) {
          return {
            ...rollingBack(
              s,
              'inconclusive',
              `step ${s.step + 1} ${e.outcome} ${inconclusive} time(s), limit ${plan.maxInconclusive}: ${e.summary}`,
              at,
            ),
            lastVerdict,
            inconclusive,
          };
        }
        return {
          ...s,
          lastVerdict,
          inconclusive,
          updatedAt: at,
          reason: `step ${s.step + 1} ${e.outcome}; holding at ${s.weight}% and analysing again (${inconclusive}/${plan.maxInconclusive})`,
        };
      }
      // A step without an analysis window is approved or advanced directly.
      if (step.windowMs === 0 && (e.type === 'approve' || e.type === 'reject')) {
        return e.type === 'approve'
          ? advance(plan, s, at, `step ${s.step + 1} approved`)
          : rollingBack(s, 'rejected', e.reason ?? 'rejected at judgment', at);
      }
      return s;
    }
    case 'awaitingJudgment':
      if (e.type === 'approve') return advance(plan, s, at, `step ${s.step + 1} approved`);
      if (e.type === 'reject') return rollingBack(s, 'rejected', e.reason ?? 'rejected at judgment', at);
      return s;
    case 'promoting':
      if (e.type === 'promoted')
        return {
          ...s,
          phase: 'promoted',
          weight: 100,
          updatedAt: at,
          reason: `${s.candidate} promoted to 100%`,
        };
      return s;
    // A rollback whose verification failed is tried again by the next rollback (release abort, a re-run).
    case 'failed':
    case 'rollingBack':
      if (e.type === 'restored') return { ...s, weight: 0, shifted: false, updatedAt: at };
      if (e.type === 'rolledBack')
        return {
          ...s,
          phase: 'rolledBack',
          weight: 0,
          shifted: false,
          rollbackCheck: e.check ?? 'unchecked',
          rollbackTraffic: e.traffic,
          rollbackNote: e.note,
          updatedAt: at,
        };
      if (e.type === 'verificationFailed')
        return {
          ...s,
          phase: 'failed',
          weight: 0,
          shifted: false,
          updatedAt: at,
          reason: `rollback could not be verified: ${e.reason}`,
        };
      return s;
    default:
      return s;
  }
}
