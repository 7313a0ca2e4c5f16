/**
 * The load stage: the spec's JMeter plan, aimed at the platform's ingress (or load.target), run for a
 * window. The load module is reached through its public entry point only.
 */
import type { LoadPlan, LoadRunResult } from '../jmeter/types.js';
import type { Platform } from '../services/platform.js';
import type { ReleaseSpec } from '../spec/types.js';
import { InfrastructureError, InvalidInputError } from '../util/errors.js';

interface LoadModule {
  loadPlan(fileOrObject: string | object, baseDir?: string): LoadPlan;
  runLoad(
    plan: LoadPlan,
    opts: {
      engine?: 'auto' | 'jmeter' | 'builtin';
      durationS?: number;
      resultsFile?: string;
      target?: string;
      signal?: AbortSignal;
      onProgress?: (p: { sent: number; errors: number; elapsedS: number }) => void;
    },
  ): Promise<LoadRunResult>;
}

// Resolved at run time: the load module's entry point (contract [B]).
const LOAD_MODULE = '../jmeter/index.js';
let loadModule: Promise<LoadModule> | undefined;
async function load(): Promise<LoadModule> {
  loadModule ??= import(LOAD_MODULE) as Promise<LoadModule>;
  const m = await loadModule;
  if (typeof m.runLoad !== 'function') throw new InfrastructureError('load module', LOAD_MODULE, 'runLoad is not available in this build', 'that clover-cd is installed completely');
  return m;
}

export interface LoadStageOptions {
  /** Directory the spec's relative plan path is resolved against. */
  baseDir?: string;
  durationS?: number;
  signal?: AbortSignal;
  onProgress?: (p: { sent: number; errors: number; elapsedS: number }) => void;
}

export interface LoadStageResult {
  exitCode: number;
  load: LoadRunResult;
  target?: string;
}

export async function readLoadPlan(spec: ReleaseSpec, baseDir?: string): Promise<LoadPlan> {
  if (!spec.load) throw new InvalidInputError(`${spec.metadata.name}: the spec has no load section; a release step needs load to judge`, [{ path: 'load', message: 'expected { plan: <file or inline plan> }' }]);
  return (await load()).loadPlan(spec.load.plan as string | object, baseDir);
}

/** Run the spec's load against the platform for `durationS` (default: the plan's own duration). */
export async function runLoadStage(platform: Platform, spec: ReleaseSpec, opts: LoadStageOptions = {}): Promise<LoadStageResult> {
  const m = await load();
  const plan = await readLoadPlan(spec, opts.baseDir);
  const target = spec.load?.target ?? platform.endpoints().ingress;
  const result = await m.runLoad(plan, { engine: spec.load?.engine ?? 'auto', durationS: opts.durationS, target, signal: opts.signal, onProgress: opts.onProgress });
  return { exitCode: 0, load: result, target };
}
