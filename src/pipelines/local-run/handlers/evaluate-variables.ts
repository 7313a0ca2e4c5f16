/** `evaluateVariables`: each variable (its value already evaluated) becomes an output later stages read. */
import type { StageHandler } from './handler.js';

export const evaluateVariables: StageHandler = {
  type: 'evaluateVariables',
  async run({ ctx, stage }) {
    for (const v of (ctx.variables as Array<{ key: string; value: unknown }> | undefined) ?? []) {
      stage.outputs[v.key] = v.value;
    }
    return `${Object.keys(stage.outputs).length} variable(s)`;
  },
};
