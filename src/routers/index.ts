/**
 * Traffic routers by mesh. Adding a mesh (Gateway API, Linkerd's SMI) is a folder of its own implementing
 * `TrafficRouter` plus one line in ROUTERS; nothing else changes.
 */
import type { ReleasePlan } from '../canary/plan.js';
import type { Platform } from '../services/platform.js';
import type { ReleaseSpec } from '../spec/types.js';
import { InvalidInputError } from '../util/errors.js';
import { IstioRouter } from './istio/router.js';
import type { TrafficRouter } from './types.js';

export type { ObservedRoutes, RouterSnapshot, RouterWrite, SplitCheck, TrafficRouter } from './types.js';

const ROUTERS: Record<string, (platform: Platform, plan: ReleasePlan, spec: ReleaseSpec) => TrafficRouter> = {
  istio: (platform, plan, spec) => new IstioRouter(platform, plan, spec),
};

export const MESHES = Object.keys(ROUTERS);

export function createRouter(
  platform: Platform,
  plan: ReleasePlan,
  spec: ReleaseSpec,
  mesh = 'istio',
): TrafficRouter {
  const make = ROUTERS[mesh];
  if (!make)
    throw new InvalidInputError(`unknown mesh "${mesh}"; expected one of ${MESHES.join(', ')}`, [
      { path: 'service.mesh', message: `expected one of ${MESHES.join(', ')}` },
    ]);
  return make(platform, plan, spec);
}
