/**
 * Spinnaker pipeline config as Front50 stores it and Orca reads it. Typed loosely on
 * purpose: the validator must look at whatever a user hands it, so every field is `unknown` until checked.
 */
export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

export interface StageConfig {
  refId: string;
  requisiteStageRefIds: string[];
  type: string;
  name: string;
  [k: string]: unknown;
}

export interface TriggerConfig {
  type: string;
  enabled: boolean;
  [k: string]: unknown;
}

export interface NotificationConfig {
  type: string;
  address: string;
  level: 'pipeline' | 'stage';
  when: string[];
  [k: string]: unknown;
}

export interface PipelineConfig {
  id: string;
  application: string;
  name: string;
  description?: string;
  spelEvaluator: 'v4';
  limitConcurrent: boolean;
  keepWaitingPipelines: boolean;
  parameterConfig: unknown[];
  expectedArtifacts: unknown[];
  triggers: TriggerConfig[];
  notifications: NotificationConfig[];
  stages: StageConfig[];
  [k: string]: unknown;
}

/** One problem found in a pipeline document: where, which rule, and why it matters. */
export interface PipelineProblem {
  severity: 'error' | 'warning';
  /** Pipeline name (or its index when it has none). */
  pipeline: string;
  /** The stage, when the problem belongs to one. */
  stage?: { refId?: string; name?: string; index: number };
  /** Path of the field inside the document, e.g. `pipelines[0].stages[3].successStatuses`. */
  path: string;
  /** Short rule key, e.g. `refid-string`, `webhook-status-strings`. */
  rule: string;
  message: string;
}

export type PipelineDocumentKind = 'config' | 'list' | 'dinghyfile';
