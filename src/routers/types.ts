/**
 * The traffic-router port: how the release engine moves traffic on a mesh, whatever the mesh is (the spirit
 * of Argo Rollouts' traffic routers). The engine never names a mesh object: it asks for a target and reads
 * back weights and the release state. One `TrafficRouter` serves every mesh (`router.ts`: the read, the one
 * conflict-retried write of routes + state, the split check); what differs per mesh is a `MeshRoutes` in its
 * own folder (`istio/`): its objects and the pure functions that read and patch them. The sandbox is reached
 * through the same code because it serves the same API as a cluster.
 */
import type { TrafficTarget } from '../canary/plan.js';
import type { ReleaseState } from '../canary/machine.js';
import type { KubeObject, ObjectRef, Platform } from '../services/platform.js';

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

/**
 * What one mesh contributes: the object that holds the service's routes (and the release state, in its
 * annotations), the objects beside it, and pure functions of the route object. The shared router reads the
 * object, writes `patch` and the state in one merge patch guarded by the read's resourceVersion, and checks the
 * split on observed traffic; a mesh never writes by itself.
 */
export interface MeshRoutes {
  /** Mesh name for messages ("istio"). */
  readonly mesh: string;
  /** The object that holds the service's routes and the release state. */
  readonly ref: ObjectRef;
  /** What to check when the route object is missing on this kind of platform, naming a command that exists. */
  missingHint(platform: Platform['kind']): string;
  /** Objects the routes need beside the route object, created when missing (never changed when present). */
  companions(): KubeObject[];
  /**
   * The target the route object carries now, with the stable weight; exit 2 (InvalidInputError naming the
   * spec field) when it has no route clover-cd can manage.
   */
  observe(routeObject: KubeObject): ObservedRoutes;
  /**
   * The JSON merge patch that moves the route object to `target`, computed from it: only what clover-cd
   * manages changes, other writers' routes and fields stay. Rollback is `STABLE_TARGET` from the current object.
   */
  patch(routeObject: KubeObject, target: TrafficTarget): Record<string, unknown>;
}
