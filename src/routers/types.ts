/**
 * The traffic-router port: how the release engine moves traffic on a mesh, whatever the mesh is (the spirit
 * of Argo Rollouts' traffic routers). One implementation per mesh lives in its own folder (`istio/`); the
 * sandbox is reached through the same implementation because it serves the Istio API. The engine never
 * names a mesh object: it asks for a target and reads back weights and the release state.
 */
import type { ReleasePlan, TrafficTarget } from '../canary/plan.js';
import type { ReleaseState } from '../canary/machine.js';

/** Weights on the routes as the mesh's configuration says them now. */
export interface ObservedRoutes extends TrafficTarget {
  stableWeight: number;
}

/** The routes and the release state kept with them, read together. */
export interface RouterSnapshot {
  routes: ObservedRoutes;
  /** The release state stored with the routes, when a release has written one. */
  state?: ReleaseState;
}

/**
 * What one write should do: record `state`, and move the routes to `target` in the same write (or leave
 * them when absent). Returned by the engine's decision function from a fresh snapshot.
 */
export interface RouterWrite {
  state: ReleaseState;
  target?: TrafficTarget;
}

export interface SplitCheck {
  outcome: 'pass' | 'fail' | 'inconclusive' | 'error';
  reason: string;
}

export interface TrafficRouter {
  /** Mesh name for messages and `--mesh` ("istio"). */
  readonly mesh: string;
  /** The object that holds the routes and the state, for messages ("VirtualService default/http-lb"). */
  readonly object: string;
  /**
   * Make sure the routing a release needs exists (version subsets; the managed route), creating only what
   * is missing: existing objects may carry live weights. Returns the snapshot it read on the way.
   */
  prepare(): Promise<RouterSnapshot>;
  /** The current routes and release state (exit 4 naming the object and how to create it when missing). */
  observe(): Promise<RouterSnapshot>;
  /**
   * One conflict-retried write: `decide` gets a fresh snapshot and returns what to write, or undefined to
   * leave everything as it is (which makes every caller idempotent). Returns the snapshot after the write.
   */
  apply(decide: (current: RouterSnapshot) => RouterWrite | undefined): Promise<RouterSnapshot>;
  /**
   * Whether requests observed per version follow a target: a weighted target is a binomial check of the
   * candidate's share; a match or mirror target has no share to check (pass with the reason).
   */
  verifySplit(
    target: TrafficTarget,
    observed: { stable: number; candidate: number },
    confidence: number,
  ): SplitCheck;
}

/** Creates a router for a plan on a platform; one registration per mesh in `routers/index.ts`. */
export type RouterFactory<P> = (platform: P, plan: ReleasePlan) => TrafficRouter;
