import { type AuthConfig } from './auth.js';
import { cloverRoutes, type CloverBackend } from './clover-routes.js';
import { JobManager, type JobManagerOptions } from './jobs.js';
import { RedisJobStore } from './redis-store.js';
import { startStageServer, type RunningStageServer } from './server.js';
import { MemoryJobStore, type JobStore } from './store.js';
import type { StageRegistry } from './types.js';

export * from './types.js';
export { checkAuth, signBody, SIGNATURE_HEADER, type AuthConfig } from './auth.js';
export { JobManager, statusForExitCode } from './jobs.js';
export { MemoryJobStore, type JobStore } from './store.js';
export { RedisJobStore } from './redis-store.js';
export { cloverRoutes, type CloverBackend } from './clover-routes.js';

export interface StageServiceOptions extends JobManagerOptions {
  port?: number;
  host?: string;
  /** redis://host:port/db; in memory when absent. */
  redisUrl?: string;
  redisPrefix?: string;
  registry: StageRegistry;
  auth: AuthConfig;
  maxBodyBytes?: number;
  baseDir?: string;
  clover?: CloverBackend;
  cloverRoutesOpen?: boolean;
  publicUrl?: string;
}

export interface StageService extends RunningStageServer {
  jobs: JobManager;
  store: JobStore;
  /** Stop accepting requests and stop local jobs without a final status (a replica or restart resumes them). */
  stop(): Promise<void>;
}

/** `clover-cd serve`: job store + job manager + HTTP server. */
export async function startStageService(opts: StageServiceOptions): Promise<StageService> {
  const store: JobStore = opts.redisUrl ? await RedisJobStore.connect({ url: opts.redisUrl, prefix: opts.redisPrefix }) : new MemoryJobStore();
  const jobs = new JobManager(store, opts.registry, opts);
  let http: RunningStageServer;
  try {
    http = await startStageServer({ ...opts, jobs, clover: opts.clover ? cloverRoutes(opts.clover) : undefined });
  } catch (err) {
    await store.close();
    throw err;
  }
  jobs.start();
  return {
    ...http,
    jobs,
    store,
    async stop() {
      await http.close();
      await jobs.stop();
      await store.close();
    },
  };
}
