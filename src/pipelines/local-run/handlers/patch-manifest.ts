/**
 * `patchManifest`: `manifestName` "<kind> <name>" in `location`, patched with each `patchBody` as a JSON merge
 * patch (mergeStrategy `merge`; `strategic` is applied the same way, which is what it does to the fields a pipeline
 * patches). A JSON patch (`json`) is not run here (TERMINAL, reported as unsupported).
 */
import { StageFailure, UnsupportedStage, type StageHandler } from './handler.js';

const KINDS: Record<string, { apiVersion: string; kind: string }> = Object.fromEntries(
  [
    ['apps/v1', 'Deployment'],
    ['apps/v1', 'ReplicaSet'],
    ['apps/v1', 'StatefulSet'],
    ['apps/v1', 'DaemonSet'],
    ['v1', 'Service'],
    ['v1', 'ConfigMap'],
    ['v1', 'Secret'],
    ['networking.istio.io/v1beta1', 'VirtualService'],
    ['networking.istio.io/v1beta1', 'DestinationRule'],
    ['networking.istio.io/v1beta1', 'Gateway'],
  ].map(([apiVersion, kind]) => [kind.toLowerCase(), { apiVersion, kind }]),
);

export const patchManifest: StageHandler = {
  type: 'patchManifest',
  async run({ ctx, options }) {
    const strategy = (ctx.options as { mergeStrategy?: string } | undefined)?.mergeStrategy ?? 'strategic';
    if (strategy === 'json') {
      throw new UnsupportedStage(
        'patchManifest/json',
        'patchManifest with mergeStrategy "json" cannot run locally (merge and strategic only)',
      );
    }
    const [kindWord, name] = String(ctx.manifestName ?? '').split(/\s+/);
    const k = KINDS[kindWord?.toLowerCase() ?? ''];
    if (!k || !name) {
      const known = Object.values(KINDS)
        .map((x) => x.kind)
        .join(', ');
      throw new StageFailure(
        `manifestName "${ctx.manifestName}" must be "<kind> <name>" of a known kind (${known})`,
        'TERMINAL',
      );
    }
    const body = Array.isArray(ctx.patchBody) ? ctx.patchBody : [ctx.patchBody];
    const namespace = String(ctx.location ?? 'default');
    for (const patch of body)
      await options.platform.patch({ ...k, namespace, name }, patch as Record<string, unknown>);
    return `patched ${ctx.manifestName} (${strategy === 'strategic' ? 'as a JSON merge patch' : strategy})`;
  },
};
