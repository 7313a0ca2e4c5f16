/**
 * End to end on the sandbox with real processes: the mesh, its telemetry and the load run for real; the
 * CLI is the real binary where a person would use it (SIGKILL and resume).
 */
import { describe, it, expect, beforeAll, afterAll, beforeEach } from '@jest/globals';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Sandbox } from '../src/sandbox/index.js';
import { runRelease, type ReleaseProgress } from '../src/stages/index.js';
import { startReleaseLab, type ReleaseLab } from './helpers/release-lab.js';
import { loadSpec } from '../src/spec/load.js';
import { readState, STATE_ANNOTATION } from '../src/routers/state.js';
import { matchRouteName, LEGACY_ORIGINAL_ROUTES } from '../src/routers/istio/routes.js';
import type { KubeObject } from '../src/services/platform.js';
import { BIN, REPO, runCli } from './helpers/cli.js';
import { waitFor } from './helpers/ports.js';

let lab: ReleaseLab;
let sb: Sandbox;
let dir: string;
let initial: KubeObject;

function writeSpec(name: string, strategy: Record<string, unknown>, rules?: unknown[]): string {
  return lab.writeSpec(name, strategy, { rules });
}

async function release(file: string, events: ReleaseProgress[] = []) {
  const l = loadSpec(file);
  return runRelease(sb.platform, l.spec, {
    autoApprove: true,
    evidenceDir: join(dir, 'evidence'),
    onEvent: (e) => events.push(e),
  });
}

const observed = (file: string) => lab.observed(file);
const vs = () => lab.vs();

beforeAll(async () => {
  lab = await startReleaseLab('release-e2e');
  ({ sb, dir, initial } = lab);
}, 60_000);

afterAll(async () => lab?.stop());

beforeEach(async () => lab.reset());

describe('canary on the sandbox', () => {
  it('promotes a healthy candidate step by step to 100%, verifying the observed split at each step', async () => {
    const file = writeSpec('canary-ok', { canary: { steps: [20, 60], window: '1s' } });
    const events: ReleaseProgress[] = [];
    const r = await release(file, events);
    expect(r.exitCode).toBe(0);
    expect(r.state.phase).toBe('promoted');
    expect(events.filter((e) => e.type === 'shift').map((e) => (e as { weight: number }).weight)).toEqual([
      20, 60,
    ]);
    const splits = events.filter((e): e is Extract<ReleaseProgress, { type: 'split' }> => e.type === 'split');
    expect(splits.map((s) => [s.weight, s.outcome])).toEqual([
      [20, 'pass'],
      [60, 'pass'],
    ]);
    expect(splits[0].candidate).toBeGreaterThan(0);
    const after = await vs();
    expect(after.metadata.annotations?.[LEGACY_ORIGINAL_ROUTES]).toBeUndefined();
    const o = await observed(file);
    expect(o.stable).toBe(0);
    expect(o.candidate).toBeGreaterThan(0);
    // Running the same command again changes nothing and says it is done.
    const again = await release(file);
    expect(again).toMatchObject({ exitCode: 0, resumed: false });
    expect(again.message).toMatch(/already promoted/);
  });

  it('rolls back a candidate answering 20% errors at the first step: exit 1, observed traffic 100% stable', async () => {
    await sb.setFault('http-lb', 'v2', { errorRate: 0.2 });
    const file = writeSpec('canary-bad', { canary: { steps: [25, 60], window: '1s' } });
    const events: ReleaseProgress[] = [];
    const r = await release(file, events);
    expect(r.exitCode).toBe(1);
    expect(r.state).toMatchObject({ phase: 'rolledBack', cause: 'fail', step: 0 });
    expect(r.state.lastVerdict?.summary).toMatch(/errorRate/);
    expect(events.filter((e) => e.type === 'shift')).toHaveLength(1);
    const rb = events.find(
      (e): e is Extract<ReleaseProgress, { type: 'rollback' }> => e.type === 'rollback',
    )!;
    expect(rb.observed!.candidate).toBe(0);
    expect(rb.observed!.stable).toBeGreaterThan(0);
    expect((await vs()).spec).toEqual(initial.spec);
    const o = await observed(file);
    expect(o).toMatchObject({ candidate: 0 });
    expect(o.stable).toBeGreaterThan(0);
  });
});

describe('blue/green and A/B on the sandbox', () => {
  it('blue/green previews behind the match route, switches 0 → 100 and promotes', async () => {
    const file = writeSpec('bg-ok', { blueGreen: { previewWindow: '1s', judgment: true } }, [
      { errorRate: { max: '5%' } },
    ]);
    const events: ReleaseProgress[] = [];
    const r = await release(file, events);
    expect(r.exitCode).toBe(0);
    expect(events.filter((e) => e.type === 'shift').map((e) => (e as { weight: number }).weight)).toEqual([
      0, 100,
    ]);
    expect(events.some((e) => e.type === 'judgment')).toBe(true);
    const http = (await vs()).spec!.http as Array<{ name?: string }>;
    expect(http.map((h) => h.name)).not.toContain(matchRouteName('bg-ok'));
    expect((await observed(file)).stable).toBe(0);
  });

  it('blue/green with a failing candidate switches back to 100% stable (exit 1)', async () => {
    await sb.setFault('http-lb', 'v2', { errorRate: 0.2 });
    const file = writeSpec('bg-bad', { blueGreen: { previewWindow: '1s' } }, [{ errorRate: { max: '5%' } }]);
    const r = await release(file);
    expect(r.exitCode).toBe(1);
    expect((await vs()).spec).toEqual(initial.spec);
    expect((await observed(file)).candidate).toBe(0);
  });

  it('A/B sends the matching user agent to the candidate, then promotes and removes the match route', async () => {
    const file = writeSpec(
      'ab-ok',
      { abTest: { match: [{ headers: { 'user-agent': { regex: '.*chrome.*' } } }], window: '1s' } },
      [{ errorRate: { max: '5%' } }],
    );
    const events: ReleaseProgress[] = [];
    const l = loadSpec(file);
    const p = runRelease(sb.platform, l.spec, {
      autoApprove: true,
      evidenceDir: join(dir, 'evidence'),
      onEvent: (e) => events.push(e),
    });
    // While the window runs, the match route is in place and first.
    await waitFor(
      'the A/B match route',
      async () => ((await vs()).spec!.http as Array<{ name?: string }>)[0]?.name === matchRouteName('ab-ok'),
      10_000,
    );
    const r = await p;
    expect(r.exitCode).toBe(0);
    const http = (await vs()).spec!.http as Array<{ name?: string }>;
    expect(http.map((h) => h.name)).not.toContain(matchRouteName('ab-ok'));
    expect((await observed(file)).stable).toBe(0);
  });
});

describe('waiting for approval (CI without a terminal)', () => {
  it('stops with exit 3 and CLOVER_CD_PHASE=awaitingJudgment in --properties; --approve <step> goes on to promotion', async () => {
    const file = writeSpec('bg-wait', { blueGreen: { previewWindow: '1s', judgment: true } }, [
      { errorRate: { max: '5%' } },
    ]);
    const props = join(dir, 'bg-wait.properties');
    const args = [
      'release',
      'run',
      file,
      '--platform',
      'sandbox',
      '--state-dir',
      join(dir, 'state'),
      '--evidence-dir',
      join(dir, 'evidence'),
      '--properties',
      props,
    ];
    const first = await runCli(args, { timeoutMs: 60_000 });
    expect(first.code).toBe(3);
    const waiting = readFileSync(props, 'utf8');
    expect(waiting).toContain('CLOVER_CD_PHASE=awaitingJudgment');
    expect(waiting).toContain('CLOVER_CD_STEP=1');
    expect(waiting).toContain('CLOVER_CD_EXIT_CODE=3');
    let step = '1';
    let r = first;
    for (let i = 0; i < 3 && r.code === 3; i++) {
      r = await runCli([...args, '--approve', step], { timeoutMs: 60_000 });
      step = /CLOVER_CD_STEP=(\d+)/.exec(readFileSync(props, 'utf8'))![1];
    }
    expect(r.code).toBe(0);
    expect(readFileSync(props, 'utf8')).toContain('CLOVER_CD_PHASE=promoted');
  }, 120_000);
});

describe('crash safety', () => {
  it('a release killed with SIGKILL between steps resumes when the same command runs again', async () => {
    const file = writeSpec('canary-kill', { canary: { steps: [20, 60], window: '3s' } });
    const args = [
      'release',
      file,
      '--platform',
      'sandbox',
      '--state-dir',
      join(dir, 'state'),
      '--auto-approve',
      '--evidence-dir',
      join(dir, 'evidence'),
    ];
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: REPO,
      env: { ...process.env, NODE_OPTIONS: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((r) => child.on('close', (code, sig) => r(sig ? -1 : code)));
    // Between steps: step 1 passed, step 2 not analysed yet.
    await waitFor(
      'step 1 to pass',
      async () => {
        const s = readState(await vs());
        return s?.release === 'canary-kill' && s.step === 1;
      },
      30_000,
      20,
    );
    child.kill('SIGKILL');
    expect(await exited).toBe(-1);
    const mid = readState(await vs())!;
    expect(mid.phase).toBe('progressing');
    expect((await vs()).metadata.annotations?.[STATE_ANNOTATION]).toBeDefined();
    const r = await runCli([...args, '-o', 'json'], { timeoutMs: 60_000 });
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ resumed: true, state: { phase: 'promoted' } });
    expect(r.stderr).toMatch(/resuming at progressing, step 2/);
    expect(stderr).toMatch(/step 1\/2 \(weight 20%\): traffic shifted to 20%/);
  }, 90_000);

  it('a release killed during its rollback finishes the rollback when run again', async () => {
    await sb.setFault('http-lb', 'v2', { errorRate: 0.3 });
    const file = writeSpec('canary-kill-rb', { canary: { steps: [30], window: '3s' } });
    const args = [
      'release',
      file,
      '--platform',
      'sandbox',
      '--state-dir',
      join(dir, 'state'),
      '--auto-approve',
      '--evidence-dir',
      join(dir, 'evidence'),
    ];
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: REPO,
      env: { ...process.env, NODE_OPTIONS: '' },
      stdio: 'ignore',
    });
    const exited = new Promise<void>((r) => child.on('close', () => r()));
    await waitFor(
      'the rollback to start',
      async () => readState(await vs())?.phase === 'rollingBack',
      120_000,
      10,
    );
    child.kill('SIGKILL');
    await exited;
    const r = await runCli([...args, '-o', 'json'], { timeoutMs: 60_000 });
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).state).toMatchObject({ phase: 'rolledBack', cause: 'fail' });
    expect((await vs()).spec).toEqual(initial.spec);
    expect((await observed(file)).candidate).toBe(0);
  }, 240_000);
});
