import { createHttpClient } from '../../services/http.js';
import { sleep } from '../../util/retry.js';
import { readJsonPath } from './jsonpath.js';

/**
 * A Spinnaker `webhook` stage executed the way Orca does it (CreateWebhookTask + MonitorWebhookTask; the rules
 * are test/conformance/orca-webhook.json): the create call (failFastStatusCodes, default [504], TERMINAL; 5xx, 429
 * and webhookRetryStatusCodes retried; any other error status — 401, 403, 404 — TERMINAL), the status URL from the
 * response / Location header / the URL itself, polling with the same headers (`retries` per status, else 5xx, 429
 * and retryStatusCodes retried, others TERMINAL), statusJsonPath against the three comma-separated status lists
 * (a number: 100 is done), progressJsonPath, and the cancel call.
 */
export interface WebhookStage {
  url: string;
  method?: string;
  customHeaders?: Record<string, string | string[]>;
  payload?: unknown;
  failFastStatusCodes?: number[];
  retryStatusCodes?: number[];
  webhookRetryStatusCodes?: number[];
  waitForCompletion?: boolean;
  statusUrlResolution?: 'getMethod' | 'locationHeader' | 'webhookResponse';
  statusUrlJsonPath?: string;
  statusJsonPath?: string;
  progressJsonPath?: string;
  successStatuses?: string;
  terminalStatuses?: string;
  canceledStatuses?: string;
  waitBeforeMonitor?: number;
  cancelEndpoint?: string;
  cancelMethod?: string;
  cancelPayload?: unknown;
  retries?: Record<string, { maxAttempts?: number }>;
  stageTimeoutMs?: number;
}

export type WebhookStatus = 'SUCCEEDED' | 'TERMINAL' | 'CANCELED';

export interface WebhookResult {
  status: WebhookStatus;
  message: string;
  /** What Orca puts in the stage context (`context.webhook`), for SpEL in later stages. */
  context: { webhook: Record<string, unknown>; statusEndpoint?: string };
}

export interface WebhookRunOptions {
  signal?: AbortSignal;
  pollIntervalMs?: number;
  /** Attempts of the create call on 5xx/429 before TERMINAL (Orca retries until the stage times out). */
  createAttempts?: number;
  onProgress?: (message: string) => void;
}

/** Orca's webhook.defaultRetryStatusCodes, retried on the create call and on polls. */
export const DEFAULT_RETRY_STATUS_CODES = [429];

const list = (s?: string) =>
  new Set(
    (s ?? '')
      .split(',')
      .map((x) => x.trim().toUpperCase())
      .filter(Boolean),
  );

function headersOf(h?: Record<string, string | string[]>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h ?? {})) out[k] = Array.isArray(v) ? v.join(',') : v;
  return out;
}

export async function runWebhookStage(
  stage: WebhookStage,
  opts: WebhookRunOptions = {},
): Promise<WebhookResult> {
  const client = createHttpClient({
    system: 'webhook target',
    baseURL: stage.url,
    retry: { attempts: 1 },
    timeoutMs: 30_000,
  });
  const headers = headersOf(stage.customHeaders);
  const request = (method: string, url: string, data?: unknown) =>
    client.request<unknown>({
      method,
      url,
      data,
      headers: { 'content-type': 'application/json', ...headers },
      validateStatus: () => true,
    });
  const interval = opts.pollIntervalMs ?? 1000;
  const deadline = Date.now() + (stage.stageTimeoutMs ?? 24 * 3600_000);
  const webhook: Record<string, unknown> = {};
  const result = (status: WebhookStatus, message: string): WebhookResult => ({
    status,
    message,
    context: { webhook, statusEndpoint: webhook.statusEndpoint as string | undefined },
  });
  const refused = (message: string) => {
    webhook.error = message;
    return result('TERMINAL', message);
  };

  // Create call.
  const failFast = new Set(stage.failFastStatusCodes ?? [504]);
  const createRetry = new Set(stage.webhookRetryStatusCodes ?? []);
  let created;
  for (let attempt = 1; ; attempt++) {
    created = await request(stage.method ?? 'POST', stage.url, stage.payload);
    Object.assign(webhook, { statusCodeValue: created.status, headers: created.headers, body: created.data });
    if (created.status < 400) break;
    if (failFast.has(created.status))
      return refused(`create call answered ${created.status}, a fail-fast status code`);
    const retryable =
      created.status >= 500 ||
      DEFAULT_RETRY_STATUS_CODES.includes(created.status) ||
      createRetry.has(created.status);
    if (!retryable) return refused(`create call answered ${created.status}: ${JSON.stringify(created.data)}`);
    if (attempt >= (opts.createAttempts ?? 5) || Date.now() > deadline)
      return result('TERMINAL', `create call kept answering ${created.status}`);
    await sleep(Math.min(interval * attempt, 5000), opts.signal);
  }
  if (!stage.waitForCompletion) return result('SUCCEEDED', `create call answered ${created.status}`);

  // Status URL.
  let statusUrl: string | undefined;
  const resolution = stage.statusUrlResolution ?? 'getMethod';
  if (resolution === 'getMethod') statusUrl = stage.url;
  else if (resolution === 'locationHeader') statusUrl = created.headers.location as string | undefined;
  else if (stage.statusUrlJsonPath) {
    const r = readJsonPath(created.data, stage.statusUrlJsonPath);
    statusUrl = r.found && typeof r.value === 'string' ? r.value : undefined;
  }
  if (!statusUrl)
    return result(
      'TERMINAL',
      `The status URL couldn't be resolved (${resolution}${stage.statusUrlJsonPath ? ` ${stage.statusUrlJsonPath}` : ''})`,
    );
  if (!/^https?:/.test(statusUrl)) statusUrl = new URL(statusUrl, stage.url).href;
  webhook.statusEndpoint = statusUrl;
  if (stage.waitBeforeMonitor) await sleep(stage.waitBeforeMonitor * 1000, opts.signal);

  // Monitor.
  const success = list(stage.successStatuses);
  const terminal = list(stage.terminalStatuses);
  const canceled = list(stage.canceledStatuses);
  const retryCodes = new Set(stage.retryStatusCodes ?? []);
  const pastStatusCodes: number[] = [];
  const monitor: Record<string, unknown> = { pastStatusCodes };
  webhook.monitor = monitor;
  const cancel = async () => {
    if (!stage.cancelEndpoint) return;
    await request(stage.cancelMethod ?? 'POST', stage.cancelEndpoint, stage.cancelPayload ?? {}).catch(
      () => undefined,
    );
  };
  for (;;) {
    if (opts.signal?.aborted) {
      await cancel();
      return result('CANCELED', 'the execution was canceled; the cancel endpoint was called');
    }
    if (Date.now() > deadline) return result('TERMINAL', 'stage timed out while polling the status URL');
    let polled;
    try {
      polled = await request('GET', statusUrl);
    } catch {
      // Transport error: Orca keeps polling until the stage times out.
      await sleep(interval, opts.signal).catch(() => undefined);
      continue;
    }
    Object.assign(monitor, { statusCodeValue: polled.status, body: polled.data, headers: polled.headers });
    if (polled.status >= 400) {
      // A `retries` entry for the status counts the earlier polls that got it; otherwise 5xx, 429 and retryStatusCodes.
      const max = stage.retries?.[String(polled.status)]?.maxAttempts;
      const earlier = pastStatusCodes.filter((c) => c === polled.status).length;
      const retry =
        max !== undefined
          ? earlier < max
          : polled.status >= 500 ||
            DEFAULT_RETRY_STATUS_CODES.includes(polled.status) ||
            retryCodes.has(polled.status);
      if (!retry) {
        monitor.error = `status URL answered ${polled.status}`;
        return result('TERMINAL', `status URL answered ${polled.status}`);
      }
      pastStatusCodes.push(polled.status);
    } else {
      if (stage.progressJsonPath) {
        const p = readJsonPath(polled.data, stage.progressJsonPath);
        if (p.found && typeof p.value === 'string' && p.value !== monitor.progressMessage) {
          monitor.progressMessage = p.value;
          opts.onProgress?.(p.value);
        }
      }
      if (!stage.statusJsonPath) return result('SUCCEEDED', 'status URL answered');
      const s = readJsonPath(polled.data, stage.statusJsonPath);
      if (!s.found) return result('TERMINAL', `${stage.statusJsonPath} not found in the status response`);
      monitor.resolvedValue = s.value;
      if (typeof s.value === 'number') {
        monitor.percentComplete = s.value;
        if (s.value === 100) return result('SUCCEEDED', '100% complete');
      } else {
        const v = String(s.value).toUpperCase();
        const msg = (monitor.progressMessage as string | undefined) ?? v;
        if (success.has(v)) return result('SUCCEEDED', msg);
        if (canceled.has(v)) return result('CANCELED', msg);
        if (terminal.has(v)) return result('TERMINAL', msg);
      }
    }
    try {
      await sleep(interval, opts.signal);
    } catch {
      /* aborted: handled at the top of the loop */
    }
  }
}
