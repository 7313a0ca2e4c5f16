/**
 * Control-plane overhead of one release step on the sandbox, through the release engine every host uses:
 * everything a step does apart from its analysis window (load + gate evidence), i.e. read the state, shift
 * (reconcile with the machine, check the candidate is ready, one merge patch of routes + state guarded by
 * resourceVersion), open the observation window (metrics snapshot), observe the split, record the verdict. Target <= 200 ms per step. The platform is reached as the CLI reaches it: through
 * the sandbox's admin HTTP API. Baseline in the same run: one plain VirtualService read.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { vsRef } from '../src/routers/istio/routes.js';
import { connectSandbox, startSandbox } from '../src/sandbox/index.js';
import { observeSplit, openWindow } from '../src/stages/gate.js';
import { ReleaseEngine } from '../src/stages/engine/index.js';
import type { ReleaseSpec } from '../src/spec/types.js';

const TARGET_MS = 200;
const STEPS = 40;
const spec: ReleaseSpec = {
  apiVersion: 'clover-cd/v1',
  kind: 'Release',
  metadata: { name: 'bench-canary' },
  application: 'sdc',
  service: { name: 'http-lb', namespace: 'default', port: 9180, stable: 'v1', candidate: 'v2' },
  strategy: { canary: { steps: [10, 20, 30, 40, 50, 60, 70, 80, 90], window: '1s' } },
  gate: { rules: [{ errorRate: { max: '1%' } }] },
};

const dir = mkdtempSync(join(tmpdir(), 'traffic-bench-'));
const sb = await startSandbox({ stateDir: dir });
try {
  writeFileSync(
    join(dir, 'sandbox.json'),
    JSON.stringify({
      pid: process.pid,
      urls: sb.urls,
      token: sb.core.adminToken,
      startedAt: new Date().toISOString(),
      netns: false,
    }),
  );
  const platform = (await connectSandbox(dir)).platform;
  const engine = new ReleaseEngine(platform, spec);
  const plan = engine.plan;
  const ref = vsRef(spec);
  const pct = (xs: number[], p: number) =>
    [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];
  const reads: number[] = [];
  for (let i = 0; i < STEPS; i++) {
    const t = performance.now();
    await platform.get(ref);
    reads.push(performance.now() - t);
  }
  const perStep: number[] = [];
  const parts: Record<string, number[]> = { read: [], shift: [], window: [], split: [], verdict: [] };
  for (let i = 0; i < STEPS; i++) {
    // Each run of the plan starts fresh (release restarted) so every step shifts for real.
    const k = i % plan.steps.length;
    if (k === 0) {
      if ((await engine.state())?.phase === 'promoting') await engine.promote();
      await engine.prepare({ restart: true });
    }
    const t0 = performance.now();
    await engine.state();
    const t1 = performance.now();
    await engine.shift(k);
    const t2 = performance.now();
    const w = await openWindow(spec, platform.endpoints());
    const t3 = performance.now();
    await observeSplit(spec, platform.endpoints(), w);
    const t4 = performance.now();
    await engine.recordVerdict(k, { outcome: 'pass', summary: 'bench' });
    const t5 = performance.now();
    perStep.push(t5 - t0);
    parts.read.push(t1 - t0);
    parts.shift.push(t2 - t1);
    parts.window.push(t3 - t2);
    parts.split.push(t4 - t3);
    parts.verdict.push(t5 - t4);
  }
  const p50 = pct(perStep, 50);
  const p95 = pct(perStep, 95);
  console.log(
    `control-plane overhead per step (${STEPS} steps): p50 ${p50.toFixed(1)} ms, p95 ${p95.toFixed(1)} ms   target <= ${TARGET_MS} ms   ${p95 <= TARGET_MS ? 'OK' : 'ABOVE TARGET'}`,
  );
  for (const [k, xs] of Object.entries(parts))
    console.log(`  ${k.padEnd(8)} p50 ${pct(xs, 50).toFixed(1)} ms  p95 ${pct(xs, 95).toFixed(1)} ms`);
  console.log(
    `baseline: one VirtualService read p50 ${pct(reads, 50).toFixed(2)} ms; a step costs ${(p50 / pct(reads, 50)).toFixed(1)}x a read`,
  );
} finally {
  await sb.stop();
  rmSync(dir, { recursive: true, force: true });
}
