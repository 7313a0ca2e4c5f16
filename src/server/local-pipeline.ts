import {
  runPipelineWithServer,
  type LocalRunOptions,
  type LocalRunResult,
} from '../stages/local-pipeline.js';
import { startStageService } from './index.js';

/**
 * `clover-cd pipeline run --local`: the pipeline run by the local Orca runner against this module's stage
 * server on loopback, so webhook stages make the same calls and polls they make in Spinnaker.
 */
export function runPipelineLocally(opts: LocalRunOptions): Promise<LocalRunResult> {
  return runPipelineWithServer({
    ...opts,
    startServer: (o) => startStageService({ port: 0, host: '127.0.0.1', ...o }),
  });
}

export type { LocalRunOptions, LocalRunResult };
