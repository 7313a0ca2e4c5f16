/**
 * Istio's routes for a release: the routes and the release state on one VirtualService
 * (`service.virtualService`, default the service's name), version subsets on a DestinationRule named after the
 * service. The shared router (`../router.ts`) reads and writes them; this says which objects and how to patch.
 */
import type { ReleasePlan, TrafficTarget } from '../../canary/plan.js';
import type { KubeObject } from '../../services/platform.js';
import type { ReleaseSpec } from '../../spec/types.js';
import type { MeshRoutes, ObservedRoutes } from '../types.js';
import { observeTarget, renderDestinationRule, targetPatch, vsRef } from './routes.js';

export function istioRoutes(plan: ReleasePlan, spec: ReleaseSpec): MeshRoutes {
  const ref = vsRef(spec);
  return {
    mesh: 'istio',
    ref,
    missingHint: (platform) =>
      platform === 'kubernetes'
        ? `that the service's VirtualService exists: kubectl -n ${ref.namespace} get virtualservice ${ref.name} (service.virtualService in the spec names it)`
        : `that the sandbox has it: clover-cd sandbox apply -f <file with the VirtualService>`,
    companions: () => [renderDestinationRule(spec)],
    observe: (vs: KubeObject): ObservedRoutes => observeTarget(vs, plan),
    patch: (vs: KubeObject, target: TrafficTarget) => targetPatch(vs, plan, target),
  };
}
