/**
 * The local run's model: a stage's status and record, the execution the scheduler returns, the events it emits and
 * what a host gives it (platform, the runner of clover-cd actions, the local stage server, judgments, trigger).
 */
import type { Platform } from '../../services/platform.js';
import type { PreconfiguredWebhook } from '../preconfigured.js';
import type { TriggerEvent } from './trigger-events.js';

export type StageStatus =
  | 'NOT_STARTED'
  | 'RUNNING'
  | 'SUCCEEDED'
  | 'FAILED_CONTINUE'
  | 'TERMINAL'
  | 'STOPPED'
  | 'SKIPPED'
  | 'CANCELED';
export type ExecutionStatus = 'SUCCEEDED' | 'TERMINAL' | 'CANCELED';

export interface StageRun {
  refId: string;
  name: string;
  type: string;
  status: StageStatus;
  message?: string;
  startTime?: number;
  endTime?: number;
  context: Record<string, unknown>;
  outputs: Record<string, unknown>;
}

export interface LocalExecution {
  id: string;
  name: string;
  application: string;
  status: ExecutionStatus;
  stages: StageRun[];
  /** Stage types this runner cannot execute (those stages ended TERMINAL). */
  unsupported: string[];
  /** The trigger as the stages saw it: parameters with defaults, artifacts, resolvedExpectedArtifacts. */
  trigger: Record<string, unknown>;
}

export type RunEvent =
  | { type: 'stage-start'; stage: StageRun }
  | { type: 'stage-progress'; stage: StageRun; message: string }
  | { type: 'stage-end'; stage: StageRun };

export interface JudgmentRequest {
  stage: string;
  instructions?: string;
  inputs: string[];
}

/** One release action as a CI job or Kubernetes Job runs it (`clover-cd stage <action>`), for jenkins / runJob stages. */
export interface ActionRequest {
  action: string;
  spec: unknown;
  weight?: number;
  step?: number;
  window?: string;
  /** The pipeline execution the action belongs to (EXECUTION_ID / CLOVER_CD_EXECUTION_ID). */
  executionId?: string;
  /** A Run Job's container command line (command then args) and environment as written, for a host that runs it as the pod would. */
  command?: { argv: string[]; env: Record<string, string> };
}
export interface ActionResult {
  /** Job status of the stage server (SUCCEEDED, FAILED, INCONCLUSIVE, ERROR, CANCELED). */
  status: string;
  message: string;
  /** What `--properties` / SPINNAKER_PROPERTY_ lines carry: become stage outputs. */
  properties: Record<string, string>;
}

export interface ExecuteOptions {
  platform: Platform;
  /** Runs the action of a jenkins / runJobManifest stage (the command their job would run). */
  runAction?: (
    req: ActionRequest,
    signal: AbortSignal,
    onProgress: (m: string) => void,
  ) => Promise<ActionResult>;
  /**
   * Webhook URLs whose path starts with /api/v1/ go to this origin (the local stage server). A stage sends only the
   * headers it (or Orca's configuration) has, as Orca does; `throughMesh` adds what the mesh between Orca and the
   * server adds (the sidecar's x-forwarded-client-cert), when the run stands for a meshed deployment.
   */
  stageServer?: {
    origin: string;
    throughMesh?: (headers: Record<string, string | string[]>) => Record<string, string | string[]>;
  };
  /** Answer manual judgments with "continue" (or the first input). */
  autoApprove?: boolean;
  /** Fixed answers by stage name (tests, the demo). */
  judgments?: Record<string, string>;
  /** Ask a person (TTY prompt). */
  judge?: (r: JudgmentRequest) => Promise<string>;
  signal?: AbortSignal;
  pollIntervalMs?: number;
  readyTimeoutMs?: number;
  /** The event (manual by default; `{type: 'docker', tag}`, webhook, jenkins, ... as Echo fires it); parameters and artifacts bound at start. */
  trigger?: TriggerEvent;
  /** Orca's `webhook.preconfigured` entries by type, for stages with alias preconfiguredWebhook. */
  preconfiguredWebhooks?: Map<string, PreconfiguredWebhook>;
  onEvent?: (e: RunEvent) => void;
  executionId?: string;
}

/** A stage of the pipeline JSON, as Orca reads the fields that decide when and whether it runs. */
export interface StageConfig {
  refId: string;
  requisiteStageRefIds?: string[];
  type: string;
  name?: string;
  stageEnabled?: { type?: string; expression?: string };
  failPipeline?: boolean;
  continuePipeline?: boolean;
  completeOtherBranchesThenFail?: boolean;
  failOnFailedExpressions?: boolean;
  skipExpressionEvaluation?: boolean;
  [k: string]: unknown;
}
