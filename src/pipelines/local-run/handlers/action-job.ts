/**
 * The clover-cd action a jenkins or runJobManifest stage runs, read from the stage the way its job reads it:
 * Jenkins parameters (ACTION, SPEC base64, WEIGHT, STEP, WINDOW, EXECUTION_ID), or the Run Job container's
 * `clover-cd stage <action> --spec-env VAR ...` arguments and environment; and run by the host as that job would.
 */
import type { KubeObject } from '../../../services/platform.js';
import type { ActionRequest, ActionResult } from '../types.js';
import { UnsupportedStage, type StageTask } from './handler.js';

/** Jenkins stage parameters as the generator writes them (ACTION, SPEC base64, WEIGHT, STEP, WINDOW). */
export function jenkinsAction(ctx: Record<string, unknown>): ActionRequest | undefined {
  const p = (ctx.parameters ?? {}) as Record<string, string>;
  if (!p.ACTION || !p.SPEC) return undefined;
  return {
    action: p.ACTION,
    spec: JSON.parse(Buffer.from(p.SPEC, 'base64').toString('utf8')),
    weight: p.WEIGHT !== undefined ? Number(p.WEIGHT) : undefined,
    step: p.STEP !== undefined ? Number(p.STEP) : undefined,
    window: p.WINDOW,
    executionId: p.EXECUTION_ID,
  };
}

/** A Run Job whose container runs `clover-cd stage <action> --spec-env VAR [--weight N] [--step N] [--window D]`. */
export function runJobAction(ctx: Record<string, unknown>): ActionRequest | undefined {
  const container = (
    (ctx.manifest as KubeObject | undefined)?.spec as
      | {
          template?: {
            spec?: {
              containers?: Array<{
                command?: string[];
                args?: string[];
                env?: Array<{ name: string; value?: string }>;
              }>;
            };
          };
        }
      | undefined
  )?.template?.spec?.containers?.[0];
  const args = container?.args ?? [];
  if (args[0] !== 'stage' || !args[1]) return undefined;
  const flag = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const specVar = flag('--spec-env');
  const specJson = container?.env?.find((e) => e.name === specVar)?.value;
  if (!specJson) return undefined;
  return {
    action: args[1],
    spec: JSON.parse(specJson),
    weight: flag('--weight') !== undefined ? Number(flag('--weight')) : undefined,
    step: flag('--step') !== undefined ? Number(flag('--step')) : undefined,
    window: flag('--window'),
    executionId: container?.env?.find((e) => e.name === 'CLOVER_CD_EXECUTION_ID')?.value,
    command: {
      argv: [...(container?.command ?? []), ...args],
      env: Object.fromEntries(
        (container?.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]),
      ),
    },
  };
}

/** Runs the stage's action through the host (`runAction`); its properties become the stage's outputs. */
export async function runActionJob(task: StageTask, req: ActionRequest | undefined): Promise<ActionResult> {
  const { type } = task.stage;
  if (!req || !task.options.runAction) {
    throw new UnsupportedStage(
      type,
      `this ${type} stage does not run a clover-cd action, so it cannot run locally: it was not run`,
    );
  }
  const res = await task.options.runAction(req, task.signal, task.progress);
  Object.assign(task.stage.outputs, res.properties);
  return res;
}
