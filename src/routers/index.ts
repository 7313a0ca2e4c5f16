/**
 * The mesh registry: one registration per mesh — how its router is made and what its telemetry calls things.
 * Adding a mesh is a folder of its own (`routers/<mesh>/`, a `MeshRoutes`), one line here and its name in
 * `contract`'s MESHES (the spec's `service.mesh` enum); the engine, the hosts, the gate and the pipelines do
 * not change.
 */
import type { ReleasePlan } from '../canary/plan.js';
import { DEFAULT_MESH, MESHES, type Mesh } from '../contract/index.js';
import { ISTIO_TELEMETRY, type MeshTelemetry } from '../metrics/index.js';
import type { Platform } from '../services/platform.js';
import type { ReleaseSpec } from '../spec/types.js';
import { InvalidInputError } from '../util/errors.js';
import { gatewayApiRoutes } from './gateway-api/router.js';
import { istioRoutes } from './istio/router.js';
import { MeshRouter } from './router.js';
import type { MeshRoutes, TrafficRouter } from './types.js';

export type {
  MeshRoutes,
  ObservedRoutes,
  RouterSnapshot,
  RouterWrite,
  SplitCheck,
  TrafficRouter,
} from './types.js';
export { MESHES, type Mesh } from '../contract/index.js';
export { readState, STATE_ANNOTATION } from './state.js';

export interface MeshRegistration {
  /** The mesh's route object and its pure read and patch; the shared router does the writes and the checks. */
  routes: (plan: ReleasePlan, spec: ReleaseSpec) => MeshRoutes;
  /** The series and labels the mesh's telemetry reports, which the gate reads. */
  telemetry: MeshTelemetry;
}

const MESH_REGISTRY: Record<Mesh, MeshRegistration> = {
  istio: { routes: istioRoutes, telemetry: ISTIO_TELEMETRY },
  'gateway-api': { routes: gatewayApiRoutes, telemetry: ISTIO_TELEMETRY },
};

/** The registration of the spec's mesh (`service.mesh`, default istio); exit 2 naming the field for another name. */
export function meshOf(spec: Pick<ReleaseSpec, 'service'>): MeshRegistration & { name: Mesh } {
  const name = spec.service.mesh ?? DEFAULT_MESH;
  const registration = (MESH_REGISTRY as Record<string, MeshRegistration | undefined>)[name];
  if (!registration)
    throw new InvalidInputError(`unknown mesh "${name}"; expected one of ${MESHES.join(', ')}`, [
      { path: 'service.mesh', message: `expected one of ${MESHES.join(', ')}, got "${name}"` },
    ]);
  return { ...registration, name: name as Mesh };
}

/** The telemetry description of the spec's mesh: what the gate's queries and rules read. */
export const telemetryOf = (spec: Pick<ReleaseSpec, 'service'>): MeshTelemetry => meshOf(spec).telemetry;

/** The traffic router of the spec's mesh on a platform. */
export function createRouter(platform: Platform, plan: ReleasePlan, spec: ReleaseSpec): TrafficRouter {
  return new MeshRouter(platform, meshOf(spec).routes(plan, spec));
}
