/** `wait`: `waitTime` seconds (default 30), ended early only by the execution's cancel signal. */
import { sleep } from '../../../util/retry.js';
import { StageFailure, type StageHandler } from './handler.js';

export const wait: StageHandler = {
  type: 'wait',
  async run({ ctx, signal }) {
    const s = Number(ctx.waitTime ?? 30);
    if (!Number.isFinite(s) || s < 0) {
      throw new StageFailure(`waitTime must be a number of seconds, got ${JSON.stringify(ctx.waitTime)}`);
    }
    await sleep(s * 1000, signal);
    return `waited ${s}s`;
  },
};
