/**
 * The Istio traffic router: routes and release state on one VirtualService, version subsets on a
 * DestinationRule. Works on any Platform that serves Istio's networking API — a cluster through its API
 * server, or the sandbox. Writes are merge patches computed from a fresh read and guarded by its
 * resourceVersion (a conflict re-reads and recomputes), so routes and state are written together.
 */
import type { ReleasePlan, TrafficTarget } from '../../canary/plan.js';
import { ensureObjects, patchVirtualService, requireVirtualService } from '../../services/istio.js';
import type { KubeObject, Platform } from '../../services/platform.js';
import { checkSplit } from '../../validators/rules.js';
import type { ReleaseSpec } from '../../spec/types.js';
import type { RouterSnapshot, RouterWrite, SplitCheck, TrafficRouter } from '../types.js';
import { observeTarget, renderDestinationRule, targetPatch, vsRef } from './routes.js';
import { readState, stateAnnotations } from './state.js';

export class IstioRouter implements TrafficRouter {
  readonly mesh = 'istio';
  readonly object: string;

  constructor(
    private readonly platform: Platform,
    private readonly plan: ReleasePlan,
    private readonly spec: ReleaseSpec,
  ) {
    this.object = `VirtualService ${plan.routing.namespace}/${plan.routing.virtualService}`;
  }

  private snapshot(vs: KubeObject): RouterSnapshot {
    return { routes: observeTarget(vs, this.plan), state: readState(vs) };
  }

  async prepare(): Promise<RouterSnapshot> {
    // The managed route must exist: observeTarget names what is missing (exit 2) before anything is written.
    const snap = this.snapshot(await requireVirtualService(this.platform, vsRef(this.plan.routing)));
    await ensureObjects(this.platform, [renderDestinationRule(this.spec)]);
    return snap;
  }

  async observe(): Promise<RouterSnapshot> {
    return this.snapshot(await requireVirtualService(this.platform, vsRef(this.plan.routing)));
  }

  async apply(decide: (current: RouterSnapshot) => RouterWrite | undefined): Promise<RouterSnapshot> {
    const vs = await patchVirtualService(this.platform, vsRef(this.plan.routing), (current) => {
      const write = decide(this.snapshot(current));
      if (!write) return undefined;
      const annotations = stateAnnotations(write.state);
      return write.target
        ? targetPatch(current, this.plan, write.target, annotations)
        : { metadata: { annotations } };
    });
    return this.snapshot(vs);
  }

  verifySplit(
    target: TrafficTarget,
    observed: { stable: number; candidate: number },
    confidence: number,
  ): SplitCheck {
    // A match route sends the requests that match, a mirror copies them: neither has a share to check.
    if (target.matchRoute)
      return {
        outcome: 'pass',
        reason: 'match route: the candidate gets the requests that match, not a share',
      };
    return checkSplit(observed, target.weight, confidence);
  }
}
