export { ReleaseEngine, planFor } from './engine.js';
export { describeState } from './describe.js';
export {
  runRelease,
  abortRelease,
  releaseStatus,
  type ReleaseResult,
  type RunReleaseOptions,
} from './run.js';
export { describeRollbackCheck, type RollbackCheck } from './rollback-check.js';
export { candidateWorkloads, waitUntilReady, DEFAULT_READY_TIMEOUT } from './readiness.js';
export type { AnalysisResult, EngineOptions, LoadWindow, ReleaseProgress } from './types.js';
