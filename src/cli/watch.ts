/**
 * `clover-cd release status --watch`: the release as it runs, read from what the engine records with the
 * routes (so it follows a release run by any host: the CLI, the stage server, Jenkins). On a terminal the
 * view is redrawn in place every interval; without one (CI logs, pipes) it prints one line per change of
 * phase, step, weight, window or verdict. Bounded: it ends when the release is terminal (or held), on
 * Ctrl-C (exit 130) or when --timeout passes (exit 3: still undecided).
 */
import { exitCodeOf, isTerminal, type ReleaseState } from '../canary/index.js';
import { telemetryOf } from '../routers/index.js';
import type { Platform } from '../services/platform.js';
import type { ReleaseSpec } from '../spec/types.js';
import {
  canObserveSplit,
  metricsOf,
  openWindow,
  ReleaseEngine,
  releaseStatus,
  takeLook,
} from '../stages/index.js';
import { sequentialGateForSpec } from '../validators/sequential/looks.js';
import type { SequentialGate } from '../validators/sequential/gate.js';
import { describeRule } from '../validators/index.js';
import { ExitCode } from '../util/errors.js';
import { sleep } from '../util/retry.js';
import { formatDuration } from '../util/units.js';

export interface WatchView {
  release: string;
  phase: string;
  step: number;
  steps: number;
  stepLabel?: string;
  weights: { stable: number; candidate: number };
  held?: boolean;
  window?: {
    openedAt: number;
    minMs: number;
    maxMs: number;
    leftMs: number;
    planned?: number;
    observed?: number;
    sinceWatching?: boolean;
    rules?: RuleView[];
    decision?: 'pass' | 'fail';
  };
  lastVerdict?: { step: number; outcome: string; summary: string };
  reason?: string;
}

/** Where one statistical rule stands in the running window, as this watch's own looks show it. */
export interface RuleView {
  rule: string;
  state: 'pass' | 'fail' | 'open';
  /** The undecided test closest to deciding: its evidence against its threshold. */
  evidence?: { side: 'fail' | 'pass'; value: number; threshold: number };
}

export interface WatchOptions {
  intervalMs: number;
  timeoutMs: number;
  tty: boolean;
  write: (s: string) => void;
  signal: AbortSignal;
  now?: () => number;
}

/** What one window of the current step looks like: it opens when the step is shifted (or analysed again). */
interface WindowTrack {
  key: string;
  openedAt: number;
  w?: Awaited<ReturnType<typeof openWindow>>;
  sinceWatching: boolean;
  /** The same sequential gate the engine runs, fed with this watch's looks. */
  gate?: SequentialGate;
}

/** Each judged rule's running state and the evidence of its test nearest a decision. */
function ruleViews(spec: ReleaseSpec, gate: SequentialGate): RuleView[] {
  return gate.handlers.map(({ index, handler }) => {
    const failed = handler.tests.some((t) => t.failedAt !== undefined);
    const passed = handler.tests.every((t) => t.passedAt !== undefined || !t.required);
    const view: RuleView = {
      rule: describeRule(spec.gate!.rules[index]),
      state: failed ? 'fail' : passed ? 'pass' : 'open',
    };
    if (view.state === 'open') {
      const open = handler.tests.filter((t) => t.passedAt === undefined && t.required);
      const last = (t: (typeof open)[number]) => t.trace[t.trace.length - 1];
      const best = open
        .map((t) => ({ t, p: last(t) }))
        .filter((x) => x.p && x.p.pass !== undefined && Number.isFinite(x.p.pass));
      const worst = best.sort((a, b) => a.p!.pass! / a.t.passThreshold - b.p!.pass! / b.t.passThreshold)[0];
      if (worst) view.evidence = { side: 'pass', value: worst.p!.pass!, threshold: worst.t.passThreshold };
      else {
        const f = open
          .map((t) => ({ t, p: last(t) }))
          .filter((x) => x.p && Number.isFinite(x.p.fail))
          .sort((a, b) => b.p!.fail - a.p!.fail)[0];
        if (f) view.evidence = { side: 'fail', value: f.p!.fail, threshold: f.t.failThreshold };
      }
    }
    return view;
  });
}

const ruleText = (r: RuleView) =>
  `${r.rule.split(' ')[0]} ${r.state.toUpperCase()}${r.evidence ? ` (${r.evidence.side} evidence ${r.evidence.value.toFixed(1)}/${r.evidence.threshold.toFixed(1)})` : ''}`;

function viewOf(
  spec: ReleaseSpec,
  st: Awaited<ReturnType<typeof releaseStatus>>,
  s: ReleaseState | undefined,
): WatchView {
  const plan = st.plan;
  const step = s && s.step >= 0 ? plan.steps[s.step] : undefined;
  return {
    release: st.release,
    phase: s?.phase ?? 'not started',
    step: s ? s.step + 1 : 0,
    steps: plan.steps.length,
    stepLabel: step ? `${step.kind} ${step.weight}%` : undefined,
    weights: { stable: st.routes.stableWeight, candidate: st.routes.weight },
    held: s?.held,
    lastVerdict: s?.lastVerdict && {
      step: s.lastVerdict.step + 1,
      outcome: s.lastVerdict.outcome,
      summary: s.lastVerdict.summary,
    },
    reason: s?.reason,
  };
}

const pct = (v: WatchView) => `${v.weights.stable}% / ${v.weights.candidate}%`;

export function renderLine(v: WatchView, spec: ReleaseSpec): string {
  const parts = [
    `${v.release}: ${v.phase}${v.held ? ' (held)' : ''}`,
    `step ${v.step}/${v.steps}${v.stepLabel ? ` (${v.stepLabel})` : ''}`,
    `${spec.service.stable}/${spec.service.candidate} ${pct(v)}`,
  ];
  if (v.window) {
    const w = v.window;
    const full = w.planned !== undefined && (w.observed ?? 0) >= w.planned;
    parts.push(
      `window ${w.leftMs > 0 ? `${formatDuration(w.leftMs)} left` : full ? 'closing (samples in)' : `growing to ${formatDuration(w.maxMs)}`}`,
    );
    if (w.planned !== undefined)
      parts.push(`samples ${w.sinceWatching ? '≥' : ''}${w.observed ?? '?'}/${w.planned}`);
    if (w.rules?.length)
      parts.push(`rules ${w.rules.map((r) => `${r.rule.split(' ')[0]} ${r.state}`).join(', ')}`);
  }
  if (v.lastVerdict) parts.push(`last verdict step ${v.lastVerdict.step}: ${v.lastVerdict.outcome}`);
  return parts.join(' | ');
}

export function renderBlock(v: WatchView, spec: ReleaseSpec, now: number): string[] {
  const bar = (n: number) => '█'.repeat(Math.round(n / 5)).padEnd(20, '░');
  const lines = [
    `release ${v.release}  ${v.phase.toUpperCase()}${v.held ? ' (held)' : ''}   ${new Date(now).toLocaleTimeString()}`,
    `step     ${v.step}/${v.steps}${v.stepLabel ? `  ${v.stepLabel}` : ''}`,
    `weights  ${spec.service.stable.padEnd(8)} ${bar(v.weights.stable)} ${v.weights.stable}%`,
    `         ${spec.service.candidate.padEnd(8)} ${bar(v.weights.candidate)} ${v.weights.candidate}%`,
  ];
  if (v.window) {
    const w = v.window;
    const full = w.planned !== undefined && (w.observed ?? 0) >= w.planned;
    lines.push(
      `window   ${w.leftMs > 0 ? `${formatDuration(w.leftMs)} left of ${formatDuration(w.minMs)}` : full ? `past ${formatDuration(w.minMs)} with the samples in: closing` : `past ${formatDuration(w.minMs)}, growing until the samples are in (at most ${formatDuration(w.maxMs)})`}`,
    );
    if (w.planned !== undefined)
      lines.push(
        `samples  ${w.sinceWatching ? 'at least ' : ''}${w.observed ?? '?'} of ${w.planned} planned candidate requests${w.sinceWatching ? ' (counted since watching)' : ''}`,
      );
    if (w.rules?.length) {
      lines.push(
        `rules    ${w.decision ? `decided ${w.decision.toUpperCase()}` : 'deciding'} (this watch's own looks${w.sinceWatching ? ', since watching' : ''}):`,
      );
      for (const r of w.rules) lines.push(`           ${ruleText(r)}`);
    }
  }
  lines.push(
    `verdict  ${v.lastVerdict ? `step ${v.lastVerdict.step}: ${v.lastVerdict.outcome.toUpperCase()} — ${v.lastVerdict.summary}` : '(none yet)'}`,
  );
  if (v.reason) lines.push(`         ${v.reason}`);
  return lines;
}

/** Watch until the release is terminal or held, the signal aborts, or the timeout passes; returns the exit code. */
export async function watchRelease(platform: Platform, spec: ReleaseSpec, o: WatchOptions): Promise<number> {
  const now = o.now ?? Date.now;
  const started = now();
  const engine = new ReleaseEngine(platform, spec);
  const planned = new Map(engine.samplePlan().map((p) => [p.step, p.candidate]));
  const endpoints = platform.endpoints();
  const observable = canObserveSplit(spec, endpoints);
  let track: WindowTrack | undefined;
  let lastKey = '';
  let drawn = 0;
  const draw = (v: WatchView) => {
    if (o.tty) {
      const lines = renderBlock(v, spec, now());
      o.write(`${drawn ? `\x1b[${drawn}A` : ''}${lines.map((l) => `\x1b[2K${l}`).join('\n')}\n\x1b[J`);
      drawn = lines.length;
      return;
    }
    // One line per change of what the line says: the time left and the sample count alone do not make one,
    // and neither does anything the line does not show (a verdict's summary, when a window opened).
    const w = v.window;
    const key = renderLine(
      w
        ? {
            ...v,
            window: {
              ...w,
              leftMs: w.leftMs > 0 ? 1 : 0,
              observed: w.planned !== undefined && (w.observed ?? 0) >= w.planned ? w.planned : 0,
            },
          }
        : v,
      spec,
    );
    if (key !== lastKey) o.write(`${new Date(now()).toISOString()} ${renderLine(v, spec)}\n`);
    lastKey = key;
  };
  for (;;) {
    const st = await releaseStatus(platform, spec);
    const s = st.state;
    const v = viewOf(spec, st, s);
    const step = s && s.step >= 0 ? st.plan.steps[s.step] : undefined;
    if (s && step && s.phase === 'progressing' && s.shifted && !s.held && step.windowMs > 0) {
      // The engine opens a step's window right after the shift (or after an inconclusive verdict): the
      // state's updatedAt is that moment.
      const key = `${s.step}:${s.inconclusive}:${s.updatedAt}`;
      if (track?.key !== key) {
        const openedAt = Date.parse(s.updatedAt);
        track = { key, openedAt, sinceWatching: false };
        if (observable) {
          try {
            const w = await openWindow(spec, endpoints);
            // Prometheus can count from the shift; a direct scrape only from its own snapshot (now).
            track.w = w.baseline ? w : { ...w, start: openedAt };
            track.sinceWatching = !!w.baseline && now() - openedAt > 2000;
            const weighted = step.kind === 'weight' || step.kind === 'switch';
            track.gate = spec.gate
              ? sequentialGateForSpec(engine.windowSpec(s, s.step), {
                  candidateWeight: weighted ? step.weight : undefined,
                  plannedSamples: planned.get(s.step),
                  minWindowMs: step.windowMs,
                  source: metricsOf(spec, endpoints).source ?? 'metrics',
                  telemetry: telemetryOf(spec),
                })
              : undefined;
          } catch {
            track.w = undefined;
          }
        }
      }
      let observed: number | undefined;
      const look = track.w ? await takeLook(spec, endpoints, track.w).catch(() => undefined) : undefined;
      if (look) {
        observed = look.versions[spec.service.candidate]?.requests ?? 0;
        track.gate?.look(look, look.at - track.w!.start);
      }
      v.window = {
        openedAt: track.openedAt,
        minMs: step.windowMs,
        maxMs: step.maxWindowMs,
        leftMs: Math.max(0, track.openedAt + step.windowMs - now()),
        planned: planned.get(s.step),
        observed,
        sinceWatching: track.sinceWatching,
      };
      if (track.gate)
        Object.assign(v.window, {
          rules: ruleViews(spec, track.gate),
          decision: track.gate.decision?.outcome,
        });
    } else track = undefined;
    draw(v);
    if (s && (isTerminal(s) || s.held)) return s.held ? ExitCode.inconclusive : exitCodeOf(s);
    if (o.signal.aborted) return ExitCode.interrupted;
    if (now() - started >= o.timeoutMs) {
      o.write(
        `${o.tty ? '' : `${new Date(now()).toISOString()} `}stopped watching after ${formatDuration(now() - started)}: ${v.release} is still ${v.phase}\n`,
      );
      return ExitCode.inconclusive;
    }
    await sleep(Math.min(o.intervalMs, Math.max(0, started + o.timeoutMs - now())), o.signal).catch(
      () => undefined,
    );
    if (o.signal.aborted) return ExitCode.interrupted;
  }
}
