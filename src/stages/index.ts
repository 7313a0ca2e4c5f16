/** Stage runners and the release engine: each returns a result carrying its exit code. */
export { setTraffic, getTraffic, promote, rollback, type TrafficResult } from './traffic.js';
export { runLoadStage, readLoadPlan, type LoadStageResult } from './load.js';
export { runGateStage, openWindow, observeSplit, takeLook, canObserveSplit, metricsOf } from './gate.js';
export {
  ReleaseEngine,
  runRelease,
  abortRelease,
  releaseStatus,
  planFor,
  describeRollbackCheck,
  type ReleaseProgress,
  type ReleaseResult,
  type RunReleaseOptions,
  type EngineOptions,
  type LoadWindow,
} from './engine/index.js';
export { openPlatform, PLATFORMS, type PlatformChoice } from './platform.js';
