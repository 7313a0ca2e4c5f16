/**
 * The generators and the local Orca runner against the facts read from Spinnaker's own sources
 * (test/conformance/*.json, each naming the repository, file and commit): how Echo names each trigger's artifacts and
 * when a trigger fires, kork's artifact matching, Orca's artifact resolution, and that every example's triggers bind
 * the candidate image under the name Echo gives it. Not against each other.
 */
import { describe, expect, it } from '@jest/globals';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as yaml from 'js-yaml';
import { artifactMatches, type Artifact } from '../src/pipelines/artifact-match.js';
import { readRenderInput } from '../src/pipelines/inputs.js';
import { fireTrigger } from '../src/pipelines/local-run/index.js';
import { bindArtifacts, prepareTrigger, requiredArtifacts } from '../src/pipelines/local-run/artifacts.js';
import { renderPipeline } from '../src/pipelines/render.js';
import { validatePipelineDocument } from '../src/pipelines/validate.js';
import { loadSpec } from '../src/spec/load.js';
import type { KubeObject } from '../src/services/platform.js';
import { InvalidInputError } from '../src/util/errors.js';

const data = (file: string) => JSON.parse(readFileSync(join('test/conformance', file), 'utf8'));
const echo = data('echo-trigger-artifacts.json');
const kork = data('kork-artifact-matching.json');

type Obj = Record<string, any>;
const noSpel = () => ({
  vars: {},
  stage: () => undefined,
  stageByRefId: () => undefined,
  judgment: () => undefined,
});
const spelOf = (t: Obj) => ({ ...noSpel(), vars: { trigger: t, parameters: t.parameters ?? {} } });
const render = (file: string) =>
  JSON.parse(JSON.stringify(renderPipeline(readRenderInput(loadSpec(file))).pipeline)) as Obj;
const tmp = mkdtempSync(join(tmpdir(), 'conformance-'));
/** The canary example with edits, written to a temp folder (its load plan by absolute path). */
function writeTemp(name: string, edit: (doc: Obj) => void): string {
  const doc = yaml.load(readFileSync('examples/sdc-canary.yaml', 'utf8')) as Obj;
  doc.load.plan = resolve('examples', doc.load.plan);
  edit(doc);
  const file = join(tmp, name);
  writeFileSync(file, yaml.dump(doc));
  return file;
}
const refusal = (f: () => unknown): string => {
  try {
    f();
  } catch (err) {
    if (err instanceof InvalidInputError) return err.message;
    throw err;
  }
  throw new Error('expected exit 2, the pipeline started');
};
/** The image the candidate Deployment runs once Orca binds the trigger and Clouddriver replaces the image. */
function deployedImage(pipeline: Obj, event: Obj | undefined): string {
  const { bound } = prepareTrigger(pipeline, event as never, spelOf);
  const deploy = pipeline.stages[0];
  const { manifests } = bindArtifacts(deploy.manifests as KubeObject[], requiredArtifacts(deploy, bound));
  return (manifests[0].spec as Obj).template.spec.containers[0].image;
}

describe("kork's ExpectedArtifact.matches (kork-artifact-matching.json)", () => {
  it.each(kork.matches.vectors as Obj[])('$match against $artifact: $matches', (v) => {
    expect(artifactMatches(v.match, v.artifact)).toBe(v.matches);
  });
});

describe('how Echo names trigger artifacts (echo-trigger-artifacts.json)', () => {
  const pipelineWith = (trigger: Obj, matchName?: string): Obj => ({
    triggers: [{ enabled: true, ...trigger, ...(matchName ? { expectedArtifactIds: ['a'] } : {}) }],
    expectedArtifacts: matchName
      ? [{ id: 'a', matchArtifact: { type: 'docker/image', name: matchName } }]
      : [],
  });

  it.each(echo.triggers.docker.vectors as Obj[])(
    'a docker push of $event.repository to $event.registry carries $artifact.name',
    (v) => {
      const p = pipelineWith({
        type: 'docker',
        account: v.event.account,
        registry: v.event.registry,
        repository: v.event.repository,
      });
      expect(fireTrigger(p, { type: 'docker', tag: v.event.tag }).artifacts).toEqual([v.artifact]);
    },
  );

  it.each(echo.triggers.docker.tagVectors as Obj[])(
    'docker tag pattern $pattern and tag $tag: fires $fires',
    (v) => {
      const p = pipelineWith({
        type: 'docker',
        account: 'hub',
        repository: 'org/app',
        ...(v.pattern === null ? {} : { tag: v.pattern }),
      });
      const fire = () => fireTrigger(p, { type: 'docker', tag: v.tag });
      if (v.fires) expect(fire().artifacts).toHaveLength(1);
      else expect(refusal(fire)).toMatch(/Echo would not start the pipeline: tag/);
    },
  );

  it.each(echo.gate.vectors as Obj[])(
    'a trigger listing $expectedArtifactIds fires for event artifacts $eventArtifacts: $fires',
    (v) => {
      const p: Obj = {
        triggers: [
          { type: 'webhook', enabled: true, source: 'ci', expectedArtifactIds: v.expectedArtifactIds },
        ],
        expectedArtifacts: v.matchArtifact ? [{ id: 'a', matchArtifact: v.matchArtifact }] : [],
      };
      const fire = () =>
        fireTrigger(p, { type: 'webhook', source: 'ci', payload: { artifacts: v.eventArtifacts } });
      if (v.fires) expect(fire().artifacts).toEqual(v.eventArtifacts);
      else expect(refusal(fire)).toMatch(/match none of the event's artifacts/);
    },
  );

  it.each(echo.triggers.webhook.vectors as Obj[])(
    'a webhook from $source carries the artifacts Echo extracts',
    (v) => {
      const fired = fireTrigger(pipelineWith({ type: 'webhook', source: v.source }), {
        type: 'webhook',
        source: v.source,
        payload: v.payload,
      });
      expect(fired.artifacts).toEqual(v.artifacts);
      expect(fired.trigger.parameters).toEqual(v.payload.parameters ?? {});
    },
  );

  it.each(echo.triggers.git.vectors as Obj[])('a GitHub push carries github/file artifacts', (v) => {
    const p = pipelineWith({
      type: 'git',
      source: 'github',
      project: 'opnfv',
      slug: 'clover',
      branch: '^main$',
    });
    expect(fireTrigger(p, { type: 'git', payload: v.payload }).artifacts).toEqual(v.artifacts);
    expect(refusal(() => fireTrigger(p, { type: 'git', branch: 'dev', payload: v.payload }))).toMatch(
      /branch "dev" does not fully match/,
    );
  });

  it.each(echo.triggers.jenkins.propertyFileTemplate.vectors as Obj[])(
    "a Jenkins build whose property file is $properties carries Igor's artifacts",
    (v) => {
      const p = pipelineWith({
        type: 'jenkins',
        master: 'ci',
        job: 'build',
        propertyFile: 'build.properties',
      });
      expect(fireTrigger(p, { type: 'jenkins', properties: v.properties }).artifacts).toEqual(v.artifacts);
    },
  );
});

describe('every example binds the candidate image the way Echo names it, in the local runner', () => {
  const examples = ['sdc-canary', 'sdc-canary-preconfigured', 'sdc-bluegreen', 'sdc-ab'];
  const docker = examples.filter((e) =>
    (yaml.load(readFileSync(`examples/${e}.yaml`, 'utf8')) as Obj).spinnaker.triggers.some(
      (t: Obj) => t.type === 'docker',
    ),
  );

  it('the examples with a docker trigger are the canary ones', () =>
    expect(docker).toEqual(['sdc-canary', 'sdc-canary-preconfigured']));

  it.each(docker)(
    '%s: a push fires the trigger and deploys exactly the pushed image; validate finds nothing to say about the trigger',
    (example) => {
      const p = render(`examples/${example}.yaml`);
      const t = p.triggers.find((x: Obj) => x.type === 'docker');
      const event = echo.triggers.docker.vectors[0].event;
      expect({ account: t.account, registry: t.registry, repository: t.repository }).toEqual({
        account: event.account,
        registry: event.registry,
        repository: event.repository,
      });
      expect(deployedImage(p, { type: 'docker', tag: 'opnfv-7.1.0' })).toBe(
        echo.triggers.docker.vectors[0].artifact.reference,
      );
      const v = validatePipelineDocument(p);
      expect(v.problems.filter((x) => x.path.startsWith('triggers') || /trigger/.test(x.rule))).toEqual([]);
    },
  );

  it('the name the renderer used to write (the repository without registry) never fires: the local run starts nothing, validate says why', () => {
    const p = render('examples/sdc-canary.yaml');
    p.expectedArtifacts[0].matchArtifact.name = 'opnfv/clover-ns-nginx-lb';
    expect(refusal(() => prepareTrigger(p, { type: 'docker', tag: 'opnfv-7.1.0' }, spelOf))).toMatch(
      /Echo would not start the pipeline: triggers\[0\] lists expected artifact\(s\) candidate-image.*index\.docker\.io\/opnfv\/clover-ns-nginx-lb/,
    );
    const errors = validatePipelineDocument(p).problems.filter((x) => x.severity === 'error');
    expect(errors).toEqual([
      expect.objectContaining({ path: 'expectedArtifacts[0].matchArtifact', rule: 'trigger-artifact-name' }),
    ]);
  });

  it('a docker trigger without a registry is a validate warning naming the field and the name assumed', () => {
    const p = render('examples/sdc-canary.yaml');
    delete p.triggers[0].registry;
    const warnings = validatePipelineDocument(p).problems.filter((x) => x.rule === 'trigger-docker-registry');
    expect(warnings).toEqual([
      expect.objectContaining({ severity: 'warning', path: 'triggers[0].registry' }),
    ]);
    expect(warnings[0].message).toContain('"index.docker.io/opnfv/clover-ns-nginx-lb"');
  });

  it('a docker trigger whose repository starts with a registry host is refused by the spec (Echo compares it without the host)', () => {
    const file = writeTemp(
      'host-in-repository.yaml',
      (d) => (d.spinnaker.triggers[0].repository = 'index.docker.io/opnfv/clover-ns-nginx-lb'),
    );
    let problems: unknown[] = [];
    try {
      loadSpec(file);
    } catch (err) {
      problems = (err as InvalidInputError).problems;
    }
    expect(problems).toEqual([
      expect.objectContaining({
        path: 'spinnaker.triggers[0].repository',
        message: expect.stringContaining('put "index.docker.io" in registry'),
      }),
    ]);
  });

  it('a manual start deploys the tag parameter (or its default) under the same name', () => {
    const p = render('examples/sdc-canary.yaml');
    expect(deployedImage(p, undefined)).toBe('index.docker.io/opnfv/clover-ns-nginx-lb:opnfv-7.0.0');
    expect(deployedImage(p, { type: 'manual', parameters: { tag: 'opnfv-7.2.0' } })).toBe(
      'index.docker.io/opnfv/clover-ns-nginx-lb:opnfv-7.2.0',
    );
  });

  it("sdc-bluegreen's Jenkins trigger: a build whose property file names the image (Igor's DOCKER template) deploys it; any other build fires too and deploys the tag parameter", () => {
    const p = render('examples/sdc-bluegreen.yaml');
    expect(p.triggers[0].expectedArtifactIds).toBeUndefined();
    const [v] = echo.triggers.jenkins.propertyFileTemplate.vectors;
    expect(deployedImage(p, { type: 'jenkins', properties: v.properties })).toBe(v.artifacts[0].reference);
    expect(deployedImage(p, { type: 'jenkins', properties: { version: '42' } })).toBe(
      'index.docker.io/opnfv/clover-ns-nginx-lb:opnfv-7.0.0',
    );
  });

  it("sdc-ab's git trigger carries only github/file artifacts: the push fires and deploys the tag parameter", () => {
    const p = render('examples/sdc-ab.yaml');
    expect(deployedImage(p, { type: 'git', payload: echo.triggers.git.vectors[0].payload })).toBe(
      'index.docker.io/opnfv/clover-ns-nginx-lb:opnfv-7.0.0',
    );
  });

  it('webhook and pipeline triggers: a Docker Hub webhook and an upstream pipeline that produced the image deploy it; without it, the tag parameter', () => {
    const file = writeTemp('webhook-pipeline.yaml', (d) => {
      d.spinnaker.triggers = [
        { type: 'webhook', source: 'dockerhub' },
        { type: 'pipeline', application: 'sdc', pipeline: 'build-http-lb' },
      ];
    });
    const p = render(file);
    expect(p.triggers.map((t: Obj) => t.expectedArtifactIds)).toEqual([undefined, ['candidate-image']]);
    const hub = echo.triggers.webhook.vectors[0];
    expect(deployedImage(p, { type: 'webhook', source: 'dockerhub', payload: hub.payload })).toBe(
      hub.artifacts[0].reference,
    );
    expect(
      deployedImage(p, {
        type: 'webhook',
        source: 'dockerhub',
        payload: { parameters: { tag: 'opnfv-7.3.0' } },
      }),
    ).toBe('index.docker.io/opnfv/clover-ns-nginx-lb:opnfv-7.3.0');
    const produced: Artifact = {
      type: 'docker/image',
      name: 'index.docker.io/opnfv/clover-ns-nginx-lb',
      version: 'opnfv-7.4.0',
      reference: 'index.docker.io/opnfv/clover-ns-nginx-lb:opnfv-7.4.0',
    };
    expect(deployedImage(p, { type: 'pipeline', parentArtifacts: [produced] })).toBe(produced.reference);
    expect(deployedImage(p, { type: 'pipeline' })).toBe(
      'index.docker.io/opnfv/clover-ns-nginx-lb:opnfv-7.0.0',
    );
    // Orca refuses an expected artifact that matches two incoming artifacts.
    expect(
      refusal(() =>
        deployedImage(p, {
          type: 'pipeline',
          parentArtifacts: [
            produced,
            { ...produced, version: 'x', reference: 'index.docker.io/opnfv/clover-ns-nginx-lb:x' },
          ],
        }),
      ),
    ).toMatch(/matches multiple artifacts/);
  });
});

describe("Orca's artifact resolution at start (kork-artifact-matching.json resolution)", () => {
  it("an expected artifact the trigger lists, with no match and no default, fails the start with Orca's message", () => {
    const p: Obj = {
      triggers: [
        { type: 'pipeline', enabled: true, application: 'a', pipeline: 'b', expectedArtifactIds: ['x'] },
      ],
      expectedArtifacts: [{ id: 'x', matchArtifact: { type: 'docker/image', name: 'n' } }],
    };
    expect(refusal(() => prepareTrigger(p, { type: 'pipeline' }, spelOf))).toMatch(
      /^Unmatched expected artifact .* could not be resolved/,
    );
  });
});
