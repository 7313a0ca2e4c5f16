/**
 * Parity of the engine's hosts (test/parity-*.test.ts). One engine, many hosts: the same release run by `release run`, by the rendered pipeline with webhook
 * stages (the stage server), with preconfigured webhook stages (resolved through the orca-local.yml text
 * `pipeline orca-config` prints, as Orca does) and with Jenkins stages (`clover-cd stage` actions), each on
 * the local Orca runner, must end the same way — outcome, exit code, recorded verdicts, final routes and observed split —
 * for canary, blue/green and A/B, with a healthy and a faulty candidate.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { writeFileSync } from 'node:fs';
import { orcaConfigYaml } from '../../src/cli/pipeline-orca.js';
import { orcaConfig } from '../../src/pipelines/preconfigured.js';
import { loadSpec } from '../../src/spec/load.js';
import { releaseStatus, runRelease } from '../../src/stages/index.js';
import { runPipelineLocally } from '../../src/stages/local-pipeline.js';
import { startReleaseLab, type ReleaseLab } from './release-lab.js';

let lab: ReleaseLab;

const SPINNAKER = { account: 'k8s-sdc', stageServer: { url: 'http://clover-cd.clover-system:8080' } };
export const PARITY_SCENARIOS = [
  {
    name: 'canary',
    strategy: { canary: { steps: [25, 60], window: '1s' } },
    rules: [{ errorRate: { max: '5%' } }, { split: { confidence: 0.999 } }],
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
        ? { stages: 'preconfigured' }
        : {};
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
