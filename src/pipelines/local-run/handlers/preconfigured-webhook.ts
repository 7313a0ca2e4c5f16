/**
 * A stage with `alias: preconfiguredWebhook` whose type is an entry of Orca's `webhook.preconfigured`
 * configuration: Orca's PreconfiguredWebhookStage lays the entry over the stage (`../preconfigured.ts`), then it
 * runs as a webhook. A type the run's configuration lacks is not run (TERMINAL, reported as unsupported).
 */
import { expandPreconfigured } from '../preconfigured.js';
import { StageFailure, UnsupportedStage, type StageHandler } from './handler.js';
import { runWebhook } from './webhook.js';

export const preconfiguredWebhook: StageHandler = {
  type: 'preconfiguredWebhook',
  async run(task) {
    const { type } = task.stage;
    const entry = task.options.preconfiguredWebhooks?.get(type);
    if (!entry) {
      throw new UnsupportedStage(
        type,
        `preconfigured webhook type "${type}" is not in Orca's configuration of this run: pass the orca-local.yml of \`clover-cd pipeline orca-config\` (--orca-config)`,
      );
    }
    const { stage, failures } = expandPreconfigured(task.ctx, entry, task.scope());
    if (failures.length) throw new StageFailure(`expressions failed: ${failures.join('; ')}`);
    return runWebhook(stage, task);
  },
};
