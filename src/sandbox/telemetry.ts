/**
 * Istio standard metrics, as the Prometheus of an Istio cluster exposes them: `istio_requests_total` and
 * the `istio_request_duration_milliseconds` histogram (plus request/response size histograms), reported by
 * both ends of every hop (reporter="source" by the client's sidecar, reporter="destination" by the server's).
 *
 * Series live in plain arrays keyed by a short string and are rendered in the Prometheus text format at
 * scrape time: a request then costs one Map lookup and a few array increments. (prom-client re-hashes the
 * label object on every `observe`, even through a cached child, which was the largest telemetry cost.)
 */
import { exposedLabelValue } from '../services/scrape.js';

export interface RequestRecord {
  reporter: 'source' | 'destination';
  sourceWorkload: string;
  sourceVersion: string;
  destinationWorkload: string;
  destinationService: string;
  destinationVersion: string;
  namespace: string;
  responseCode: number;
  responseFlags: string;
  durationMs: number;
  requestBytes: number;
  responseBytes: number;
  /**
   * Custom dimensions a cluster adds with Istio's Telemetry API tagOverrides (deploy/sdc/telemetry.yaml):
   * the load engines' x-clover-cd-load header ("unknown" without it) and the request path.
   */
  loadTag?: string;
  requestPath?: string;
}

/** Istio's default duration buckets (milliseconds). */
const DURATION_BUCKETS = [
  0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000,
  3600000,
];
const SIZE_BUCKETS = [1, 10, 100, 1000, 10000, 100000, 1000000, 10000000];

interface Hist {
  buckets: number[]; // non-cumulative counts per bucket, the last one is +Inf
  sum: number;
}
interface Series {
  labels: string; // rendered label pairs, without braces
  count: number;
  duration: Hist;
  reqSize: Hist;
  respSize: Hist;
}

const newHist = (bounds: number[]): Hist => ({
  buckets: new Array<number>(bounds.length + 1).fill(0),
  sum: 0,
});

function observe(h: Hist, bounds: number[], v: number): void {
  let i = 0;
  while (i < bounds.length && v > bounds[i]) i++;
  h.buckets[i]++;
  h.sum += v;
}

/**
 * Load runs whose series the sandbox keeps. Every run tags its requests with its own id (a label value), and
 * each run adds ~40 series (~1 MB of text per scrape) that no later window reads: without a bound, a sandbox
 * that serves many releases grows without end, and so does every scrape of it. The series of the run that
 * least recently sent a request go first; user traffic (no tag) is never dropped. A window judges its own
 * run, which is sending while it is judged, so only more than this many runs at once could evict it.
 */
export const LOAD_RUNS_KEPT = 4;

export class MeshTelemetry {
  private readonly series = new Map<string, Series>();
  /** Per load run id: its series' keys and when it last sent (a request counter), for `LOAD_RUNS_KEPT`. */
  private readonly runs = new Map<string, { keys: string[]; lastUse: number }>();
  private requests = 0;
  readonly contentType = 'text/plain; version=0.0.4; charset=utf-8';

  constructor(private readonly runsKept = LOAD_RUNS_KEPT) {}

  record(r: RequestRecord): void {
    const key = `${r.reporter}|${r.sourceWorkload}|${r.sourceVersion}|${r.destinationWorkload}|${r.destinationService}|${r.destinationVersion}|${r.responseCode}|${r.responseFlags}|${r.namespace}|${r.loadTag ?? 'unknown'}|${r.requestPath ?? ''}`;
    const run = r.loadTag && r.loadTag !== 'unknown' ? this.useRun(r.loadTag) : undefined;
    let s = this.series.get(key);
    if (!s) {
      this.series.set(
        key,
        (s = {
          labels: labelText(r),
          count: 0,
          duration: newHist(DURATION_BUCKETS),
          reqSize: newHist(SIZE_BUCKETS),
          respSize: newHist(SIZE_BUCKETS),
        }),
      );
      run?.keys.push(key);
    }
    s.count++;
    observe(s.duration, DURATION_BUCKETS, r.durationMs);
    observe(s.reqSize, SIZE_BUCKETS, r.requestBytes);
    observe(s.respSize, SIZE_BUCKETS, r.responseBytes);
  }

  /** The run's entry, marked as just used; a new run past the bound drops the least recently used run's series. */
  private useRun(tag: string): { keys: string[]; lastUse: number } {
    let run = this.runs.get(tag);
    if (!run) {
      if (this.runs.size >= this.runsKept) {
        let oldest: string | undefined;
        for (const [t, x] of this.runs) if (!oldest || x.lastUse < this.runs.get(oldest)!.lastUse) oldest = t;
        for (const k of this.runs.get(oldest!)!.keys) this.series.delete(k);
        this.runs.delete(oldest!);
      }
      this.runs.set(tag, (run = { keys: [], lastUse: 0 }));
    }
    run.lastUse = ++this.requests;
    return run;
  }

  /**
   * The Prometheus text exposition of every series. Every sample carries the instant it was read (the text is
   * written in one synchronous pass, so all counters hold at that millisecond): a scraper learns exactly when its
   * snapshot was taken, however long the request took.
   */
  async metricsText(): Promise<string> {
    const at = ` ${Date.now()}`;
    const out: string[] = [
      '# HELP istio_requests_total Requests processed by the mesh',
      '# TYPE istio_requests_total counter',
    ];
    for (const s of this.series.values()) out.push(`istio_requests_total{${s.labels}} ${s.count}${at}`);
    histogramText(
      out,
      'istio_request_duration_milliseconds',
      'Request duration in milliseconds',
      DURATION_BUCKETS,
      this.series,
      (s) => s.duration,
      at,
    );
    histogramText(
      out,
      'istio_request_bytes',
      'Request sizes',
      SIZE_BUCKETS,
      this.series,
      (s) => s.reqSize,
      at,
    );
    histogramText(
      out,
      'istio_response_bytes',
      'Response sizes',
      SIZE_BUCKETS,
      this.series,
      (s) => s.respSize,
      at,
    );
    return out.join('\n') + '\n';
  }
}

function histogramText(
  out: string[],
  name: string,
  help: string,
  bounds: number[],
  series: Map<string, Series>,
  pick: (s: Series) => Hist,
  at: string,
): void {
  out.push(`# HELP ${name} ${help}`, `# TYPE ${name} histogram`);
  for (const s of series.values()) {
    const h = pick(s);
    let cum = 0;
    for (let i = 0; i < bounds.length; i++) {
      cum += h.buckets[i];
      out.push(`${name}_bucket{le="${bounds[i]}",${s.labels}} ${cum}${at}`);
    }
    cum += h.buckets[bounds.length];
    out.push(
      `${name}_bucket{le="+Inf",${s.labels}} ${cum}${at}`,
      `${name}_sum{${s.labels}} ${h.sum}${at}`,
      `${name}_count{${s.labels}} ${cum}${at}`,
    );
  }
}

function labelText(r: RequestRecord): string {
  const labels: Array<[string, string]> = [
    ['reporter', r.reporter],
    ['source_workload', r.sourceWorkload],
    ['source_workload_namespace', r.sourceWorkload === 'istio-ingressgateway' ? 'istio-system' : r.namespace],
    ['source_app', appOf(r.sourceWorkload, r.sourceVersion)],
    ['source_version', r.sourceVersion],
    ['destination_workload', r.destinationWorkload],
    ['destination_workload_namespace', r.namespace],
    ['destination_app', r.destinationService],
    ['destination_version', r.destinationVersion],
    ['destination_service', `${r.destinationService}.${r.namespace}.svc.cluster.local`],
    ['destination_service_name', r.destinationService],
    ['destination_service_namespace', r.namespace],
    ['response_code', String(r.responseCode)],
    ['response_flags', r.responseFlags],
    ['request_protocol', 'http'],
    ['connection_security_policy', r.reporter === 'destination' ? 'none' : 'unknown'],
    ['clover_cd_load', r.loadTag ?? 'unknown'],
    ['request_path', r.requestPath ?? 'unknown'],
  ];
  return labels.map(([k, v]) => `${k}="${exposedLabelValue(v)}"`).join(',');
}

/** Workload `http-lb-v2` with version v2 belongs to app `http-lb`. */
export function appOf(workload: string, version: string): string {
  return version && version !== 'unknown' && workload.endsWith(`-${version}`)
    ? workload.slice(0, -version.length - 1)
    : workload;
}
