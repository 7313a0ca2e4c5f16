/**
 * `webhook`: Orca's CreateWebhookTask + MonitorWebhookTask (`../webhook.ts`). URLs of the stage server's API
 * (`/api/v1/...`) go to the run's local stage server with the stage's own headers only, as Orca sends them; in mesh
 * mode the host adds what the server's sidecar would add for Orca (`throughMesh`). A task that ends TERMINAL gives
 * the stage its failure status, as Orca's RunTaskHandler does.
 */
import { runWebhookStage, type WebhookStage } from '../webhook.js';
import type { ExecuteOptions } from '../types.js';
import { StageFailure, type StageHandler, type StageTask } from './handler.js';

function toLocalServer(stage: WebhookStage, server: NonNullable<ExecuteOptions['stageServer']>): void {
  const local = (u?: string) => {
    if (!u) return u;
    const url = new URL(u);
    return url.pathname.startsWith('/api/v1/') ? `${server.origin}${url.pathname}${url.search}` : u;
  };
  const toServer = new URL(stage.url).pathname.startsWith('/api/v1/');
  stage.url = local(stage.url)!;
  stage.cancelEndpoint = local(stage.cancelEndpoint);
  if (toServer && server.throughMesh) stage.customHeaders = server.throughMesh(stage.customHeaders ?? {});
}

/** Runs a webhook stage (inline or expanded from Orca's preconfigured entry); the task's context becomes the stage's. */
export async function runWebhook(stage: WebhookStage, task: StageTask): Promise<string> {
  const { options } = task;
  if (options.stageServer) toLocalServer(stage, options.stageServer);
  const res = await runWebhookStage(stage, {
    signal: task.signal,
    pollIntervalMs: options.pollIntervalMs,
    onProgress: task.progress,
  });
  Object.assign(task.stage.context, res.context);
  if (res.status === 'SUCCEEDED') return res.message;
  const message = res.status === 'TERMINAL' ? `task TERMINAL: ${res.message}` : res.message;
  throw new StageFailure(message, res.status === 'CANCELED' ? 'CANCELED' : undefined);
}

export const webhook: StageHandler = {
  type: 'webhook',
  run: (task) => runWebhook({ ...(task.ctx as unknown as WebhookStage) }, task),
};
