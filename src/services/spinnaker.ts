/**
 * Spinnaker Gate client: save a pipeline config (upsert by name, like `spin pipeline
 * save`), start an execution, read and wait for its status. Credentials (bearer token, basic, client
 * certificate) come from the environment or files and are registered as secrets so they never print.
 */
import { readFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { InconclusiveError, InfrastructureError, InvalidInputError } from '../util/errors.js';
import { registerSecret } from '../util/redact.js';
import { sleep } from '../util/retry.js';
import { createHttpClient, type HttpClient } from './http.js';

export interface GateAuth {
  token?: string;
  user?: string;
  password?: string;
  cert?: string;
  key?: string;
  ca?: string;
}

export interface GateAuthSources {
  certFile?: string;
  keyFile?: string;
  caFile?: string;
  tokenFile?: string;
}

function readSecretFile(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new InvalidInputError(
      `cannot read the ${what} file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
}

/**
 * Gate credentials from flags and environment: SPINNAKER_TOKEN or SPINNAKER_TOKEN_FILE (bearer),
 * SPINNAKER_USER + SPINNAKER_PASSWORD or SPINNAKER_PASSWORD_FILE (basic), and a client certificate from
 * --cert/--key/--ca or SPINNAKER_CLIENT_CERT / SPINNAKER_CLIENT_KEY / SPINNAKER_CA_CERT (file paths).
 */
export function gateAuthFrom(sources: GateAuthSources = {}, env: NodeJS.ProcessEnv = process.env): GateAuth {
  const auth: GateAuth = {};
  const tokenFile = sources.tokenFile ?? env.SPINNAKER_TOKEN_FILE;
  auth.token = env.SPINNAKER_TOKEN || (tokenFile ? readSecretFile(tokenFile, 'token').trim() : undefined);
  auth.user = env.SPINNAKER_USER || undefined;
  const passwordFile = env.SPINNAKER_PASSWORD_FILE;
  auth.password =
    env.SPINNAKER_PASSWORD || (passwordFile ? readSecretFile(passwordFile, 'password').trim() : undefined);
  if (auth.user && !auth.password)
    throw new InvalidInputError(
      'SPINNAKER_USER is set but no password: set SPINNAKER_PASSWORD or SPINNAKER_PASSWORD_FILE',
    );
  const certFile = sources.certFile ?? env.SPINNAKER_CLIENT_CERT;
  const keyFile = sources.keyFile ?? env.SPINNAKER_CLIENT_KEY;
  const caFile = sources.caFile ?? env.SPINNAKER_CA_CERT;
  if (!!certFile !== !!keyFile)
    throw new InvalidInputError(
      'a client certificate needs both --cert and --key (or SPINNAKER_CLIENT_CERT and SPINNAKER_CLIENT_KEY)',
    );
  if (certFile && keyFile) {
    auth.cert = readSecretFile(certFile, 'client certificate');
    auth.key = readSecretFile(keyFile, 'client key');
  }
  if (caFile) auth.ca = readSecretFile(caFile, 'CA certificate');
  for (const s of [auth.token, auth.password, auth.key]) registerSecret(s);
  return auth;
}

export interface PipelineExecution {
  id: string;
  application?: string;
  name?: string;
  status: string;
  startTime?: number;
  endTime?: number;
  pipelineConfigId?: string;
  stages?: Array<{
    id?: string;
    refId?: string;
    name?: string;
    type?: string;
    status?: string;
    context?: Record<string, unknown>;
  }>;
  [k: string]: unknown;
}

export const FINAL_STATUSES = new Set([
  'SUCCEEDED',
  'TERMINAL',
  'CANCELED',
  'STOPPED',
  'FAILED_CONTINUE',
  'SKIPPED',
]);

/** Exit code of a finished execution: 0 SUCCEEDED, 1 anything else final. */
export function executionExitCode(status: string): 0 | 1 {
  return status === 'SUCCEEDED' ? 0 : 1;
}

/** The readable part of a Gate error body ({message}, {errors:[...]}, or text). */
export function gateErrorMessage(data: unknown): string {
  if (typeof data === 'string') return data.trim() || '(empty body)';
  if (data && typeof data === 'object') {
    const d = data as { message?: unknown; error?: unknown; errors?: unknown };
    const parts = [
      typeof d.message === 'string' ? d.message : undefined,
      ...(Array.isArray(d.errors) ? d.errors.map(String) : []),
    ].filter(Boolean);
    if (parts.length) return parts.join('; ');
    if (typeof d.error === 'string') return d.error;
  }
  return JSON.stringify(data);
}

export interface SaveResult {
  application: string;
  name: string;
  id: string;
  action: 'created' | 'updated';
}

export class GateClient {
  private readonly http: HttpClient;
  constructor(
    readonly url: string,
    auth: GateAuth = {},
    opts: { timeoutMs?: number; retryDelayMs?: number } = {},
  ) {
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (auth.token) headers.Authorization = `Bearer ${auth.token}`;
    else if (auth.user && auth.password)
      headers.Authorization = `Basic ${Buffer.from(`${auth.user}:${auth.password}`).toString('base64')}`;
    const httpsAgent =
      auth.cert || auth.ca ? new Agent({ cert: auth.cert, key: auth.key, ca: auth.ca }) : undefined;
    this.http = createHttpClient({
      system: 'Spinnaker Gate',
      baseURL: url,
      headers,
      httpsAgent,
      timeoutMs: opts.timeoutMs ?? 30_000,
      retry: opts.retryDelayMs !== undefined ? { baseDelayMs: opts.retryDelayMs } : undefined,
      hint: `that Gate is reachable at ${url} (the API endpoint, usually port 8084, not Deck)`,
    });
  }

  private refused(status: number, what: string, data: unknown): never {
    if (status === 401 || status === 403) {
      throw new InfrastructureError(
        'Spinnaker Gate',
        what,
        `HTTP ${status}: ${gateErrorMessage(data)}`,
        'the credentials (SPINNAKER_TOKEN, SPINNAKER_USER/SPINNAKER_PASSWORD or --cert/--key) and their permissions on the application',
      );
    }
    throw new InvalidInputError(`Spinnaker Gate refused ${what} (HTTP ${status}): ${gateErrorMessage(data)}`);
  }

  /** The saved config with this name, or undefined (Gate answers 404). */
  async getPipelineConfig(application: string, name: string): Promise<Record<string, unknown> | undefined> {
    const path = `/applications/${encodeURIComponent(application)}/pipelineConfigs/${encodeURIComponent(name)}`;
    const res = await this.http.get<Record<string, unknown>>(path);
    if (res.status === 404) return undefined;
    if (res.status !== 200) this.refused(res.status, `GET ${path}`, res.data);
    // Some Gate versions answer 200 with an empty body for a missing name.
    return res.data && typeof res.data === 'object' && Object.keys(res.data).length ? res.data : undefined;
  }

  /** Create or update in place: the id of an existing pipeline with the same name wins (as `spin` does). */
  async savePipeline(config: Record<string, unknown>): Promise<SaveResult> {
    const application = config.application as string;
    const name = config.name as string;
    const existing = await this.getPipelineConfig(application, name);
    const body = { ...config };
    if (existing && typeof existing.id === 'string') body.id = existing.id;
    const res = await this.http.post('/pipelines', body, { headers: { 'Content-Type': 'application/json' } });
    if (res.status < 200 || res.status >= 300)
      this.refused(res.status, `the pipeline "${name}" (POST /pipelines)`, res.data);
    const saved = await this.getPipelineConfig(application, name);
    const id = (saved?.id as string | undefined) ?? (body.id as string | undefined);
    if (!saved || !id) {
      throw new InfrastructureError(
        'Spinnaker Gate',
        `GET /applications/${application}/pipelineConfigs/${name}`,
        'the save was accepted but the pipeline cannot be read back',
        'Front50 health and the Gate logs',
      );
    }
    return { application, name, id, action: existing ? 'updated' : 'created' };
  }

  /** Start a manual execution; returns the execution id from Gate's `{"ref": "/pipelines/<id>"}`. */
  async executePipeline(
    application: string,
    name: string,
    parameters: Record<string, string> = {},
  ): Promise<string> {
    const path = `/pipelines/${encodeURIComponent(application)}/${encodeURIComponent(name)}`;
    const res = await this.http.post<{ ref?: string }>(
      path,
      { type: 'manual', user: 'clover-cd', parameters },
      { headers: { 'Content-Type': 'application/json' } },
    );
    if (res.status === 404)
      throw new InvalidInputError(
        `no pipeline "${name}" in application "${application}" (Gate answered 404: ${gateErrorMessage(res.data)})`,
      );
    if (res.status < 200 || res.status >= 300)
      this.refused(res.status, `starting "${name}" (POST ${path})`, res.data);
    const ref = res.data?.ref;
    const id = typeof ref === 'string' ? ref.split('/').filter(Boolean).pop() : undefined;
    if (!id)
      throw new InfrastructureError(
        'Spinnaker Gate',
        `POST ${path}`,
        `HTTP ${res.status} without an execution ref: ${gateErrorMessage(res.data)}`,
        'the Gate and Orca versions',
      );
    return id;
  }

  async getExecution(id: string): Promise<PipelineExecution> {
    const path = `/pipelines/${encodeURIComponent(id)}`;
    const res = await this.http.get<PipelineExecution>(path);
    if (res.status === 404) throw new InvalidInputError(`no pipeline execution "${id}" (Gate answered 404)`);
    if (res.status !== 200) this.refused(res.status, `GET ${path}`, res.data);
    return res.data;
  }

  /** Poll until the execution is final. Times out as inconclusive (exit 3): nothing is known yet. */
  async waitForExecution(
    id: string,
    opts: {
      intervalMs?: number;
      timeoutMs?: number;
      signal?: AbortSignal;
      onPoll?: (e: PipelineExecution) => void;
    } = {},
  ): Promise<PipelineExecution> {
    const deadline = Date.now() + (opts.timeoutMs ?? 2 * 3600_000);
    for (;;) {
      const e = await this.getExecution(id);
      opts.onPoll?.(e);
      if (FINAL_STATUSES.has(e.status)) return e;
      if (Date.now() >= deadline)
        throw new InconclusiveError(`execution ${id} is still ${e.status} after the --timeout`);
      await sleep(opts.intervalMs ?? 2000, opts.signal);
    }
  }
}
