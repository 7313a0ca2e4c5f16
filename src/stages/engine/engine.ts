// Over 400 lines: the release engine's actions (prepare, shift, load, analyze, decide, promote, rollback, by hand) share its state handling; window sizing and the rollback check are rooms of their own.
/**
 * The release engine: the actions of a release — prepare, shift, load, analyse, promote, roll back — each
 * an event of the pure state machine (canary/machine.ts) committed through the traffic router together
 * with the routes it moves. Every host calls these same methods: `release run` loops over them, the stage
 * server's jobs, `clover-cd stage <action>` and the local pipeline runner call the one a pipeline stage
 * names. A host decides when; the engine decides how, and refuses an action the release is not ready for.
 */
import {
  initialState,
  isActive,
  isTerminal,
  nextAction,
  planRelease,
  PROMOTED_TARGET,
  sameTarget,
  STABLE_TARGET,
  stepProblem,
  targetOfStep,
  analysesOf,
  transition,
  buildPlan,
  type ReleaseEvent,
  type ReleasePlan,
  type ReleaseState,
  type TrafficTarget,
  type VerdictOutcome,
} from '../../canary/index.js';
import { readYamlFile } from '../../spec/load.js';
import { createRouter, type RouterSnapshot, type TrafficRouter } from '../../routers/index.js';
import type { Platform } from '../../services/platform.js';
import type { ReleaseSpec } from '../../spec/types.js';
import { recordChange } from '../../util/changes.js';
import { InterruptedError, InvalidInputError } from '../../util/errors.js';
import { resolve } from 'node:path';
import { observeSplit, runGateStage } from '../gate.js';
import { describeRollbackCheck, verifyOnStable } from './rollback-check.js';
import { waitUntilReady } from './readiness.js';
import type {
  AnalysisResult,
  EngineOptions,
  JudgedWindow,
  LoadWindow,
  ReleaseProgress,
  StepSamplePlan,
} from './types.js';
import { judgedWindow, recordWindow, runWindow, samplePlanOf, specForStep, windowShareOf } from './window.js';
import { describeAction, describeState, writtenChange } from './describe.js';
import { splitConfidence as splitConfidenceOf, type WindowShare } from '../../validators/index.js';

/** The loaded plan, refused (exit 2, nothing changed) when a step cannot reach the gate's minSamples. */
export function planFor(spec: ReleaseSpec, file?: string): ReleasePlan {
  const raw = spec.load
    ? typeof spec.load.plan === 'string'
      ? readYamlFile(resolve(spec.load.plan))
      : spec.load.plan
    : undefined;
  return raw === undefined ? buildPlan(spec) : planRelease(spec, { loadPlan: raw, file });
}

const splitConfidence = (spec: ReleaseSpec): number => (spec.gate ? splitConfidenceOf(spec.gate) : 0.999);

export class ReleaseEngine {
  readonly plan: ReleasePlan;
  readonly router: TrafficRouter;
  private readonly emit: (e: ReleaseProgress) => void;

  constructor(
    readonly platform: Platform,
    readonly spec: ReleaseSpec,
    readonly opts: EngineOptions = {},
  ) {
    // The plan's steps; whether the load can reach minSamples is checked where a whole release starts (planFor).
    this.plan = buildPlan(spec);
    // The spec's mesh (service.mesh) picks the router: every host builds this engine from the spec it was given.
    this.router = createRouter(platform, this.plan, spec);
    this.emit = opts.onEvent ?? (() => undefined);
  }

  // ---- state ---------------------------------------------------------------------------------------------

  private fresh(): ReleaseState {
    const s = initialState(this.plan, this.spec.service.candidate, new Date());
    return this.opts.runId ? { ...s, runId: this.opts.runId } : s;
  }

  private ours(s: ReleaseState | undefined): ReleaseState | undefined {
    return s && s.release === this.plan.release ? s : undefined;
  }

  /** Refuse to touch routes another release is in the middle of (exit 2, nothing changed). */
  private assertOwnership(s: ReleaseState | undefined): void {
    if (s && s.release !== this.plan.release && isActive(s)) {
      throw new InvalidInputError(
        `${this.router.object} is in use by release "${s.release}" (${describeState(s)}); finish or abort it first: clover-cd release abort <its spec>`,
      );
    }
  }

  /** This release's state as stored with the routes, or undefined. */
  async state(): Promise<ReleaseState | undefined> {
    return this.ours((await this.router.observe()).state);
  }

  observe(): Promise<RouterSnapshot> {
    return this.router.observe();
  }

  /**
   * Apply `event` to the stored state and write the result together with the routes `target` asks for,
   * in one conflict-retried write. No write when neither the state nor the routes change.
   */
  private async commit(
    event: ReleaseEvent,
    target?: (next: ReleaseState) => TrafficTarget | undefined,
  ): Promise<ReleaseState> {
    let next: ReleaseState | undefined;
    let wrote = false;
    const snap = await this.router.apply((cur) => {
      this.assertOwnership(cur.state);
      const base = this.ours(cur.state) ?? this.fresh();
      next = transition(this.plan, base, event, new Date());
      const t = target?.(next);
      wrote = !(!t && next === base && cur.state);
      return wrote ? { state: next, target: t } : undefined;
    });
    if (wrote) this.noteWrite(snap);
    return next!;
  }

  /** Said after every write: an error that follows reports what was written and how to finish (cli/main.ts). */
  private noteWrite(snap: RouterSnapshot): void {
    recordChange(writtenChange(this.spec, this.router.object, snap, this.ours(snap.state), this.opts.file));
  }

  // ---- actions -------------------------------------------------------------------------------------------

  /**
   * Prepare: routing objects exist, the candidate is ready, the release is recorded. A release of this
   * run in progress is resumed; a finished one is reported unless `restart` (or a new pipeline run) asks
   * for a new release.
   */
  async prepare(
    opts: { restart?: boolean } = {},
  ): Promise<{ state: ReleaseState; resumed: boolean; finished: boolean }> {
    const cur = (await this.router.prepare()).state;
    this.assertOwnership(cur);
    const ours = this.ours(cur);
    const sameRun = ours && (this.opts.runId === undefined || ours.runId === this.opts.runId);
    if (ours && sameRun && isActive(ours))
      return { state: ours, resumed: ours.phase !== 'initialized', finished: false };
    if (
      ours &&
      sameRun &&
      isTerminal(ours) &&
      ours.candidate === this.spec.service.candidate &&
      !opts.restart
    )
      return { state: ours, resumed: false, finished: true };
    await this.waitReady();
    let fresh = this.fresh();
    const snap = await this.router.apply((c) => {
      this.assertOwnership(c.state);
      fresh = this.fresh();
      return { state: fresh };
    });
    this.noteWrite(snap);
    return { state: fresh, resumed: false, finished: false };
  }

  private waitReady(): Promise<void> {
    return waitUntilReady(this.platform, this.spec, {
      timeoutMs: this.opts.readyTimeoutMs,
      signal: this.opts.signal,
      onStatus: (workload, s) => this.emit({ type: 'ready', workload, message: s.message }),
    });
  }

  /**
   * Bring the release to `want` the way a pipeline schedules it: a judgment or a step without analysis
   * that stands before it is approved (the pipeline's own judgment stage has run); anything else is refused
   * (exit 2) naming where the release is. Returns the state, or 'done' when the action already happened.
   */
  private async reconcile(
    want: 'shift' | 'analyze' | 'promote',
    step?: number,
  ): Promise<ReleaseState | 'done'> {
    for (let i = 0; i <= this.plan.steps.length + 1; i++) {
      let s = await this.state();
      const missing = this.notInProgress(s, want, step);
      if (missing) throw new InvalidInputError(missing);
      // The first shift of a run prepares the release itself (readiness first); later actions need it.
      if (!this.inProgress(s)) s = (await this.prepare({ restart: true })).state;
      const a = nextAction(this.plan, s);
      if (a.kind === want && (step === undefined || ('step' in a && a.step === step))) return s;
      if (want === 'shift' && s.phase === 'progressing' && s.step === step && s.shifted) return 'done';
      if (
        (a.kind === 'awaitJudgment' || a.kind === 'advance') &&
        (want === 'promote' || (step !== undefined && a.step < step))
      ) {
        await this.commit({ type: 'approve' });
        continue;
      }
      throw new InvalidInputError(
        `${want}${step !== undefined ? ` step ${step + 1}` : ''} cannot run now: release ${this.plan.release} is ${describeState(s)}; its next action is ${describeAction(a)}`,
      );
    }
    throw new InvalidInputError(`${want}: release ${this.plan.release} did not reach that action`);
  }

  private inProgress(s: ReleaseState | undefined): s is ReleaseState {
    return Boolean(s && !isTerminal(s) && !(this.opts.runId && s.runId !== this.opts.runId));
  }

  /**
   * Why `want` (at 0-based `step`) cannot run for lack of a release in progress of this run, or undefined.
   * Pure: the stage server asks it before answering 202 (`stageAdmission`), the actions before changing anything.
   */
  notInProgress(
    s: ReleaseState | undefined,
    want: 'shift' | 'analyze' | 'promote',
    step?: number,
  ): string | undefined {
    if (this.inProgress(s) || (want === 'shift' && step === 0)) return undefined;
    return `${want}${step !== undefined ? ` step ${step + 1}` : ''}: release ${this.plan.release} has no release in progress${s ? ` (it is ${describeState(s)})` : ''}; run the deploy action (clover-cd stage deploy) or clover-cd release run first`;
  }

  /** Shift traffic to step `k`'s target (0-based), once the candidate is ready. Idempotent. */
  async shift(k: number): Promise<ReleaseState> {
    this.checkStep(k);
    const r = await this.reconcile('shift', k);
    if (r === 'done') return (await this.state())!;
    const step = this.plan.steps[k];
    await this.waitReady();
    const t0 = performance.now();
    const state = await this.commit({ type: 'shifted', weight: step.weight }, () => targetOfStep(step));
    this.emit({ type: 'shift', step: k, weight: step.weight, ms: performance.now() - t0 });
    return state;
  }

  /** `k` is 0-based; exit 2 naming the plan's steps when it names none. */
  checkStep(k: number): void {
    const problem = stepProblem(this.plan, k + 1);
    if (problem)
      throw new InvalidInputError(`${this.plan.release}: ${problem}`, [{ path: 'step', message: problem }]);
  }

  /**
   * The spec step `k`'s next window is watched with, given the release's state: its part of the release's
   * false-alarm budget (the windows the step has had), for a mirror step only the rules that judge copies.
   */
  windowSpec(s: ReleaseState, k: number): ReleaseSpec {
    return specForStep(this.spec, this.plan, k, this.windowShare(s, k));
  }

  /** The part of the release's false-alarm budget step `k`'s next window spends (the windows it has had). */
  private windowShare(s: ReleaseState, k: number): WindowShare {
    return windowShareOf(this.plan, k, analysesOf(s, k));
  }

  /** What each analysed step needs (candidate requests from the gate's rules), for printing before traffic moves. */
  samplePlan(): StepSamplePlan[] {
    return samplePlanOf(this.plan, this.spec);
  }

  /**
   * Run step `k`'s analysis window (`runWindow`: the spec's load, looked at by the sequential gate until
   * the evidence decides, or the step's maxWindow) and keep it with the release state, its looks too: that
   * is the window `analyze` judges, in this process or in the gate action's. `windowMs` fixes the window
   * (by hand only): it then runs its length.
   */
  async runLoad(k: number, opts: { windowMs?: number } = {}): Promise<LoadWindow> {
    this.checkStep(k);
    const s = await this.reconcile('analyze', k);
    if (s === 'done') throw new InvalidInputError(`load step ${k + 1}: nothing to analyse`);
    const w = await runWindow(this.platform, this.spec, this.plan, k, {
      ...opts,
      alphaShare: this.windowShare(s, k),
      evidenceDir: this.opts.evidenceDir,
      signal: this.opts.signal,
      emit: this.emit,
    });
    // Kept with the release, so the gate action judges exactly this window wherever it runs; a window cut
    // short by an interrupt is never judged.
    if (!this.opts.signal?.aborted) await this.commit({ type: 'windowClosed', window: recordWindow(w) });
    return w;
  }

  /**
   * Analyse step `k`: judge the window the load action closed for it (kept with the release state, however
   * far away that action ran), or run one; check the observed split, record the verdict. Both paths judge
   * the window as recorded. While the verdict is inconclusive and the plan allows another try, the engine
   * runs another window itself — no host re-implements the retry. A verdict already recorded for `k` is
   * returned as it is.
   */
  async analyze(k: number): Promise<AnalysisResult> {
    this.checkStep(k);
    for (;;) {
      let cur = await this.state();
      // A held step (inconclusive past every bound, onInconclusive: hold) is analysed again when asked.
      if (cur?.held && cur.step === k) cur = await this.commit({ type: 'resume' });
      const a = cur && nextAction(this.plan, cur);
      if (!cur || !a || a.kind !== 'analyze' || a.step !== k) {
        if (cur?.lastVerdict?.step === k)
          return { outcome: cur.lastVerdict.outcome, summary: cur.lastVerdict.summary, state: cur };
        await this.reconcile('analyze', k); // throws with where the release stands
      }
      if (cur?.window?.step !== k) {
        await this.runLoad(k);
        if (this.opts.signal?.aborted) throw new InterruptedError('interrupted during the analysis window');
        cur = await this.state();
      }
      if (cur?.window?.step !== k) {
        await this.reconcile('analyze', k); // another process moved the release meanwhile: says where it stands
        throw new InvalidInputError(
          `analyze step ${k + 1}: the window was not recorded with release ${this.plan.release}`,
        );
      }
      const result = await this.judge(k, judgedWindow(cur.window));
      const next = nextAction(this.plan, result.state);
      if (next.kind === 'analyze' && next.step === k && !this.opts.signal?.aborted) continue;
      return result;
    }
  }

  private async judge(k: number, w: JudgedWindow): Promise<AnalysisResult> {
    const step = this.plan.steps[k];
    const weighted = step.kind === 'weight' || step.kind === 'switch';
    // Judged with the part of the budget it was watched with (a window recorded before the split: the whole).
    const spec = specForStep(this.spec, this.plan, k, w.alphaShare);
    const gate = await runGateStage(this.platform, spec, {
      window: w.window,
      end: w.end,
      load: w.load,
      candidateWeight: weighted ? step.weight : undefined,
      evidenceDir: this.opts.evidenceDir,
      plannedSamples: w.plannedSamples,
      sequence: w.sequence,
      minWindowMs: w.minWindowMs,
    });
    const v = gate.verdict;
    this.emit({
      type: 'verdict',
      step: k,
      outcome: v.outcome,
      summary: v.summary,
      bundlePath: gate.bundlePath,
    });
    const base = {
      bundlePath: gate.bundlePath,
      results: v.results.map((r) => ({
        rule: r.rule,
        outcome: r.outcome,
        observed: r.observed,
        expected: r.expected,
        source: r.source,
        reason: r.reason,
      })),
    };
    // A window whose counters could not be kept has its metrics source down in the bundle: the verdict is
    // then an error or a fail, and there is no split to observe.
    if (weighted && v.outcome !== 'error' && !w.window.problem) {
      // Not only the spec: the traffic the mesh actually carried must follow the weight.
      const { stable, candidate } = this.spec.service;
      const hop = gate.bundle.evidence.metrics?.hops[this.spec.service.name];
      const counts = hop
        ? { stable: hop[stable]?.requests ?? 0, candidate: hop[candidate]?.requests ?? 0 }
        : await observeSplit(this.spec, this.platform.endpoints(), w.window);
      const split = this.router.verifySplit(targetOfStep(step), counts, splitConfidence(spec));
      this.emit({
        type: 'split',
        step: k,
        weight: step.weight,
        ...counts,
        outcome: split.outcome,
        reason: split.reason,
      });
      if (split.outcome === 'fail') {
        const reason = `observed split ${counts.candidate}/${counts.stable + counts.candidate} on ${candidate}: ${split.reason}`;
        const state = await this.commit({ type: 'verificationFailed', reason });
        return { ...base, outcome: 'error', summary: `ERROR: ${reason}`, state };
      }
    }
    const state = await this.recordVerdict(k, v);
    return { ...base, outcome: v.outcome, summary: v.summary, state };
  }

  /** Record step `k`'s verdict with the release; the machine decides what follows (next step, judgment, rollback). */
  async recordVerdict(k: number, v: { outcome: VerdictOutcome; summary: string }): Promise<ReleaseState> {
    const s = await this.state();
    if (!s || s.step !== k)
      throw new InvalidInputError(
        `a verdict for step ${k + 1} cannot be recorded: release ${this.plan.release} is ${s ? describeState(s) : 'not started'}`,
      );
    return this.commit({ type: 'verdict', outcome: v.outcome, summary: v.summary });
  }

  /** A person's (or the pipeline's) answer at a judgment; a step without analysis is passed the same way. */
  async decide(approved: boolean, reason?: string): Promise<ReleaseState> {
    const s = await this.state();
    if (s) this.emit({ type: 'judgment', step: s.step, approved });
    return this.commit(
      approved ? { type: 'approve' } : { type: 'reject', reason: reason ?? 'rejected at judgment' },
    );
  }

  /** 100% to the candidate once the plan allows it (a pending last judgment counts as approved). */
  async promote(): Promise<ReleaseState> {
    const s = await this.state();
    if (s?.phase === 'promoted' && (!this.opts.runId || s.runId === this.opts.runId)) return s;
    const r = await this.reconcile('promote');
    if (r === 'done') return (await this.state())!;
    const t0 = performance.now();
    const state = await this.commit({ type: 'promoted' }, () => PROMOTED_TARGET);
    this.emit({ type: 'promote', ms: performance.now() - t0 });
    return state;
  }

  /** A run takes over a held release: the step is analysed again. */
  resume(): Promise<ReleaseState> {
    return this.commit({ type: 'resume' });
  }

  /** Stop the release: the state says rolling back (the rollback follows). */
  abort(reason: string): Promise<ReleaseState> {
    return this.commit({ type: 'abort', reason });
  }

  /**
   * Roll back: 100% to stable (only what clover-cd added is removed), written with the state, then
   * verified on observed traffic. Starts the rollback when the release is not already rolling back
   * (`cause` says why: the pipeline or a person's rejection, or a rollback by hand).
   */
  async rollback(
    opts: { cause?: 'abort' | 'rejected' | 'manual'; reason?: string } = {},
  ): Promise<{ state: ReleaseState; changed: boolean; observed?: { stable: number; candidate: number } }> {
    const t0 = performance.now();
    const before = await this.router.observe();
    const s = this.ours(before.state);
    if (s?.phase === 'rolledBack' && sameTarget(before.routes, STABLE_TARGET))
      return { state: s, changed: false };
    if (!s || (s.phase !== 'rollingBack' && s.phase !== 'failed')) {
      const event: ReleaseEvent =
        opts.cause === 'manual' || !s || !isActive(s)
          ? { type: 'rollbackByHand', reason: opts.reason }
          : opts.cause === 'rejected' || s.phase === 'awaitingJudgment'
            ? { type: 'reject', reason: opts.reason ?? 'rejected at judgment' }
            : { type: 'abort', reason: opts.reason ?? 'rolled back' };
      await this.commit(event);
    }
    await this.commit({ type: 'restored' }, () => STABLE_TARGET);
    const check = await verifyOnStable(this.platform, this.spec, this.opts.verifyLoadS ?? 2);
    const state =
      check.check === 'failed'
        ? await this.commit({ type: 'verificationFailed', reason: check.reason! })
        : await this.commit({
            type: 'rolledBack',
            check: check.check,
            traffic: check.traffic,
            note: check.note,
          });
    this.emit({
      type: 'rollback',
      ms: performance.now() - t0,
      reason: state.reason,
      observed: check.observed,
      check: state.rollbackCheck,
      verified: describeRollbackCheck(this.spec, state, check.observed),
    });
    return { state, changed: true, observed: check.observed };
  }

  // ---- by hand -------------------------------------------------------------------------------------------

  /** `traffic set`: any weight, or a step's target, recorded as set by hand; the release holds there. */
  async setByHand(
    to: { weight: number } | { step: number },
  ): Promise<{ changed: boolean; snapshot: RouterSnapshot }> {
    let target: TrafficTarget;
    let stepIndex: number | undefined;
    if ('step' in to) {
      this.checkStep(to.step - 1);
      stepIndex = to.step - 1;
      target = targetOfStep(this.plan.steps[stepIndex]);
    } else {
      if (!Number.isInteger(to.weight) || to.weight < 0 || to.weight > 100)
        throw new InvalidInputError(`--weight must be an integer from 0 to 100, got ${to.weight}`);
      target = { weight: to.weight, matchRoute: false };
    }
    if (target.weight > 0 || target.matchRoute || target.mirrorPercent) await this.waitReady();
    let changed = false;
    const snapshot = await this.router.apply((cur) => {
      this.assertOwnership(cur.state);
      if (sameTarget(cur.routes, target)) return undefined;
      changed = true;
      const ours = this.ours(cur.state);
      const base = ours && isActive(ours) ? ours : this.fresh();
      const step = stepIndex ?? (base.step < 0 ? 0 : base.step);
      return {
        state: transition(this.plan, base, { type: 'setByHand', weight: target.weight, step }, new Date()),
        target,
      };
    });
    if (changed) this.noteWrite(snapshot);
    return { changed, snapshot };
  }

  /** `traffic promote`: 100% to the candidate whatever the phase, recorded as promoted by hand. */
  async promoteByHand(): Promise<{ changed: boolean; snapshot: RouterSnapshot }> {
    let changed = false;
    const snapshot = await this.router.apply((cur) => {
      this.assertOwnership(cur.state);
      const ours = this.ours(cur.state);
      if (sameTarget(cur.routes, PROMOTED_TARGET) && ours?.phase === 'promoted') return undefined;
      changed = true;
      return {
        state: transition(this.plan, ours ?? this.fresh(), { type: 'promotedByHand' }, new Date()),
        target: PROMOTED_TARGET,
      };
    });
    if (changed) this.noteWrite(snapshot);
    return { changed, snapshot };
  }
}
