import type { Platform } from '../../services/platform.js';
import type { ReleaseSpec } from '../../spec/types.js';
import { sleep } from '../../util/retry.js';
import { parseDurationMs } from '../../util/units.js';
import type { LoadRunResult } from '../../jmeter/types.js';
import type { WindowStart } from '../gate.js';
import { openWindow, promote, rollback, runGateStage, runLoadStage, setTraffic, type TrafficResult } from '../index.js';
import { statusForExitCode } from './jobs.js';
import type { StageOutcome, StageRegistry } from './types.js';

/**
 * The stage functions the server runs, bound to a platform (a cluster, or the sandbox). The load stage
 * leaves its window (start, scrape baseline, load results) in the release memo; the gate stage judges
 * that window, so Spinnaker's separate Load and Gate stages judge exactly the load that was sent.
 */
export interface BindingOptions {
  platform: Platform;
  /** Resolves relative plan paths in specs. */
  baseDir?: string;
  evidenceDir?: string;
}

interface LoadWindow {
  window: WindowStart;
  end: number;
  load?: LoadRunResult;
  weight?: number;
}

const trafficOutcome = (r: TrafficResult): StageOutcome => ({
  status: statusForExitCode(r.exitCode),
  message: `${r.message} (${r.stable.version} ${r.stable.weight}% / ${r.candidate.version} ${r.candidate.weight}%)`,
});

function windowMs(spec: ReleaseSpec, window?: string): number {
  const w = window ?? spec.strategy.canary?.window ?? spec.strategy.blueGreen?.previewWindow ?? spec.strategy.abTest?.window ?? '30s';
  return parseDurationMs(w);
}

export function stageRegistry(opts: BindingOptions): StageRegistry {
  const { platform } = opts;
  return {
    // Routes for the candidate: the release starts with the candidate at 0% (idempotent).
    deploy: async (spec, _params, _signal, progress) => {
      progress(`preparing routes for ${spec.service.candidate}`);
      return trafficOutcome(await setTraffic(platform, spec, { weight: 0 }));
    },
    traffic: async (spec, params, _signal, progress) => {
      const to = params.weight !== undefined ? { weight: params.weight } : { step: params.step ?? 1 };
      progress(`shifting traffic: ${JSON.stringify(to)}`);
      return trafficOutcome(await setTraffic(platform, spec, to));
    },
    load: async (spec, params, signal, progress, ctx) => {
      const window = await openWindow(spec, platform.endpoints());
      const durationS = Math.max(1, Math.round(windowMs(spec, params.window) / 1000));
      const r = await runLoadStage(platform, spec, {
        baseDir: opts.baseDir,
        durationS,
        resultsDir: opts.evidenceDir,
        signal,
        onProgress: (p) => progress(`load: ${p.sent} requests sent, ${p.errors} errors, ${Math.round(p.elapsedS)}s of ${durationS}s`),
      });
      const memo: LoadWindow = { window, end: Date.now(), load: r.load, weight: params.weight };
      await ctx.memo.set('load-window', memo);
      const t = r.load.summary.total;
      return {
        status: statusForExitCode(r.exitCode),
        message: `${t.count} requests sent with ${r.load.engine} (${(t.errorRate * 100).toFixed(2)}% errors, p95 ${Math.round(t.p95)} ms)`,
        reports: { jtl: r.load.jtlPath },
      };
    },
    gate: async (spec, params, signal, progress, ctx) => {
      let w = await ctx.memo.get<LoadWindow>('load-window');
      // The load window is judged once: a repeated gate (inconclusive retry) needs a new load stage first.
      if (w) await ctx.memo.set('load-window', null);
      else {
        const ms = windowMs(spec, params.window);
        progress(`no load window from a previous stage: observing ${ms / 1000}s of traffic`);
        const window = await openWindow(spec, platform.endpoints());
        await sleep(ms, signal);
        w = { window, end: Date.now() };
      }
      progress('judging the window');
      const run = await runGateStage(platform, spec, {
        window: w.window,
        end: w.end,
        load: w.load,
        candidateWeight: params.weight ?? w.weight,
        evidenceDir: opts.evidenceDir,
      });
      return {
        status: statusForExitCode(run.exitCode),
        verdict: run.verdict,
        message: run.verdict.summary,
        reports: { evidence: run.bundlePath },
      };
    },
    promote: async (spec, _p, _s, progress) => {
      progress(`promoting ${spec.service.candidate}`);
      return trafficOutcome(await promote(platform, spec));
    },
    rollback: async (spec, _p, _s, progress) => {
      progress(`rolling back to ${spec.service.stable}`);
      return trafficOutcome(await rollback(platform, spec, 'abort', 'rolled back by the pipeline'));
    },
  };
}
