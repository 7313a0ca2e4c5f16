/**
 * Release state kept in annotations on the VirtualService: one JSON annotation that is the source of
 * truth (written in the same merge patch as the routes, so routes and state never disagree), plus
 * readable copies for `kubectl get vs -o yaml`.
 */
import type { KubeObject } from '../../services/platform.js';
import { InvalidInputError } from '../../util/errors.js';
import { ANNOTATION_PREFIX } from './routes.js';
import type { ReleaseState } from '../../canary/machine.js';

export const STATE_ANNOTATION = `${ANNOTATION_PREFIX}release-state`;
export const PHASE_ANNOTATION = `${ANNOTATION_PREFIX}phase`;
export const WEIGHT_ANNOTATION = `${ANNOTATION_PREFIX}candidate-weight`;

/** The release state on a VirtualService, or undefined when no release has touched it. */
export function readState(vs: KubeObject | undefined): ReleaseState | undefined {
  const raw = vs?.metadata.annotations?.[STATE_ANNOTATION];
  if (!raw) return undefined;
  try {
    return JSON.parse(raw) as ReleaseState;
  } catch {
    throw new InvalidInputError(
      `VirtualService ${vs!.metadata.namespace}/${vs!.metadata.name}: annotation ${STATE_ANNOTATION} is not valid JSON; remove it with kubectl annotate vs ${vs!.metadata.name} ${STATE_ANNOTATION}-`,
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
