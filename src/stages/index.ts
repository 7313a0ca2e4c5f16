/** Stage runners (contract [D]): each returns a result carrying its exit code. */
export { setTraffic, getTraffic, promote, rollback, type TrafficResult } from './traffic.js';
export { runLoadStage, readLoadPlan, type LoadStageResult } from './load.js';
export { runGateStage, openWindow, observeSplit } from './gate.js';
export { runRelease, abortRelease, releaseStatus, rollbackAndVerify, planFor, type ReleaseProgress, type ReleaseResult, type RunReleaseOptions } from './release.js';
export { openPlatform, PLATFORMS, type PlatformChoice } from './platform.js';
