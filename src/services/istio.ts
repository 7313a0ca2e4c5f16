/**
 * Istio objects on a Platform (cluster or sandbox): read a VirtualService, change it with a merge patch
 * computed from the fresh object and guarded by its resourceVersion (conflicts re-read and retried), and
 * create the routing objects a release needs when they do not exist yet. What to change is decided by the
 * caller (canary/ computes the patches); this adapter only knows how to change it safely.
 */
import { InfrastructureError } from '../util/errors.js';
import { modifyWithRetry, refOf } from './platform.js';
import type { KubeObject, ObjectRef, Platform } from './platform.js';

export const virtualServiceRef = (apiVersion: string, namespace: string, name: string): ObjectRef => ({
  apiVersion,
  kind: 'VirtualService',
  namespace,
  name,
});

export async function getVirtualService(platform: Platform, ref: ObjectRef): Promise<KubeObject | undefined> {
  return platform.get(ref);
}

/** The VirtualService, or exit 4 naming it and how to create it. */
export async function requireVirtualService(platform: Platform, ref: ObjectRef): Promise<KubeObject> {
  const vs = await platform.get(ref);
  if (!vs) {
    throw new InfrastructureError(
      platform.kind === 'kubernetes' ? 'Kubernetes API' : 'sandbox',
      `get VirtualService ${ref.namespace}/${ref.name}`,
      `not found on ${platform.description}`,
      platform.kind === 'kubernetes'
        ? `that the service's VirtualService exists: kubectl -n ${ref.namespace} get virtualservice ${ref.name} (service.virtualService in the spec names it)`
        : `that the sandbox has it: clover-cd sandbox apply -f <file with the VirtualService>`,
    );
  }
  return vs;
}

/**
 * Change a VirtualService: `compute` gets the current object and returns a merge patch (or undefined when
 * nothing needs to change — which makes every caller idempotent). Conflicts are retried with a fresh read.
 */
export function patchVirtualService(
  platform: Platform,
  ref: ObjectRef,
  compute: (current: KubeObject) => Record<string, unknown> | undefined,
): Promise<KubeObject> {
  return modifyWithRetry(platform, ref, compute);
}

/** Create the objects that do not exist yet; existing ones are left as they are (they may carry live weights). */
export async function ensureObjects(platform: Platform, objects: KubeObject[]): Promise<KubeObject[]> {
  const created: KubeObject[] = [];
  for (const o of objects) {
    const ref = refOf(o);
    if (!(await platform.get(ref))) created.push(...(await platform.apply([o])));
  }
  return created;
}
