/**
 * The analysis window while it is open: a look at the gated service every scrape interval (every second with a
 * direct scrape), each judged at once by the sequential gate (validators/sequential). The window closes at the
 * first decision — a fail at any look, a pass once the minimum window is reached — or at its longest length, or
 * when the load ends. The looks go into the evidence bundle, whose replay reaches the same decision at the same
 * look. Without a metrics source to look at, the window simply lasts its minimum length.
 */
import type { PlatformEndpoints } from '../../services/platform.js';
import type { ReleaseSpec } from '../../spec/types.js';
import type { Look } from '../../validators/index.js';
import { sequentialGateForSpec } from '../../validators/sequential/looks.js';
import { telemetryOf } from '../../routers/index.js';
import { lookCadenceMs, metricsOf, takeLook, type WindowStart } from '../gate.js';
import type { ReleaseProgress, RuleProgress } from './types.js';

export interface WindowPlan {
  step: number;
  window: WindowStart;
  /** Shortest and longest window (ms); equal when the window is fixed. */
  minMs: number;
  maxMs: number;
  /** Close at the first decision (false: a window fixed by hand runs its length). */
  early: boolean;
  candidateWeight?: number;
  plannedSamples?: number;
}

export interface WatchedWindow {
  looks: Look[];
  decision?: 'pass' | 'fail';
  /** Candidate requests at the last look. */
  observed?: number;
}

export interface WindowHooks {
  /** Wait up to `ms` (returns early when the load ends or the window is stopped). */
  wait(ms: number): Promise<void>;
  /** The load ended or the run was interrupted: stop looking. */
  stopped(): boolean;
  emit(e: ReleaseProgress): void;
}

/** Watch one window; `observable`: a metrics source exists to look at. */
export async function watchWindow(
  spec: ReleaseSpec,
  endpoints: PlatformEndpoints,
  plan: WindowPlan,
  observable: boolean,
  hooks: WindowHooks,
): Promise<WatchedWindow> {
  const out: WatchedWindow = { looks: [] };
  if (!observable) {
    await hooks.wait(plan.minMs);
    return out;
  }
  const gate = sequentialGateForSpec(spec, {
    candidateWeight: plan.candidateWeight,
    plannedSamples: plan.plannedSamples,
    minWindowMs: plan.minMs,
    source: metricsOf(spec, endpoints).source ?? 'metrics',
    telemetry: telemetryOf(spec),
  });
  const cadence = Math.max(250, lookCadenceMs(spec, endpoints));
  const start = plan.window.start;
  for (;;) {
    await hooks.wait(Math.min(cadence, Math.max(0, plan.maxMs - (Date.now() - start))));
    if (hooks.stopped()) break;
    let look: Look | undefined;
    try {
      look = await takeLook(spec, endpoints, plan.window);
    } catch {
      // A look that cannot be taken is no evidence either way; the gate collects (and reports) the source at the end.
      look = undefined;
    }
    // The look's own time decides whether the window is over, so its last look is the one that reached its end.
    const elapsedMs = look ? look.at - start : Date.now() - start;
    if (look) {
      out.looks.push(look);
      const d = gate.look(look, elapsedMs, elapsedMs >= plan.maxMs);
      out.observed = look.versions[spec.service.candidate]?.requests ?? 0;
      if (d) out.decision = d.outcome;
    }
    const closed = (plan.early && out.decision !== undefined) || elapsedMs >= plan.maxMs;
    const rules: RuleProgress[] = gate.handlers.map(({ index, handler }) => ({
      rule: index,
      kind: handler.kind,
      state: handler.tests.some((t) => t.failedAt !== undefined)
        ? 'fail'
        : handler.tests.every((t) => t.passedAt !== undefined || !t.required)
          ? 'pass'
          : 'open',
    }));
    hooks.emit({
      type: 'window',
      step: plan.step,
      planned: plan.plannedSamples ?? 0,
      observed: out.observed ?? 0,
      elapsedMs,
      closed,
      decision: out.decision,
      rules,
    });
    if (closed) break;
  }
  return out;
}
