import { type AuthConfig } from './auth.js';
import { cloverRoutes, type CloverBackend } from './clover-routes.js';
import { JobManager, type JobManagerOptions } from './jobs.js';
import { RedisJobStore } from './redis-store.js';
import { jsonLogger } from './logger.js';
import { serverMetrics, type ServerMetrics } from './metrics.js';
import {
  startStageServer,
  type RunningStageServer,
  type ServerLimits,
  type StageAdmission,
} from './server.js';
import { MemoryJobStore, type JobStore } from './store.js';
import type { StageRegistry } from './types.js';
import { createUi, type UiOptions } from './ui.js';
import { ReleaseIndex } from './ui-data.js';

export * from './types.js';
export {
  checkAuth,
  checkHeaders,
  checkSignature,
  signBody,
  SIGNATURE_HEADER,
  type AuthConfig,
} from './auth.js';
export { appendXfcc, sidecarIdentity, XFCC_HEADER } from '../services/mesh-identity.js';
export { JobManager, statusForExitCode } from './jobs.js';
export { MemoryJobStore, StoreUnavailableError, type JobStore } from './store.js';
export { levelOf } from './logger.js';
export { RedisJobStore } from './redis-store.js';
export { cloverRoutes, type CloverBackend } from './clover-routes.js';
export { createUi, type Ui, type UiOptions } from './ui.js';

export interface StageServiceOptions extends JobManagerOptions, ServerLimits {
  port?: number;
  host?: string;
  /** redis://host:port/db; in memory when absent. */
  redisUrl?: string;
  redisPrefix?: string;
  registry: StageRegistry;
  auth: AuthConfig;
  /** Directory specs may name load plans and manifests from (`serve --content-dir`); inline only without it. */
  contentDir?: string;
  /** Largest document read from the content directory (default 256 KiB). */
  contentMaxBytes?: number;
  clover?: CloverBackend;
  cloverRoutesOpen?: boolean;
  publicUrl?: string;
  /** Receives the server's JSON log lines. */
  log?: (line: string) => void;
  /** Add Node's process metrics (CPU, memory, event loop) to /metrics. */
  processMetrics?: boolean;
  /** Serve the dashboard under /ui (releases, steps, gate reports by job id). */
  ui?: UiOptions;
  /** Checks a start request against the release's recorded state before the 202 (`stageAdmission` in bindings.ts). */
  admit?: StageAdmission;
}

export interface StageService extends RunningStageServer {
  jobs: JobManager;
  store: JobStore;
  metrics: ServerMetrics;
  /** Stop accepting requests, hand running jobs over (their leases released), close the store. */
  stop(): Promise<void>;
}

/** `clover-cd serve`: job store + job manager + HTTP server. */
export async function startStageService(opts: StageServiceOptions): Promise<StageService> {
  const metrics = serverMetrics({ defaultMetrics: opts.processMetrics });
  const logger = jsonLogger(opts.log ?? (() => undefined));
  const store: JobStore = opts.redisUrl
    ? await RedisJobStore.connect({
        url: opts.redisUrl,
        prefix: opts.redisPrefix,
        onError: (op) => metrics.storeError(op),
      })
    : new MemoryJobStore();
  // The dashboard learns the releases from the stage functions this replica runs (new, resumed, adopted).
  const index = opts.ui ? (opts.ui.index ?? new ReleaseIndex()) : undefined;
  const registry = index ? index.wrap(opts.registry) : opts.registry;
  const jobs = new JobManager(store, registry, {
    ...opts,
    metrics,
    log: (m, level) => logger.log(level ?? 'info', m),
  });
  metrics.setRunning(() => jobs.activeCount);
  let http: RunningStageServer;
  try {
    http = await startStageServer({
      ...opts,
      jobs,
      metrics,
      content: opts.contentDir ? { dir: opts.contentDir, maxBytes: opts.contentMaxBytes } : undefined,
      clover: opts.clover ? cloverRoutes(opts.clover) : undefined,
      ui: opts.ui
        ? createUi(jobs, { ...opts.auth, readToken: opts.ui.readToken }, { ...opts.ui, index })
        : undefined,
    });
  } catch (err) {
    await store.close();
    throw err;
  }
  jobs.start();
  return {
    ...http,
    jobs,
    store,
    metrics,
    async stop() {
      await http.close();
      await jobs.stop();
      await store.close();
    },
  };
}
