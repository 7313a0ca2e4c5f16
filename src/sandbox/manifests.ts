/** The SDC sample's manifests, apart from the sandbox itself so that reading them loads no mesh. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as yaml from 'js-yaml';
import type { Mesh } from '../contract/index.js';
import type { KubeObject } from '../services/platform.js';

/** deploy/sdc/ of the package: dist/ mirrors src/ (scripts/build.mjs), so the same relative URL serves both. */
export const MANIFEST_DIR = fileURLToPath(new URL('../../deploy/sdc/', import.meta.url));

const load = (f: string) =>
  (yaml.loadAll(readFileSync(`${MANIFEST_DIR}/${f}`, 'utf8')) as KubeObject[]).filter(Boolean);

/**
 * The SDC sample the sandbox runs: the same objects `kubectl apply -f deploy/sdc/` creates on a cluster. With
 * the Gateway API, http-lb's routes are the HTTPRoute of deploy/sdc/gateway-api/ instead of its VirtualService.
 */
export function sdcManifests(mesh: Mesh = 'istio'): KubeObject[] {
  const objects = [...load('workloads.yaml'), ...load('istio.yaml')];
  if (mesh === 'istio') return objects;
  return [
    ...objects.filter((o) => !(o.kind === 'VirtualService' && o.metadata.name === 'http-lb')),
    ...load('gateway-api/http-lb-route.yaml'),
  ];
}
