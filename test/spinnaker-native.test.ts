/**
 * Spinnaker-native forms: the orca-local.yml fragment (preconfigured webhook stages + Run Job), pipelines
 * that use those stage types, no secret in any generated pipeline, the candidate image bound as a trigger
 * artifact with a `tag` parameter, and the artifact checks of `pipeline validate`.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as yaml from 'js-yaml';
import { runCli } from './helpers/cli.js';
import { STAGE_ACTIONS, STAGE_SERVER_POLLING } from '../src/contract/index.js';
import { defaultImage } from '../src/contract/images.js';
import { loadSpec } from '../src/spec/load.js';
import { readRenderInput } from '../src/pipelines/inputs.js';
import { renderPipeline } from '../src/pipelines/render.js';
import { validatePipelineDocument } from '../src/pipelines/validate.js';

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'spinnaker-native-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const MARKER = 'MARKER-7f3a9c';
/** The example with edits, written next to the other temp files (the load plan by absolute path). */
function specWith(example: string, edit: (doc: Record<string, any>) => void): string {
  const doc = yaml.load(readFileSync(`examples/${example}.yaml`, 'utf8')) as Record<string, any>;
  doc.load.plan = resolve('examples', doc.load.plan);
  edit(doc);
  const file = join(tmp, `${example}-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, yaml.dump(doc));
  return file;
}
const render = (file: string) => renderPipeline(readRenderInput(loadSpec(file))).pipeline;

describe('pipeline orca-config', () => {
  it('prints YAML declaring one preconfigured webhook per action, with the contract polling fields, the secret reference and the Run Job', async () => {
    const r = await runCli(['pipeline', 'orca-config', 'examples/sdc-canary-preconfigured.yaml']);
    expect(r.code).toBe(0);
    const doc = yaml.load(r.stdout) as any;
    const hooks = doc.webhook.preconfigured as any[];
    expect(hooks.map((h) => h.type)).toEqual([
      'cloverCdDeploy',
      'cloverCdTraffic',
      'cloverCdLoad',
      'cloverCdGate',
      'cloverCdPromote',
      'cloverCdRollback',
    ]);
    expect(hooks.length).toBe(STAGE_ACTIONS.length);
    const traffic = hooks[1];
    expect(traffic).toMatchObject({
      label: 'clover-cd: shift traffic',
      enabled: true,
      method: 'POST',
      url: "http://clover-cd.clover-system:8080/api/v1/releases/${parameterValues['release']}/traffic",
      customHeaders: { Authorization: ['encrypted:k8s!n:clover-cd!k:authorization'] },
      cancelEndpoint:
        "http://clover-cd.clover-system:8080/api/v1/releases/${parameterValues['release']}/cancel",
      ...STAGE_SERVER_POLLING,
    });
    expect(traffic.description).toMatch(/shift traffic/);
    expect(traffic.parameters.map((p: any) => p.name)).toEqual(['release', 'step', 'spec']);
    for (const p of traffic.parameters) expect(p.label.length && p.description.length).toBeTruthy();
    expect(hooks[0].parameters.map((p: any) => p.name)).toEqual(['release', 'spec']);
    // The payload is JSON once Orca substitutes the parameters.
    const payload = traffic.payload
      .replace("${parameterValues['spec']}", '{"a":1}')
      .replace("${parameterValues['step']}", '2')
      .replace(/\$\{execution\['(\w+)'\]\}/g, 'x');
    expect(JSON.parse(payload)).toEqual({ spec: { a: 1 }, step: 2, execution: { id: 'x', pipeline: 'x' } });
    const job = doc.job.preconfigured.kubernetes[0];
    expect(job).toMatchObject({
      type: 'cloverCdStageJob',
      account: 'k8s-sdc',
      propertyFile: 'clover-cd',
      manifest: { kind: 'Job' },
    });
    // Spring binds only the fields Orca declares, and keeps a label key's '/' only in brackets.
    expect(job).not.toHaveProperty('consumeArtifactSource');
    expect(job.manifest.metadata.labels).toEqual({ '[app.kubernetes.io/name]': 'clover-cd' });
    expect(r.stdout).toContain("'[app.kubernetes.io/name]': clover-cd");
    // Exec form, no shell: the kubelet fills $(VAR) from the env the stage's parameters set.
    const container = job.manifest.spec.template.spec.containers[0];
    expect([...container.command, ...container.args]).toEqual([
      'clover-cd',
      'stage',
      '$(CLOVER_CD_ACTION)',
      '--step',
      '$(CLOVER_CD_STEP)',
      '--spec-env',
      'CLOVER_CD_SPEC',
      '--property-format',
      'spinnaker',
    ]);
    expect(container.image).toBe(defaultImage('clover-cd'));
    expect(job.parameters.map((p: any) => p.mapping)).toEqual(
      ['CLOVER_CD_ACTION', 'CLOVER_CD_STEP', 'CLOVER_CD_SPEC', 'CLOVER_CD_EXECUTION_ID'].map(
        (n) =>
          `manifest.spec.template.spec.containers[0].env[${container.env.findIndex((e: any) => e.name === n)}].value`,
      ),
    );
    expect(JSON.stringify(job.manifest)).not.toContain('${');
    const help = await runCli(['pipeline', 'orca-config', '--help']);
    expect(help.stdout).toMatch(/Examples:\n\s+clover-cd pipeline orca-config/);
  });

  it('refuses a plain (non-reference) secret and specs that disagree on the stage server', async () => {
    const plain = await runCli(['pipeline', 'orca-config', '--auth-secret', 'Bearer hunter2']);
    expect(plain.code).toBe(2);
    expect(plain.stderr).not.toContain('hunter2');
    const other = specWith(
      'sdc-canary-preconfigured',
      (d) => (d.spinnaker.stageServer.url = 'http://elsewhere:8080'),
    );
    const r = await runCli(['pipeline', 'orca-config', 'examples/sdc-canary-preconfigured.yaml', other]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('spinnaker.stageServer.url');
  });
});

describe('preconfigured stages in the pipeline', () => {
  it('renders cloverCd<Action> stages with parameterValues only, and the result passes pipeline validate', async () => {
    const out = join(tmp, 'pre.json');
    const r = await runCli(['pipeline', 'render', 'examples/sdc-canary-preconfigured.yaml', '-o', out]);
    expect(r.code).toBe(0);
    const v = await runCli(['pipeline', 'validate', out]);
    expect(v.code).toBe(0);
    expect(v.stdout).toContain('0 error(s), 0 warning(s)');
    const p = JSON.parse(readFileSync(out, 'utf8'));
    const gate = p.stages.find((s: any) => s.name === 'Gate at 50%');
    expect(gate).toMatchObject({
      type: 'cloverCdGate',
      alias: 'preconfiguredWebhook',
      parameterValues: { release: 'http-lb-canary', step: '2' },
    });
    expect(JSON.parse(gate.parameterValues.spec).metadata.name).toBe('http-lb-canary');
    for (const s of p.stages.filter((x: any) => x.alias)) {
      expect(s).not.toHaveProperty('url');
      expect(s).not.toHaveProperty('customHeaders');
    }
  });

  it('no generated pipeline holds a secret or an encrypted: reference, whatever the runner', async () => {
    const forms: Array<[string, (d: any) => void]> = [
      ['preconfigured', (d) => (d.spinnaker.stages = 'preconfigured')],
      [
        'jenkins',
        (d) =>
          Object.assign(d.spinnaker, {
            runner: 'jenkins',
            jenkins: { master: 'ci', job: 'clover-cd-stage' },
          }),
      ],
      [
        'runJob',
        (d) =>
          Object.assign(d.spinnaker, {
            runner: 'runJob',
            runJob: { image: 'registry.example.com/clover-cd/clover-cd:0.1.0' },
          }),
      ],
    ];
    for (const [form, edit] of forms) {
      const file = specWith('sdc-canary', (d) => {
        d.spinnaker.stageServer.auth = {
          env: 'CLOVER_CD_TOKEN',
          spinnaker: `encrypted:k8s!n:clover-cd!k:${MARKER}`,
        };
        d.github.token = { env: 'GITHUB_TOKEN', spinnaker: `encrypted:k8s!n:gh!k:${MARKER}` };
        edit(d);
      });
      const r = await runCli(['pipeline', 'render', file], {
        env: { CLOVER_CD_TOKEN: `${MARKER}-env`, GITHUB_TOKEN: `${MARKER}-gh` },
      });
      expect({ form, code: r.code }).toEqual({ form, code: 0 });
      expect({ form, marker: r.stdout.includes(MARKER), encrypted: r.stdout.includes('encrypted:') }).toEqual(
        { form, marker: false, encrypted: false },
      );
      // SPEC of jenkins stages is base64: decode every such value too.
      const decoded = [...r.stdout.matchAll(/"SPEC": "([A-Za-z0-9+/=]+)"/g)].map((m) =>
        Buffer.from(m[1], 'base64').toString(),
      );
      expect(decoded.join('')).not.toMatch(/MARKER|encrypted:/);
    }
  });

  it('refuses (exit 2, field path, pointing to orca-config) a secret reference with inline webhook stages', async () => {
    const file = specWith(
      'sdc-canary',
      (d) => (d.spinnaker.stageServer.auth = { spinnaker: `encrypted:k8s!n:clover-cd!k:${MARKER}` }),
    );
    for (const args of [
      ['spec', 'validate', file],
      ['pipeline', 'render', file],
    ]) {
      const r = await runCli(args);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('spinnaker.stageServer.auth.spinnaker');
      expect(r.stderr).toContain('pipeline orca-config');
      expect(r.stdout).not.toContain(MARKER);
    }
  });
});

describe('trigger artifacts and parameters', () => {
  it('binds the candidate image under the name Echo gives it: <registry>/<repository>, expected artifact with a tag-parameter default, docker trigger expects it, deployManifest requires it', () => {
    const p = render('examples/sdc-canary.yaml');
    expect(p.parameterConfig).toEqual([
      expect.objectContaining({ name: 'tag', default: 'opnfv-7.0.0', required: false }),
    ]);
    const name = 'index.docker.io/opnfv/clover-ns-nginx-lb';
    expect(p.expectedArtifacts).toEqual([
      expect.objectContaining({
        id: 'candidate-image',
        matchArtifact: { type: 'docker/image', name: 'index\\.docker\\.io/opnfv/clover-ns-nginx-lb' },
        useDefaultArtifact: true,
        defaultArtifact: {
          type: 'docker/image',
          name,
          version: "${parameters['tag']}",
          reference: `${name}:\${parameters['tag']}`,
        },
      }),
    ]);
    expect(p.triggers[0]).toMatchObject({
      type: 'docker',
      registry: 'index.docker.io',
      expectedArtifactIds: ['candidate-image'],
    });
    const deploy = p.stages[0] as any;
    expect(deploy.requiredArtifactIds).toEqual(['candidate-image']);
    expect(deploy.manifests[0].spec.template.spec.containers[0].image).toBe(name);
    // Another registry account: its address is part of the name Echo sends, so of the name the manifest carries.
    const ghcr = render(specWith('sdc-canary', (d) => (d.spinnaker.triggers[0].registry = 'ghcr.io')));
    expect((ghcr.stages[0] as any).manifests[0].spec.template.spec.containers[0].image).toBe(
      'ghcr.io/opnfv/clover-ns-nginx-lb',
    );
    expect((ghcr.expectedArtifacts[0] as any).matchArtifact.name).toBe('ghcr\\.io/opnfv/clover-ns-nginx-lb');
    // No registry anywhere: Docker Hub's address is assumed, and the render says so naming the field.
    const bare = renderPipeline(
      readRenderInput(loadSpec(specWith('sdc-canary', (d) => delete d.spinnaker.triggers[0].registry))),
    );
    expect((bare.pipeline.expectedArtifacts[0] as any).defaultArtifact.name).toBe(name);
    expect(bare.notes.join('\n')).toMatch(
      /spinnaker\.triggers\[0\]\.registry names no registry: assumed index\.docker\.io/,
    );
  });

  const cases: Array<[string, (p: any) => void, RegExp]> = [
    [
      'a requiredArtifactId that is not declared',
      (p) => (p.stages[0].requiredArtifactIds = ['nope']),
      /stages\[0\]\.requiredArtifactIds\[0\].*"nope" is not declared.*artifact-declared/,
    ],
    [
      'a matchArtifact that is not an object',
      (p) => (p.expectedArtifacts[0].matchArtifact = 'docker/image'),
      /expectedArtifacts\[0\]\.matchArtifact.*artifact-match/,
    ],
    [
      'a matchArtifact without type',
      (p) => delete p.expectedArtifacts[0].matchArtifact.type,
      /expectedArtifacts\[0\]\.matchArtifact\.type.*artifact-match/,
    ],
    [
      'a matchArtifact name that is no regex',
      (p) => (p.expectedArtifacts[0].matchArtifact.name = 'opnfv/(x'),
      /expectedArtifacts\[0\]\.matchArtifact\.name.*regular expression.*artifact-match/,
    ],
    [
      'a default artifact without type',
      (p) => (p.expectedArtifacts[0].defaultArtifact = {}),
      /expectedArtifacts\[0\]\.defaultArtifact.*artifact-default/,
    ],
    [
      'a secret reference in a webhook header',
      (p) => (p.stages[1].customHeaders.Authorization = 'Bearer encrypted:k8s!n:x!k:y'),
      /stages\[1\]\.customHeaders\.Authorization.*sent literally.*webhook-secret-reference/,
    ],
    [
      'a trigger expecting an undeclared artifact',
      (p) => (p.triggers[0].expectedArtifactIds = ['other']),
      /triggers\[0\]\.expectedArtifactIds\[0\].*"other".*artifact-declared/,
    ],
  ];
  it.each(cases)('pipeline validate exits 2 for %s, naming the field', async (_label, breakIt, expected) => {
    const p = JSON.parse(JSON.stringify(render('examples/sdc-canary.yaml')));
    breakIt(p);
    const file = join(tmp, `art-${_label.replace(/\W+/g, '-')}.json`);
    writeFileSync(file, JSON.stringify(p));
    const r = await runCli(['pipeline', 'validate', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(expected);
  });

  it('a 3-step canary renders without unrolled retry stages: 14 stages', () => {
    const p = render(
      specWith(
        'sdc-canary',
        (d) => (d.strategy.canary = { steps: [10, 30, 60], window: '10s', maxInconclusive: 2 }),
      ),
    );
    expect(p.stages.length).toBe(2 + 3 * 3 + 3);
    expect(p.stages.filter((s) => /retry|attempt/i.test(s.name))).toEqual([]);
    expect(validatePipelineDocument(JSON.parse(JSON.stringify(p))).errors).toBe(0);
  });
});
