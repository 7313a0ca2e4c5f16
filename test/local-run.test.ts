import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as yaml from 'js-yaml';
import {
  evaluateCondition,
  executePipeline,
  resolveExpressions,
  type RunEvent,
} from '../src/pipelines/local-run/index.js';
import { runPipelineLocally } from '../src/server/local-pipeline.js';
import { loadSpec } from '../src/spec/load.js';
import { readRenderInput } from '../src/pipelines/inputs.js';
import { renderPipeline } from '../src/pipelines/render.js';
import { runCli } from './helpers/cli.js';
import { startSandbox, type Sandbox } from '../src/sandbox/index.js';
import { withQuietSplit } from './helpers/rules.js';

/**
 * Rendered pipelines executed locally against the sandbox: canary, blue/green and A/B reach their
 * expected ends; a faulty candidate is rolled back; Orca's graph rules hold for synthetic pipelines.
 */
// Whole pipelines on a fresh sandbox each: bounded generously, since a shared machine may run them slowly.
jest.setTimeout(180_000);
const dir = mkdtempSync(join(tmpdir(), 'local-run-'));
/** The example spec with short windows and the builtin engine, so each run takes seconds. */
function quickSpec(example: string, edit: (doc: Record<string, any>) => void = () => {}): string {
  const doc = yaml.load(readFileSync(`examples/${example}.yaml`, 'utf8')) as Record<string, any>;
  const s = doc.strategy;
  if (s.canary) s.canary.window = '1s';
  if (s.blueGreen) s.blueGreen.previewWindow = '1s';
  if (s.abTest) s.abTest.window = '1s';
  doc.load = { ...doc.load, plan: resolve('examples', doc.load.plan), engine: 'builtin' };
  doc.gate.minSamples = 20;
  // The examples' 1% error limit needs ~450 clean candidate requests to pass, 5% about 100: these tests are about
  // the pipeline's flow, so each window needs a fraction of the example's load.
  doc.gate.rules = withQuietSplit<Record<string, any>>(doc.gate.rules).map((r) =>
    r.errorRate ? { errorRate: { ...r.errorRate, max: '5%' } } : r,
  );
  // A window grows until its evidence is there: on a loaded machine the load engine sends fewer requests a
  // second, so the bound is one a loaded sandbox still reaches (273 of 925 planned requests in 18.5 s at load 11).
  doc.gate.maxWindow = '60s';
  edit(doc);
  const file = join(dir, `${example}-${doc.metadata.name}.yaml`);
  writeFileSync(file, yaml.dump(doc));
  return file;
}

const weightOfV2 = async (sb: Sandbox) => {
  const vs = await sb.platform.get({
    apiVersion: 'networking.istio.io/v1beta1',
    kind: 'VirtualService',
    namespace: 'default',
    name: 'http-lb',
  });
  const routes = ((vs!.spec!.http as any[]).at(-1).route ?? []) as Array<{
    destination: { subset: string };
    weight?: number;
  }>;
  const v2 = routes.find((r) => r.destination.subset === 'v2');
  return v2 ? (v2.weight ?? 100) : 0;
};

describe('rendered pipelines on the sandbox', () => {
  let sb: Sandbox;
  beforeAll(async () => {
    sb = await startSandbox();
  });
  afterAll(async () => sb?.stop());
  const run = (file: string) =>
    runPipelineLocally({
      file,
      platform: sb.platform,
      autoApprove: true,
      evidenceDir: join(dir, 'evidence'),
      pollIntervalMs: 100,
    });

  it('canary: every step passes its gate and v2 is promoted', async () => {
    const r = await run(quickSpec('sdc-canary'));
    const status = Object.fromEntries(r.execution.stages.map((s) => [s.name, s.status]));
    expect(r.execution.status).toBe('SUCCEEDED');
    expect(r.exitCode).toBe(0);
    expect(status).toMatchObject({
      'Shift 10% to v2': 'SUCCEEDED',
      'Gate at 10%': 'SUCCEEDED',
      'Gate at 50%': 'SUCCEEDED',
      'Promote v2': 'SUCCEEDED',
      'Roll back to v1': 'SKIPPED',
      'Release verdict': 'SUCCEEDED',
    });
    expect(r.jobs.find((j) => j.stage === 'Gate at 50%')).toMatchObject({
      status: 'SUCCEEDED',
      verdict: { outcome: 'pass' },
    });
    expect(await weightOfV2(sb)).toBe(100);
  });

  it('canary with a faulty v2: the gate fails, the pipeline rolls back and ends TERMINAL (exit 1)', async () => {
    const fresh = await startSandbox();
    try {
      await fresh.setFault('http-lb', 'v2', { errorRate: 0.5 });
      const r = await runPipelineLocally({
        file: quickSpec('sdc-canary'),
        platform: fresh.platform,
        autoApprove: true,
        evidenceDir: join(dir, 'evidence'),
        pollIntervalMs: 100,
      });
      const status = Object.fromEntries(r.execution.stages.map((s) => [s.name, s.status]));
      expect(status).toMatchObject({
        'Gate at 10%': 'FAILED_CONTINUE',
        'Shift 50% to v2': 'SKIPPED',
        'Promote v2': 'SKIPPED',
        'Roll back to v1': 'SUCCEEDED',
        'Release verdict': 'TERMINAL',
      });
      expect(r.execution.status).toBe('TERMINAL');
      expect(r.exitCode).toBe(1);
      expect(r.jobs.find((j) => j.stage === 'Gate at 10%')?.verdict?.outcome).toBe('fail');
      expect(await weightOfV2(fresh)).toBe(0);
    } finally {
      await fresh.stop();
    }
  });

  const promotedThroughCi = async (example: string, edit?: (doc: Record<string, any>) => void) => {
    const fresh = await startSandbox();
    try {
      const r = await runPipelineLocally({
        file: quickSpec(example, edit),
        platform: fresh.platform,
        autoApprove: true,
        evidenceDir: join(dir, 'evidence'),
        pollIntervalMs: 100,
      });
      expect(r.execution.stages.filter((s) => s.status === 'TERMINAL')).toEqual([]);
      expect(r.execution.status).toBe('SUCCEEDED');
      expect(r.exitCode).toBe(0);
      expect(await weightOfV2(fresh)).toBe(100);
      return r;
    } finally {
      await fresh.stop();
    }
  };

  it('A/B (runJob runner): matching requests go to v2, the gate passes, v2 promoted', async () => {
    const r = await promotedThroughCi('sdc-ab');
    const job = r.execution.stages.find((s) => s.name === 'Gate A/B')!;
    expect(job.type).toBe('runJobManifest');
    expect(job.outputs).toMatchObject({
      CLOVER_CD_ACTION: 'gate',
      CLOVER_CD_STATUS: 'SUCCEEDED',
      CLOVER_CD_VERDICT: 'pass',
      CLOVER_CD_EXIT_CODE: '0',
    });
  });

  it('canary with a mirror phase: the mirror is set, the gate judges the mirrored copies, the shifts follow, v2 promoted', async () => {
    const r = await promotedThroughCi('sdc-canary', (doc) => {
      doc.metadata.name = 'http-lb-mirror';
      doc.strategy.mirror = { percentage: '100%', window: '1s' };
    });
    const status = Object.fromEntries(r.execution.stages.map((s) => [s.name, s.status]));
    expect(status).toMatchObject({
      'Mirror 100% to v2': 'SUCCEEDED',
      'Gate of mirrored copies on v2': 'SUCCEEDED',
      'Shift 10% to v2': 'SUCCEEDED',
      'Promote v2': 'SUCCEEDED',
    });
    const gate = r.jobs.find((j) => j.stage === 'Gate of mirrored copies on v2')!;
    const results = (gate.verdict as unknown as { results: Array<{ rule: string }> }).results;
    expect(results.map((x) => x.rule.split(' ')[0])).toEqual(['errorRate', 'latency', 'compareErrors']);
  });

  it('blue/green (jenkins runner): preview route, judgment auto-approved, switch, gate passes after the switch, v2 promoted', async () => {
    const r = await promotedThroughCi('sdc-bluegreen');
    const status = Object.fromEntries(r.execution.stages.map((s) => [s.name, s.status]));
    expect(status).toMatchObject({
      'Preview v2': 'SUCCEEDED',
      'Switch traffic to v2?': 'SUCCEEDED',
      'Switch traffic to v2': 'SUCCEEDED',
      'Gate after the switch to v2': 'SUCCEEDED',
      'Roll back to v1': 'SKIPPED',
    });
    expect(r.execution.stages.find((s) => s.name === 'Gate after the switch to v2')?.outputs).toMatchObject({
      CLOVER_CD_VERDICT: 'pass',
      CLOVER_CD_WEIGHT: '100',
    });
  });
});

describe('trigger artifacts and parameters, as Echo, Orca and Clouddriver bind them', () => {
  let sb: Sandbox;
  beforeAll(async () => {
    sb = await startSandbox();
  });
  afterAll(async () => sb?.stop());
  const candidateImage = async (platform = sb.platform) => {
    const d = await platform.get({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      namespace: 'default',
      name: 'http-lb-v2',
    });
    return (d!.spec as any).template.spec.containers[0].image as string;
  };
  /** The canary example whose docker trigger fires for v* tags. */
  const vTags = (doc: Record<string, any>) => (doc.spinnaker.triggers[0].tag = '^v[0-9.]+$');
  const deployOnly = () => {
    const p = renderPipeline(readRenderInput(loadSpec(quickSpec('sdc-canary', vTags)))).pipeline;
    return JSON.parse(JSON.stringify({ ...p, stages: [p.stages[0]] })) as Record<string, unknown>;
  };

  it('a docker trigger for v2.1 deploys :v2.1; a manual start deploys the tag parameter, or its default', async () => {
    const docker = await executePipeline(deployOnly(), {
      platform: sb.platform,
      trigger: { type: 'docker', tag: 'v2.1' },
    });
    expect(docker.status).toBe('SUCCEEDED');
    expect(await candidateImage()).toBe('index.docker.io/opnfv/clover-ns-nginx-lb:v2.1');
    expect(docker.trigger).toMatchObject({
      tag: 'v2.1',
      artifacts: [
        {
          type: 'docker/image',
          name: 'index.docker.io/opnfv/clover-ns-nginx-lb',
          reference: 'index.docker.io/opnfv/clover-ns-nginx-lb:v2.1',
        },
      ],
    });
    const param = await executePipeline(deployOnly(), {
      platform: sb.platform,
      trigger: { type: 'manual', parameters: { tag: 'v2.9' } },
    });
    expect(param.stages[0].context['outputs.boundArtifacts']).toEqual([
      expect.objectContaining({ reference: 'index.docker.io/opnfv/clover-ns-nginx-lb:v2.9' }),
    ]);
    expect(await candidateImage()).toBe('index.docker.io/opnfv/clover-ns-nginx-lb:v2.9');
    await executePipeline(deployOnly(), { platform: sb.platform });
    expect(await candidateImage()).toBe('index.docker.io/opnfv/clover-ns-nginx-lb:opnfv-7.0.0');
    // A tag the trigger's pattern does not match never starts the pipeline (Echo): exit 2, nothing deployed.
    await expect(
      executePipeline(deployOnly(), { platform: sb.platform, trigger: { type: 'docker', tag: 'latest' } }),
    ).rejects.toThrow(
      /Echo would not start the pipeline: tag "latest" does not fully match triggers\[0\]\.tag/,
    );
  });

  it('pipeline run --local --param tag=... deploys that tag (CLI)', async () => {
    const file = join(dir, 'deploy-only.json');
    writeFileSync(file, JSON.stringify(deployOnly()));
    const r = await runCli(['pipeline', 'run', file, '--local', '--param', 'tag=v3.0', '-o', 'json'], {
      env: { CLOVER_CD_STATE_DIR: mkdtempSync(join(tmpdir(), 'local-run-state-')) },
      timeoutMs: 120_000,
    });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).stages[0].message).toContain(
      'bound index.docker.io/opnfv/clover-ns-nginx-lb:v3.0',
    );
  });

  it('preconfigured stages (types from the orca-config fragment) run a docker-triggered canary to promotion with its own tag', async () => {
    const spec = quickSpec('sdc-canary-preconfigured', vTags);
    const orca = join(dir, 'orca-local.yml');
    const oc = await runCli(['pipeline', 'orca-config', spec, '-o', orca]);
    expect(oc.code).toBe(0);
    const fresh = await startSandbox();
    try {
      const r = await runPipelineLocally({
        file: spec,
        orcaConfig: orca,
        platform: fresh.platform,
        autoApprove: true,
        evidenceDir: join(dir, 'evidence'),
        pollIntervalMs: 100,
        trigger: { type: 'docker', tag: 'v2.1' },
      });
      const status = Object.fromEntries(r.execution.stages.map((s) => [s.name, `${s.type} ${s.status}`]));
      expect(status).toMatchObject({
        'Shift 10% to v2': 'cloverCdTraffic SUCCEEDED',
        'Gate at 50%': 'cloverCdGate SUCCEEDED',
        'Promote v2': 'cloverCdPromote SUCCEEDED',
        'Roll back to v1': 'cloverCdRollback SKIPPED',
      });
      expect(r.exitCode).toBe(0);
      expect(r.jobs.find((j) => j.stage === 'Gate at 50%')).toMatchObject({
        status: 'SUCCEEDED',
        verdict: { outcome: 'pass' },
      });
      expect(await weightOfV2(fresh)).toBe(100);
      expect(await candidateImage(fresh.platform)).toBe('index.docker.io/opnfv/clover-ns-nginx-lb:v2.1');
    } finally {
      await fresh.stop();
    }
  });
});

describe("Orca's graph rules", () => {
  let sb: Sandbox;
  beforeAll(async () => {
    sb = await startSandbox();
  });
  afterAll(async () => sb?.stop());

  it('runs parallel branches together, joins them, and reports a stage type it cannot run', async () => {
    const events: RunEvent[] = [];
    const pipeline = {
      application: 'sdc',
      name: 'graph',
      stages: [
        { refId: 'a', requisiteStageRefIds: [], type: 'wait', name: 'A', waitTime: 1 },
        { refId: 'b', requisiteStageRefIds: [], type: 'wait', name: 'B', waitTime: 1 },
        {
          refId: 'vars',
          requisiteStageRefIds: ['a', 'b'],
          type: 'evaluateVariables',
          name: 'Vars',
          variables: [{ key: 'target', value: "${#stage('A')['status'].toString()}" }],
        },
        {
          refId: 'j',
          requisiteStageRefIds: ['vars'],
          type: 'jenkins',
          name: 'Tests in Jenkins',
          master: 'm',
          job: 'j',
        },
        { refId: 'after', requisiteStageRefIds: ['j'], type: 'wait', name: 'After', waitTime: 0 },
        { refId: 'k', requisiteStageRefIds: ['vars'], type: 'bakeManifest', name: 'Bake' },
      ],
    };
    const r = await executePipeline(pipeline, { platform: sb.platform, onEvent: (e) => events.push(e) });
    const order = events
      .filter((e) => e.type !== 'stage-progress')
      .map((e) => `${e.type === 'stage-start' ? '+' : '-'}${e.stage.name}`);
    expect(order.slice(0, 2).sort()).toEqual(['+A', '+B']); // both branches start before either ends
    expect(order.indexOf('+Vars')).toBeGreaterThan(Math.max(order.indexOf('-A'), order.indexOf('-B')));
    const byName = Object.fromEntries(r.stages.map((s) => [s.name, s]));
    expect(byName.Vars.outputs).toEqual({ target: 'SUCCEEDED' });
    expect(byName['Tests in Jenkins']).toMatchObject({
      status: 'TERMINAL',
      message: expect.stringContaining('cannot run locally'),
    });
    expect(byName.After.status).toBe('NOT_STARTED');
    expect(r.status).toBe('TERMINAL');
    expect(byName.Bake).toMatchObject({
      status: 'TERMINAL',
      message: expect.stringContaining('stage type "bakeManifest" cannot run locally'),
    });
    expect(r.unsupported.sort()).toEqual(['bakeManifest', 'jenkins']);
  });

  it('manual judgment: the answer drives #judgment; checkPreconditions fails with its message; patchManifest patches', async () => {
    const pipeline = {
      application: 'sdc',
      name: 'judged',
      stages: [
        {
          refId: '1',
          requisiteStageRefIds: [],
          type: 'manualJudgment',
          name: 'Go on?',
          judgmentInputs: [{ value: 'continue' }, { value: 'rollback' }],
        },
        {
          refId: '2',
          requisiteStageRefIds: ['1'],
          type: 'patchManifest',
          name: 'Label',
          stageEnabled: { type: 'expression', expression: "#judgment('Go on?') == 'continue'" },
          manifestName: 'deployment http-lb-v2',
          location: 'default',
          patchBody: { metadata: { labels: { judged: 'yes' } } },
          options: { mergeStrategy: 'strategic' },
        },
        {
          refId: '3',
          requisiteStageRefIds: ['2'],
          type: 'checkPreconditions',
          name: 'Verdict',
          preconditions: [
            {
              type: 'expression',
              context: {
                expression: "#stage('Label')['status'].toString() == 'SUCCEEDED'",
                failureMessage: 'not labelled',
              },
              failPipeline: true,
            },
          ],
        },
      ],
    };
    const rolled = await executePipeline(pipeline, {
      platform: sb.platform,
      judgments: { 'Go on?': 'rollback' },
    });
    expect(rolled.stages.map((s) => s.status)).toEqual(['SUCCEEDED', 'SKIPPED', 'TERMINAL']);
    expect(rolled.stages[2].message).toBe('not labelled');
    const unanswered = await executePipeline(pipeline, { platform: sb.platform });
    expect(unanswered.stages[0]).toMatchObject({
      status: 'TERMINAL',
      message: expect.stringContaining('--auto-approve'),
    });
    const ok = await executePipeline(pipeline, { platform: sb.platform, autoApprove: true });
    expect(ok.status).toBe('SUCCEEDED');
    const d = await sb.platform.get({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      namespace: 'default',
      name: 'http-lb-v2',
    });
    expect(d?.metadata.labels?.judged).toBe('yes');
  });
});

describe('SpEL forms the generator emits', () => {
  const stages: Record<string, any> = {
    'Gate at 10%': {
      status: 'FAILED_CONTINUE',
      context: { webhook: { monitor: { body: { status: 'INCONCLUSIVE' } } } },
    },
    'Promote v2': { status: 'SKIPPED', context: {} },
  };
  const ctx = {
    vars: { execution: { id: 'e1', name: 'http-lb-canary' } },
    stage: (n: string) => stages[n],
    stageByRefId: () => undefined,
    judgment: (n: string) => (n === 'Continue?' ? 'continue' : undefined),
  };
  it.each([
    [
      "#stage('Gate at 10%')['status'].toString() == 'FAILED_CONTINUE' && #stage('Gate at 10%')['context']['webhook']['monitor']['body']['status'] == 'INCONCLUSIVE'",
      true,
    ],
    ["#stage('Promote v2')['status'].toString() != 'SUCCEEDED'", true],
    [
      "#stage('Promote v2')['status'].toString() == 'SUCCEEDED' || #stage('Gate at 10%')['status'].toString() == 'SUCCEEDED'",
      false,
    ],
    ["${#judgment('Continue?') == 'continue'}", true],
    ["!(#stage('Promote v2')['status'].toString() == 'SKIPPED')", false],
  ])('%s → %s', (expr, expected) => {
    expect(evaluateCondition(expr, ctx)).toBe(expected);
  });
  it('resolves ${execution[...]} in payloads and fails loudly on unknown references', () => {
    expect(
      resolveExpressions(
        { execution: { id: "${execution['id']}", pipeline: "${execution['name']}" }, n: '${1 == 1}' },
        ctx,
      ),
    ).toEqual({ execution: { id: 'e1', pipeline: 'http-lb-canary' }, n: true });
    const failures: string[] = [];
    resolveExpressions("${#stage('Nope')['status']}", ctx, failures);
    expect(failures[0]).toMatch(/no such stage/);
    expect(() => evaluateCondition("#fromUrl('http://x')", ctx)).toThrow(/not supported/);
  });
});
