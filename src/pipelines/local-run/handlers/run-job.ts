/**
 * `runJobManifest` (alias runJob): the Job's container runs `clover-cd stage <action>`; the job status is the
 * stage's, its `SPINNAKER_PROPERTY_*` lines the stage's outputs.
 */
import { runActionJob, runJobAction } from './action-job.js';
import { StageFailure, type StageHandler } from './handler.js';

export const runJobManifest: StageHandler = {
  type: 'runJobManifest',
  async run(task) {
    const res = await runActionJob(task, runJobAction(task.ctx));
    Object.assign(task.stage.context, {
      jobStatus: { status: res.status },
      propertyFileContents: res.properties,
    });
    if (res.status === 'SUCCEEDED') return res.message;
    throw new StageFailure(
      `job ended ${res.status}: ${res.message}`,
      res.status === 'CANCELED' ? 'CANCELED' : undefined,
    );
  },
};
