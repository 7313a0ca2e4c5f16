/**
 * `deployManifest` (source `text`): Clouddriver binds the required artifacts (the trigger's image) into the
 * manifests, applies them (in `namespaceOverride` when given) and the stage waits until the Deployments among them
 * are ready, with the same readiness wait as the release engine (`services/readiness.ts`). Other sources are not
 * run here (TERMINAL, reported as unsupported).
 */
import type { KubeObject } from '../../../services/platform.js';
import { waitForWorkloads } from '../../../services/readiness.js';
import { bindArtifacts, requiredArtifacts } from '../artifacts.js';
import { UnsupportedStage, type StageHandler } from './handler.js';

/** How long the applied Deployments may take to become ready, unless the host says otherwise. */
const DEFAULT_READY_TIMEOUT_MS = 120_000;

function namesByNamespace(applied: KubeObject[]): Record<string, string[]> {
  const names: Record<string, string[]> = {};
  for (const m of applied)
    (names[m.metadata.namespace ?? 'default'] ??= []).push(`${m.kind.toLowerCase()} ${m.metadata.name}`);
  return names;
}

export const deployManifest: StageHandler = {
  type: 'deployManifest',
  async run({ ctx, stage, options, signal, artifacts }) {
    if ((ctx.source ?? 'text') !== 'text') {
      throw new UnsupportedStage(
        `deployManifest/source=${ctx.source}`,
        `deployManifest with source "${ctx.source}" cannot run locally (only "text")`,
      );
    }
    const given = (ctx.manifests as KubeObject[] | undefined) ?? [];
    const { manifests, bound } = bindArtifacts(given, requiredArtifacts(ctx, artifacts));
    stage.context['outputs.boundArtifacts'] = bound;
    const ns = ctx.namespaceOverride as string | undefined;
    const applied = await options.platform.apply(
      manifests.map((m) => (ns ? { ...m, metadata: { ...m.metadata, namespace: ns } } : m)),
    );
    stage.context['outputs.manifestNamesByNamespace'] = namesByNamespace(applied);
    const deployments = applied
      .filter((m) => m.kind === 'Deployment')
      .map((m) => ({ namespace: m.metadata.namespace ?? 'default', name: m.metadata.name }));
    const timeoutMs = options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
    await waitForWorkloads(options.platform, deployments, { timeoutMs, signal });
    const boundText = bound.length ? ` (bound ${bound.map((a) => a.reference).join(', ')})` : '';
    return `applied ${applied.length} manifest(s)${boundText}; deployments ready`;
  },
};
