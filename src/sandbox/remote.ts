import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createHttpClient, type HttpClient } from '../services/http.js';
import {
  ConflictError,
  type KubeObject,
  type LoadEngineRequest,
  type ObjectRef,
  type Platform,
  type PlatformEndpoints,
  type WorkloadStatus,
} from '../services/platform.js';
import { InfrastructureError, InvalidInputError } from '../util/errors.js';
import { recordWrite } from '../util/changes.js';
import { registerSecret } from '../util/redact.js';
import { startLocalEngines } from './load-engines.js';
import type { Fault } from './mesh.js';
import type { SandboxUrls } from './sandbox.js';

/** A detached sandbox, reached through the admin API named in `<stateDir>/sandbox.json`. */
export interface SandboxState {
  pid: number;
  urls: SandboxUrls;
  token: string;
  startedAt: string;
  netns: boolean;
  logFile?: string;
  /** Network namespaces and host links the sandbox created (`netns:<name>`, `link:<name>`; removed by `sandbox down`). */
  namespaces?: string[];
  /** Workloads at start; in --netns mode with netnsName, netns (path), hostVeth, podIp, port. */
  workloads?: Array<Record<string, unknown>>;
}

export const STATE_FILE = 'sandbox.json';

export function defaultStateDir(): string {
  return resolve(process.env.CLOVER_CD_STATE_DIR || '.clover-cd');
}

export function readState(stateDir = defaultStateDir()): SandboxState | undefined {
  const file = join(stateDir, STATE_FILE);
  if (!existsSync(file)) return undefined;
  let state: SandboxState;
  try {
    state = JSON.parse(readFileSync(file, 'utf8')) as SandboxState;
  } catch {
    // Not V8's message: it quotes the text, and the file holds the admin token.
    throw new InfrastructureError(
      'sandbox',
      file,
      'the state file is not valid JSON',
      // `sandbox down` reads this same file, so the way out is removing it once no sandbox runs from it.
      `that no other tool writes it; when \`pgrep -af "sandbox up"\` shows no sandbox of this folder, remove it: rm ${file}`,
    );
  }
  registerSecret(state.token);
  return state;
}

class RemotePlatform implements Platform {
  readonly kind = 'sandbox' as const;
  constructor(
    private readonly http: HttpClient,
    readonly description: string,
    private readonly urls: SandboxUrls,
    private readonly stateDir: string,
  ) {}

  private async post<T>(path: string, body: unknown, ref?: ObjectRef): Promise<T> {
    const res = await this.http.post<
      T & { error?: string; problems?: never[]; currentResourceVersion?: string }
    >(path, body);
    if (res.status === 409 && ref) throw new ConflictError(ref, res.data.currentResourceVersion);
    if (res.status === 400)
      throw new InvalidInputError(res.data.error ?? 'invalid input', res.data.problems ?? []);
    if (res.status >= 400)
      throw new InfrastructureError(
        'sandbox admin API',
        `${this.http.baseURL}${path}`,
        `HTTP ${res.status}: ${res.data.error ?? ''}`,
      );
    return res.data;
  }

  async apply(objects: KubeObject[]) {
    const applied = (await this.post<{ objects: KubeObject[] }>('/v1/objects/apply', { objects })).objects;
    for (const o of applied) recordWrite('applied', { kind: o.kind, ...o.metadata });
    return applied;
  }
  async get(ref: ObjectRef) {
    return (await this.post<{ object: KubeObject | null }>('/v1/objects/get', { ref })).object ?? undefined;
  }
  async patch(ref: ObjectRef, patch: Record<string, unknown>, opts?: { resourceVersion?: string }) {
    const patched = (
      await this.post<{ object: KubeObject }>(
        '/v1/objects/patch',
        { ref, patch, resourceVersion: opts?.resourceVersion },
        ref,
      )
    ).object;
    recordWrite('patched', ref);
    return patched;
  }
  async delete(ref: ObjectRef) {
    const deleted = (await this.post<{ deleted: boolean }>('/v1/objects/delete', { ref })).deleted;
    if (deleted) recordWrite('deleted', ref);
    return deleted;
  }
  async list(apiVersion: string, kind: string, namespace: string, labelSelector?: string) {
    return (
      await this.post<{ objects: KubeObject[] }>('/v1/objects/list', {
        apiVersion,
        kind,
        namespace,
        labelSelector,
      })
    ).objects;
  }
  async workloadStatus(namespace: string, name: string) {
    return (
      await this.http.get<WorkloadStatus>(
        `/v1/workloads/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`,
      )
    ).data;
  }
  endpoints(): PlatformEndpoints {
    return { ingress: this.urls.ingress, jaeger: this.urls.jaeger, scrapeTargets: [this.urls.metrics] };
  }
  /** The engines run on this machine, started by the process that drives the load (as the cluster's are by its API). */
  startLoadEngines(request: LoadEngineRequest) {
    return startLocalEngines(this.stateDir, request);
  }
}

export function adminClient(state: SandboxState): HttpClient {
  return createHttpClient({
    system: 'sandbox admin API',
    baseURL: state.urls.admin,
    timeoutMs: 10_000,
    headers: { authorization: `Bearer ${state.token}` },
    hint: 'that the sandbox is running (clover-cd sandbox status); start it with clover-cd sandbox up --detach',
  });
}

export async function connectSandbox(stateDir = defaultStateDir()) {
  const state = readState(stateDir);
  if (!state) {
    throw new InfrastructureError(
      'sandbox',
      join(stateDir, STATE_FILE),
      'no running sandbox (state file not found)',
      'start one with: clover-cd sandbox up --detach',
    );
  }
  const http = adminClient(state);
  await http.get('/v1/status');
  const platform = new RemotePlatform(http, `sandbox at ${stateDir}`, state.urls, stateDir);
  return {
    urls: state.urls,
    platform: platform as Platform,
    async setFault(workload: string, version: string | undefined, fault: Fault | null): Promise<void> {
      const res = await http.request<{ error?: string; problems?: never[] }>({
        method: 'PUT',
        url: '/v1/faults',
        data: { workload, version, fault },
      });
      if (res.status === 400)
        throw new InvalidInputError(res.data.error ?? 'invalid fault', res.data.problems ?? []);
    },
  };
}
