/**
 * `load.engines` on the sandbox: each step's load goes through local jmeter-server engines the platform
 * starts for the window and stops at its end, at a rollback and at an interrupt; a later run removes what a
 * killed one left. Real sandbox, real JMeter, the real CLI binary for the interrupts.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadSpec } from '../src/spec/load.js';
import { engineRecordsDir, removeLeftEngines, type EngineRecord } from '../src/sandbox/load-engines.js';
import { runRelease } from '../src/stages/index.js';
import { readState } from '../src/routers/state.js';
import { startReleaseLab, type ReleaseLab } from './helpers/release-lab.js';
import { waitFor } from './helpers/ports.js';

let lab: ReleaseLab;
beforeAll(async () => {
  lab = await startReleaseLab('distributed');
}, 60_000);
afterAll(async () => lab?.stop());
beforeEach(async () => lab.reset());

const distributed = { engine: 'jmeter', engines: 2 };
const records = (): string[] => {
  const dir = engineRecordsDir(lab.stateDir);
  return existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.json')) : [];
};
/** This suite's engine processes (CLI or JVM): those whose working folder is under its state folder. */
const engineProcesses = (): number[] =>
  readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        return readlinkSync(`/proc/${d}/cwd`).startsWith(engineRecordsDir(lab.stateDir));
      } catch {
        return false;
      }
    })
    .map(Number);
const nothingLeft = () => ({ records: records(), processes: engineProcesses() });

/** Requests the mesh saw per load run id (the x-clover-cd-load header every engine sets). */
async function requestsByLoadRun(): Promise<Record<string, number>> {
  const text = await (await fetch(lab.sb.urls.metrics)).text();
  const byRun: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const run = /^istio_requests_total\{.*reporter="destination".*clover_cd_load="([^"]+)"/.exec(line)?.[1];
    if (run && run !== 'unknown') byRun[run] = (byRun[run] ?? 0) + Number(line.split('} ')[1].split(' ')[0]);
  }
  return byRun;
}

const controllerLogs = (): string[] =>
  existsSync(lab.evidenceDir) ? readdirSync(lab.evidenceDir).filter((f) => f.endsWith('.jmeter.log')) : [];
/** The engines each new controller's JMeter log (beside the JTL in the evidence folder) says it started. */
const enginesPerWindow = (before: string[]): string[][] =>
  controllerLogs()
    .filter((f) => !before.includes(f))
    .map((f) => [
      ...new Set(
        [...readFileSync(join(lab.evidenceDir, f), 'utf8').matchAll(/Started remote host:\s+(\S+)/g)].map(
          (m) => m[1],
        ),
      ),
    ]);

describe('a release with load.engines: 2 on the sandbox', () => {
  for (const healthy of [true, false]) {
    it(`${healthy ? 'promotes' : 'rolls back'}: every window's load through two jmeter-server engines, none left after`, async () => {
      if (!healthy) await lab.sb.setFault('http-lb', 'v2', { errorRate: 0.3 });
      const name = `dist-${healthy ? 'ok' : 'bad'}`;
      // One step: a window's engines cost three JVM starts, and the engine starts and stops them the same way for
      // every window (load-engines.ts), so a second step would show the same thing twice.
      const file = lab.writeSpec(name, { canary: { steps: [50], window: '3s' } }, { load: distributed });
      const before = controllerLogs();
      const r = await runRelease(lab.sb.platform, loadSpec(file).spec, {
        autoApprove: true,
        evidenceDir: lab.evidenceDir,
      });
      expect({ exit: r.exitCode, phase: r.state?.phase }).toEqual(
        healthy ? { exit: 0, phase: 'promoted' } : { exit: 1, phase: 'rolledBack' },
      );
      // Each window's controller reported both engines finished: the gate judged what they sent.
      const windows = enginesPerWindow(before);
      expect(windows.length).toBe(1);
      for (const hosts of windows)
        expect(hosts).toEqual([
          expect.stringMatching(/^127\.0\.0\.1:\d+$/),
          expect.stringMatching(/^127\.0\.0\.1:\d+$/),
        ]);
      expect(nothingLeft()).toEqual({ records: [], processes: [] });
    }, 240_000);
  }

  it('a later run stops the engines a killed run left and drops their records', async () => {
    // A record whose owner is gone and whose process is no engine (a reused pid) is dropped, the process spared.
    const dir = engineRecordsDir(lab.stateDir);
    mkdirSync(dir, { recursive: true });
    const stale: EngineRecord = {
      id: 'stale',
      pid: process.pid,
      port: 1,
      localPort: 2,
      release: 'gone',
      step: 0,
      owner: 2 ** 22 + 1,
      startedAt: new Date().toISOString(),
    };
    writeFileSync(join(dir, 'stale.json'), JSON.stringify(stale));
    expect(removeLeftEngines(lab.stateDir).map((r) => r.id)).toEqual(['stale']);
    expect(records()).toEqual([]);
  });
});

it('load.engines with the builtin engine is refused when the spec is read (exit 2, naming the field)', () => {
  const file = lab.writeSpec(
    'dist-builtin',
    { canary: { steps: [50], window: '3s' } },
    { load: { engines: 2 } },
  );
  expect(() => loadSpec(file)).toThrow(
    expect.objectContaining({
      exitCode: 2,
      problems: [
        expect.objectContaining({ path: 'load.engines', message: expect.stringMatching(/JMeter's own/) }),
      ],
    }) as unknown as Error,
  );
});

describe('SIGINT after the shift stops the load and rolls back (release run)', () => {
  // The engines' JVMs take seconds to start: an interrupt 1 s after the shift lands while they start (with the
  // built-in engine, at 0.1 s as its first requests go out, at 1 s while they flow), the last ones once their
  // requests reach the mesh.
  const cases: Array<{ s: number | 'flowing'; load: Record<string, unknown>; what: string }> = [
    { s: 0.1, load: { engine: 'builtin' }, what: 'builtin engine' },
    { s: 1, load: { engine: 'builtin' }, what: 'builtin engine' },
    { s: 1, load: { engine: 'jmeter' }, what: 'JMeter in-process' },
    { s: 1, load: distributed, what: 'two jmeter-server engines' },
    { s: 'flowing', load: { engine: 'jmeter' }, what: 'JMeter in-process' },
    { s: 'flowing', load: distributed, what: 'two jmeter-server engines' },
  ];
  for (const c of cases) {
    it(`${c.s === 'flowing' ? 'once the load flows' : `${c.s}s`} after the shift, ${c.what}`, async () => {
      const file = lab.writeSpec(
        `irq-${c.what.split(' ')[0].toLowerCase()}-${c.s === 'flowing' ? 'flowing' : c.s * 10}`,
        { canary: { steps: [50], window: '30s' } },
        { load: c.load },
      );
      const runsBefore = await requestsByLoadRun();
      const { child, exited, stderr } = lab.releaseRun(file);
      await waitFor(
        'the release to shift traffic',
        async () => {
          const s = readState(await lab.vs());
          return s?.phase === 'progressing' && s.shifted === true && s.weight === 50;
        },
        60_000,
        10,
      );
      const delay = c.s;
      if (delay === 'flowing') {
        const seen = await requestsByLoadRun();
        await waitFor(
          "the engines' load to reach the mesh",
          async () => Object.entries(await requestsByLoadRun()).some(([run, n]) => n > (seen[run] ?? 0)),
          90_000,
          20,
        );
      } else {
        // The stimulus's moment, not a wait for evidence: the interrupt lands this long after the shift.
        await new Promise((r) => setTimeout(r, delay * 1000));
      }
      child.kill('SIGINT');
      expect({ code: await exited, stderr: stderr() }).toEqual({
        code: 130,
        stderr: expect.stringMatching(/rolling back to v1/),
      });
      expect(readState(await lab.vs())).toMatchObject({
        phase: 'rolledBack',
        cause: 'abort',
        weight: 0,
        rollbackCheck: 'observed',
      });
      // Nothing sends after the run ended: no engine, no record, and the mesh sees no more tagged requests.
      expect(nothingLeft()).toEqual({ records: [], processes: [] });
      const atExit = await requestsByLoadRun();
      const o = await lab.observed(lab.writeSpec('observe', { canary: { steps: [50], window: '30s' } }));
      expect({ candidate: o.candidate, stableSeen: o.stable > 0 }).toEqual({
        candidate: 0,
        stableSeen: true,
      });
      // Another burst later, no request of this release's load runs has arrived since the run ended. (The
      // sandbox keeps the series of its last few load runs only, so earlier tests' runs may be gone.)
      const after = await requestsByLoadRun();
      const released = Object.keys(atExit).filter((k) => !(k in runsBefore));
      expect(released.length).toBeGreaterThan(0);
      expect(Object.fromEntries(released.map((k) => [k, after[k]]))).toEqual(
        Object.fromEntries(released.map((k) => [k, atExit[k]])),
      );
    }, 180_000);
  }
});
