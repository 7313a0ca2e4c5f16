/**
 * Analysis windows: how many requests a step's window is expected to need, the window while it is open (a
 * look at the gated service every scrape interval, each judged at once by the sequential gate:
 * window-watch.ts), and the window as the release state keeps it (`RecordedWindow`, canary/machine.ts) — what
 * the load action measured and the looks it took, in the form the gate action judges, in the same process or
 * in another pod that has nothing but the release state (a Spinnaker Run Job, a Jenkins build on another agent).
 */
import { rulesForStep, type RecordedWindow, type ReleasePlan } from '../../canary/index.js';
import type { ReleaseSpec } from '../../spec/types.js';
import {
  allocateBudget,
  plannedSamples,
  windowShare,
  type WindowShare,
  type LoadRunResultLike,
  type LoadLabelStatsLike,
  type Look,
} from '../../validators/index.js';
import type { Platform } from '../../services/platform.js';
import type { CoveredInterval } from '../../metrics/index.js';
import type { ScrapedSeries } from '../../services/scrape.js';
import { InterruptedError } from '../../util/errors.js';
import { sleep } from '../../util/retry.js';
import { canObserveSplit, closeWindow, openWindow, type WindowStart } from '../gate.js';
import { runLoadStage } from '../load.js';
import type { JudgedWindow, LoadWindow, ReleaseProgress, StepSamplePlan } from './types.js';
import { watchWindow } from './window-watch.js';

/** Candidate requests (and in total) the gate's rules need to judge step `k`; undefined for a step without analysis. */
export function stepSamples(
  plan: ReleasePlan,
  spec: ReleaseSpec,
  k: number,
): { candidate: number; total?: number } | undefined {
  const step = plan.steps[k];
  if (!spec.gate || step.windowMs === 0) return undefined;
  const weighted = step.kind === 'weight' || step.kind === 'switch';
  const need = plannedSamples(
    { ...spec.gate, rules: rulesForStep(spec.gate.rules, step) },
    { weightPercent: weighted ? step.weight : undefined },
  );
  return { candidate: need.candidate, total: need.total };
}

/** What each analysed step needs, for printing before traffic moves. */
export function samplePlanOf(plan: ReleasePlan, spec: ReleaseSpec): StepSamplePlan[] {
  const out: StepSamplePlan[] = [];
  for (const s of plan.steps) {
    const need = stepSamples(plan, spec, s.index);
    if (need)
      out.push({
        step: s.index,
        kind: s.kind,
        weight: s.weight,
        candidate: need.candidate,
        total: need.total,
        windowMs: s.windowMs,
        maxWindowMs: s.maxWindowMs,
        alpha: allocateBudget({ ...spec.gate!, share: windowShareOf(plan, s.index, 0).share }).total,
      });
  }
  return out;
}

/**
 * Counters as a table, the way the release state keeps them: per series name its label names once, then a
 * row per series of label values (null where a series lacks the label) and the value — a third of the size
 * of one object per series.
 */
interface CounterTable {
  name: string;
  labels: string[];
  rows: Array<Array<string | number | null>>;
}

interface WindowEvidence {
  /** The metrics provider's closed window: a direct scrape's counter increase (as tables), or why it has none. */
  metrics?: { counters?: CounterTable[]; covered?: CoveredInterval; problem?: string };
  load?: LoadRunResultLike;
  /** The looks the sequential gate took while the window was open (every `lookStride`-th when thinned), its shortest length. */
  sequence?: Look[];
  lookStride?: number;
  minWindowMs?: number;
  /** The part of the release's false-alarm budget the window was watched with (and is judged with). */
  alphaShare?: { share: number; note: string };
}

function packCounters(series: ScrapedSeries[]): CounterTable[] {
  const tables = new Map<string, CounterTable>();
  for (const s of series) {
    const t = tables.get(s.name) ?? { name: s.name, labels: [], rows: [] };
    tables.set(s.name, t);
    for (const k of Object.keys(s.labels)) if (!t.labels.includes(k)) t.labels.push(k);
  }
  for (const s of series) {
    const t = tables.get(s.name)!;
    t.rows.push([...t.labels.map((k) => s.labels[k] ?? null), s.value]);
  }
  return [...tables.values()];
}

function unpackCounters(tables: CounterTable[]): ScrapedSeries[] {
  return tables.flatMap((t) =>
    t.rows.map((row) => ({
      name: t.name,
      labels: Object.fromEntries(t.labels.flatMap((k, i) => (row[i] === null ? [] : [[k, String(row[i])]]))),
      value: Number(row[t.labels.length]),
    })),
  );
}

/** Only what the gate reads of a label's statistics: the rest stays in the load's own report. */
const counts = (s: LoadLabelStatsLike): LoadLabelStatsLike => ({
  count: s.count,
  errors: s.errors,
  codes: s.codes,
  userAgents: s.userAgents,
});

/**
 * Most of a window's direct-scrape counters kept with the release state. The state lives in an annotation
 * (a Kubernetes object's annotations hold 256 KiB in all, and every write sends them); a mesh whose labels
 * give more series than this is judged from Prometheus, which keeps the history itself.
 */
export const MAX_RECORDED_COUNTERS_BYTES = 128 * 1024;

function recordMetrics(w: WindowStart): WindowEvidence['metrics'] {
  if (w.problem || !w.increase) return w.problem ? { problem: w.problem } : {};
  const counters = packCounters(w.increase);
  const size = JSON.stringify(counters).length;
  if (size <= MAX_RECORDED_COUNTERS_BYTES) return w.covered ? { counters, covered: w.covered } : { counters };
  return {
    problem: `the window's counters (${w.increase.length} series, ${Math.round(size / 1024)} kB) are more than the release state keeps (${MAX_RECORDED_COUNTERS_BYTES / 1024} kB): read metrics from Prometheus (gate.metrics.source: prometheus)`,
  };
}

/**
 * Most of a window's looks kept with the release state, beside its counters. A longer window keeps every
 * n-th look, the last (the deciding one) always: the tests stay valid on any looks taken in time order, and
 * the replay decides at one of the kept looks.
 */
export const MAX_RECORDED_LOOKS_BYTES = 64 * 1024;

export function thinLooks(
  looks: Look[],
  maxBytes = MAX_RECORDED_LOOKS_BYTES,
): { looks: Look[]; stride: number } {
  const size = JSON.stringify(looks).length;
  if (size <= maxBytes) return { looks, stride: 1 };
  const stride = Math.ceil(size / maxBytes);
  return { looks: looks.filter((_, i) => (looks.length - 1 - i) % stride === 0), stride };
}

export function recordWindow(w: LoadWindow): RecordedWindow {
  const l = w.load;
  const load: LoadRunResultLike | undefined = l && {
    engine: l.engine,
    runId: l.runId,
    startedAt: l.startedAt,
    endedAt: l.endedAt,
    expected: l.expected,
    summary: {
      total: counts(l.summary.total),
      labels: Object.fromEntries(Object.entries(l.summary.labels).map(([k, s]) => [k, counts(s)])),
    },
  };
  const kept = w.sequence?.length ? thinLooks(w.sequence) : undefined;
  const evidence: WindowEvidence = {
    metrics: recordMetrics(w.window),
    ...(load ? { load } : {}),
    ...(kept ? { sequence: kept.looks, ...(kept.stride > 1 ? { lookStride: kept.stride } : {}) } : {}),
    ...(w.minWindowMs !== undefined ? { minWindowMs: w.minWindowMs } : {}),
    ...(w.alphaShare ? { alphaShare: w.alphaShare } : {}),
  };
  return {
    step: w.step,
    start: w.window.start,
    end: w.end,
    loadRunId: l?.runId,
    plannedSamples: w.plannedSamples,
    observedSamples: w.observedSamples,
    evidence: evidence as Record<string, unknown>,
  };
}

export function judgedWindow(r: RecordedWindow): JudgedWindow {
  const e = (r.evidence ?? {}) as WindowEvidence;
  const m = e.metrics ?? {};
  const window: WindowStart = {
    start: r.start,
    ...(m.counters ? { increase: unpackCounters(m.counters) } : {}),
    ...(m.covered ? { covered: m.covered } : {}),
    ...(m.problem ? { problem: m.problem } : {}),
  };
  return {
    step: r.step,
    window,
    end: r.end,
    load: e.load,
    plannedSamples: r.plannedSamples,
    observedSamples: r.observedSamples,
    sequence: e.sequence,
    minWindowMs: e.minWindowMs,
    alphaShare: e.alphaShare,
  };
}

/**
 * The part of the release's gate.alpha a window of step `k` spends, `attempt` windows after its first
 * (validators/budget.ts: Bonferroni over every window the release can run).
 */
export function windowShareOf(plan: ReleasePlan, k: number, attempt: number): WindowShare {
  const analysed = plan.steps.filter((s) => s.windowMs > 0);
  const ordinal = Math.max(
    0,
    analysed.findIndex((s) => s.index === k),
  );
  return windowShare(analysed.length, ordinal, attempt);
}

/**
 * The spec a window of step `k` is watched and judged with: its part of the release's false-alarm budget
 * (`share`; a window recorded before the split has none and spends the whole), and for a mirror window only
 * the rules that can judge copies.
 */
export function specForStep(
  spec: ReleaseSpec,
  plan: ReleasePlan,
  k: number,
  share?: WindowShare,
): ReleaseSpec {
  const step = plan.steps[k];
  if (!spec.gate) return spec;
  const gate = { ...spec.gate, ...(share ? { windowShare: share } : {}) };
  if (step.kind === 'mirror') gate.rules = rulesForStep(spec.gate.rules, step);
  return { ...spec, gate };
}

/**
 * Send the spec's load for step `k`'s window (or observe for the window when the spec has no load), and
 * close the window. While it is open the sequential gate looks at every scrape (window-watch.ts): the window
 * closes at the first decision — a fail at any look, a pass once the plan's window is reached — or at the
 * step's maxWindow, so a busy machine gets a longer window and an obvious regression a short one.
 * `windowMs` fixes the window (by hand only): it then runs its length.
 */
export async function runWindow(
  platform: Platform,
  spec: ReleaseSpec,
  plan: ReleasePlan,
  k: number,
  opts: {
    windowMs?: number;
    evidenceDir?: string;
    signal?: AbortSignal;
    emit: (e: ReleaseProgress) => void;
    /** The part of the release's false-alarm budget this window spends (`windowShareOf`). */
    alphaShare: WindowShare;
  },
): Promise<LoadWindow> {
  const step = plan.steps[k];
  const { alphaShare } = opts;
  const minMs = opts.windowMs ?? step.windowMs;
  const endpoints = platform.endpoints();
  const observable = canObserveSplit(spec, endpoints);
  const planned = observable ? stepSamples(plan, spec, k)?.candidate : undefined;
  const maxMs = planned && opts.windowMs === undefined ? Math.max(minMs, step.maxWindowMs) : minMs;
  // The load runs for the longest window; it is stopped as soon as the evidence is there, or at an interrupt,
  // including one that arrived before this window opened (a listener added to an aborted signal never fires).
  const stop = new AbortController();
  const onAbort = () => stop.abort(opts.signal?.reason);
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    if (opts.signal?.aborted)
      throw new InterruptedError(`interrupted before step ${k + 1}'s window opened: no load was sent`);
    const window = await openWindow(spec, endpoints);
    let loadDone = false;
    const load = spec.load
      ? runLoadStage(platform, spec, {
          durationS: maxMs / 1000,
          resultsDir: opts.evidenceDir,
          signal: stop.signal,
          distributed: { step: k },
          onProgress: (p) => opts.emit({ type: 'load', step: k, ...p }),
        }).finally(() => (loadDone = true))
      : undefined;
    const waitOrEnd = (ms: number) =>
      Promise.race([sleep(ms, stop.signal).catch(() => undefined), load?.catch(() => undefined)]).then(
        () => undefined,
      );
    const weighted = step.kind === 'weight' || step.kind === 'switch';
    const watched = await watchWindow(
      specForStep(spec, plan, k, alphaShare),
      endpoints,
      {
        step: k,
        window,
        minMs,
        maxMs,
        early: opts.windowMs === undefined,
        candidateWeight: weighted ? step.weight : undefined,
        plannedSamples: planned,
      },
      observable,
      { wait: waitOrEnd, stopped: () => stop.signal.aborted || loadDone, emit: opts.emit },
    );
    if (!stop.signal.aborted) stop.abort(new Error('the analysis window is complete'));
    const r = await load;
    return {
      step: k,
      window: await closeWindow(spec, endpoints, window),
      end: Date.now(),
      load: r?.load,
      plannedSamples: planned,
      observedSamples: watched.observed,
      sequence: watched.looks,
      minWindowMs: minMs,
      alphaShare,
    };
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    if (!stop.signal.aborted) stop.abort(new Error('the analysis window is complete'));
  }
}
