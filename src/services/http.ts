import type { AxiosError, AxiosInstance, AxiosRequestConfig, AxiosResponse, AxiosStatic } from 'axios';
import { InfrastructureError } from '../util/errors.js';
import { redact } from '../util/redact.js';
import { withRetry, type RetryOptions } from '../util/retry.js';

/**
 * The one HTTP client factory for adapters in services/. Every client has a timeout, retries transport
 * errors and 5xx/429 with backoff, and turns a final failure into an InfrastructureError naming the
 * system, the URL and what to check. 4xx answers are returned to the adapter, which knows what they mean.
 */
export interface HttpClientOptions {
  /** Name of the outside system, used in every error ("Prometheus", "Spinnaker Gate", ...). */
  system: string;
  baseURL: string;
  timeoutMs?: number;
  headers?: Record<string, string>;
  retry?: RetryOptions;
  /** What the user should check when the system cannot be reached. */
  hint?: string;
  httpsAgent?: unknown;
}

export interface HttpClient {
  readonly system: string;
  readonly baseURL: string;
  request<T = unknown>(config: AxiosRequestConfig): Promise<AxiosResponse<T>>;
  get<T = unknown>(url: string, config?: AxiosRequestConfig): Promise<AxiosResponse<T>>;
  post<T = unknown>(url: string, data?: unknown, config?: AxiosRequestConfig): Promise<AxiosResponse<T>>;
}

/**
 * axios loads with the first request: with the fetch support it probes, it costs ~150 ms at start-up that a
 * command reaching no outside system (spec validate, gate --replay, a stage against the sandbox) should not pay.
 */
let axiosLoading: Promise<AxiosStatic> | undefined;
const loadAxios = () => (axiosLoading ??= import('axios').then((m) => m.default));

const isAxiosError = (err: unknown): err is AxiosError =>
  typeof err === 'object' && err !== null && (err as { isAxiosError?: unknown }).isAxiosError === true;

function isRetryable(err: unknown): boolean {
  if (!isAxiosError(err)) return false;
  if (!err.response) return true; // connection refused, reset, timeout
  return err.response.status >= 500 || err.response.status === 429;
}

export function describeTransportError(err: unknown): string {
  if (isAxiosError(err)) {
    if (err.response) return `HTTP ${err.response.status} ${err.response.statusText ?? ''}`.trim();
    if (err.code === 'ECONNABORTED' || err.code === 'ETIMEDOUT') return `timed out (${err.message})`;
    return err.code ? `${err.code}: ${err.message}` : err.message;
  }
  return err instanceof Error ? err.message : String(err);
}

export function createHttpClient(opts: HttpClientOptions): HttpClient {
  let instance: Promise<AxiosInstance> | undefined;
  const client = () =>
    (instance ??= loadAxios().then((axios) =>
      axios.create({
        baseURL: opts.baseURL,
        timeout: opts.timeoutMs ?? 10_000,
        headers: opts.headers,
        // 4xx is an answer, not a transport failure: adapters interpret it.
        validateStatus: (s) => s < 500 && s !== 429,
        httpsAgent: opts.httpsAgent,
        proxy: false,
      }),
    ));
  const request = async <T>(config: AxiosRequestConfig): Promise<AxiosResponse<T>> => {
    try {
      const http = await client();
      return await withRetry(() => http.request<T>(config), {
        attempts: 3,
        baseDelayMs: 200,
        ...opts.retry,
        retryable: opts.retry?.retryable ?? isRetryable,
      });
    } catch (err) {
      const path = config.url ?? '';
      const url = redact(
        /^https?:/.test(path) ? path : `${opts.baseURL.replace(/\/$/, '')}/${path.replace(/^\//, '')}`,
      );
      throw new InfrastructureError(
        opts.system,
        `${(config.method ?? 'GET').toUpperCase()} ${url}`,
        redact(describeTransportError(err)),
        opts.hint ?? `that ${opts.system} is running and reachable at ${redact(opts.baseURL)}`,
      );
    }
  };
  return {
    system: opts.system,
    baseURL: opts.baseURL,
    request,
    get: (url, config) => request({ ...config, method: 'GET', url }),
    post: (url, data, config) => request({ ...config, method: 'POST', url, data }),
  };
}
