/** The SDC sample's manifests, apart from the sandbox itself so that reading them loads no mesh. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as yaml from 'js-yaml';
import type { KubeObject } from '../services/platform.js';

/** deploy/sdc/ of the package: dist/ mirrors src/ (scripts/build.mjs), so the same relative URL serves both. */
export const MANIFEST_DIR = fileURLToPath(new URL('../../deploy/sdc/', import.meta.url));

/** The SDC sample the sandbox runs: the same objects `kubectl apply -f deploy/sdc/` creates on a cluster. */
export function sdcManifests(): KubeObject[] {
  return ['workloads.yaml', 'istio.yaml'].flatMap((f) =>
    (yaml.loadAll(readFileSync(`${MANIFEST_DIR}/${f}`, 'utf8')) as KubeObject[]).filter(Boolean),
  );
}
