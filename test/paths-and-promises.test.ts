/**
 * Paths and promises that hold from any folder, on the sandbox with the real CLI: the example spec's
 * rollback from the repository root, from `/` and from the spec's own folder; a rollback whose load plan
 * cannot be read any more; `release run --restart` after a rollback left half-way; and an error after a
 * write that says what was written and how to finish, where it used to say "nothing was changed".
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { loadSpec } from '../src/spec/load.js';
import { ReleaseEngine, runLoadStage } from '../src/stages/index.js';
import { readState } from '../src/routers/state.js';
import { REPO, runCli } from './helpers/cli.js';
import { startReleaseLab, type ReleaseLab } from './helpers/release-lab.js';

let lab: ReleaseLab;
const onSandbox = () => ['--platform', 'sandbox', '--state-dir', lab.stateDir];
const routes = async () => {
  const http = (lab.initial.spec!.http as unknown[]).length;
  const vs = await lab.vs();
  const managed = (
    vs.spec!.http as Array<{ route: Array<{ destination: { subset: string }; weight?: number }> }>
  )[http - 1];
  return Object.fromEntries(managed.route.map((r) => [r.destination.subset, r.weight ?? 100]));
};

beforeAll(async () => {
  lab = await startReleaseLab('paths');
}, 60_000);
afterAll(async () => lab?.stop());
beforeEach(async () => lab.reset());

const EXAMPLE = join(REPO, 'examples', 'sdc-canary.yaml');

describe.each([
  ['the repository root', REPO, relative(REPO, EXAMPLE)],
  ['/', '/', relative('/', EXAMPLE)],
  ["the spec's folder", join(REPO, 'examples'), 'sdc-canary.yaml'],
])('traffic rollback of an example spec, run from %s', (_where, cwd, spec) => {
  it("moves traffic back to v1, checks it with the spec's load plan (found beside the spec) and exits 0", async () => {
    const set = await runCli(['traffic', 'set', spec, '--weight', '30', ...onSandbox()], {
      cwd,
      timeoutMs: 90_000,
    });
    expect({ code: set.code, stderr: set.stderr }).toMatchObject({ code: 0 });
    expect(await routes()).toEqual({ v1: 70, v2: 30 });
    const rb = await runCli(['traffic', 'rollback', spec, ...onSandbox(), '-o', 'json'], {
      cwd,
      timeoutMs: 180_000,
    });
    expect({ code: rb.code, stderr: rb.stderr }).toMatchObject({ code: 0 });
    expect(rb.stderr).not.toMatch(/nothing was changed|error/);
    const out = JSON.parse(rb.stdout);
    expect(out).toMatchObject({
      changed: true,
      stable: { version: 'v1', weight: 100 },
      candidate: { version: 'v2', weight: 0 },
      state: { phase: 'rolledBack', cause: 'manual', rollbackCheck: 'observed', rollbackTraffic: 'load' },
    });
    expect(out.message).toMatch(
      /^rolled back: 100% of traffic on v1; verified on observed traffic \(the spec's load\): \d+ requests on v1, none on v2$/,
    );
    expect(await routes()).toEqual({ v1: 100, v2: 0 });
  }, 300_000);
});

describe('a rollback never depends on the load plan being readable', () => {
  it('with the plan gone, the routes go back to v1 and the check is made on live traffic, which the state and output say', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'plan-gone-'));
    try {
      copyFileSync(EXAMPLE, join(dir, 'sdc-canary.yaml'));
      copyFileSync(join(REPO, 'examples', 'sdc-load.yaml'), join(dir, 'sdc-load.yaml'));
      expect(
        (
          await runCli(['traffic', 'set', 'sdc-canary.yaml', '--weight', '30', ...onSandbox()], {
            cwd: dir,
            timeoutMs: 90_000,
          })
        ).code,
      ).toBe(0);
      rmSync(join(dir, 'sdc-load.yaml'));
      // The service's users keep sending requests while the rollback runs: the only traffic it can check with.
      const users = new AbortController();
      const { spec: usersSpec } = loadSpec(
        lab.writeSpec('users', { canary: { steps: [50], window: '1s' } }, { threads: 2 }),
      );
      const live = runLoadStage(lab.sb.platform, usersSpec, { durationS: 600, signal: users.signal }).catch(
        () => undefined,
      );
      let rb;
      try {
        rb = await runCli(
          ['traffic', 'rollback', join(dir, 'sdc-canary.yaml'), ...onSandbox(), '-o', 'json'],
          { cwd: '/', timeoutMs: 120_000 },
        );
      } finally {
        users.abort();
        await live;
      }
      expect({ code: rb.code, stderr: rb.stderr }).toMatchObject({
        code: 0,
        stderr: expect.stringMatching(/warning: .*sdc-canary\.yaml: load\.plan: .*sdc-load\.yaml/),
      });
      expect(rb.stderr).not.toMatch(/nothing was changed|error:/);
      const out = JSON.parse(rb.stdout);
      expect(out.state).toMatchObject({
        phase: 'rolledBack',
        rollbackCheck: 'observed',
        rollbackTraffic: 'live',
        rollbackNote: expect.stringMatching(
          /sdc-load\.yaml.*checked with the traffic the service already had/,
        ),
      });
      expect(out.message).toMatch(
        /verified on observed traffic \(live traffic\): \d+ requests on v1, none on v2 \(the load could not be sent/,
      );
      expect(await routes()).toEqual({ v1: 100, v2: 0 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 300_000);
});

describe('release run --restart after a rollback left half-way', () => {
  it('finishes the rollback, then releases again as asked', async () => {
    const file = lab.writeSpec(
      'restart-after-rollback',
      { canary: { steps: [30], window: '1s' } },
      // The window ends on evidence: on a busy machine it grows until the rule has its samples.
      { rules: [{ errorRate: { max: '1%' } }], gate: { maxWindow: '40s' } },
    );
    // What a rollback killed before it moved the routes leaves: 30% on v2, the state rolling back.
    const engine = new ReleaseEngine(lab.sb.platform, loadSpec(file).spec);
    await engine.setByHand({ weight: 30 });
    await engine.abort('stopped half-way');
    expect(readState(await lab.vs())).toMatchObject({ phase: 'rollingBack', weight: 30 });
    expect(await routes()).toEqual({ v1: 70, v2: 30 });
    const r = await runCli(
      [
        'release',
        'run',
        file,
        '--restart',
        '--auto-approve',
        ...onSandbox(),
        '--evidence-dir',
        lab.evidenceDir,
        '-o',
        'json',
      ],
      { timeoutMs: 180_000 },
    );
    expect({ code: r.code, stderr: r.stderr }).toMatchObject({ code: 0 });
    expect(r.stderr).toMatch(/rolled back \(stopped half-way\): verified on observed traffic/);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ exitCode: 0, resumed: false, state: { phase: 'promoted', weight: 100 } });
    expect(out.state.verdicts.map((v: { step: number; outcome: string }) => [v.step + 1, v.outcome])).toEqual(
      [[1, 'pass']],
    );
    expect(await routes()).toEqual({ v1: 0, v2: 100 });
  }, 300_000);
});

describe('"nothing was changed" only when nothing was', () => {
  it('an action refused after it recorded an approval says what it wrote and how to finish', async () => {
    const file = lab.writeSpec('judged', { canary: { steps: [20, 60], window: '1s', judgmentAt: [20] } });
    // Step 1 analysed and passed: the release waits for approval at step 1.
    const engine = new ReleaseEngine(lab.sb.platform, loadSpec(file).spec);
    await engine.prepare();
    await engine.shift(0);
    await engine.recordVerdict(0, { outcome: 'pass', summary: 'PASS' });
    expect(readState(await lab.vs())).toMatchObject({ phase: 'awaitingJudgment', step: 0 });
    // The pipeline's judgment stage ran: the gate of step 2 records the approval, then finds step 2 not shifted.
    const r = await runCli(['stage', 'gate', '--spec', file, '--step', '2', ...onSandbox()], {
      cwd: '/',
      timeoutMs: 60_000,
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /analyze step 2 cannot run now: release judged is progressing at step 2; its next action is shift step 2/,
    );
    expect(r.stderr).not.toMatch(/nothing was changed/);
    expect(r.stderr).toContain(
      'changed before the error:\n  - VirtualService default/http-lb: v1 80% / v2 20%, release judged progressing at step 2\n',
    );
    expect(r.stderr).toContain(
      `to finish: clover-cd release run ${file} goes on from here; clover-cd release abort ${file} rolls back\n`,
    );
    expect(readState(await lab.vs())).toMatchObject({ phase: 'progressing', step: 1, shifted: false });
  }, 120_000);
});
