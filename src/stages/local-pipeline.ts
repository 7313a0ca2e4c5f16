/**
 * `clover-cd pipeline run --local` as a host of the release engine: the pipeline clover-cd renders (or a
 * pipeline JSON file), executed with Orca's semantics (pipelines/local-run) against a platform (the sandbox
 * by default) with a stage server of its own on loopback, so the webhook stages make the same HTTP calls and
 * status polls they make in Spinnaker, and jenkins / Run Job stages run the same stage actions.
 */
import { randomBytes } from 'node:crypto';
import { exitCodeForStatus, STAGE_SERVER_POLLING } from '../contract/index.js';
import { executePipeline, loadOrcaConfig, loadPipelineFile, localRunExitCode, runWebhookStage, webhookJobs, type ExecuteOptions, type LocalExecution, type WebhookJob } from '../pipelines/local-run/index.js';
import type { Platform } from '../services/platform.js';
import type { ReleaseSpec } from '../spec/types.js';
import { registerSecret } from '../util/redact.js';
import { stageProperties } from './properties.js';

export interface LocalRunOptions extends Omit<ExecuteOptions, 'platform' | 'stageServer' | 'preconfiguredWebhooks'> {
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

export async function runPipelineLocally(opts: LocalRunOptions): Promise<LocalRunResult> {
  const { pipeline, baseDir, notes, spec } = loadPipelineFile(opts.file);
  const preconfiguredWebhooks = loadOrcaConfig(opts.orcaConfig, spec);
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
  const { startStageService } = await import('./server/index.js');
  const { stageAdmission, stageRegistry, weightOfRequest } = await import('./server/bindings.js');
  const token = randomBytes(24).toString('hex');
  registerSecret(token);
  const server = await startStageService({
    port: 0,
    host: '127.0.0.1',
    registry: stageRegistry({ platform, baseDir, evidenceDir: opts.evidenceDir }),
    admit: stageAdmission({ platform }),
    auth: { token },
    contentDir: baseDir,
  });
  try {
    const auth = { Authorization: `Bearer ${token}` };
    // A jenkins / runJob stage runs the same action its job would run: here, through the same stage server.
    const runAction: ExecuteOptions['runAction'] = async (req, signal, onProgress) => {
      const release = (req.spec as { metadata?: { name?: string } }).metadata?.name ?? 'release';
      const { action, executionId, ...rest } = req;
      const body = { ...rest, ...(executionId ? { execution: { id: executionId, pipeline: String(pipeline.name ?? '') } } : {}) };
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
      const job: WebhookJob = (res.context.webhook.monitor as { body?: WebhookJob } | undefined)?.body ?? { stage: action };
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
      const properties = Object.fromEntries(Object.entries(props).filter(([, v]) => v !== undefined && v !== null).map(([k, v]) => [k, String(v)]));
      actionJobs.push({ stage: `${action}`, status, progress: job.progress, verdict: job.verdict, reports: job.reports });
      return { status, message: job.progress ?? res.message, properties };
    };
    const actionJobs: WebhookJob[] = [];
    const execution = await executePipeline(pipeline, {
      ...opts,
      runAction,
      platform,
      preconfiguredWebhooks,
      stageServer: { origin: server.url, headers: { Authorization: `Bearer ${token}` } },
      pollIntervalMs: opts.pollIntervalMs ?? 250,
    });
    const jobs = [...webhookJobs(execution), ...actionJobs];
    return { execution, jobs, exitCode: localRunExitCode(execution, jobs), notes };
  } finally {
    await server.stop();
    await stopSandbox?.();
  }
}
