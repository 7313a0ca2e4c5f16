/**
 * The Gateway API's routes for a release: the routes and the release state on the user's own HTTPRoute
 * (`service.httpRoute`, default the service's name), the Service of each version beside it (`service.backends`,
 * created when missing). The shared router (`../router.ts`) reads and writes them; this says which objects and
 * how to patch.
 */
import type { ReleasePlan, TrafficTarget } from '../../canary/plan.js';
import type { KubeObject } from '../../services/platform.js';
import type { ReleaseSpec } from '../../spec/types.js';
import type { MeshRoutes, ObservedRoutes } from '../types.js';
import { gatewayApiNames, httpRouteRef, observeRules, renderBackendServices, rulesPatch } from './routes.js';

export function gatewayApiRoutes(plan: ReleasePlan, spec: ReleaseSpec): MeshRoutes {
  const ref = httpRouteRef(spec);
  const names = gatewayApiNames(spec);
  return {
    mesh: 'gateway-api',
    ref,
    missingHint: (platform) =>
      platform === 'kubernetes'
        ? `that the service's HTTPRoute exists: kubectl -n ${ref.namespace} get httproute ${ref.name} (service.httpRoute in the spec names it; its rule sends to Service ${names.stable})`
        : `that the sandbox has it: clover-cd sandbox apply -f <file with the HTTPRoute> (deploy/sdc/gateway-api/http-lb-route.yaml for the SDC sample)`,
    companions: () => renderBackendServices(spec),
    observe: (route: KubeObject): ObservedRoutes => observeRules(route, plan, names),
    patch: (route: KubeObject, target: TrafficTarget) => rulesPatch(route, plan, names, target),
  };
}
