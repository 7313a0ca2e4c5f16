/**
 * Candidate manifests carried inside a spec. A spec file names them by path (`service.candidateManifests`),
 * which only its own repository can read; the rendered pipeline inlines their content (Kubernetes objects
 * in place of the paths) so a remote stage server or a CI job gets everything in the payload. This splits
 * such a spec into the spec the spec validator knows (paths only) and the inline objects, checked here.
 */
import type { KubeObject } from '../services/platform.js';
import type { InputProblem } from '../util/errors.js';

export interface InlineManifests {
  /** The spec with the inline objects taken out of `service.candidateManifests` (the key dropped when none is left). */
  spec: unknown;
  manifests: KubeObject[];
  problems: InputProblem[];
}

export function splitInlineManifests(doc: unknown, file: string): InlineManifests {
  const service = (doc as { service?: { candidateManifests?: unknown } } | null)?.service;
  const list = service?.candidateManifests;
  if (!Array.isArray(list) || !list.some((m) => m !== null && typeof m === 'object'))
    return { spec: doc, manifests: [], problems: [] };
  const manifests: KubeObject[] = [];
  const problems: InputProblem[] = [];
  const paths: unknown[] = [];
  list.forEach((m, i) => {
    if (m === null || typeof m !== 'object' || Array.isArray(m)) return void paths.push(m);
    const o = m as Partial<KubeObject>;
    const missing = (['apiVersion', 'kind'] as const).filter((k) => typeof o[k] !== 'string' || !o[k]);
    if (typeof o.metadata?.name !== 'string' || !o.metadata.name) missing.push('metadata.name' as never);
    if (missing.length)
      problems.push({
        file,
        path: `service.candidateManifests[${i}]`,
        message: `an inline manifest must be a Kubernetes object; missing ${missing.join(', ')}`,
      });
    else manifests.push(o as KubeObject);
  });
  const { candidateManifests: _inline, ...rest } = service as Record<string, unknown>;
  const spec = {
    ...(doc as Record<string, unknown>),
    service: paths.length ? { ...rest, candidateManifests: paths } : rest,
  };
  return { spec, manifests, problems };
}
