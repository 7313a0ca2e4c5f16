/**
 * The gate's data model: the evidence bundle (everything a verdict is computed from, so it can be replayed
 * offline) and the verdict itself. Evidence holds counts and samples, never live handles.
 */
import type { MetricsSource } from '../contract/index.js';
import type { MeshTelemetry } from '../metrics/index.js';
import type { PlatformEndpoints } from '../services/platform.js';
import type { GateRule } from '../spec/types.js';

export type Outcome = 'pass' | 'fail' | 'inconclusive' | 'error';

export interface RuleResult {
  /** The rule as a person reads it: "errorRate ≤ 1% (candidate)". */
  rule: string;
  outcome: Outcome;
  observed: string;
  expected: string;
  source: string;
  reason: string;
  /** Raw figures behind the result (p-values, intervals, counts), for reports and replay diffs. */
  details?: Record<string, unknown>;
}

export interface Verdict {
  outcome: Outcome;
  summary: string;
  results: RuleResult[];
  /** How gate.alpha was spent over the rules (absent for bundles written before the budget). */
  budget?: import('./budget.js').Budget;
  /** The sequential decision: when it was taken and on which look (absent when the window was judged once). */
  decision?: {
    outcome: 'pass' | 'fail' | 'inconclusive';
    at: number;
    look: number;
    looks: number;
    afterMs: number;
  };
}

export type { QueryRecord } from '../services/query-log.js';
import type { QueryRecord } from '../services/query-log.js';

/** Where evidence came from: a metrics backend (`contract`'s METRICS_SOURCES) or one of the gate's other sources. */
export const OTHER_SOURCES = ['jaeger', 'load', 'redis', 'clovisor'] as const;
export type SourceName = MetricsSource | (typeof OTHER_SOURCES)[number];

export interface SourceRecord {
  name: SourceName;
  url?: string;
  status: 'ok' | 'down' | 'not-configured';
  /** Why the source is down: the InfrastructureError message (system, URL, what to check). */
  error?: string;
  queries: QueryRecord[];
}

/** Requests seen for one version of a service, by response code. */
export interface VersionCounts {
  requests: number;
  /** Requests answered 5xx (or a transport failure). */
  errors: number;
  codes: Record<string, number>;
}

/** Cumulative histogram: upper bounds in ms (Infinity last) and cumulative counts, as Prometheus buckets. */
export interface Histogram {
  le: number[];
  counts: number[];
}

/** Metric evidence from Prometheus or a direct scrape: counter deltas over the window. */
export interface MetricEvidence {
  source: MetricsSource;
  /** destination_service_name → version → counts (reporter="destination"). */
  hops: Record<string, Record<string, VersionCounts>>;
  /** Latency histogram of the gated service per version. */
  latency: Record<string, Histogram>;
  /** Series the rules needed and did not find (named with their labels). */
  missing: string[];
  /**
   * Requests of this run's load only: hop → version → counts of the series labelled
   * `clover_cd_load="<run id>"` (Istio Telemetry tagOverrides from the `x-clover-cd-load` header).
   * Absent when the label does not exist (bundles written before it, or a cluster without the Telemetry resource).
   */
  tagged?: Record<string, Record<string, VersionCounts>>;
  /** Gated service, route (the `request_path` label) → version → counts. */
  routes?: Record<string, Record<string, VersionCounts>>;
  /** Gated service, route → version → latency histogram. */
  routeLatency?: Record<string, Record<string, Histogram>>;
  /** Mean request duration per hop (ms) over the window, from the duration histogram's _sum / _count. */
  hopLatencyMs?: Record<string, number>;
  /** Prometheus' scrape interval: hops scraped at different phases count slightly shifted windows. */
  scrapeIntervalMs?: number;
  /**
   * The interval the counts cover (epoch ms): when the snapshots were actually taken (a direct scrape's requests,
   * Prometheus' scrape timestamps), and how uncertain each edge is (a snapshot's duration, the spread of scrape
   * times). Traces are queried over exactly this interval.
   */
  interval?: { start: number; end: number; uncertaintyMs: number };
}

/** A row of the request table built from traces: root requests grouped by what the rules select on. */
export interface RequestGroup {
  url: string;
  status: string;
  userAgent: string;
  count: number;
}

/** Trace evidence from the Jaeger query API. */
export interface TraceEvidence {
  traces: number;
  spans: number;
  rootSpans: number;
  /**
   * Mean duration (ms) of the root spans, start to end: a root span is counted by its start, a mesh counter when
   * the request completes, so this long at each edge a request can fall on either side.
   */
  rootMeanMs?: number;
  /** Root requests grouped by url × status × user agent. */
  requests: RequestGroup[];
  /** Spans at the gated service per version. */
  versions: Record<string, VersionCounts>;
  /** Durations (ms) of the gated service's spans per version, for comparisons and percentiles. */
  durations: Record<string, number[]>;
  /** Spans per service (hop), for conservation. */
  hops: Record<string, number>;
  /** The sampler the root spans report (Jaeger's sampler.type / sampler.param tags), when they carry one. */
  sampling?: { type: string; param: number };
  /** Root spans that carry this run's load tag (`clover_cd_load` span tag), when spans carry it. */
  taggedRootSpans?: number;
  /** Spans at the gated service by route (URL path) and version. */
  routes?: Record<string, Record<string, VersionCounts>>;
  /** The trace store said it could not return every span of the window (Jaeger's `errors`, e.g. evicted spans). */
  incomplete?: string;
}

/** What the load generator reported (the load module's LoadSummary, reduced to what rules read). */
export interface LoadEvidence {
  engine: string;
  /** The value of the `x-clover-cd-load` header the load sent (absent in bundles written before it). */
  runId?: string;
  /** When the load started and ended (epoch ms): tagged counts are exact only for a run inside the window. */
  startedAt?: number;
  endedAt?: number;
  sent: number;
  errors: number;
  expected?: number;
  codes: Record<string, number>;
  userAgents: Record<string, number>;
  labels: Record<
    string,
    { count: number; errors: number; codes: Record<string, number>; userAgents: Record<string, number> }
  >;
}

export interface EvidenceBundle {
  kind: 'clover-cd/evidence';
  version: 1;
  createdAt: string;
  release: string;
  service: { name: string; namespace: string; stable: string; candidate: string };
  window: { start: number; end: number };
  /**
   * What the mesh's telemetry called things (series, labels) when the evidence was read: the rules name the
   * series they read from it. Absent in bundles written before it was recorded (Istio's names).
   */
  telemetry?: MeshTelemetry;
  /** Configured candidate weight (%), for the split rule. */
  candidateWeight?: number;
  minSamples: number;
  /**
   * Candidate requests the step was sized for (validators/sample-size.ts); below it every statistical rule
   * is inconclusive. Absent in older bundles.
   */
  plannedSamples?: number;
  /** Share of requests traced (0..1) from the spec's gate.traceSampling; spans' own tags are used otherwise. */
  traceSampling?: number;
  rules: GateRule[];
  /** The false-alarm budget (gate.alpha) and the pass error (gate.beta); absent in bundles written before them. */
  alpha?: number;
  beta?: number;
  /** The part of `alpha` this window spent (a window of a release spends its share), and why; 1 when absent. */
  alphaShare?: number;
  alphaNote?: string;
  /** Routes judged per perRoute rule, and the fewest candidate requests a route must have to be required to pass. */
  maxRoutes?: number;
  minRouteSamples?: number;
  /** The shortest window (ms): before it the gate can fail, never pass. */
  minWindowMs?: number;
  /**
   * Cumulative metric snapshots taken while the window was open, in time order: the sequential tests re-run over
   * them to the same decision at the same look (`gate --replay`).
   */
  sequence?: Look[];
  requireL4?: boolean;
  sources: SourceRecord[];
  evidence: {
    metrics?: MetricEvidence;
    traces?: TraceEvidence;
    load?: LoadEvidence;
    /** L3/L4 sessions per version from clovisor, when an `l4` rule asked for them and a tracer ran. */
    l4?: import('../clovisor/types.js').L4Evidence;
    /** Each metric rule's queries as sent and their values, by the rule's name (validators/metric-rule.ts). */
    metricRules?: Record<string, MetricRuleEvidence>;
  };
  verdict?: Verdict;
}

/** One query as sent and what came back. */
export interface MetricQueryResult {
  query: string;
  /** The one value, or null when the query returned no series, NaN or ±Inf (a division by zero). */
  value: number | null;
  /** A value that is not a number Prometheus can compare ("NaN", "+Inf"), as it came. */
  raw?: string;
  series: number;
  /** Why the query has no usable value: Prometheus refused it (its message), or it returned several series. */
  error?: string;
}

/** What a metric rule's (validators/metric-rule.ts) queries returned at the window's end, per version. */
export interface MetricRuleEvidence {
  /** Evaluation time (epoch ms): the window's end. */
  at: number;
  /** The window's length as the queries saw it (`{{window}}`). */
  window: string;
  versions: Record<string, { value: MetricQueryResult; samples?: MetricQueryResult }>;
  /** The rule could not be rendered (a spec not checked by spec validate). */
  error?: string;
}

/** Requests and errors of one version (a look keeps no response codes). */
export interface LookCounts {
  requests: number;
  errors: number;
}

/** One look at the gated service while the window is open: counts since the window opened. */
export interface Look {
  /** When the snapshot was taken (epoch ms). */
  at: number;
  versions: Record<string, LookCounts>;
  /** Route → version → counts (the request_path label). */
  routes?: Record<string, Record<string, LookCounts>>;
  /** Version → latency histogram. */
  latency?: Record<string, Histogram>;
  /** Route → version → latency histogram. */
  routeLatency?: Record<string, Record<string, Histogram>>;
}

/** Contract [B]'s LoadRunResult, structurally: the gate reads only these fields. */
export interface LoadLabelStatsLike {
  count: number;
  errors: number;
  codes: Record<string, number>;
  userAgents: Record<string, number>;
}
export interface LoadRunResultLike {
  engine: string;
  runId?: string;
  startedAt: number;
  endedAt: number;
  expected?: number;
  summary: { total: LoadLabelStatsLike; labels: Record<string, LoadLabelStatsLike> };
}

export interface GateContext {
  window: { start: number; end: number };
  endpoints: PlatformEndpoints;
  /** What the mesh's telemetry calls things (the mesh registration's, `routers`' telemetryOf(spec)). */
  telemetry: MeshTelemetry;
  load?: LoadRunResultLike;
  candidateWeight?: number;
  /** Candidate requests the step was sized for (plannedSamples from validators/sample-size.ts). */
  plannedSamples?: number;
  /** The step's shortest window (ms): the gate passes no earlier. */
  minWindowMs?: number;
  /** The looks taken while the window was open (validators/sequential/looks.ts), oldest first. */
  sequence?: Look[];
  evidenceDir?: string;
  requireL4?: boolean;
  /** A running `clover-cd clovisor run` (default: the address recorded in its state, if any). */
  clovisorUrl?: string;
  /** Redis to write Clover's visibility keys to (optional). */
  redisUrl?: string;
  /** The window as the metrics provider opened or closed it: for a direct scrape, the snapshot taken at its start or the increase recorded at its close. */
  metricsWindow?: import('../metrics/index.js').MetricsWindow;
  /** Progress notes for a person (stderr). */
  onNote?: (msg: string) => void;
}

export interface GateRun {
  verdict: Verdict;
  bundle: EvidenceBundle;
  bundlePath: string;
}
