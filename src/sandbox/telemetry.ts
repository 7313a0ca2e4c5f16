import { Counter, Histogram, Registry, type LabelValues } from 'prom-client';

/**
 * Istio standard metrics, as the Prometheus of an Istio cluster exposes them: `istio_requests_total` and
 * the `istio_request_duration_milliseconds` histogram, reported by both ends of every hop
 * (reporter="source" by the client's sidecar, reporter="destination" by the server's).
 */
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
}

const LABELS = [
  'reporter',
  'source_workload',
  'source_workload_namespace',
  'source_app',
  'source_version',
  'destination_workload',
  'destination_workload_namespace',
  'destination_app',
  'destination_version',
  'destination_service',
  'destination_service_name',
  'destination_service_namespace',
  'response_code',
  'response_flags',
  'request_protocol',
  'connection_security_policy',
] as const;
type Label = (typeof LABELS)[number];

/** Istio's default duration buckets (milliseconds). */
const DURATION_BUCKETS = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000];
const SIZE_BUCKETS = [1, 10, 100, 1000, 10000, 100000, 1000000, 10000000];

interface Children {
  requests: { inc(): void };
  duration: { observe(v: number): void };
  reqSize: { observe(v: number): void };
  respSize: { observe(v: number): void };
}

export class MeshTelemetry {
  readonly registry = new Registry();
  private readonly requests: Counter<Label>;
  private readonly duration: Histogram<Label>;
  private readonly reqSize: Histogram<Label>;
  private readonly respSize: Histogram<Label>;
  // Label hashing dominates the cost of a prom-client update; children are cached by a cheap key.
  private readonly children = new Map<string, Children>();

  constructor() {
    const registers = [this.registry];
    this.requests = new Counter({ name: 'istio_requests_total', help: 'Requests processed by the mesh', labelNames: LABELS, registers });
    this.duration = new Histogram({
      name: 'istio_request_duration_milliseconds',
      help: 'Request duration in milliseconds',
      labelNames: LABELS,
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.reqSize = new Histogram({ name: 'istio_request_bytes', help: 'Request sizes', labelNames: LABELS, buckets: SIZE_BUCKETS, registers });
    this.respSize = new Histogram({ name: 'istio_response_bytes', help: 'Response sizes', labelNames: LABELS, buckets: SIZE_BUCKETS, registers });
  }

  record(r: RequestRecord): void {
    const key = `${r.reporter}|${r.sourceWorkload}|${r.sourceVersion}|${r.destinationWorkload}|${r.destinationService}|${r.destinationVersion}|${r.responseCode}|${r.responseFlags}|${r.namespace}`;
    let c = this.children.get(key);
    if (!c) {
      const sourceApp = appOf(r.sourceWorkload, r.sourceVersion);
      const labels: LabelValues<Label> = {
        reporter: r.reporter,
        source_workload: r.sourceWorkload,
        source_workload_namespace: r.sourceWorkload === 'istio-ingressgateway' ? 'istio-system' : r.namespace,
        source_app: sourceApp,
        source_version: r.sourceVersion,
        destination_workload: r.destinationWorkload,
        destination_workload_namespace: r.namespace,
        destination_app: r.destinationService,
        destination_version: r.destinationVersion,
        destination_service: `${r.destinationService}.${r.namespace}.svc.cluster.local`,
        destination_service_name: r.destinationService,
        destination_service_namespace: r.namespace,
        response_code: String(r.responseCode),
        response_flags: r.responseFlags,
        request_protocol: 'http',
        connection_security_policy: r.reporter === 'destination' ? 'none' : 'unknown',
      };
      c = {
        requests: this.requests.labels(labels),
        duration: this.duration.labels(labels),
        reqSize: this.reqSize.labels(labels),
        respSize: this.respSize.labels(labels),
      };
      this.children.set(key, c);
    }
    c.requests.inc();
    c.duration.observe(r.durationMs);
    c.reqSize.observe(r.requestBytes);
    c.respSize.observe(r.responseBytes);
  }

  metricsText(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/** Workload `http-lb-v2` with version v2 belongs to app `http-lb`. */
export function appOf(workload: string, version: string): string {
  return version && version !== 'unknown' && workload.endsWith(`-${version}`) ? workload.slice(0, -version.length - 1) : workload;
}
