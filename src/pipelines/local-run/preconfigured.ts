/**
 * A preconfigured webhook stage (`alias: preconfiguredWebhook`, type = a `webhook.preconfigured` entry of Orca's
 * configuration) run the way Orca's PreconfiguredWebhookStage does: the entry's fields (url, method, headers,
 * payload, polling and status fields) are laid over the stage's context, parameter defaults fill
 * `parameterValues`, and expressions are evaluated with the stage context (so `${parameterValues['x']}` resolves).
 * A payload given as JSON text (as orca-local.yml writes it) is sent as that JSON.
 */
import { InvalidInputError } from '../../util/errors.js';
import type { PreconfiguredWebhook } from '../preconfigured.js';
import {
  isSecretEngine,
  parseSecretReference,
  SECRET_ENGINE_NAMES,
  secretReferenceProblem,
} from '../secret-refs.js';
import { resolveExpressions, type SpelContext } from './spel.js';
import type { WebhookStage } from './webhook.js';

/** Fields Orca's PreconfiguredWebhookStage does not lay over the stage (they describe it in Deck's picker and form). */
const DESCRIPTIVE = new Set(['label', 'type', 'description', 'enabled', 'parameters']);

export function expandPreconfigured(
  ctx: Record<string, unknown>,
  entry: PreconfiguredWebhook,
  spel: SpelContext,
): { stage: WebhookStage; failures: string[] } {
  const parameterValues: Record<string, unknown> = {
    ...((ctx.parameterValues as Record<string, unknown> | undefined) ?? {}),
  };
  for (const p of entry.parameters ?? [])
    if (parameterValues[p.name] === undefined && p.defaultValue !== undefined)
      parameterValues[p.name] = p.defaultValue;
  const fields = Object.fromEntries(Object.entries(entry).filter(([k]) => !DESCRIPTIVE.has(k)));
  const failures: string[] = [];
  const scope: SpelContext = { ...spel, vars: { ...spel.vars, ...ctx, parameterValues } };
  const resolved = resolveExpressions(fields, scope, failures) as Record<string, unknown>;
  if (typeof resolved.payload === 'string') {
    try {
      resolved.payload = JSON.parse(resolved.payload);
    } catch (err) {
      failures.push(`payload is not JSON once its expressions are evaluated: ${(err as Error).message}`);
    }
  }
  const stage = { ...ctx, parameterValues, ...resolved } as unknown as WebhookStage;
  return { stage, failures };
}

/**
 * What a secret engine does when Orca starts: every header value of the configuration that is a secret reference is
 * replaced (a local run has no Operator or kork engine: the host gives the value the secret would hold). A reference
 * no Spinnaker tool resolves stops the run before it starts, as it stops Orca ("Secret Engine does not exist").
 */
export function resolveSecretReferences(
  entries: Map<string, PreconfiguredWebhook>,
  secretValue: string,
  file = 'orca-local.yml',
): Map<string, PreconfiguredWebhook> {
  const out = new Map<string, PreconfiguredWebhook>();
  for (const [type, entry] of entries) {
    const headers = Object.fromEntries(
      Object.entries(entry.customHeaders ?? {}).map(([name, value]) => [
        name,
        [value].flat().map((v) => {
          const ref = parseSecretReference(v);
          if (!ref) return v;
          const path = `webhook.preconfigured (${type}).customHeaders.${name}`;
          if (!isSecretEngine(ref.engine))
            throw new InvalidInputError(
              `${file}: ${path}: Secret Engine does not exist: ${ref.engine} (Orca would not start)`,
              [{ file, path, message: `a reference of ${SECRET_ENGINE_NAMES.join(', ')}` }],
            );
          const problem = secretReferenceProblem(v, ref.engine);
          if (problem)
            throw new InvalidInputError(`${file}: ${path}: ${problem}`, [{ file, path, message: problem }]);
          return secretValue;
        }),
      ]),
    );
    out.set(type, { ...entry, customHeaders: headers });
  }
  return out;
}
