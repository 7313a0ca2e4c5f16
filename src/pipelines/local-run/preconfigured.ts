/**
 * A preconfigured webhook stage (`alias: preconfiguredWebhook`, type = a `webhook.preconfigured` entry of Orca's
 * configuration) run the way Orca's PreconfiguredWebhookStage does: the entry's fields (url, method, headers,
 * payload, polling and status fields) are laid over the stage's context, parameter defaults fill
 * `parameterValues`, and expressions are evaluated with the stage context (so `${parameterValues['x']}` resolves).
 * A payload given as JSON text (as orca-local.yml writes it) is sent as that JSON.
 */
import type { PreconfiguredWebhook } from '../preconfigured.js';
import { resolveExpressions, type SpelContext } from './spel.js';
import type { WebhookStage } from './webhook.js';

/** Fields of a preconfigured entry that describe it (Deck's picker and form), not the webhook call. */
const DESCRIPTIVE = new Set(['label', 'type', 'description', 'enabled', 'parameters', 'noUserConfigurableFields']);

export function expandPreconfigured(ctx: Record<string, unknown>, entry: PreconfiguredWebhook, spel: SpelContext): { stage: WebhookStage; failures: string[] } {
  const parameterValues: Record<string, unknown> = { ...((ctx.parameterValues as Record<string, unknown> | undefined) ?? {}) };
  for (const p of entry.parameters ?? []) if (parameterValues[p.name] === undefined && p.defaultValue !== undefined) parameterValues[p.name] = p.defaultValue;
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
