/**
 * Traffic stages: set a weight or a step, read the split, promote, roll back. Each one is a single merge
 * patch of the VirtualService that writes the routes and the release state together (so they never
 * disagree), computed from a fresh read, and a no-op when the VirtualService already says what is asked
 * — running a stage twice, or after a crash, is harmless.
 */
import {
  buildPlan,
  initialState,
  isActive,
  isTerminal,
  observeTarget,
  promotePatch,
  readState,
  rollbackPatch,
  stateAnnotations,
  targetOfStep,
  trafficPatch,
  transition,
  vsRef,
  ORIGINAL_ROUTES,
  type ReleaseEvent,
  type ReleasePlan,
  type ReleaseState,
  type RollbackCause,
  type TrafficTarget,
} from '../canary/index.js';
import { patchVirtualService, requireVirtualService } from '../services/istio.js';
import type { KubeObject, Platform } from '../services/platform.js';
import type { ReleaseSpec } from '../spec/types.js';
import { InvalidInputError } from '../util/errors.js';

export interface TrafficResult {
  exitCode: number;
  release: string;
  virtualService: string;
  stable: { version: string; weight: number };
  candidate: { version: string; weight: number };
  matchRoute: boolean;
  mirrorPercent?: number;
  /** Whether this call changed the VirtualService (false: it already said so). */
  changed: boolean;
  state?: ReleaseState;
  message: string;
}

function resultOf(plan: ReleasePlan, vs: KubeObject, changed: boolean, message: string, exitCode = 0): TrafficResult {
  const t = observeTarget(vs, plan);
  return {
    exitCode,
    release: plan.release,
    virtualService: `${plan.routing.namespace}/${plan.routing.virtualService}`,
    stable: { version: plan.routing.stable, weight: t.stableWeight },
    candidate: { version: plan.routing.candidate, weight: t.weight },
    matchRoute: t.matchRoute,
    mirrorPercent: t.mirrorPercent,
    changed,
    state: readState(vs),
    message,
  };
}

const sameTarget = (a: TrafficTarget, b: TrafficTarget) => a.weight === b.weight && a.matchRoute === b.matchRoute && (a.mirrorPercent ?? 0) === (b.mirrorPercent ?? 0);

/** Refuse to touch a VirtualService another release is in the middle of. */
export function assertOwnership(plan: ReleasePlan, state: ReleaseState | undefined, vsName: string): void {
  if (state && state.release !== plan.release && isActive(state)) {
    throw new InvalidInputError(`VirtualService ${vsName} is in use by release "${state.release}" (${state.phase}, step ${state.step + 1}); finish or abort it first: clover-cd release abort <its spec>`);
  }
}

/** The state a release should continue from: the one on the VirtualService, or a fresh one. */
export function currentState(plan: ReleasePlan, spec: ReleaseSpec, vs: KubeObject, now = new Date()): ReleaseState {
  const s = readState(vs);
  if (!s || s.release !== plan.release || (isTerminal(s) && s.candidate !== spec.service.candidate)) return initialState(plan, spec.service.candidate, now);
  return s;
}

/**
 * Apply `event` to the release state and write it, together with the route change `routes` computes for
 * the new state (or no route change). Returns the VirtualService after the write.
 */
export async function commit(
  platform: Platform,
  plan: ReleasePlan,
  spec: ReleaseSpec,
  event: ReleaseEvent,
  routes?: (vs: KubeObject, next: ReleaseState) => Record<string, unknown> | undefined,
  opts: { fresh?: boolean } = {},
): Promise<{ vs: KubeObject; state: ReleaseState }> {
  let next!: ReleaseState;
  const vs = await patchVirtualService(platform, vsRef(plan.routing), (current) => {
    assertOwnership(plan, readState(current), plan.routing.virtualService);
    const base = opts.fresh ? initialState(plan, spec.service.candidate, new Date()) : currentState(plan, spec, current);
    next = transition(plan, base, event, new Date());
    const annotations = stateAnnotations(next);
    const patch = routes?.(current, next);
    if (patch) {
      const meta = (patch.metadata ?? {}) as { annotations?: Record<string, string | null> };
      return { ...patch, metadata: { ...meta, annotations: { ...(meta.annotations ?? {}), ...annotations } } };
    }
    if (next === base && !opts.fresh) return undefined;
    return { metadata: { annotations } };
  });
  return { vs, state: next };
}

export async function getTraffic(platform: Platform, spec: ReleaseSpec): Promise<TrafficResult> {
  const plan = buildPlan(spec);
  const vs = await requireVirtualService(platform, vsRef(plan.routing));
  const s = readState(vs);
  return resultOf(plan, vs, false, s ? `release ${s.release}: ${s.phase}${s.step >= 0 ? `, step ${s.step + 1}/${plan.steps.length}` : ''}` : 'no release state on the VirtualService');
}

/** `traffic set --weight N` (any weight on the managed route) or `--step K` (1-based step of the plan). */
export async function setTraffic(platform: Platform, spec: ReleaseSpec, to: { weight: number } | { step: number }): Promise<TrafficResult> {
  const plan = buildPlan(spec);
  let target: TrafficTarget;
  if ('step' in to) {
    if (!Number.isInteger(to.step) || to.step < 1 || to.step > plan.steps.length) {
      throw new InvalidInputError(`--step must be 1..${plan.steps.length} for ${plan.release} (steps: ${plan.steps.map((s) => `${s.kind} ${s.weight}%`).join(', ')}), got ${to.step}`);
    }
    target = targetOfStep(plan.steps[to.step - 1]);
  } else {
    if (!Number.isInteger(to.weight) || to.weight < 0 || to.weight > 100) throw new InvalidInputError(`--weight must be an integer from 0 to 100, got ${to.weight}`);
    target = { weight: to.weight, matchRoute: false };
  }
  let changed = false;
  const vs = await patchVirtualService(platform, vsRef(plan.routing), (current) => {
    const state = readState(current);
    assertOwnership(plan, state, plan.routing.virtualService);
    if (sameTarget(observeTarget(current, plan), target)) return undefined;
    changed = true;
    const base = state && state.release === plan.release && isActive(state) ? state : initialState(plan, spec.service.candidate, new Date());
    const stepIndex = 'step' in to ? to.step - 1 : base.step < 0 ? 0 : base.step;
    const next: ReleaseState = { ...base, phase: 'progressing', step: stepIndex, shifted: true, weight: target.weight, updatedAt: new Date().toISOString(), reason: `set by hand to ${target.weight}%` };
    return trafficPatch(current, plan, target, stateAnnotations(next));
  });
  return resultOf(plan, vs, changed, changed ? `${plan.routing.candidate} now gets ${target.weight}%` : `already at ${target.weight}%: nothing changed`);
}

/** 100% to the candidate; match and mirror routes removed; the kept original routes dropped. */
export async function promote(platform: Platform, spec: ReleaseSpec): Promise<TrafficResult> {
  const plan = buildPlan(spec);
  let changed = false;
  const vs = await patchVirtualService(platform, vsRef(plan.routing), (current) => {
    const state = readState(current);
    assertOwnership(plan, state, plan.routing.virtualService);
    const t = observeTarget(current, plan);
    if (t.weight === 100 && !t.matchRoute && !t.mirrorPercent && state?.phase === 'promoted') return undefined;
    changed = true;
    const base = state && state.release === plan.release ? state : initialState(plan, spec.service.candidate, new Date());
    const next: ReleaseState = { ...base, phase: 'promoted', weight: 100, updatedAt: new Date().toISOString(), reason: `${plan.routing.candidate} promoted to 100%` };
    return promotePatch(current, plan, stateAnnotations(next));
  });
  return resultOf(plan, vs, changed, changed ? `${plan.routing.candidate} promoted: 100% of traffic` : 'already promoted: nothing changed');
}

/** Restore the routes kept before the release (100% stable); idempotent. */
export async function rollback(platform: Platform, spec: ReleaseSpec, cause: RollbackCause = 'abort', reason = 'rolled back by hand'): Promise<TrafficResult> {
  const plan = buildPlan(spec);
  let changed = false;
  const vs = await patchVirtualService(platform, vsRef(plan.routing), (current) => {
    const state = readState(current);
    assertOwnership(plan, state, plan.routing.virtualService);
    const t = observeTarget(current, plan);
    const restored = current.metadata.annotations?.[ORIGINAL_ROUTES] === undefined && t.weight === 0 && !t.matchRoute && !t.mirrorPercent;
    if (restored && (!state || state.phase === 'rolledBack' || state.release !== plan.release)) return undefined;
    changed = true;
    const base = state && state.release === plan.release ? state : initialState(plan, spec.service.candidate, new Date());
    const next: ReleaseState = { ...base, phase: 'rolledBack', weight: 0, shifted: false, cause: base.cause ?? cause, reason: base.reason && base.phase === 'rollingBack' ? base.reason : reason, updatedAt: new Date().toISOString() };
    return rollbackPatch(current, plan, stateAnnotations(next));
  });
  return resultOf(plan, vs, changed, changed ? `rolled back: 100% of traffic on ${plan.routing.stable}` : `already on ${plan.routing.stable}: nothing changed`);
}
