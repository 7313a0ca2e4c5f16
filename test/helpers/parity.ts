/**
 * Parity of the engine's hosts (test/parity-*.test.ts). One engine, many hosts: the same release run by `release run`, by the rendered pipeline with webhook
 * stages (the stage server, which admits them as the shipped one does: inline by Orca's mesh identity), with preconfigured webhook stages (resolved through the orca-local.yml text
 * `pipeline orca-config` prints, as Orca does) and with Jenkins stages (`clover-cd stage` actions), each on
 * the local Orca runner, must end the same way — outcome, exit code, recorded verdicts, final routes and observed split —
 * for canary, blue/green and A/B, with a healthy and a faulty candidate.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { existsSync, writeFileSync } from 'node:fs';
import { orcaConfigYaml } from '../../src/cli/pipeline-orca.js';
import { orcaConfig } from '../../src/pipelines/preconfigured.js';
import { loadSpec } from '../../src/spec/load.js';
import { releaseStatus, runRelease } from '../../src/stages/index.js';
import { runPipelineLocally } from '../../src/stages/local-pipeline.js';
import { runCli } from './cli.js';
import { startReleaseLab, type ReleaseLab } from './release-lab.js';

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
    rules: [{ errorRate: { max: '1%' } }, { split: { confidence: 0.999 } }],
  },
  {
    name: 'bluegreen',
    strategy: { blueGreen: { previewWindow: '1s' } },
    rules: [{ errorRate: { max: '1%' } }],
  },
  {
    name: 'ab',
    strategy: { abTest: { match: [{ headers: { 'user-agent': { regex: '.*chrome.*' } } }], window: '1s' } },
    rules: [{ errorRate: { max: '1%' } }],
  },
];
const paths = [
  'release run',
  'pipeline (webhook)',
  'pipeline (preconfigured)',
  'pipeline (jenkins)',
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
        : { stageServer: { ...SPINNAKER.stageServer, meshAuth: { principal: ORCA_PRINCIPAL } } };
  const file = lab.writeSpec(name, strategy, { rules, spinnaker: { ...SPINNAKER, ...runner } });
  const { spec, dir } = loadSpec(file);
  let exitCode: number;
  if (path === 'release run') {
    exitCode = (
      await runRelease(lab.sb.platform, spec, {
        baseDir: dir,
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

/** One strategy's parity suite (a file per strategy, so they spread over Jest's workers). */
export function parityScenario(name: (typeof PARITY_SCENARIOS)[number]['name']): void {
  beforeAll(async () => {
    lab = await startReleaseLab(`parity-${name}`);
  }, 60_000);
  afterAll(async () => lab?.stop());
  beforeEach(async () => lab.reset());
  describe(`every host of the engine ends a ${name} release the same way`, () => {
    for (const s of PARITY_SCENARIOS.filter((x) => x.name === name)) {
      for (const healthy of [true, false]) {
        it(`${s.name}, ${healthy ? 'healthy' : 'faulty'} candidate`, async () => {
          const endings: Ending[] = [];
          for (const path of paths) {
            await lab.reset();
            if (!healthy) await lab.sb.setFault('http-lb', 'v2', { errorRate: 0.3 });
            endings.push(
              await runOn(path, `parity-${s.name}-${healthy ? 'ok' : 'bad'}`, s.strategy, s.rules),
            );
          }
          const [cli, webhook, preconfigured, jenkins] = endings;
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
          expect({ path: 'pipeline (webhook)', ...webhook }).toEqual({ path: 'pipeline (webhook)', ...cli });
          expect({ path: 'pipeline (preconfigured)', ...preconfigured }).toEqual({
            path: 'pipeline (preconfigured)',
            ...cli,
          });
          expect({ path: 'pipeline (jenkins)', ...jenkins }).toEqual({ path: 'pipeline (jenkins)', ...cli });
        }, 180_000);
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
