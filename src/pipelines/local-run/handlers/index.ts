/**
 * The stage types a local run executes, one handler each, and how a stage finds its handler: by type; a stage with
 * `alias: preconfiguredWebhook` whose type is none of these is a preconfigured webhook (Orca finds that stage by
 * its alias too); any other type is not run (TERMINAL, reported as unsupported: never skipped silently).
 */
import { checkPreconditions } from './check-preconditions.js';
import { deployManifest } from './deploy-manifest.js';
import { evaluateVariables } from './evaluate-variables.js';
import { UnsupportedStage, type StageHandler } from './handler.js';
import { jenkins } from './jenkins.js';
import { manualJudgment } from './manual-judgment.js';
import { patchManifest } from './patch-manifest.js';
import { preconfiguredWebhook } from './preconfigured-webhook.js';
import { runJobManifest } from './run-job.js';
import { wait } from './wait.js';
import { webhook } from './webhook.js';

export type { StageHandler, StageTask } from './handler.js';
export { StageFailure, UnsupportedStage } from './handler.js';

const HANDLERS: readonly StageHandler[] = [
  webhook,
  jenkins,
  runJobManifest,
  wait,
  manualJudgment,
  checkPreconditions,
  deployManifest,
  patchManifest,
  evaluateVariables,
];

const BY_TYPE = new Map(HANDLERS.map((h) => [h.type, h]));

export const LOCAL_STAGE_TYPES = HANDLERS.map((h) => h.type);

const unsupportedType: StageHandler = {
  type: 'unsupported',
  async run({ stage }) {
    throw new UnsupportedStage(
      stage.type,
      `stage type "${stage.type}" cannot run locally (supported: ${LOCAL_STAGE_TYPES.join(', ')}): it was not run`,
    );
  },
};

/** The handler of a stage of this type and (evaluated) context. */
export function handlerFor(type: string, ctx: Record<string, unknown>): StageHandler {
  return BY_TYPE.get(type) ?? (ctx.alias === 'preconfiguredWebhook' ? preconfiguredWebhook : unsupportedType);
}
