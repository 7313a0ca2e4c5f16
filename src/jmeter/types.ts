/** Types of the load module. LoadRunResult / LoadSummary / LabelStats are what the gate and reports read. */

export interface LabelStats {
  count: number;
  errors: number;
  /** 0..1 */
  errorRate: number;
  /** milliseconds */
  min: number;
  mean: number;
  max: number;
  p50: number;
  p90: number;
  p95: number;
  p99: number;
  /** requests per second over the label's own first-start..last-end span */
  throughput: number;
  codes: Record<string, number>;
  userAgents: Record<string, number>;
}

export interface LoadSummary {
  total: LabelStats;
  labels: Record<string, LabelStats>;
}

export interface LoadRunResult {
  engine: 'jmeter' | 'builtin';
  /** Value of the x-clover-cd-load header every request of this run carried. */
  runId?: string;
  jtlPath: string;
  /** epoch ms */
  startedAt: number;
  endedAt: number;
  /** threads x loops x requests (x engines); absent when the plan loops until its duration ends */
  expected?: number;
  summary: LoadSummary;
  /** Expected samples per label (finite plans only). */
  expectedByLabel?: Record<string, number>;
  /** True when the run was stopped by the caller's signal before the plan finished. */
  interrupted?: boolean;
  /** Remote engines used (distributed JMeter). */
  engines?: number;
  /** Each remote engine's `host:port`, in the order the controller was given them. */
  engineHosts?: string[];
  /** Why the results do not hold what the plan (or JMeter's own count) says was sent; absent when they do. */
  countProblem?: string;
}

export interface Assertion {
  /** Accepted codes: exact numbers or patterns such as "2xx" / "30x" (x = any digit). */
  status?: string[];
  contains?: string[];
  maxTimeMs?: number;
}

export interface PlanRequest {
  label: string;
  /** Absolute URL with scheme, port, path and query as the user wrote them. */
  url: string;
  method: string;
  userAgent?: string;
  /** All headers sent, plan-wide ones merged with the request's own; User-Agent included when set. */
  headers: Record<string, string>;
  body?: string;
  timeoutMs?: number;
  thinkTimeMs?: number;
  assert?: Assertion;
}

export interface LoadPlan {
  /** File the plan came from, for messages. */
  file?: string;
  threads: number;
  /** Iterations per thread; -1 = until the duration ends (Clover's 0 is read as -1). */
  loops: number;
  rampS: number;
  /** Hard cut-off in seconds; undefined = none. */
  durationS?: number;
  /** Requests per second, all threads together. */
  throughput?: number;
  requests: PlanRequest[];
  /** Pass/fail criteria as written. */
  criteria: string[];
}

export interface LoadProgress {
  sent: number;
  errors: number;
  elapsedS: number;
}

export interface RunLoadOptions {
  engine?: 'auto' | 'jmeter' | 'builtin';
  /** Tag for the x-clover-cd-load header (default: a fresh run id). */
  runId?: string;
  /** Overrides the plan's duration (seconds); with loops -1 the run lasts exactly this long. */
  durationS?: number;
  /** JTL to write; an existing file is an error unless `overwrite` is set. Default: a fresh temp file. */
  resultsFile?: string;
  overwrite?: boolean;
  /** Origin (http://127.0.0.1:PORT) that replaces scheme+host+port of every plan URL. */
  target?: string;
  /** JMeter remote engines host:port (distributed mode). */
  remote?: string[];
  jmeterHome?: string;
  signal?: AbortSignal;
  onProgress?: (p: LoadProgress) => void;
  /** Called once the load runs: JMeter's process id, or this process's id for the builtin engine. */
  onStart?: (info: { pid: number; engine: 'jmeter' | 'builtin'; jtl: string; log?: string }) => void;
}
