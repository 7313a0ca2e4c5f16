/**
 * The load stage: the spec's JMeter plan, aimed at the platform's ingress (or load.target), run for a
 * window.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadPlan, runLoad, type LoadPlan, type LoadRunResult } from '../jmeter/index.js';
import type { LoadEngineSet, Platform } from '../services/platform.js';
import type { ReleaseSpec } from '../spec/types.js';
import { InfrastructureError, InvalidInputError } from '../util/errors.js';
import { runClusterLoad } from './cluster-load.js';

export interface LoadStageOptions {
  durationS?: number;
  signal?: AbortSignal;
  onProgress?: (p: { sent: number; errors: number; elapsedS: number }) => void;
  /** Keep the JTL next to the evidence bundles (default: a fresh temporary folder). */
  resultsDir?: string;
  /**
   * Send through the spec's `load.engines` distributed engines, which the platform starts for this run and
   * stops at its end (a step's window); without it, or with 0 engines, the load is sent from this process.
   */
  distributed?: { step: number };
  /** Send with this engine rather than the spec's `load.engine` (a rollback check's short burst). */
  engine?: 'builtin';
}

export interface LoadStageResult {
  exitCode: number;
  load: LoadRunResult;
  target?: string;
}

/** The spec's plan: inline, or the file it names (absolute once the spec is loaded: spec/load.ts `resolveSpecFiles`). */
export async function readLoadPlan(spec: ReleaseSpec): Promise<LoadPlan> {
  if (!spec.load)
    throw new InvalidInputError(
      `${spec.metadata.name}: the spec has no load section; a release step needs load to judge`,
      [{ path: 'load', message: 'expected { plan: <file or inline plan> }' }],
    );
  return loadPlan(spec.load.plan as string | object);
}

/** Run the spec's load against the platform for `durationS` (default: the plan's own duration). */
export async function runLoadStage(
  platform: Platform,
  spec: ReleaseSpec,
  opts: LoadStageOptions = {},
): Promise<LoadStageResult> {
  const plan = await readLoadPlan(spec);
  const target = spec.load?.target ?? platform.endpoints().ingress;
  const resultsFile = opts.resultsDir
    ? join(
        opts.resultsDir,
        `${spec.metadata.name}-load-${new Date().toISOString().replace(/[:.]/g, '-')}.jtl`,
      )
    : undefined;
  if (opts.resultsDir) mkdirSync(opts.resultsDir, { recursive: true });
  const count = opts.distributed ? (spec.load?.engines ?? 0) : 0;
  // On a cluster the controller runs there too (engines' names resolve only inside it): results come on its log.
  if (count && platform.kind === 'kubernetes') {
    const load = await runClusterLoad(platform, spec, plan, {
      step: opts.distributed!.step,
      engines: count,
      durationS: opts.durationS,
      target,
      resultsFile,
      signal: opts.signal,
      onProgress: opts.onProgress,
    });
    return { exitCode: 0, load, target };
  }
  const engines = count ? await startEngines(platform, spec, count, opts) : undefined;
  try {
    const result = await runLoad(plan, {
      engine: engines ? 'jmeter' : (opts.engine ?? spec.load?.engine ?? 'auto'),
      durationS: opts.durationS,
      target,
      remote: engines?.hosts,
      signal: opts.signal,
      onProgress: opts.onProgress,
      resultsFile,
    });
    return { exitCode: 0, load: result, target };
  } finally {
    // The controller has ended (or was stopped): no engine outlives the window, whatever ended it.
    await engines?.stop();
  }
}

async function startEngines(
  platform: Platform,
  spec: ReleaseSpec,
  count: number,
  opts: LoadStageOptions,
): Promise<LoadEngineSet> {
  if (!platform.startLoadEngines)
    throw new InfrastructureError(
      platform.description,
      'load.engines',
      `this platform cannot start distributed load engines (${count} asked for)`,
      'set load.engines: 0 to send the load from this process',
    );
  return platform.startLoadEngines({
    count,
    release: spec.metadata.name,
    step: opts.distributed!.step,
    resources: spec.load?.resources,
    signal: opts.signal,
  });
}
