import { promqlString } from '../spec/metric-query.js';

/**
 * What a mesh's telemetry calls things (Flagger's "observers"): which series count requests and time
 * them, and which labels carry the service, the version, the response code, the reporter, the load's run id
 * and the route. Kept apart from the metrics providers (where the numbers come from): a mesh whose
 * telemetry names things differently is a new description here, nothing else.
 */
export interface MeshTelemetry {
  mesh: string;
  /** Counter of requests. */
  requests: string;
  /** Request-duration histogram family and its flattened samples. */
  duration: { family: string; bucket: string; sum: string; count: string };
  labels: {
    service: string;
    version: string;
    /** Workload name, whose `<service>-` suffix gives the version when the version label is missing. */
    workload: string;
    code: string;
    /** Which side reported the sample; only `serverReporter` samples are counted (each request once). */
    reporter: string;
    /** The load's run id (request header surfaced as a dimension, see deploy/sdc/telemetry.yaml). */
    load: string;
    route: string;
  };
  serverReporter: string;
}

export const ISTIO_TELEMETRY: MeshTelemetry = {
  mesh: 'istio',
  requests: 'istio_requests_total',
  duration: {
    family: 'istio_request_duration_milliseconds',
    bucket: 'istio_request_duration_milliseconds_bucket',
    sum: 'istio_request_duration_milliseconds_sum',
    count: 'istio_request_duration_milliseconds_count',
  },
  labels: {
    service: 'destination_service_name',
    version: 'destination_version',
    workload: 'destination_workload',
    code: 'response_code',
    reporter: 'reporter',
    load: 'clover_cd_load',
    route: 'request_path',
  },
  serverReporter: 'destination',
};

/** `series{label="value",…}` (PromQL's quoting): how a series is named in queries and in messages. */
export function seriesSelector(series: string, match: Record<string, string> = {}): string {
  const parts = Object.entries(match).map(([k, v]) => `${k}="${promqlString(v)}"`);
  return parts.length ? `${series}{${parts.join(',')}}` : series;
}

/** The version label, or the version suffix of the workload ("http-lb-v2" → "v2"). */
export function versionOfLabels(labels: Record<string, string>, service: string, t: MeshTelemetry): string {
  const v = labels[t.labels.version];
  if (v && v !== 'unknown') return v;
  const w = labels[t.labels.workload] ?? '';
  return w.startsWith(`${service}-`) ? w.slice(service.length + 1) : w || 'unknown';
}
