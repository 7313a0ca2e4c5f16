/**
 * `manualJudgment`: the answer comes from the run's fixed answers (by stage name), `--auto-approve` ("continue" or
 * the first input), or a person (the host's prompt). "stop" fails the stage; the answer is kept where `#judgment`
 * reads it (`judgmentInput`).
 */
import { StageFailure, type StageHandler, type StageTask } from './handler.js';

async function answer({ stage, ctx, options }: StageTask, inputs: string[]): Promise<string | undefined> {
  let choice = options.judgments?.[stage.name];
  if (choice === undefined && options.autoApprove) {
    choice = inputs.includes('continue') ? 'continue' : (inputs[0] ?? 'continue');
  }
  if (choice === undefined && options.judge) {
    choice = await options.judge({
      stage: stage.name,
      instructions: ctx.instructions as string | undefined,
      inputs,
    });
  }
  return choice;
}

export const manualJudgment: StageHandler = {
  type: 'manualJudgment',
  async run(task) {
    const { stage } = task;
    const inputs = ((task.ctx.judgmentInputs as Array<{ value: string }> | undefined) ?? []).map(
      (i) => i.value,
    );
    const choice = await answer(task, inputs);
    if (choice === undefined) {
      throw new StageFailure(
        `manual judgment "${stage.name}" needs an answer: run on a terminal, or pass --auto-approve`,
      );
    }
    if (choice === 'stop') {
      stage.context.judgmentStatus = 'stop';
      throw new StageFailure(`judgment "${stage.name}": stop`);
    }
    if (inputs.length && !inputs.includes(choice)) {
      throw new StageFailure(`judgment "${stage.name}": "${choice}" is not one of ${inputs.join(', ')}`);
    }
    Object.assign(stage.context, { judgmentStatus: 'continue', judgmentInput: choice });
    return `judgment: ${choice}`;
  },
};
