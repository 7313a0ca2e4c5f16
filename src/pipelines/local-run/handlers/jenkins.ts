/**
 * `jenkins`: the build runs the stage's clover-cd action (`clover-cd stage "$ACTION"`); its job status becomes the
 * build result Igor reports (SUCCESS, UNSTABLE, FAILURE, ABORTED) and its property file the stage's outputs.
 * UNSTABLE passes only with `markUnstableAsSuccessful`.
 */
import { jenkinsAction, runActionJob } from './action-job.js';
import { StageFailure, type StageHandler } from './handler.js';

const BUILD_RESULT: Record<string, string> = {
  SUCCEEDED: 'SUCCESS',
  INCONCLUSIVE: 'UNSTABLE',
  CANCELED: 'ABORTED',
};

export const jenkins: StageHandler = {
  type: 'jenkins',
  async run(task) {
    const res = await runActionJob(task, jenkinsAction(task.ctx));
    const result = BUILD_RESULT[res.status] ?? 'FAILURE';
    const buildInfo = { result, number: 1, building: false, url: 'local' };
    Object.assign(task.stage.context, { buildInfo, buildNumber: 1, propertyFileContents: res.properties });
    if (result === 'SUCCESS' || (result === 'UNSTABLE' && task.ctx.markUnstableAsSuccessful === true)) {
      return `${result}: ${res.message}`;
    }
    throw new StageFailure(`build ${result}: ${res.message}`, result === 'ABORTED' ? 'CANCELED' : undefined);
  },
};
