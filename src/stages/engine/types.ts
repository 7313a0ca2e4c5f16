import type { ReleaseState, VerdictOutcome } from '../../canary/machine.js';
import type { LoadRunResult } from '../../jmeter/types.js';
import type { LoadRunResultLike, Look } from '../../validators/index.js';
import type { WindowStart } from '../gate.js';

/** What the engine tells a host while it works (the CLI prints it; the stage server turns it into progress). */
export type ReleaseProgress =
  | {
      type: 'start';
      release: string;
      strategy: string;
      steps: Array<{ kind: string; weight: number }>;
      resumed: boolean;
      state: ReleaseState;
      samples: StepSamplePlan[];
    }
  | {
      type: 'window';
      step: number;
      planned: number;
      observed: number;
      elapsedMs: number;
      closed: boolean;
      decision?: 'pass' | 'fail';
      rules?: RuleProgress[];
    }
  | { type: 'ready'; workload: string; message: string }
  | { type: 'shift'; step: number; weight: number; ms: number }
  | { type: 'load'; step: number; sent: number; errors: number; elapsedS: number }
  | { type: 'verdict'; step: number; outcome: VerdictOutcome; summary: string; bundlePath?: string }
  | {
      type: 'split';
      step: number;
      weight: number;
      stable: number;
      candidate: number;
      outcome: string;
      reason: string;
    }
  | { type: 'judgment'; step: number; approved: boolean }
  | { type: 'promote'; ms: number }
  /** `observed`: requests per version after the rollback (the check); `verified`: how it was checked, in words. */
  | {
      type: 'rollback';
      ms: number;
      reason?: string;
      observed?: { stable: number; candidate: number };
      check?: ReleaseState['rollbackCheck'];
      verified: string;
    }
  | { type: 'state'; state: ReleaseState };

/** Where one statistical rule stands while the window is open (index into gate.rules). */
export interface RuleProgress {
  rule: number;
  kind: string;
  state: 'pass' | 'fail' | 'open';
}

/** One closed analysis window as the gate judges it: when it opened and closed, what the load sent (the release state keeps it). */
export interface JudgedWindow {
  step: number;
  /** As the metrics provider closed it (a direct scrape's counter increase). */
  window: WindowStart;
  end: number;
  load?: LoadRunResultLike;
  /** Candidate requests a healthy canary is expected to need (the sequential tests are tuned for it). */
  plannedSamples?: number;
  /** Candidate requests seen when the window closed (when they were observed). */
  observedSamples?: number;
  /** The looks the sequential gate took while the window was open, and the window's shortest length. */
  sequence?: Look[];
  minWindowMs?: number;
  /** The part of the release's false-alarm budget the window spends (absent: recorded before the split, the whole). */
  alphaShare?: { share: number; note: string };
}

/** The window the load action ran, with the load's whole result (for the action's own report). */
export interface LoadWindow extends JudgedWindow {
  load?: LoadRunResult;
}

/** What one step's analysis needs, printed before traffic moves. */
export interface StepSamplePlan {
  step: number;
  kind: string;
  weight: number;
  /** Candidate requests the rules need. */
  candidate: number;
  /** Requests in total at the step's weight. */
  total?: number;
  windowMs: number;
  maxWindowMs: number;
  /** The part of gate.alpha the step's first window spends (the chance it fails a healthy candidate). */
  alpha: number;
}

/** One rule's result as a release reports it (the gate's RuleResult without its figures). */
export interface RuleResultSummary {
  rule: string;
  outcome: string;
  observed: string;
  expected: string;
  source: string;
  reason: string;
}

export interface AnalysisResult {
  outcome: VerdictOutcome;
  summary: string;
  bundlePath?: string;
  results?: RuleResultSummary[];
  state: ReleaseState;
}

export interface EngineOptions {
  /** The spec file, for messages (the files a spec names are absolute once loaded: spec/load.ts). */
  file?: string;
  evidenceDir?: string;
  signal?: AbortSignal;
  onEvent?: (e: ReleaseProgress) => void;
  /** Bound of the readiness wait (default service.readyTimeout, 5m). */
  readyTimeoutMs?: number;
  /** Seconds of load per rollback verification burst (default 2; 0 skips the check). */
  verifyLoadS?: number;
  /** A pipeline execution id: a new one starts a new release where a finished or abandoned one stands. */
  runId?: string;
}
