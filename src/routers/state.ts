/**
 * The release state kept in annotations on the object that holds a service's routes, whatever the mesh: one
 * JSON annotation that is the source of truth (written in the same merge patch as the routes, so routes and
 * state never disagree), plus readable copies for `kubectl get <kind> -o yaml`.
 */
import type { ReleaseState } from '../canary/machine.js';
import type { KubeObject } from '../services/platform.js';
import { InvalidInputError } from '../util/errors.js';

export const ANNOTATION_PREFIX = 'clover-cd.io/';
export const STATE_ANNOTATION = `${ANNOTATION_PREFIX}release-state`;
export const PHASE_ANNOTATION = `${ANNOTATION_PREFIX}phase`;
export const WEIGHT_ANNOTATION = `${ANNOTATION_PREFIX}candidate-weight`;

/** The release state on a route object, or undefined when no release has touched it. */
export function readState(obj: KubeObject | undefined): ReleaseState | undefined {
  const raw = obj?.metadata.annotations?.[STATE_ANNOTATION];
  if (!raw) return undefined;
  try {
    return JSON.parse(raw) as ReleaseState;
  } catch {
    const { kind, metadata } = obj!;
    throw new InvalidInputError(
      `${kind} ${metadata.namespace}/${metadata.name}: annotation ${STATE_ANNOTATION} is not valid JSON; remove it with kubectl -n ${metadata.namespace} annotate ${kind.toLowerCase()} ${metadata.name} ${STATE_ANNOTATION}-`,
    );
  }
}

export function stateAnnotations(s: ReleaseState): Record<string, string> {
  return {
    [STATE_ANNOTATION]: JSON.stringify(s),
    [PHASE_ANNOTATION]: s.phase,
    [WEIGHT_ANNOTATION]: String(s.weight),
  };
}
