import axios, { AxiosError, type AxiosInstance, type AxiosRequestConfig, type AxiosResponse } from 'axios';
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

function isRetryable(err: unknown): boolean {
  if (!(err instanceof AxiosError)) return false;
  if (!err.response) return true; // connection refused, reset, timeout
  return err.response.status >= 500 || err.response.status === 429;
}

export function describeTransportError(err: unknown): string {
  if (err instanceof AxiosError) {
    if (err.response) return `HTTP ${err.response.status} ${err.response.statusText ?? ''}`.trim();
    if (err.code === 'ECONNABORTED' || err.code === 'ETIMEDOUT') return `timed out (${err.message})`;
    return err.code ? `${err.code}: ${err.message}` : err.message;
  }
  return err instanceof Error ? err.message : String(err);
}

export function createHttpClient(opts: HttpClientOptions): HttpClient {
  const instance: AxiosInstance = axios.create({
    baseURL: opts.baseURL,
    timeout: opts.timeoutMs ?? 10_000,
    headers: opts.headers,
    // 4xx is an answer, not a transport failure: adapters interpret it.
    validateStatus: (s) => s < 500 && s !== 429,
    httpsAgent: opts.httpsAgent,
    proxy: false,
  });
  const request = async <T>(config: AxiosRequestConfig): Promise<AxiosResponse<T>> => {
    try {
      return await withRetry(() => instance.request<T>(config), {
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
