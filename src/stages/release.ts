/**
 * The whole release loop: shift → load → gate → next, promoted or rolled back on the gate's word. The
 * state machine (canary/machine.ts) decides; this driver performs one action at a time and writes the
 * resulting state to the VirtualService before the next one, re-reading it first — so a run killed at any
 * point (even SIGKILL) is resumed by running the same command again, and `release abort` from another
 * process is seen at the next action.
 */
import { resolve } from 'node:path';
import {
  buildPlan,
  exitCodeOf,
  isActive,
  isTerminal,
  nextAction,
  planRelease,
  rulesForStep,
  promotePatch,
  readState,
  renderDestinationRule,
  rollbackPatch,
  stateAnnotations,
  targetOfStep,
  trafficPatch,
  vsRef,
  initialState,
  type ReleasePlan,
  type ReleaseState,
  type VerdictOutcome,
} from '../canary/index.js';
import { ensureObjects, patchVirtualService, requireVirtualService } from '../services/istio.js';
import type { Platform } from '../services/platform.js';
import { readYamlFile } from '../spec/load.js';
import type { ReleaseSpec } from '../spec/types.js';
import { InterruptedError } from '../util/errors.js';
import { checkSplit, observeSplit, openWindow, runGateStage } from './gate.js';
import { runLoadStage } from './load.js';
import { assertOwnership, commit } from './traffic.js';

export type ReleaseProgress =
  | { type: 'start'; release: string; strategy: string; steps: Array<{ kind: string; weight: number }>; resumed: boolean; state: ReleaseState }
  | { type: 'shift'; step: number; weight: number; ms: number }
  | { type: 'load'; step: number; sent: number; errors: number; elapsedS: number }
  | { type: 'verdict'; step: number; outcome: VerdictOutcome; summary: string; bundlePath?: string }
  | { type: 'split'; step: number; weight: number; stable: number; candidate: number; outcome: string; reason: string }
  | { type: 'judgment'; step: number; approved: boolean }
  | { type: 'promote'; ms: number }
  /** `observed`: requests per version after the rollback (the verification burst). */
  | { type: 'rollback'; ms: number; reason?: string; observed?: { stable: number; candidate: number } }
  | { type: 'state'; state: ReleaseState };

export interface RunReleaseOptions {
  autoApprove?: boolean;
  signal?: AbortSignal;
  onEvent?: (e: ReleaseProgress) => void;
  /** Directory of the spec (relative load plan paths); the spec file for messages. */
  baseDir?: string;
  file?: string;
  /** Start again after a finished (promoted or rolled back) run of the same candidate. */
  restart?: boolean;
  evidenceDir?: string;
  /** Seconds of load sent after a rollback to check observed traffic is back on stable (default 2). */
  verifyLoadS?: number;
  /** Asked at a judgment step when not auto-approving; without it the run stops there (exit 3). */
  judge?: (step: number, state: ReleaseState) => Promise<boolean>;
}

export interface ReleaseResult {
  exitCode: number;
  release: string;
  state: ReleaseState;
  resumed: boolean;
  message: string;
}

/** The loaded plan, refused (exit 2, nothing changed) when a step cannot reach the gate's minSamples. */
export function planFor(spec: ReleaseSpec, baseDir?: string, file?: string): ReleasePlan {
  const raw = spec.load ? (typeof spec.load.plan === 'string' ? readYamlFile(resolve(baseDir ?? '.', spec.load.plan)) : spec.load.plan) : undefined;
  return raw === undefined ? buildPlan(spec) : planRelease(spec, { loadPlan: raw, file });
}

const splitConfidence = (spec: ReleaseSpec) => {
  for (const r of spec.gate?.rules ?? []) if ('split' in r) return r.split.confidence ?? 0.999;
  return 0.999;
};

export async function runRelease(platform: Platform, spec: ReleaseSpec, opts: RunReleaseOptions = {}): Promise<ReleaseResult> {
  const plan = planFor(spec, opts.baseDir, opts.file);
  const emit = opts.onEvent ?? (() => {});
  const ref = vsRef(plan.routing);
  await ensureObjects(platform, [renderDestinationRule(spec)]);
  let vs = await requireVirtualService(platform, ref);
  let state = readState(vs);
  assertOwnership(plan, state, plan.routing.virtualService);
  const ours = state && state.release === plan.release && !(isTerminal(state) && state.candidate !== spec.service.candidate);
  const resumed = Boolean(ours && state && isActive(state));
  if (ours && state && isTerminal(state) && !opts.restart) {
    return { exitCode: exitCodeOf(state), release: plan.release, state, resumed: false, message: `release ${plan.release} already ${state.phase}${state.reason ? `: ${state.reason}` : ''} (run with --restart to release again)` };
  }
  if (!ours || !state || isTerminal(state)) {
    const fresh = initialState(plan, spec.service.candidate, new Date());
    vs = await patchVirtualService(platform, ref, () => ({ metadata: { annotations: stateAnnotations(fresh) } }));
    state = fresh;
  }
  emit({ type: 'start', release: plan.release, strategy: plan.strategy, steps: plan.steps.map((s) => ({ kind: s.kind, weight: s.weight })), resumed, state });

  for (let guard = 0; guard < 1000; guard++) {
    // The VirtualService is the source of truth: another process (release abort) may have moved it.
    state = readState(await requireVirtualService(platform, ref)) ?? state;
    if (opts.signal?.aborted && isActive(state) && state.phase !== 'rollingBack') {
      state = (await commit(platform, plan, spec, { type: 'abort', reason: 'interrupted' })).state;
    }
    const action = nextAction(plan, state);
    emit({ type: 'state', state });
    switch (action.kind) {
      case 'shift': {
        const t0 = performance.now();
        const step = plan.steps[action.step];
        state = (await commit(platform, plan, spec, { type: 'shifted', weight: step.weight }, (cur) => trafficPatch(cur, plan, targetOfStep(step)))).state;
        emit({ type: 'shift', step: action.step, weight: step.weight, ms: performance.now() - t0 });
        break;
      }
      case 'analyze': {
        const step = plan.steps[action.step];
        const window = await openWindow(spec, platform.endpoints());
        const load = await runLoadStage(platform, spec, {
          baseDir: opts.baseDir,
          durationS: step.windowMs / 1000,
          resultsDir: opts.evidenceDir,
          signal: opts.signal,
          onProgress: (p) => emit({ type: 'load', step: action.step, ...p }),
        });
        if (opts.signal?.aborted) break; // the next turn rolls back
        const weighted = step.kind === 'weight' || step.kind === 'switch';
        // A mirror window is judged only by the rules that can judge copies (as in the rendered pipeline).
        const stepSpec = step.kind === 'mirror' && spec.gate ? { ...spec, gate: { ...spec.gate, rules: rulesForStep(spec.gate.rules, step) } } : spec;
        const gate = await runGateStage(platform, stepSpec, { window, load: load.load, candidateWeight: weighted ? step.weight : undefined, evidenceDir: opts.evidenceDir });
        emit({ type: 'verdict', step: action.step, outcome: gate.verdict.outcome, summary: gate.verdict.summary, bundlePath: gate.bundlePath });
        if (weighted && gate.verdict.outcome !== 'error') {
          // Not only the spec: the traffic the mesh actually carried must follow the weight.
          const hop = gate.bundle.evidence.metrics?.hops[spec.service.name];
          const counts = hop ? { stable: hop[spec.service.stable]?.requests ?? 0, candidate: hop[spec.service.candidate]?.requests ?? 0 } : await observeSplit(spec, platform.endpoints(), window);
          const split = checkSplit(counts, step.weight, splitConfidence(spec));
          emit({ type: 'split', step: action.step, weight: step.weight, ...counts, outcome: split.outcome, reason: split.reason });
          if (split.outcome === 'fail') {
            state = (await commit(platform, plan, spec, { type: 'verificationFailed', reason: `observed split ${counts.candidate}/${counts.stable + counts.candidate} on ${spec.service.candidate}: ${split.reason}` })).state;
            break;
          }
        }
        state = (await commit(platform, plan, spec, { type: 'verdict', outcome: gate.verdict.outcome, summary: gate.verdict.summary })).state;
        break;
      }
      case 'awaitJudgment': {
        const approved: boolean | undefined = opts.autoApprove ? true : opts.judge ? await opts.judge(action.step, state) : undefined;
        if (approved === undefined) {
          return { exitCode: 3, release: plan.release, state, resumed, message: `step ${action.step + 1} passed and waits for approval: re-run with --auto-approve to go on, or run \`clover-cd release abort\` to roll back` };
        }
        emit({ type: 'judgment', step: action.step, approved });
        state = (await commit(platform, plan, spec, approved ? { type: 'approve' } : { type: 'reject', reason: 'rejected at judgment' })).state;
        break;
      }
      case 'advance':
        state = (await commit(platform, plan, spec, { type: 'approve' })).state;
        break;
      case 'promote': {
        const t0 = performance.now();
        state = (await commit(platform, plan, spec, { type: 'promoted' }, (cur) => promotePatch(cur, plan))).state;
        emit({ type: 'promote', ms: performance.now() - t0 });
        break;
      }
      case 'rollback': {
        const t0 = performance.now();
        const rb = await rollbackAndVerify(platform, spec, plan, opts);
        state = rb.state;
        emit({ type: 'rollback', ms: performance.now() - t0, reason: state.reason, observed: rb.observed });
        break;
      }
      case 'done': {
        const code = action.exitCode;
        return { exitCode: code, release: plan.release, state, resumed, message: state.reason ?? state.phase };
      }
    }
  }
  throw new InterruptedError('the release loop did not finish within 1000 actions');
}

/**
 * Restore the original routes, then send a short burst of load and check that the observed traffic is
 * 100% stable before recording the release as rolled back; otherwise it is recorded as failed (exit 4).
 */
export async function rollbackAndVerify(
  platform: Platform,
  spec: ReleaseSpec,
  plan: ReleasePlan,
  opts: Pick<RunReleaseOptions, 'baseDir' | 'verifyLoadS'> = {},
): Promise<{ state: ReleaseState; observed?: { stable: number; candidate: number } }> {
  await patchVirtualService(platform, vsRef(plan.routing), (cur) => rollbackPatch(cur, plan));
  let observed: { stable: number; candidate: number } | undefined;
  if (spec.load && (opts.verifyLoadS ?? 2) > 0) {
    const window = await openWindow(spec, platform.endpoints());
    await runLoadStage(platform, spec, { baseDir: opts.baseDir, durationS: opts.verifyLoadS ?? 2 });
    const counts = await observeSplit(spec, platform.endpoints(), window);
    observed = counts;
    if (counts.candidate > 0 || counts.stable === 0) {
      const reason = counts.candidate > 0 ? `${counts.candidate} of ${counts.stable + counts.candidate} requests still reached ${spec.service.candidate}` : `no requests to ${spec.service.name} were observed after the rollback`;
      return { state: (await commit(platform, plan, spec, { type: 'verificationFailed', reason })).state, observed };
    }
  }
  return { state: (await commit(platform, plan, spec, { type: 'rolledBack' })).state, observed };
}

/** `release abort`: roll back now (from any process) and record why. */
export async function abortRelease(platform: Platform, spec: ReleaseSpec, opts: Pick<RunReleaseOptions, 'baseDir' | 'verifyLoadS'> & { reason?: string } = {}): Promise<ReleaseResult> {
  const plan = buildPlan(spec);
  const vs = await requireVirtualService(platform, vsRef(plan.routing));
  const before = readState(vs);
  if (!before || before.release !== plan.release || isTerminal(before)) {
    return { exitCode: 0, release: plan.release, state: before ?? initialState(plan, spec.service.candidate, new Date()), resumed: false, message: before ? `nothing to abort: release ${before.release} is ${before.phase}` : 'nothing to abort: no release state on the VirtualService' };
  }
  await commit(platform, plan, spec, { type: 'abort', reason: opts.reason ?? 'aborted by the user' });
  const { state } = await rollbackAndVerify(platform, spec, plan, opts);
  return { exitCode: state.phase === 'rolledBack' ? 0 : exitCodeOf(state), release: plan.release, state, resumed: false, message: state.reason ?? state.phase };
}

export async function releaseStatus(platform: Platform, spec: ReleaseSpec): Promise<{ exitCode: number; release: string; plan: ReleasePlan; state?: ReleaseState }> {
  const plan = buildPlan(spec);
  const state = readState(await requireVirtualService(platform, vsRef(plan.routing)));
  const mine = state && state.release === plan.release ? state : undefined;
  return { exitCode: 0, release: plan.release, plan, state: mine };
}
