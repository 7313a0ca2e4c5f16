import { mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RunEvent } from '../pipelines/local-run/index.js';
import type { LocalRunOptions, LocalRunResult } from './local-pipeline.js';

/**
 * `clover-cd demo`: the whole release on the sandbox, twice. A healthy http-lb v2 goes through the SDC
 * canary pipeline and is promoted; then, on a fresh sandbox, v2 answers 30% of its requests with 500 and
 * the same pipeline rolls it back. Each run is the rendered Spinnaker pipeline executed locally (webhook
 * stages → a local stage server → traffic, load, gate). Evidence bundles and load results are kept.
 */
export interface DemoStep {
  weight: number;
  sent?: number;
  /** Requests the http-lb hop saw, per version, in the step's window. */
  seen: Record<string, number>;
  verdict: string;
  reasons: string[];
  evidence?: string;
}

export interface DemoScenario {
  name: string;
  expected: 'promoted' | 'rolled back';
  outcome: 'promoted' | 'rolled back' | 'neither';
  ok: boolean;
  exitCode: number;
  status: string;
  steps: DemoStep[];
  reports: string[];
  durationMs: number;
  /** Weight of v2 on the VirtualService after the run. */
  finalWeight?: number;
}

export interface DemoResult {
  ok: boolean;
  scenarios: DemoScenario[];
  durationMs: number;
  outDir: string;
}

export interface DemoOptions {
  /** Runs a rendered pipeline locally against a stage server (server/local-pipeline.ts's runPipelineLocally). */
  runPipeline: (opts: LocalRunOptions) => Promise<LocalRunResult>;
  specFile?: string;
  outDir?: string;
  onEvent?: (scenario: string, e: RunEvent) => void;
  onNote?: (message: string) => void;
  signal?: AbortSignal;
}

export const DEMO_SPEC = fileURLToPath(new URL('../../examples/sdc-canary.yaml', import.meta.url));

interface Bundle {
  candidateWeight?: number;
  evidence?: {
    load?: { sent?: number };
    metrics?: { hops?: Record<string, Record<string, { requests: number }>> };
  };
  verdict: { outcome: string; results: Array<{ rule: string; outcome: string; reason: string }> };
}

function stepsOf(
  run: LocalRunResult,
  service: string,
  versions: string[],
): { steps: DemoStep[]; reports: string[] } {
  const steps: DemoStep[] = [];
  const reports: string[] = [];
  for (const j of run.jobs) {
    for (const path of Object.values(j.reports ?? {})) reports.push(path);
    const evidence = j.reports?.evidence;
    if (!evidence) continue;
    const b = JSON.parse(readFileSync(evidence, 'utf8')) as Bundle;
    const hop = b.evidence?.metrics?.hops?.[service] ?? {};
    steps.push({
      weight: b.candidateWeight ?? 0,
      sent: b.evidence?.load?.sent,
      // Stable first, then the candidate, whatever order the series arrived in.
      seen: Object.fromEntries(
        Object.entries(hop)
          .sort(([a], [b]) => (versions.indexOf(a) + 1 || 99) - (versions.indexOf(b) + 1 || 99))
          .map(([v, c]) => [v, c.requests]),
      ),
      verdict: b.verdict.outcome,
      reasons: b.verdict.results
        .filter((r) => r.outcome !== 'pass')
        .map((r) => `${r.rule.split(' ')[0]}: ${r.reason}`),
      evidence,
    });
  }
  return { steps, reports };
}

export async function runDemo(opts: DemoOptions): Promise<DemoResult> {
  const started = Date.now();
  const { startSandbox } = await import('../sandbox/index.js');
  const { releaseStatus } = await import('./engine/index.js');
  const { loadSpec } = await import('../spec/load.js');
  const specFile = opts.specFile ?? DEMO_SPEC;
  const { spec } = loadSpec(specFile);
  const outDir = resolve(
    opts.outDir ?? join('.clover-cd', `demo-${new Date().toISOString().replace(/[:.]/g, '-')}`),
  );
  mkdirSync(outDir, { recursive: true });
  const scenarios: DemoScenario[] = [];
  const plan: Array<{ name: string; expected: DemoScenario['expected']; fault?: { errorRate: number } }> = [
    { name: `healthy ${spec.service.candidate}`, expected: 'promoted' },
    {
      name: `faulty ${spec.service.candidate} (30% HTTP 500)`,
      expected: 'rolled back',
      fault: { errorRate: 0.3 },
    },
  ];
  for (const s of plan) {
    if (opts.signal?.aborted) break;
    const t = Date.now();
    opts.onNote?.(`── ${s.name}: starting the sandbox`);
    const sb = await startSandbox({ stateDir: join(outDir, 'sandbox'), mesh: spec.service.mesh });
    try {
      if (s.fault) await sb.setFault(spec.service.name, spec.service.candidate, s.fault);
      const run = await opts.runPipeline({
        file: specFile,
        platform: sb.platform,
        autoApprove: true,
        evidenceDir: join(outDir, 'evidence'),
        signal: opts.signal,
        onEvent: (e) => opts.onEvent?.(s.name, e),
      });
      const finalWeight = (await releaseStatus(sb.platform, spec)).routes.weight;
      const promoted = run.execution.stages.some(
        (x) => x.name.startsWith('Promote') && x.status === 'SUCCEEDED',
      );
      const rolledBack = run.execution.stages.some(
        (x) => x.name.startsWith('Roll back') && x.status === 'SUCCEEDED',
      );
      const outcome: DemoScenario['outcome'] =
        promoted && finalWeight === 100
          ? 'promoted'
          : rolledBack && finalWeight === 0
            ? 'rolled back'
            : 'neither';
      const { steps, reports } = stepsOf(run, spec.service.name, [
        spec.service.stable,
        spec.service.candidate,
      ]);
      scenarios.push({
        name: s.name,
        expected: s.expected,
        outcome,
        ok: outcome === s.expected,
        exitCode: run.exitCode,
        status: run.execution.status,
        steps,
        reports,
        durationMs: Date.now() - t,
        finalWeight,
      });
    } finally {
      await sb.stop();
    }
  }
  return {
    ok: scenarios.length === plan.length && scenarios.every((s) => s.ok),
    scenarios,
    durationMs: Date.now() - started,
    outDir,
  };
}
