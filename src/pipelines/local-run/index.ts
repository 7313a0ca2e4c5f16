import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { readRenderInput } from '../inputs.js';
import { pipelineJson, renderPipeline } from '../render.js';
import { STAGE_SERVER_POLLING } from '../runners.js';
import { toInputProblem, validatePipelineDocument } from '../validate.js';
import type { Platform } from '../../services/platform.js';
import { loadSpec } from '../../spec/load.js';
import { ExitCode, InvalidInputError } from '../../util/errors.js';
import { registerSecret } from '../../util/redact.js';
import { executePipeline, type ExecuteOptions, type LocalExecution } from './executor.js';
import { runWebhookStage } from './webhook.js';
import { stageProperties } from '../../stages/properties.js';

export { executePipeline, LOCAL_STAGE_TYPES, type LocalExecution, type RunEvent, type StageRun, type JudgmentRequest } from './executor.js';
export { runWebhookStage, type WebhookStage, type WebhookResult } from './webhook.js';
export { evaluateSpel, evaluateCondition, resolveExpressions } from './spel.js';

/**
 * `clover-cd pipeline run --local`: the pipeline clover-cd renders (or a pipeline JSON file), executed
 * against a platform (the sandbox by default) with a stage server of its own on loopback, so the webhook
 * stages make the same HTTP calls and status polls they make in Spinnaker.
 */
export interface LocalRunOptions extends Omit<ExecuteOptions, 'platform' | 'stageServer'> {
  /** Release spec (rendered first) or pipeline JSON. */
  file: string;
  /** Where stages act; default: the detached sandbox if one runs, else a sandbox started for this run. */
  platform?: Platform;
  evidenceDir?: string;
  onNote?: (message: string) => void;
}

export interface WebhookJob {
  stage: string;
  status?: string;
  progress?: string;
  verdict?: { outcome: string; summary: string };
  reports?: Record<string, string>;
}

export interface LocalRunResult {
  execution: LocalExecution;
  jobs: WebhookJob[];
  exitCode: number;
  notes: string[];
}

export function loadPipelineFile(file: string): { pipeline: Record<string, unknown>; baseDir: string; notes: string[] } {
  if (/\.json$/i.test(file)) {
    let doc: unknown;
    try {
      doc = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new InvalidInputError(`${file}: cannot read a pipeline JSON: ${(err as Error).message}`);
    }
    const v = validatePipelineDocument(doc);
    if (v.errors) throw new InvalidInputError(`${file}: ${v.errors} pipeline error(s); nothing was run`, v.problems.filter((p) => p.severity === 'error').map((p) => toInputProblem(p, file)));
    if (v.kind !== 'config') throw new InvalidInputError(`${file}: a local run takes one pipeline, found a ${v.kind}`);
    return { pipeline: doc as Record<string, unknown>, baseDir: dirname(file), notes: [] };
  }
  const loaded = loadSpec(file);
  const { pipeline, notes } = renderPipeline(readRenderInput(loaded));
  return { pipeline: JSON.parse(pipelineJson(pipeline)) as Record<string, unknown>, baseDir: loaded.dir, notes };
}

/** The webhook jobs' final bodies, in stage order. */
export function webhookJobs(execution: LocalExecution): WebhookJob[] {
  return execution.stages
    .filter((s) => s.type === 'webhook' && s.status !== 'SKIPPED' && s.status !== 'NOT_STARTED')
    .map((s) => {
      const body = ((s.context.webhook as { monitor?: { body?: WebhookJob } } | undefined)?.monitor?.body ?? {}) as WebhookJob;
      return { stage: s.name, status: body.status, progress: body.progress, verdict: body.verdict, reports: body.reports };
    });
}

/** Exit code of a run: 0 when it succeeded, else what its jobs say (error 4 > failed 1 > inconclusive 3). */
export function localRunExitCode(execution: LocalExecution, jobs: WebhookJob[]): number {
  if (execution.status === 'SUCCEEDED') return ExitCode.ok;
  if (execution.status === 'CANCELED') return ExitCode.interrupted;
  if (execution.unsupported.length || jobs.some((j) => j.status === 'ERROR')) return ExitCode.infrastructure;
  if (jobs.some((j) => j.status === 'FAILED')) return ExitCode.failed;
  if (jobs.some((j) => j.status === 'INCONCLUSIVE')) return ExitCode.inconclusive;
  return ExitCode.failed;
}

export async function runPipelineLocally(opts: LocalRunOptions): Promise<LocalRunResult> {
  const { pipeline, baseDir, notes } = loadPipelineFile(opts.file);
  notes.forEach((n) => opts.onNote?.(`note: ${n}`));
  let platform = opts.platform;
  let stopSandbox: (() => Promise<void>) | undefined;
  if (!platform) {
    const sandbox = await import('../../sandbox/index.js');
    if (sandbox.readState()) platform = (await sandbox.connectSandbox()).platform;
    else {
      opts.onNote?.('starting a sandbox for this run (clover-cd sandbox up --detach keeps one running)');
      const sb = await sandbox.startSandbox();
      platform = sb.platform;
      stopSandbox = () => sb.stop();
    }
  }
  const { startStageService } = await import('../../stages/server/index.js');
  const { stageRegistry } = await import('../../stages/server/bindings.js');
  const token = randomBytes(24).toString('hex');
  registerSecret(token);
  const server = await startStageService({
    port: 0,
    host: '127.0.0.1',
    registry: stageRegistry({ platform, baseDir, evidenceDir: opts.evidenceDir }),
    auth: { token },
    contentDir: baseDir,
  });
  try {
    const auth = { Authorization: `Bearer ${token}` };
    // A jenkins / runJob stage runs the same action its job would run: here, through the same stage server.
    const runAction: ExecuteOptions['runAction'] = async (req, signal, onProgress) => {
      const release = (req.spec as { metadata?: { name?: string } }).metadata?.name ?? 'release';
      const { action, ...body } = req;
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
        exitCode: ({ SUCCEEDED: 0, FAILED: 1, INCONCLUSIVE: 3, CANCELED: 130 } as Record<string, number>)[status] ?? 4,
        status,
        summary: job.progress ?? res.message,
        weight: req.weight,
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
