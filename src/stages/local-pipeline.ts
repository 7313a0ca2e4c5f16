/**
 * `clover-cd pipeline run --local` as a host of the release engine: the pipeline clover-cd renders (or a
 * pipeline JSON file), executed with Orca's semantics (pipelines/local-run) against a platform (the sandbox
 * by default) with a stage server of its own on loopback, so the webhook stages make the same HTTP calls and
 * status polls they make in Spinnaker, and jenkins / Run Job stages run the same stage actions.
 */
import { randomBytes } from 'node:crypto';
import { exitCodeForStatus, STAGE_SERVER_POLLING } from '../contract/index.js';
import {
  executePipeline,
  loadOrcaConfig,
  loadPipelineFile,
  localRunExitCode,
  resolveSecretReferences,
  runWebhookStage,
  webhookJobs,
  type ExecuteOptions,
  type LocalExecution,
  type WebhookJob,
} from '../pipelines/local-run/index.js';
import { STAGE_AUTH_FIELD, type StageAuthDeclaration } from '../pipelines/runners.js';
import { appendXfcc, XFCC_HEADER } from '../services/mesh-identity.js';
import type { Platform } from '../services/platform.js';
import type { ReleaseSpec } from '../spec/types.js';
import { registerSecret } from '../util/redact.js';
import { stageProperties } from './properties.js';
import type { StageAdmission, StageRegistry } from './action-types.js';

/** The stage server a local run calls: the one `clover-cd serve` runs, started on loopback by the caller. */
export interface LocalStageServer {
  url: string;
  stop(): Promise<void>;
}
export type StartLocalStageServer = (opts: {
  registry: StageRegistry;
  admit: StageAdmission;
  auth: { token: string; trustMeshPrincipals?: string[] };
  contentDir?: string;
}) => Promise<LocalStageServer>;

export interface LocalRunOptions extends Omit<
  ExecuteOptions,
  'platform' | 'stageServer' | 'preconfiguredWebhooks'
> {
  /** Release spec (rendered first) or pipeline JSON. */
  file: string;
  /** orca-local.yml with the preconfigured webhook types (default for a spec: what `pipeline orca-config` prints for it). */
  orcaConfig?: string;
  /** Where stages act; default: the detached sandbox if one runs, else a sandbox started for this run. */
  platform?: Platform;
  evidenceDir?: string;
  onNote?: (message: string) => void;
}

export interface LocalRunResult {
  execution: LocalExecution;
  jobs: WebhookJob[];
  exitCode: number;
  notes: string[];
}

/**
 * Orca's mesh identity when the pipeline relies on it: the spec's meshAuth, or what the inline stages declare. The
 * run then stands for Orca with a sidecar under that identity calling the server through its own sidecar.
 */
function meshPrincipal(pipeline: Record<string, unknown>, spec: ReleaseSpec | undefined): string | undefined {
  if (spec) return spec.spinnaker?.stageServer.meshAuth?.principal;
  const declared = ((pipeline.stages as Array<Record<string, unknown>> | undefined) ?? [])
    .map((s) => s[STAGE_AUTH_FIELD] as StageAuthDeclaration | undefined)
    .find((d) => d?.mode === 'mesh-identity');
  return declared?.principal;
}

/** What the server's sidecar does with Orca's mutual-TLS request (APPEND_FORWARD): append its element to XFCC. */
function throughMesh(principal: string) {
  // The server's own identity, as deploy/clover-cd runs it (namespace clover-system, service account clover-cd).
  const by = principal.replace(/\/ns\/.*$/, '/ns/clover-system/sa/clover-cd');
  return (headers: Record<string, string | string[]>): Record<string, string | string[]> => {
    const name = Object.keys(headers).find((k) => k.toLowerCase() === XFCC_HEADER);
    const existing = name ? [headers[name]].flat().join(',') : undefined;
    const rest = Object.fromEntries(Object.entries(headers).filter(([k]) => k !== name));
    return { ...rest, [XFCC_HEADER]: appendXfcc(existing, by, principal) };
  };
}

/**
 * Runs the pipeline against the stage server `startServer` starts (server/local-pipeline.ts passes the real
 * one): this module sits below the server and names it only through that function.
 */
export async function runPipelineWithServer(
  opts: LocalRunOptions & { startServer: StartLocalStageServer },
): Promise<LocalRunResult> {
  const { pipeline, baseDir, notes, spec } = loadPipelineFile(opts.file);
  // The stage server runs as deploy/clover-cd ships it: a bearer token (here a one-time one) and, when the pipeline
  // relies on Orca's mesh identity, the mesh-auth overlay's --trust-mesh-principal. Orca's configuration gets the
  // token where a secret reference is, as the Operator or kork would resolve it.
  const token = randomBytes(24).toString('hex');
  registerSecret(token);
  const configured = loadOrcaConfig(opts.orcaConfig, spec, (path) =>
    notes.push(`${path} is not a field of Orca's preconfigured webhook: Spring drops it`),
  );
  const preconfiguredWebhooks =
    configured && resolveSecretReferences(configured, `Bearer ${token}`, opts.orcaConfig);
  const mesh = meshPrincipal(pipeline, spec);
  notes.forEach((n) => opts.onNote?.(`note: ${n}`));
  let platform = opts.platform;
  let stopSandbox: (() => Promise<void>) | undefined;
  if (!platform) {
    const sandbox = await import('../sandbox/index.js');
    if (sandbox.readState()) platform = (await sandbox.connectSandbox()).platform;
    else {
      opts.onNote?.('starting a sandbox for this run (clover-cd sandbox up --detach keeps one running)');
      const sb = await sandbox.startSandbox();
      platform = sb.platform;
      stopSandbox = () => sb.stop();
    }
  }
  const { stageAdmission, stageRegistry, weightOfRequest } = await import('./actions.js');
  const server = await opts.startServer({
    registry: stageRegistry({ platform, evidenceDir: opts.evidenceDir }),
    admit: stageAdmission({ platform }),
    auth: { token, trustMeshPrincipals: mesh ? [mesh] : undefined },
    contentDir: baseDir,
  });
  try {
    const auth = { Authorization: `Bearer ${token}` };
    // A jenkins / runJob stage runs the same action its job would run: by default through the same stage
    // server; a caller may run each as its job would (`opts.runAction`: a `clover-cd stage` process).
    const viaServer: ExecuteOptions['runAction'] = async (req, signal, onProgress) => {
      const release = (req.spec as { metadata?: { name?: string } }).metadata?.name ?? 'release';
      const { action, executionId, command: _command, ...rest } = req;
      const body = {
        ...rest,
        ...(executionId ? { execution: { id: executionId, pipeline: String(pipeline.name ?? '') } } : {}),
      };
      const res = await runWebhookStage(
        {
          url: `${server.url}/api/v1/releases/${encodeURIComponent(release)}/${action}`,
          customHeaders: auth,
          payload: body,
          ...STAGE_SERVER_POLLING,
          cancelEndpoint: `${server.url}/api/v1/releases/${encodeURIComponent(release)}/cancel`,
        },
        { signal, pollIntervalMs: opts.pollIntervalMs ?? 250, onProgress },
      );
      const job: WebhookJob = (res.context.webhook.monitor as { body?: WebhookJob } | undefined)?.body ?? {
        stage: action,
      };
      const status = job.status ?? (res.status === 'SUCCEEDED' ? 'SUCCEEDED' : 'ERROR');
      const props = stageProperties({
        action,
        release,
        exitCode: exitCodeForStatus(status),
        status,
        summary: job.progress ?? res.message,
        weight: weightOfRequest(req.spec as ReleaseSpec, { step: req.step, weight: req.weight }),
        verdict: job.verdict?.outcome,
        evidence: job.reports?.evidence,
      });
      const properties = Object.fromEntries(
        Object.entries(props)
          .filter(([, v]) => v !== undefined && v !== null)
          .map(([k, v]) => [k, String(v)]),
      );
      return { status, message: job.progress ?? res.message, properties };
    };
    const actionJobs: WebhookJob[] = [];
    // Whoever ran an action, its job is what its properties say (as Orca sees a jenkins / Run Job stage).
    const runAction: ExecuteOptions['runAction'] = async (req, signal, onProgress) => {
      const res = await (opts.runAction ?? viaServer)(req, signal, onProgress);
      const p = res.properties;
      actionJobs.push({
        stage: req.action,
        status: res.status,
        progress: res.message,
        verdict: p.CLOVER_CD_VERDICT
          ? { outcome: p.CLOVER_CD_VERDICT, summary: p.CLOVER_CD_SUMMARY ?? res.message }
          : undefined,
        reports: p.CLOVER_CD_EVIDENCE ? { evidence: p.CLOVER_CD_EVIDENCE } : undefined,
      });
      return res;
    };
    const execution = await executePipeline(pipeline, {
      ...opts,
      runAction,
      platform,
      preconfiguredWebhooks,
      stageServer: { origin: server.url, throughMesh: mesh ? throughMesh(mesh) : undefined },
      pollIntervalMs: opts.pollIntervalMs ?? 250,
    });
    const jobs = [...webhookJobs(execution), ...actionJobs];
    return { execution, jobs, exitCode: localRunExitCode(execution, jobs), notes };
  } finally {
    await server.stop();
    await stopSandbox?.();
  }
}
