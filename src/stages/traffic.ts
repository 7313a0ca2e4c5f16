/**
 * Traffic by hand (`clover-cd traffic set|get|promote|rollback`): the release engine's by-hand actions.
 * Each one writes the routes and the release state together, computed from a fresh read, and is a no-op
 * when the routes already say what is asked — running it twice, or after a crash, is harmless.
 */
import type { RouterSnapshot } from '../routers/index.js';
import type { Platform } from '../services/platform.js';
import type { ReleaseSpec } from '../spec/types.js';
import type { ReleaseState } from '../canary/index.js';
import { describeRollbackCheck, ReleaseEngine } from './engine/index.js';
import type { EngineOptions } from './engine/types.js';

export interface TrafficResult {
  exitCode: number;
  release: string;
  /** The object that holds the routes ("VirtualService default/http-lb"). */
  routes: string;
  stable: { version: string; weight: number };
  candidate: { version: string; weight: number };
  matchRoute: boolean;
  mirrorPercent?: number;
  /** Whether this call changed the routes (false: they already said so). */
  changed: boolean;
  state?: ReleaseState;
  message: string;
  /** After a rollback: requests per version observed on the verification burst. */
  observed?: { stable: number; candidate: number };
}

function resultOf(
  engine: ReleaseEngine,
  snap: RouterSnapshot,
  changed: boolean,
  message: string,
  exitCode = 0,
): TrafficResult {
  const r = engine.plan.routing;
  return {
    exitCode,
    release: engine.plan.release,
    routes: engine.router.object,
    stable: { version: r.stable, weight: snap.routes.stableWeight },
    candidate: { version: r.candidate, weight: snap.routes.weight },
    matchRoute: snap.routes.matchRoute,
    mirrorPercent: snap.routes.mirrorPercent,
    changed,
    state: snap.state && snap.state.release === engine.plan.release ? snap.state : undefined,
    message,
  };
}

export async function getTraffic(
  platform: Platform,
  spec: ReleaseSpec,
  opts: EngineOptions = {},
): Promise<TrafficResult> {
  const engine = new ReleaseEngine(platform, spec, opts);
  const snap = await engine.observe();
  const s = snap.state;
  return resultOf(
    engine,
    snap,
    false,
    s
      ? `release ${s.release}: ${s.phase}${s.step >= 0 ? `, step ${s.step + 1}/${engine.plan.steps.length}` : ''}`
      : 'no release state is recorded with the routes',
  );
}

/** `traffic set --weight N` (any weight on the managed route) or `--step K` (1-based step of the plan). */
export async function setTraffic(
  platform: Platform,
  spec: ReleaseSpec,
  to: { weight: number } | { step: number },
  opts: EngineOptions = {},
): Promise<TrafficResult> {
  const engine = new ReleaseEngine(platform, spec, opts);
  const { changed, snapshot } = await engine.setByHand(to);
  return resultOf(
    engine,
    snapshot,
    changed,
    changed
      ? `${spec.service.candidate} now gets ${snapshot.routes.weight}%`
      : `already at ${snapshot.routes.weight}%: nothing changed`,
  );
}

/** 100% to the candidate; match and mirror routes removed; recorded as promoted by hand. */
export async function promote(
  platform: Platform,
  spec: ReleaseSpec,
  opts: EngineOptions = {},
): Promise<TrafficResult> {
  const engine = new ReleaseEngine(platform, spec, opts);
  const { changed, snapshot } = await engine.promoteByHand();
  return resultOf(
    engine,
    snapshot,
    changed,
    changed ? `${spec.service.candidate} promoted: 100% of traffic` : 'already promoted: nothing changed',
  );
}

/**
 * 100% to stable (routes clover-cd added removed, others' kept), verified on observed traffic when the spec
 * has load; recorded as rolled back by hand. Exit 4 when the candidate still gets traffic.
 */
export async function rollback(
  platform: Platform,
  spec: ReleaseSpec,
  opts: EngineOptions & { reason?: string } = {},
): Promise<TrafficResult> {
  const engine = new ReleaseEngine(platform, spec, opts);
  const { state, observed, changed } = await engine.rollback({
    cause: 'manual',
    reason: opts.reason ?? 'rolled back by hand',
  });
  const snap = await engine.observe();
  const message = changed
    ? `rolled back: 100% of traffic on ${spec.service.stable}; ${describeRollbackCheck(spec, state, observed)}`
    : `already on ${spec.service.stable}: nothing changed`;
  return { ...resultOf(engine, snap, changed, message, state.phase === 'failed' ? 4 : 0), observed };
}
