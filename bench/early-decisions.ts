/**
 * `npx tsx bench/early-decisions.ts`: whole releases on the sandbox with a 60 s step window, as `release run`
 * runs them (the engine, the sandbox's direct scrape, the spec init template's rules): a 30%-error candidate
 * must be rolled back — observed traffic back on stable — within 20 s of the shift, because the sequential
 * gate rejects at an early look; a healthy one must still be promoted (a pass waits for the step's window).
 *
 * EARLY_RUNS (default 3) releases of each kind; EARLY_BUSY=1 keeps both cores busy (two shell loops, stopped
 * at the end). Prints each release's seconds from the shift to the rollback (or promotion) and the candidate
 * requests seen when the window closed; exit 1 if a bad release took longer than 20 s or a healthy one was not
 * promoted.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as yaml from 'js-yaml';
import { SPEC_TEMPLATE } from '../src/spec/init-template.js';
import { loadSpec } from '../src/spec/load.js';
import type { GateSpec } from '../src/spec/types.js';
import { runRelease, type ReleaseProgress } from '../src/stages/index.js';
import { startReleaseLab } from '../test/helpers/release-lab.js';

const RUNS = Number(process.env.EARLY_RUNS ?? 3);
const BUSY = process.env.EARLY_BUSY === '1';
const LIMIT_S = 20;

const template = (yaml.load(SPEC_TEMPLATE) as { gate: GateSpec }).gate;
const lab = await startReleaseLab('early-decisions');
const busy: ChildProcess[] = [];
let missed = 0;
try {
  if (BUSY)
    for (let i = 0; i < 2; i++)
      busy.push(spawn('sh', ['-c', 'while :; do :; done'], { stdio: 'ignore', detached: false }));
  console.log(
    `releases on the sandbox, canary step 20% with a 60 s window, the template's rules (${BUSY ? 'both cores busy' : 'quiet machine'})`,
  );
  for (const healthy of [false, true]) {
    for (let i = 1; i <= RUNS; i++) {
      await lab.reset();
      if (!healthy) await lab.sb.setFault('http-lb', 'v2', { errorRate: 0.3 });
      const file = lab.writeSpec(
        `early-${healthy ? 'ok' : 'bad'}-${i}`,
        { canary: { steps: [20], window: '60s' } },
        // The template's rules and limits; the sandbox's own metrics (direct scrape) and traces (all kept).
        { rules: template.rules, gate: { minSamples: template.minSamples, maxWindow: template.maxWindow } },
      );
      const at: Partial<Record<ReleaseProgress['type'], number>> = {};
      let observed = 0;
      const r = await runRelease(lab.sb.platform, loadSpec(file).spec, {
        autoApprove: true,
        evidenceDir: lab.evidenceDir,
        onEvent: (e) => {
          at[e.type] ??= Date.now();
          if (e.type === 'window' && e.closed) observed = e.observed;
        },
      });
      const end = healthy ? at.promote : at.rollback;
      const seconds = end !== undefined && at.shift !== undefined ? (end - at.shift) / 1000 : NaN;
      const ok = healthy
        ? r.exitCode === 0 && r.state.phase === 'promoted'
        : r.exitCode === 1 && r.state.rollbackCheck === 'observed' && seconds <= LIMIT_S;
      if (!ok) missed++;
      console.log(
        `${healthy ? 'healthy    ' : '30% errors '} ${i}: exit ${r.exitCode}, ${r.state.phase}${healthy ? '' : ` (rollback check: ${r.state.rollbackCheck})`}, ${seconds.toFixed(1)} s from the shift to the ${healthy ? 'promotion' : 'rollback'}, ${observed} candidate requests when the window closed${ok ? '' : '  <- MISSED'}`,
      );
    }
  }
  console.log(
    missed
      ? `${missed} release(s) missed: a bad one must be rolled back within ${LIMIT_S} s, a healthy one promoted`
      : `every 30%-error candidate rolled back within ${LIMIT_S} s of the shift; every healthy one promoted`,
  );
  process.exitCode = missed ? 1 : 0;
} finally {
  for (const b of busy) b.kill('SIGKILL');
  await lab.stop();
}
