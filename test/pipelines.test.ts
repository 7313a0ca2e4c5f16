import { fileURLToPath } from 'node:url';
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from './helpers/cli.js';
import { defaultImage } from '../src/contract/images.js';
import { loadSpec } from '../src/spec/load.js';
import { readRenderInput } from '../src/pipelines/inputs.js';
import { renderPipeline } from '../src/pipelines/render.js';
import { buildPlan } from '../src/canary/plan.js';
import { validatePipelineDocument } from '../src/pipelines/validate.js';
import { stablePipelineId } from '../src/pipelines/ids.js';
import type { PipelineConfig, StageConfig } from '../src/pipelines/types.js';

const EXAMPLES = ['examples/sdc-canary.yaml', 'examples/sdc-bluegreen.yaml', 'examples/sdc-ab.yaml'];
// The corpus of real pipeline configs lives in ../shared beside the checkout (as in CI).
const CORPUS = fileURLToPath(new URL('../../shared/spinnaker-pipelines/', import.meta.url));
let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'pipelines-test-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const render = (file: string) => renderPipeline(readRenderInput(loadSpec(file))).pipeline;

/**
 * Orca's execution semantics for a rendered graph (reference §2.1-2.3): a stage starts when every parent is
 * SUCCEEDED/FAILED_CONTINUE/SKIPPED; stageEnabled false ⇒ SKIPPED; a failure is FAILED_CONTINUE when
 * continuePipeline, else TERMINAL (which halts); the execution is TERMINAL if any stage is TERMINAL.
 */
function simulate(
  p: PipelineConfig,
  outcome: (
    s: StageConfig,
  ) => 'SUCCEEDED' | 'TERMINAL' | { status: 'TERMINAL'; body: string } | { judgment: string },
) {
  const status = new Map<string, string>();
  const context = new Map<string, string>();
  const judgments = new Map<string, string>();
  const evalGuard = (expr: string) => {
    const js = expr
      .replace(
        /#stage\('((?:[^']|'')*)'\)\['context'\]\['webhook'\]\['monitor'\]\['body'\]\['status'\]/g,
        (_, n) => JSON.stringify(context.get(n.replace(/''/g, "'")) ?? null),
      )
      .replace(/#stage\('((?:[^']|'')*)'\)\['status'\]\.toString\(\)/g, (_, n) =>
        JSON.stringify(status.get(n.replace(/''/g, "'")) ?? 'NOT_STARTED'),
      )
      .replace(/#judgment\('((?:[^']|'')*)'\)/g, (_, n) =>
        JSON.stringify(judgments.get(n.replace(/''/g, "'")) ?? null),
      );
    expect(js).not.toMatch(/#/);
    return Function(`return (${js});`)() as boolean;
  };
  const done = new Set(['SUCCEEDED', 'FAILED_CONTINUE', 'SKIPPED']);
  const ran: string[] = [];
  for (const s of p.stages) {
    if (
      !s.requisiteStageRefIds.every((r) =>
        done.has(status.get(p.stages.find((x) => x.refId === r)!.name) ?? ''),
      )
    )
      break;
    const guard = (s.stageEnabled as { expression?: string } | undefined)?.expression;
    if (guard && !evalGuard(guard)) {
      status.set(s.name, 'SKIPPED');
      continue;
    }
    ran.push(s.name);
    let result: string;
    if (s.type === 'checkPreconditions') {
      const pre = (s.preconditions as Array<{ context: { expression: string } }>)[0];
      result = evalGuard(pre.context.expression) ? 'SUCCEEDED' : 'TERMINAL';
    } else {
      const o = outcome(s);
      if (typeof o === 'string') result = o;
      else if ('judgment' in o) {
        judgments.set(s.name, o.judgment);
        result = 'SUCCEEDED';
      } else {
        context.set(s.name, o.body);
        result = 'TERMINAL';
      }
    }
    if (result === 'TERMINAL' && s.continuePipeline === true) result = 'FAILED_CONTINUE';
    status.set(s.name, result);
    if (result === 'TERMINAL') break;
  }
  const final = [...status.values()].includes('TERMINAL') ? 'TERMINAL' : 'SUCCEEDED';
  return { ran, status, final };
}

describe('pipeline render', () => {
  it.each(EXAMPLES)('%s renders a pipeline that passes validate with no problems', (file) => {
    const p = render(file);
    const v = validatePipelineDocument(JSON.parse(JSON.stringify(p)));
    expect(v.problems).toEqual([]);
    expect(p.spelEvaluator).toBe('v4');
    expect(p.id).toBe(stablePipelineId(p.application, p.name));
    for (const s of p.stages) {
      expect(typeof s.refId).toBe('string');
      expect(s.failOnFailedExpressions).toBe(true);
    }
    for (const t of p.triggers) expect(t.enabled).toBe(true);
  });

  it('renders byte-identical JSON twice through the CLI, and -o <file> writes the same bytes', async () => {
    const a = await runCli(['pipeline', 'render', 'examples/sdc-canary.yaml']);
    const b = await runCli(['pipeline', 'render', 'examples/sdc-canary.yaml']);
    expect(a.code).toBe(0);
    expect(a.stdout).toBe(b.stdout);
    const out = join(tmp, 'pipeline.json');
    const c = await runCli(['pipeline', 'render', 'examples/sdc-canary.yaml', '-o', out]);
    expect(c.code).toBe(0);
    expect(readFileSync(out, 'utf8')).toBe(a.stdout);
    const v = await runCli(['pipeline', 'validate', out]);
    expect(v.code).toBe(0);
    expect(v.stdout).toContain('0 error(s)');
  });

  it('keeps -o json a format and writes nothing for an invalid spec', async () => {
    const j = await runCli(['pipeline', 'render', 'examples/sdc-ab.yaml', '-o', 'json']);
    expect(j.code).toBe(0);
    expect(JSON.parse(j.stdout).name).toBe('http-lb-ab');
    const bad = join(tmp, 'bad.yaml');
    writeFileSync(
      bad,
      readFileSync('examples/sdc-canary.yaml', 'utf8').replace('steps: [10, 50]', 'steps: [50, 10]'),
    );
    const out = join(tmp, 'never.json');
    const r = await runCli(['pipeline', 'render', bad, '-o', out]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('strategy.canary.steps[1]');
    expect(existsSync(out)).toBe(false);
  });

  it('canary webhook stages follow the stage-server contract', () => {
    const p = render('examples/sdc-canary.yaml');
    const shift = p.stages.find((s) => s.name === 'Shift 10% to v2')!;
    expect(shift).toMatchObject({
      type: 'webhook',
      url: 'http://clover-cd.clover-system:8080/api/v1/releases/http-lb-canary/traffic',
      method: 'POST',
      waitForCompletion: true,
      statusUrlResolution: 'webhookResponse',
      statusUrlJsonPath: '$.statusUrl',
      statusJsonPath: '$.status',
      progressJsonPath: '$.progress',
      successStatuses: 'SUCCEEDED',
      terminalStatuses: 'FAILED,INCONCLUSIVE,ERROR',
      canceledStatuses: 'CANCELED',
      signalCancellation: true,
      cancelEndpoint: 'http://clover-cd.clover-system:8080/api/v1/releases/http-lb-canary/cancel',
      cancelMethod: 'POST',
    });
    // Every action names its plan step; windows and weights come from the plan the server builds from the spec.
    expect(shift.payload).toMatchObject({ step: 1 });
    expect(shift.payload).not.toHaveProperty('weight');
    expect(shift.payload).not.toHaveProperty('window');
    // The load plan named by path is inlined so the stage server needs no file of the spec's repository.
    expect(typeof (shift.payload as { spec: { load: { plan: unknown } } }).spec.load.plan).toBe('object');
    // No secret in pipeline JSON: an authenticated webhook is a preconfigured one (test/spinnaker-native.test.ts).
    expect(shift.customHeaders).toEqual({ 'Content-Type': 'application/json' });
    const deploy = p.stages[0];
    expect(deploy.type).toBe('deployManifest');
    const m = (
      deploy.manifests as Array<{ kind: string; metadata: { name: string; labels: Record<string, string> } }>
    )[0];
    expect(m.kind).toBe('Deployment');
    expect(m.metadata).toMatchObject({ name: 'http-lb-v2', labels: { app: 'http-lb', version: 'v2' } });
  });

  it('inlines the candidate manifests named by path into every payload, deterministically', () => {
    const specFile = join(tmp, 'manifests-spec.yaml');
    writeFileSync(
      join(tmp, 'v2.yaml'),
      'apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: http-lb-v2, namespace: default }\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: { name: http-lb-v2-conf }\ndata: { a: "1" }\n',
    );
    writeFileSync(
      specFile,
      readFileSync('examples/sdc-bluegreen.yaml', 'utf8')
        .replace('  candidateImage: opnfv/clover-ns-nginx-lb:opnfv-7.0.0', '  candidateManifests: [v2.yaml]')
        .replace('plan: sdc-load.yaml', `plan: ${join(process.cwd(), 'examples/sdc-load.yaml')}`),
    );
    const p = render(specFile);
    const jobs = p.stages.filter((s) => s.type === 'jenkins');
    expect(jobs.length).toBeGreaterThan(3);
    for (const j of jobs) {
      const spec = JSON.parse(
        Buffer.from((j.parameters as Record<string, string>).SPEC, 'base64').toString(),
      );
      expect(spec.service.candidateManifests).toEqual([
        { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'http-lb-v2', namespace: 'default' } },
        { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'http-lb-v2-conf' }, data: { a: '1' } },
      ]);
    }
    expect(JSON.stringify(render(specFile))).toBe(JSON.stringify(p));
  });

  it('jenkins and runJob runners render their stage shapes', () => {
    const bg = render('examples/sdc-bluegreen.yaml');
    const j = bg.stages.find((s) => s.type === 'jenkins')!;
    expect(j).toMatchObject({
      master: 'ci',
      job: 'sdc/clover-cd-stage',
      propertyFile: 'clover-cd.properties',
      waitForCompletion: true,
    });
    expect((j.parameters as Record<string, string>).ACTION).toBe('deploy');
    expect(
      JSON.parse(Buffer.from((j.parameters as Record<string, string>).SPEC, 'base64').toString()).metadata
        .name,
    ).toBe('http-lb-bluegreen');
    expect(bg.stages.some((s) => s.type === 'manualJudgment')).toBe(true);
    const ab = render('examples/sdc-ab.yaml');
    const rj = ab.stages.find((s) => s.type === 'runJobManifest')!;
    expect(rj.alias).toBe('runJob');
    expect((rj.manifest as { kind: string }).kind).toBe('Job');
    // Exec form in the published image: `clover-cd stage <action> …`, no shell.
    const container = (rj.manifest as any).spec.template.spec.containers[0];
    expect({ image: container.image, argv: [...container.command, ...container.args].slice(0, 3) }).toEqual({
      image: defaultImage('clover-cd'),
      argv: ['clover-cd', 'stage', 'deploy'],
    });
    // Without runJob.image the stage runs the published image too.
    const loaded = loadSpec('examples/sdc-ab.yaml');
    delete loaded.spec.spinnaker!.runJob!.image;
    const noImage = renderPipeline(readRenderInput(loaded)).pipeline;
    expect(
      (noImage.stages.find((s) => s.type === 'runJobManifest')!.manifest as any).spec.template.spec
        .containers[0].image,
    ).toBe(defaultImage('clover-cd'));
  });

  describe('failure paths under Orca semantics', () => {
    const p = () => render('examples/sdc-canary.yaml');
    it('all gates pass: promoted, rollback skipped, execution SUCCEEDED', () => {
      const r = simulate(p(), () => 'SUCCEEDED');
      expect(r.status.get('Promote v2')).toBe('SUCCEEDED');
      expect(r.status.get('Roll back to v1')).toBe('SKIPPED');
      // No retry stages: an inconclusive window is analysed again inside the gate action.
      expect(
        p()
          .stages.map((st) => st.name)
          .filter((n) => /retry/.test(n)),
      ).toEqual([]);
      expect(r.final).toBe('SUCCEEDED');
    });
    it('a failed gate runs the rollback and the execution ends TERMINAL', () => {
      const r = simulate(p(), (s) =>
        s.name === 'Gate at 10%' ? { status: 'TERMINAL', body: 'FAILED' } : 'SUCCEEDED',
      );
      expect(r.ran).toContain('Roll back to v1');
      expect(r.ran).not.toContain('Shift 50% to v2');
      expect(r.ran).not.toContain('Promote v2');
      expect(r.status.get('Release verdict')).toBe('TERMINAL');
      expect(r.final).toBe('TERMINAL');
    });
    it('an inconclusive gate (after its own retries inside the action) rolls back and the execution ends TERMINAL', () => {
      const r = simulate(p(), (s) =>
        s.name === 'Gate at 50%' ? { status: 'TERMINAL', body: 'INCONCLUSIVE' } : 'SUCCEEDED',
      );
      expect(r.status.get('Promote v2')).toBe('SKIPPED');
      expect(r.ran).toContain('Roll back to v1');
      expect(r.final).toBe('TERMINAL');
    });
    it('the gate stage timeout covers the windows the gate may add (maxInconclusive: 1 → two windows)', () => {
      const gate = p().stages.find((st) => st.name === 'Gate at 10%')!;
      expect(gate.stageTimeoutMs).toBe(2 * 3 * 10_000 + 10 * 60_000);
    });
    it('a rejected manual judgment rolls back', () => {
      const bg = render('examples/sdc-bluegreen.yaml');
      const r = simulate(bg, (s) => (s.type === 'manualJudgment' ? { judgment: 'rollback' } : 'SUCCEEDED'));
      expect(r.status.get('Switch traffic to v2')).toBe('SKIPPED');
      expect(r.ran).toContain('Roll back to v1');
      expect(r.final).toBe('TERMINAL');
    });
  });
});

describe('pipeline steps follow the canary module plan', () => {
  const loaded = (file: string) => readRenderInput(loadSpec(file));
  const names = (p: PipelineConfig) => p.stages.map((s) => s.name);
  const paramsOf = (s: StageConfig) => {
    const p = s.parameters as Record<string, string>;
    return { action: p.ACTION, weight: p.WEIGHT, step: p.STEP };
  };

  it('blue/green: preview route, judgment, switch to 100, then load and gate, as buildPlan orders them', () => {
    const input = loaded('examples/sdc-bluegreen.yaml');
    const plan = buildPlan(input.spec);
    expect(plan.steps.map((s) => s.kind)).toEqual(['preview', 'switch']);
    const p = renderPipeline(input).pipeline;
    expect(names(p)).toEqual([
      'Deploy v2',
      'Prepare routes for v2',
      'Preview v2',
      'Switch traffic to v2?',
      'Switch traffic to v2',
      'Load after the switch to v2',
      'Gate after the switch to v2',
      'Promote v2',
      'Roll back to v1',
      'Release verdict',
    ]);
    const byName = Object.fromEntries(p.stages.map((s) => [s.name, s]));
    // step 1 of the plan = the preview target (match route on the preview header, weight 0)
    expect(paramsOf(byName['Preview v2'])).toEqual({ action: 'traffic', weight: undefined, step: '1' });
    expect(paramsOf(byName['Switch traffic to v2'])).toEqual({
      action: 'traffic',
      weight: undefined,
      step: '2',
    });
    expect(paramsOf(byName['Gate after the switch to v2'])).toEqual({
      action: 'gate',
      weight: undefined,
      step: '2',
    });
  });

  it('blue/green: a failed gate after the switch switches straight back and the execution ends TERMINAL', () => {
    const p = renderPipeline(loaded('examples/sdc-bluegreen.yaml')).pipeline;
    const r = simulate(p, (s) =>
      s.type === 'manualJudgment'
        ? { judgment: 'continue' }
        : s.name === 'Gate after the switch to v2'
          ? 'TERMINAL'
          : 'SUCCEEDED',
    );
    expect(r.status.get('Switch traffic to v2')).toBe('SUCCEEDED');
    expect(r.status.get('Gate after the switch to v2')).toBe('FAILED_CONTINUE');
    expect(r.status.get('Promote v2')).toBe('SKIPPED');
    expect(r.ran).toContain('Roll back to v1');
    expect(r.final).toBe('TERMINAL');
    const ok = simulate(p, (s) => (s.type === 'manualJudgment' ? { judgment: 'continue' } : 'SUCCEEDED'));
    expect(ok.final).toBe('SUCCEEDED');
    expect(ok.status.get('Roll back to v1')).toBe('SKIPPED');
  });

  it('A/B: the match step is addressed by its plan step number', () => {
    const input = loaded('examples/sdc-ab.yaml');
    input.spec.strategy.mirror = { percentage: '50%', window: '10s' };
    const p = renderPipeline(input).pipeline;
    const route = p.stages.find((s) => s.name === 'Route matching requests to v2')!;
    // the mirror is step 1, so the match route is step 2 (what `traffic set --step 2` sets)
    expect((route.manifest as any).spec.template.spec.containers[0].args).toEqual([
      'stage',
      'traffic',
      '--spec-env',
      'CLOVER_CD_SPEC',
      '--step',
      '2',
      '--property-format',
      'spinnaker',
    ]);
  });

  it('mirror: a traffic step sets the mirror, load runs for the mirror window, the gate judges the copies with the rules that can (no counting, no paired latency)', () => {
    const input = loaded('examples/sdc-canary.yaml');
    input.spec.strategy.mirror = { percentage: '50%', window: '20s' };
    const { pipeline: p, notes } = renderPipeline(input);
    expect(notes.join(' ')).not.toMatch(/mirror/);
    expect(names(p).slice(2, 6)).toEqual([
      'Mirror 50% to v2',
      'Load of mirrored copies on v2',
      'Gate of mirrored copies on v2',
      'Shift 10% to v2',
    ]);
    const byName = Object.fromEntries(p.stages.map((s) => [s.name, s]));
    expect(byName['Mirror 50% to v2'].payload).toMatchObject({ step: 1 });
    expect(byName['Load of mirrored copies on v2'].payload).toMatchObject({ step: 1 });
    const gate = byName['Gate of mirrored copies on v2'].payload as {
      weight?: number;
      spec: { gate: { rules: object[] } };
    };
    expect(gate.weight).toBeUndefined();
    expect(gate.spec.gate.rules.map((r) => Object.keys(r)[0])).toEqual([
      'errorRate',
      'latency',
      'compareErrors',
    ]);
    // the next step's shift removes the mirror (routesForTarget) and is guarded by the mirror gate
    expect(byName['Shift 10% to v2'].stageEnabled).toEqual({
      type: 'expression',
      expression: expect.stringContaining("#stage('Gate of mirrored copies on v2')"),
    });
    expect(byName['Gate at 10%'].payload).toMatchObject({ step: 2 });
    expect(validatePipelineDocument(JSON.parse(JSON.stringify(p))).problems).toEqual([]);
    const failed = simulate(p, (s) =>
      s.name === 'Gate of mirrored copies on v2' ? { status: 'TERMINAL', body: 'FAILED' } : 'SUCCEEDED',
    );
    expect(failed.ran).not.toContain('Shift 10% to v2');
    expect(failed.ran).toContain('Roll back to v1');
    expect(failed.final).toBe('TERMINAL');
  });

  it('mirror with only counting rules: the mirror window ends in a manual judgment', () => {
    const input = loaded('examples/sdc-canary.yaml');
    input.spec.strategy.mirror = { window: '20s' };
    input.spec.gate!.rules = [
      { conservation: { hops: ['proxy-access-control', 'http-lb'] } },
      { split: {} },
      { compareLatency: { alpha: 0.01 } },
    ] as any;
    const { pipeline: p, notes } = renderPipeline(input);
    expect(names(p).slice(2, 5)).toEqual([
      'Mirror 100% to v2',
      'Load of mirrored copies on v2',
      'Continue after mirroring to v2?',
    ]);
    expect(notes.join(' ')).toMatch(/manual judgment/);
    const rejected = simulate(p, (s) =>
      s.type === 'manualJudgment' ? { judgment: 'rollback' } : 'SUCCEEDED',
    );
    expect(rejected.status.get('Shift 10% to v2')).toBe('SKIPPED');
    expect(rejected.final).toBe('TERMINAL');
  });
});

/** Corpus files that are pipeline configs (config / list / dinghyfile kinds), per INDEX.md. */
function corpusConfigs(): string[] {
  const index = readFileSync(join(CORPUS, 'INDEX.md'), 'utf8');
  const skip = new Set<string>();
  for (const line of index.split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    const file = cells[1]?.replace(/`/g, '');
    const kind = cells[5] ?? '';
    if (file?.endsWith('.json') && /^(execution|orchestration|MPT v2 template)/.test(kind)) skip.add(file);
  }
  expect(skip.size).toBeGreaterThanOrEqual(3);
  return readdirSync(CORPUS).filter((f) => f.endsWith('.json') && !skip.has(f));
}

describe('pipeline validate', () => {
  it('finds no errors in the real pipeline configs of the corpus but the identity Front50 needs (warnings carry a reason)', () => {
    const files = corpusConfigs();
    expect(files.length).toBeGreaterThan(25);
    for (const f of files) {
      const doc = JSON.parse(readFileSync(join(CORPUS, f), 'utf8'));
      const v = validatePipelineDocument(doc);
      // Deck's "Edit as JSON" leaves out name and application; Front50 refuses such a config, and so does validate.
      const missing = (Array.isArray(doc) ? doc : [doc]).some(
        (p: Record<string, unknown>) => p.name === undefined || p.application === undefined,
      );
      const errors = v.problems.filter(
        (p) =>
          p.severity === 'error' &&
          !(missing && p.rule === 'pipeline-identity' && /^(\[\d+\]\.)?(name|application)$/.test(p.path)),
      );
      expect({ f, errors }).toEqual({ f, errors: [] });
      for (const w of v.problems) expect(w.message.length).toBeGreaterThan(20);
    }
  });

  it('accepts a Dinghy wrapper and a list through the CLI with exit 0', async () => {
    const d = await runCli([
      'pipeline',
      'validate',
      join(CORPUS, 'justinrlee__sales-pipelines__demo_canary_dinghyfile.json'),
      '--output',
      'json',
    ]);
    expect(d.code).toBe(0);
    expect(JSON.parse(d.stdout)).toMatchObject({ kind: 'dinghyfile', errors: 0 });
    const l = await runCli([
      'pipeline',
      'validate',
      join(CORPUS, 'spinnaker__echo__echo-core_src_test_resources_pipelines.json'),
    ]);
    expect(l.code).toBe(0);
    expect(l.stderr).toMatch(/warning: .*findAmi/); // findings are diagnostics: stderr; the summary is on stdout
    expect(l.stdout).toMatch(/^\S+: list, \d+ pipeline\(s\): 0 error\(s\), \d+ warning\(s\) — valid\n$/);
  });

  const base = () => JSON.parse(JSON.stringify(render('examples/sdc-canary.yaml'))) as PipelineConfig;
  const cases: Array<[string, (p: PipelineConfig) => void, RegExp]> = [
    [
      'numeric refId',
      (p) => ((p.stages[2] as unknown as { refId: number }).refId = 3),
      /stage refId #2 \("Shift 10% to v2"\).*stages\[2\]\.refId.*refid-string/,
    ],
    [
      'dangling requisiteStageRefIds',
      (p) => (p.stages[4].requisiteStageRefIds = ['42']),
      /stage refId "5" \("Gate at 10%"\).*stages\[4\]\.requisiteStageRefIds\[0\].*"42".*requisites-exist/,
    ],
    [
      'a cycle',
      (p) => (p.stages[1].requisiteStageRefIds = ['3']),
      /stage refId "\d+".*requisiteStageRefIds.*cycle.*graph-acyclic/,
    ],
    [
      'webhook successStatuses as an array',
      (p) => ((p.stages[1] as Record<string, unknown>).successStatuses = ['SUCCEEDED', 'DONE']),
      /stage refId "2" \("Prepare routes for v2"\).*stages\[1\]\.successStatuses.*"SUCCEEDED,DONE".*webhook-status-strings/,
    ],
    [
      'trigger without enabled',
      (p) => delete (p.triggers[0] as Partial<(typeof p.triggers)[0]>).enabled,
      /triggers\[0\]\.enabled.*trigger-enabled/,
    ],
    [
      'duplicate refId',
      (p) => (p.stages[6].refId = '6'),
      /stage refId "6" \("Load at 50%"\).*stages\[6\]\.refId.*duplicate refId "6".*refid-unique/,
    ],
  ];
  it.each(cases)('exits 2 for %s, naming the stage and the field', async (_label, breakIt, expected) => {
    const p = base();
    breakIt(p);
    const file = join(tmp, `broken-${_label.replace(/\W+/g, '-')}.json`);
    writeFileSync(file, JSON.stringify(p));
    const r = await runCli(['pipeline', 'validate', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(expected);
    expect(r.stdout).toBe('');
  });

  it('flags a #stage reference to a stage that is not upstream', () => {
    const p = base();
    const first = p.stages[1] as Record<string, unknown>;
    first.stageEnabled = {
      type: 'expression',
      expression: "#stage('Promote v2')['status'].toString() == 'SUCCEEDED'",
    };
    const v = validatePipelineDocument(p);
    expect(v.problems).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ rule: 'spel-stage-upstream', path: 'stages[1].stageEnabled.expression' }),
      ]),
    );
  });
});
