export { ReleaseEngine, planFor, describeState } from './engine.js';
export { runRelease, abortRelease, releaseStatus, type ReleaseResult, type RunReleaseOptions } from './run.js';
export { candidateWorkloads, waitUntilReady, DEFAULT_READY_TIMEOUT } from './readiness.js';
export type { AnalysisResult, EngineOptions, LoadWindow, ReleaseProgress } from './types.js';
