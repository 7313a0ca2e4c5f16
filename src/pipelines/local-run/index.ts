/**
 * Local execution of a Spinnaker pipeline with Orca's semantics (scheduler.ts), one handler per stage type
 * (handlers/), Orca's webhook tasks (webhook.ts) and SpEL (spel.ts); the host that wires it to the stage
 * server and a platform is `stages/local-pipeline.ts` (`clover-cd pipeline run --local`).
 */
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import * as yaml from 'js-yaml';
import { readRenderInput } from '../inputs.js';
import { orcaConfig, preconfiguredWebhooks, type PreconfiguredWebhook } from '../preconfigured.js';
import { pipelineJson, renderPipeline } from '../render.js';
import { toInputProblem, validatePipelineDocument } from '../validate.js';
import { loadSpec, readYamlFile } from '../../spec/load.js';
import type { ReleaseSpec } from '../../spec/types.js';
import { ExitCode, InvalidInputError } from '../../util/errors.js';
import type { LocalExecution } from './types.js';

export { executePipeline } from './scheduler.js';
export { LOCAL_STAGE_TYPES } from './handlers/index.js';
export type { ExecuteOptions, LocalExecution, RunEvent, StageRun, JudgmentRequest } from './types.js';
export { runWebhookStage, type WebhookStage, type WebhookResult } from './webhook.js';
export { resolveSecretReferences } from './preconfigured.js';
export { fireTrigger, type TriggerEvent } from './trigger-events.js';
export { evaluateSpel, evaluateCondition, resolveExpressions } from './spel.js';

export interface WebhookJob {
  stage: string;
  status?: string;
  progress?: string;
  verdict?: { outcome: string; summary: string };
  reports?: Record<string, string>;
}

export function loadPipelineFile(file: string): {
  pipeline: Record<string, unknown>;
  baseDir: string;
  notes: string[];
  spec?: ReleaseSpec;
} {
  if (/\.json$/i.test(file)) {
    let doc: unknown;
    try {
      doc = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new InvalidInputError(`${file}: cannot read a pipeline JSON: ${(err as Error).message}`);
    }
    const v = validatePipelineDocument(doc);
    if (v.errors)
      throw new InvalidInputError(
        `${file}: ${v.errors} pipeline error(s); nothing was run`,
        v.problems.filter((p) => p.severity === 'error').map((p) => toInputProblem(p, file)),
      );
    if (v.kind !== 'config')
      throw new InvalidInputError(`${file}: a local run takes one pipeline, found a ${v.kind}`);
    return { pipeline: doc as Record<string, unknown>, baseDir: dirname(file), notes: [] };
  }
  const loaded = loadSpec(file);
  const { pipeline, notes } = renderPipeline(readRenderInput(loaded));
  return {
    pipeline: JSON.parse(pipelineJson(pipeline)) as Record<string, unknown>,
    baseDir: loaded.dir,
    notes,
    spec: loaded.spec,
  };
}

/**
 * Orca's preconfigured webhooks for a local run: the orca-local.yml given (what `clover-cd pipeline orca-config`
 * printed), else — for a pipeline rendered from a spec — the fragment orca-config would print for that spec.
 */
export function loadOrcaConfig(
  file: string | undefined,
  spec?: ReleaseSpec,
  dropped?: (path: string) => void,
): Map<string, PreconfiguredWebhook> | undefined {
  if (file)
    return preconfiguredWebhooks(
      /\.json$/i.test(file) ? JSON.parse(readFileSync(file, 'utf8')) : readYamlFile(file),
      file,
      dropped,
    );
  if (!spec?.spinnaker || spec.spinnaker.stages !== 'preconfigured') return undefined;
  // The same text an operator pastes into orca-local.yml, read back as Orca binds it.
  return preconfiguredWebhooks(yaml.load(yaml.dump(orcaConfig([spec]).config)), undefined, dropped);
}

/** The webhook jobs' final bodies, in stage order. */
export function webhookJobs(execution: LocalExecution): WebhookJob[] {
  return execution.stages
    .filter(
      (s) =>
        (s.type === 'webhook' || s.context.alias === 'preconfiguredWebhook') &&
        s.status !== 'SKIPPED' &&
        s.status !== 'NOT_STARTED',
    )
    .map((s) => {
      const body = ((s.context.webhook as { monitor?: { body?: WebhookJob } } | undefined)?.monitor?.body ??
        {}) as WebhookJob;
      return {
        stage: s.name,
        status: body.status,
        progress: body.progress,
        verdict: body.verdict,
        reports: body.reports,
      };
    });
}

/** Exit code of a run: 0 when it succeeded, else what its jobs say (error 4 > failed 1 > inconclusive 3). */
export function localRunExitCode(execution: LocalExecution, jobs: WebhookJob[]): number {
  if (execution.status === 'SUCCEEDED') return ExitCode.ok;
  if (execution.status === 'CANCELED') return ExitCode.interrupted;
  // A webhook the server refused (401, 403, ...) or that failed outright is a dependency refusing, not a verdict.
  const refused = execution.stages.some(
    (s) => Number((s.context.webhook as { statusCodeValue?: number } | undefined)?.statusCodeValue) >= 400,
  );
  if (execution.unsupported.length || refused || jobs.some((j) => j.status === 'ERROR'))
    return ExitCode.infrastructure;
  if (jobs.some((j) => j.status === 'FAILED')) return ExitCode.failed;
  if (jobs.some((j) => j.status === 'INCONCLUSIVE')) return ExitCode.inconclusive;
  return ExitCode.failed;
}
