import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * `/metrics` of the stage server (Prometheus text format, prom-client). One registry per server, so
 * several servers in one process (tests) keep separate counts. Labels are bounded: actions and statuses
 * are fixed lists, routes are templates (never raw paths), release names are not labels.
 */
export interface JobMetricsHooks {
  jobStarted(action: string, attempt: number): void;
  jobFinished(action: string, status: string, durationMs: number): void;
  storeError(op: string): void;
  storeDataLost(): void;
}

export interface ServerMetrics extends JobMetricsHooks {
  registry: Registry;
  httpRequest(method: string, route: string, status: number, durationMs: number): void;
  setRunning(fn: () => number): void;
}

export function serverMetrics(opts: { defaultMetrics?: boolean } = {}): ServerMetrics {
  const registry = new Registry();
  if (opts.defaultMetrics) collectDefaultMetrics({ register: registry, prefix: 'clover_cd_' });
  const started = new Counter({
    name: 'clover_cd_jobs_started_total',
    help: 'Jobs started by this replica, by action and kind (new or adopted from another replica)',
    labelNames: ['action', 'kind'],
    registers: [registry],
  });
  const finished = new Counter({
    name: 'clover_cd_jobs_finished_total',
    help: 'Jobs this replica finished, by action and final status',
    labelNames: ['action', 'status'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'clover_cd_job_duration_seconds',
    help: 'Duration of finished jobs (this attempt), by action and final status',
    labelNames: ['action', 'status'],
    buckets: [0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600],
    registers: [registry],
  });
  let runningFn = () => 0;
  new Gauge({
    name: 'clover_cd_jobs_running',
    help: 'Jobs running in this replica',
    registers: [registry],
    collect() {
      this.set(runningFn());
    },
  });
  const storeErrors = new Counter({
    name: 'clover_cd_redis_errors_total',
    help: 'Failed job store (Redis) operations, by operation',
    labelNames: ['op'],
    registers: [registry],
  });
  const dataLost = new Counter({
    name: 'clover_cd_redis_data_lost_total',
    help: 'Times Redis came back without the data it had (restart without persistence)',
    registers: [registry],
  });
  const requests = new Counter({
    name: 'clover_cd_http_requests_total',
    help: 'HTTP requests, by method, route template and status',
    labelNames: ['method', 'route', 'status'],
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'clover_cd_http_request_duration_seconds',
    help: 'HTTP request duration, by route template',
    labelNames: ['route'],
    buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [registry],
  });
  return {
    registry,
    jobStarted: (action, attempt) => started.inc({ action, kind: attempt > 1 ? 'adopted' : 'new' }),
    jobFinished: (action, status, ms) => {
      finished.inc({ action, status });
      duration.observe({ action, status }, ms / 1000);
    },
    storeError: (op) => storeErrors.inc({ op }),
    storeDataLost: () => dataLost.inc(),
    httpRequest: (method, route, status, ms) => {
      requests.inc({ method, route, status: String(status) });
      latency.observe({ route }, ms / 1000);
    },
    setRunning: (fn) => (runningFn = fn),
  };
}
