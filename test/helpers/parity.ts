/**
 * Parity of the engine's hosts (test/parity-*.test.ts). One engine, many hosts: the same release run by `release run`, by the rendered pipeline with webhook
 * stages (the stage server, which admits them as the shipped one does: inline by Orca's mesh identity), with
 * preconfigured webhook stages (resolved through the orca-local.yml text `pipeline orca-config` prints, as Orca
 * does), with Jenkins stages (`clover-cd stage` actions) and with Run Job stages (each a `clover-cd stage`
 * process in an empty folder of its own), each on the local Orca runner, must end the same way — outcome, exit
 * code, recorded verdicts, final routes and observed split — for canary, blue/green and A/B, with a healthy and
 * a faulty candidate. On another mesh than Istio, three of the hosts run (see PATHS_ON).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { statusForExitCode, type Mesh } from '../../src/contract/index.js';
import type { ExecuteOptions } from '../../src/pipelines/local-run/index.js';
import { orcaConfigYaml } from '../../src/cli/pipeline-orca.js';
import { orcaConfig } from '../../src/pipelines/preconfigured.js';
import { readState, STATE_ANNOTATION } from '../../src/routers/state.js';
import { loadSpec } from '../../src/spec/load.js';
import { releaseStatus, runRelease } from '../../src/stages/index.js';
import { runPipelineLocally } from '../../src/server/local-pipeline.js';
import { BIN, runCli } from './cli.js';
import { startReleaseLab, type ReleaseLab } from './release-lab.js';
import { SPLIT_RULE_OF_OTHER_TESTS } from './rules.js';

let lab: ReleaseLab;

const SPINNAKER = { account: 'k8s-sdc', stageServer: { url: 'http://clover-cd.clover-system:8080' } };
// How the shipped server (deploy/clover-cd) knows each kind of caller: preconfigured stages send the secret header
// (a reference in orca-local.yml), inline stages come through the mesh as Orca (overlays/mesh-auth).
const SECRET_REFERENCE = 'encrypted:k8s!n:clover-cd!k:authorization';
const ORCA_PRINCIPAL = 'spiffe://cluster.local/ns/spinnaker/sa/spin-orca';
export const PARITY_SCENARIOS = [
  {
    name: 'canary',
    strategy: { canary: { steps: [25, 60], window: '1s' } },
    rules: [{ errorRate: { max: '5%' } }, SPLIT_RULE_OF_OTHER_TESTS],
  },
  {
    name: 'bluegreen',
    strategy: { blueGreen: { previewWindow: '1s' } },
    rules: [{ errorRate: { max: '5%' } }],
  },
  {
    name: 'ab',
    strategy: { abTest: { match: [{ headers: { 'user-agent': { regex: '.*chrome.*' } } }], window: '1s' } },
    rules: [{ errorRate: { max: '5%' } }],
  },
];
const paths = [
  'release run',
  'pipeline (webhook)',
  'pipeline (preconfigured)',
  'pipeline (jenkins)',
  'pipeline (run job, one process per stage)',
] as const;

interface Ending {
  exitCode: number;
  phase?: string;
  cause?: string;
  verdicts: Array<[number, string]>;
  routes: { stable: number; candidate: number; matchRoute: boolean };
  observed: 'all stable' | 'all candidate' | 'mixed';
}

async function runOn(
  path: (typeof paths)[number],
  name: string,
  strategy: Record<string, unknown>,
  rules: unknown[],
): Promise<Ending> {
  const runner =
    path === 'pipeline (jenkins)'
      ? { runner: 'jenkins', jenkins: { master: 'ci', job: 'clover-cd-stage' } }
      : path === 'pipeline (preconfigured)'
        ? {
            stages: 'preconfigured',
            stageServer: { ...SPINNAKER.stageServer, auth: { spinnaker: SECRET_REFERENCE } },
          }
        : path === 'pipeline (run job, one process per stage)'
          ? RUN_JOB
          : { stageServer: { ...SPINNAKER.stageServer, meshAuth: { principal: ORCA_PRINCIPAL } } };
  // Windows end on evidence: on a machine busy with other work a window grows (up to maxWindow) until the rules
  // have their samples, so every path is judged on enough requests rather than on how busy the machine was.
  const file = lab.writeSpec(name, strategy, {
    rules,
    gate: { maxWindow: '40s' },
    spinnaker: { ...SPINNAKER, ...runner },
  });
  const { spec } = loadSpec(file);
  let exitCode: number;
  if (path === 'release run') {
    exitCode = (
      await runRelease(lab.sb.platform, spec, {
        autoApprove: true,
        evidenceDir: lab.evidenceDir,
      })
    ).exitCode;
  } else {
    // The preconfigured stage types come from the orca-local.yml text `clover-cd pipeline orca-config` prints.
    let orca: string | undefined;
    if (path === 'pipeline (preconfigured)')
      writeFileSync((orca = `${file}.orca-local.yml`), orcaConfigYaml(orcaConfig([spec]).config));
    const r = await runPipelineLocally({
      file,
      orcaConfig: orca,
      platform: lab.sb.platform,
      autoApprove: true,
      evidenceDir: lab.evidenceDir,
      pollIntervalMs: 100,
      ...(path === 'pipeline (run job, one process per stage)' ? { runAction: runJobAsItsPod(lab) } : {}),
    });
    exitCode = r.exitCode;
  }
  // However the release ran, `release status` reads what it recorded.
  const status = await releaseStatus(lab.sb.platform, spec);
  const o = await lab.observed(file);
  return {
    exitCode,
    phase: status.state?.phase,
    cause: status.state?.cause,
    verdicts: (status.state?.verdicts ?? []).map((v) => [v.step + 1, v.outcome]),
    routes: {
      stable: status.routes.stableWeight,
      candidate: status.routes.weight,
      matchRoute: status.routes.matchRoute,
    },
    observed:
      o.candidate === 0 && o.stable > 0
        ? 'all stable'
        : o.stable === 0 && o.candidate > 0
          ? 'all candidate'
          : 'mixed',
  };
}

/** Files a Run Job stage left in its working directory: none (a pod's folder is gone with the pod). */
const leftInWorkingDirectory: string[] = [];
/** Run Job stages that ended in an error rather than a verdict: none. */
const runJobErrors: string[] = [];

interface WindowSeen {
  start: number;
  end: number;
  loadRunId?: string;
}
/** Per gate stage: the window its pod judged first, and the window the load stage's pod recorded before it. */
const gateWindows: Array<{ step?: number; judged?: WindowSeen; loaded?: WindowSeen }> = [];
let loadedWindow: WindowSeen | undefined;
/** The largest release state annotation seen with a window in it (annotations hold 256 KiB in all). */
let largestState = 0;

const RUN_JOB = {
  runner: 'runJob',
  runJob: { image: 'ghcr.io/clover-cd/clover-cd:0.1.0', namespace: 'clover-system' },
};

/**
 * The Run Job path: each rendered runJobManifest stage runs as its pod would — the container's command line
 * and environment as written, one `clover-cd stage` process per stage, each in an empty working directory
 * of its own, reaching only the cluster (the sandbox, through a connection file of its own, as a pod has
 * its service account). Whatever one stage leaves for the next (the load window the gate judges) must
 * travel with the release state: nothing else is shared.
 */
function runJobAsItsPod(l: ReleaseLab): NonNullable<ExecuteOptions['runAction']> {
  return async (req, signal) => {
    if (!req.command) throw new Error(`stage ${req.action}: not a Run Job (no container command)`);
    const argv = req.command.argv[0] === 'clover-cd' ? req.command.argv.slice(1) : req.command.argv;
    const cwd = mkdtempSync(join(tmpdir(), `runjob-${req.action}-`));
    const cluster = mkdtempSync(join(tmpdir(), `runjob-cluster-`));
    copyFileSync(join(l.stateDir, 'sandbox.json'), join(cluster, 'sandbox.json'));
    try {
      const child = spawn(process.execPath, [BIN, ...argv, '--platform', 'sandbox'], {
        cwd,
        env: { ...process.env, NODE_OPTIONS: '', ...req.command.env, CLOVER_CD_STATE_DIR: cluster },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      // Spinnaker cancels a Run Job by deleting its pod: SIGTERM.
      const onAbort = () => child.kill('SIGTERM');
      signal.addEventListener('abort', onAbort, { once: true });
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      signal.removeEventListener('abort', onAbort);
      // What Orca reads from the pod's log: SPINNAKER_PROPERTY_<KEY>=value lines.
      const properties = Object.fromEntries(
        [...stdout.matchAll(/^SPINNAKER_PROPERTY_([A-Z0-9_]+)=(.*)$/gm)].map((m) => [m[1], m[2]]),
      );
      for (const f of readdirSync(cwd)) leftInWorkingDirectory.push(`${req.action}: ${f}`);
      // A pod that ended in error (not a verdict): its log, for the report of a failing scenario.
      if (code !== 0 && code !== 1 && code !== 3)
        runJobErrors.push(`${req.action} exit ${code}: ${stderr.trim().split('\n').slice(-6).join(' | ')}`);
      if (req.action === 'load') {
        const vs = await l.vs();
        const w = readState(vs)?.window;
        loadedWindow = w && { start: w.start, end: w.end, loadRunId: w.loadRunId };
        largestState = Math.max(largestState, vs.metadata.annotations?.[STATE_ANNOTATION]?.length ?? 0);
      }
      if (req.action === 'gate')
        gateWindows.push({
          step: req.step,
          judged: firstJudgedWindow(join(cluster, 'evidence')),
          loaded: loadedWindow,
        });
      const status = code === 0 ? 'SUCCEEDED' : (properties.CLOVER_CD_STATUS ?? statusForExitCode(code ?? 4));
      return {
        status,
        message: properties.CLOVER_CD_SUMMARY ?? stderr.trim().split('\n').pop() ?? '',
        properties,
      };
    } finally {
      rmSync(cwd, { recursive: true, force: true });
      rmSync(cluster, { recursive: true, force: true });
    }
  };
}

/** The window of the first evidence bundle a gate pod wrote (a retry after an inconclusive verdict runs its own). */
function firstJudgedWindow(dir: string): WindowSeen | undefined {
  if (!existsSync(dir)) return undefined;
  const bundles = readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map(
      (f) =>
        JSON.parse(readFileSync(join(dir, f), 'utf8')) as {
          createdAt: string;
          window: { start: number; end: number };
          evidence: { load?: { runId?: string } };
        },
    )
    .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  const b = bundles[0];
  return b && { start: b.window.start, end: b.window.end, loadRunId: b.evidence.load?.runId };
}

/**
 * The hosts a mesh's parity suite runs. How a host reaches the engine does not depend on the mesh (the engine
 * reads service.mesh from the spec; the rendered pipeline is the same), so every host runs on Istio, and on another
 * mesh the in-process run, the stage server and one process per stage: each a different place where the spec is
 * read and the router built. That is the same for every strategy, so another mesh runs the canary only; its router's
 * blue/green and A/B writes are test/gateway-api.test.ts's.
 */
const PATHS_ON: Record<Mesh, ReadonlyArray<(typeof paths)[number]>> = {
  istio: paths,
  'gateway-api': ['release run', 'pipeline (webhook)', 'pipeline (run job, one process per stage)'],
};

/** One strategy's parity suite on a mesh (a file per strategy and mesh, so they spread over Jest's workers). */
export function parityScenario(name: (typeof PARITY_SCENARIOS)[number]['name'], mesh: Mesh = 'istio'): void {
  beforeAll(async () => {
    lab = await startReleaseLab(`parity-${name}-${mesh}`, mesh);
  }, 60_000);
  afterAll(async () => lab?.stop());
  beforeEach(async () => lab.reset());
  const hosts = PATHS_ON[mesh];
  describe(`every host of the engine ends a ${name} release the same way on ${mesh}`, () => {
    for (const s of PARITY_SCENARIOS.filter((x) => x.name === name)) {
      for (const healthy of [true, false]) {
        it(`${s.name}, ${healthy ? 'healthy' : 'faulty'} candidate (${hosts.join(', ')})`, async () => {
          const endings: Array<Ending & { path: string }> = [];
          gateWindows.length = 0;
          leftInWorkingDirectory.length = 0;
          runJobErrors.length = 0;
          for (const path of hosts) {
            await lab.reset();
            if (!healthy) await lab.sb.setFault('http-lb', 'v2', { errorRate: 0.3 });
            endings.push({
              path,
              ...(await runOn(path, `parity-${s.name}-${healthy ? 'ok' : 'bad'}`, s.strategy, s.rules)),
            });
          }
          const [cli, ...others] = endings;
          expect(cli).toMatchObject(
            healthy
              ? {
                  exitCode: 0,
                  phase: 'promoted',
                  routes: { stable: 0, candidate: 100, matchRoute: false },
                  observed: 'all candidate',
                }
              : {
                  exitCode: 1,
                  phase: 'rolledBack',
                  cause: 'fail',
                  routes: { stable: 100, candidate: 0, matchRoute: false },
                  observed: 'all stable',
                },
          );
          expect(cli.verdicts.length).toBeGreaterThan(0);
          expect(cli.verdicts.every(([, o]) => o === 'pass')).toBe(healthy);
          expect(leftInWorkingDirectory).toEqual([]);
          expect(runJobErrors).toEqual([]);
          // Each gate pod judged exactly the window (and load run) the load pod before it ran, not one of its own.
          expect(gateWindows.length).toBeGreaterThan(0);
          for (const g of gateWindows) expect(g.judged).toEqual(g.loaded);
          expect(largestState).toBeLessThan(64 * 1024);
          for (const other of others) expect(other).toEqual({ ...cli, path: other.path });
        }, 600_000);
      }
    }
  });
}

/**
 * Inline webhook stages against a server that checks callers as the shipped one does: a spec that does not say how
 * the server knows Orca is refused at render (exit 2, before anything is written), and a stage the server refuses
 * (401: an orca-local.yml without the secret header) ends its task TERMINAL, the rollback too, and the run exits 4
 * with the routes untouched.
 */
export function stageServerAuthParity(): void {
  beforeAll(async () => {
    lab = await startReleaseLab('parity-auth');
  }, 60_000);
  afterAll(async () => lab?.stop());
  const strategy = { canary: { steps: [50], window: '1s' } };

  it('an inline-webhook spec without spinnaker.stageServer.meshAuth is refused at render: exit 2 naming the field, no file written', async () => {
    const file = lab.writeSpec('auth-inline', strategy, { spinnaker: SPINNAKER });
    const out = `${file}.json`;
    const r = await runCli(['pipeline', 'render', file, '-o', out]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('spinnaker.stageServer.meshAuth');
    expect(existsSync(out)).toBe(false);
    await expect(runPipelineLocally({ file, platform: lab.sb.platform, autoApprove: true })).rejects.toThrow(
      /refuses a call without credentials/,
    );
  });

  it('a 401 from the stage server ends the task TERMINAL, as in Orca: the rollback is refused too, execution TERMINAL, exit 4', async () => {
    const file = lab.writeSpec('auth-401', strategy, {
      spinnaker: {
        ...SPINNAKER,
        stages: 'preconfigured',
        stageServer: { ...SPINNAKER.stageServer, auth: { spinnaker: SECRET_REFERENCE } },
      },
    });
    const { config } = orcaConfig([loadSpec(file).spec]);
    for (const hook of config.webhook.preconfigured)
      delete (hook.customHeaders as Record<string, unknown>).Authorization;
    const orca = `${file}.orca-local.yml`;
    writeFileSync(orca, orcaConfigYaml(config));
    const r = await runPipelineLocally({
      file,
      orcaConfig: orca,
      platform: lab.sb.platform,
      autoApprove: true,
      evidenceDir: lab.evidenceDir,
      pollIntervalMs: 100,
    });
    const byName = Object.fromEntries(r.execution.stages.map((s) => [s.name, s]));
    const first = byName['Prepare routes for v2'];
    expect(first.status).toBe('FAILED_CONTINUE');
    expect(first.message).toMatch(/^task TERMINAL: create call answered 401/);
    expect((first.context.webhook as { statusCodeValue: number }).statusCodeValue).toBe(401);
    expect(byName['Roll back to v1']).toMatchObject({
      status: 'TERMINAL',
      message: expect.stringMatching(/create call answered 401/),
    });
    expect(r.execution.status).toBe('TERMINAL');
    expect(r.exitCode).toBe(4);
    const status = await releaseStatus(lab.sb.platform, loadSpec(file).spec);
    expect(status.routes).toMatchObject({ weight: 0, matchRoute: false });
  }, 120_000);
}
