import { describe, expect, it } from '@jest/globals';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as yaml from 'js-yaml';
import { loadSpec } from '../src/spec/load.js';
import { canaryWeights, validateSpec } from '../src/spec/validate.js';
import { SPEC_TEMPLATE, specTemplate } from '../src/spec/init-template.js';
import { InvalidInputError } from '../src/util/errors.js';
import { MESHES, meshOf } from '../src/routers/index.js';

const base = () => yaml.load(readFileSync('examples/sdc-canary.yaml', 'utf8')) as Record<string, any>;
const problemsOf = (doc: unknown) =>
  validateSpec(doc, 'spec.yaml', 'examples').map((p) => `${p.path}: ${p.message}`);

describe('release spec', () => {
  it.each(['sdc-canary', 'sdc-canary-gateway-api', 'sdc-bluegreen', 'sdc-ab', 'sdc-metric-rule'])(
    'example %s is valid',
    (name) => {
      const loaded = loadSpec(`examples/${name}.yaml`);
      expect(loaded.spec.service.stable).toBe('v1');
      expect(loaded.spec.service.candidate).toBe('v2');
    },
  );

  it('spec init template is valid', () => {
    expect(validateSpec(yaml.load(SPEC_TEMPLATE), 'init.yaml', '.')).toEqual([]);
    const gatewayApi = specTemplate('gateway-api');
    expect(validateSpec(yaml.load(gatewayApi), 'init.yaml', '.')).toEqual([]);
    expect((yaml.load(gatewayApi) as { service: object }).service).toMatchObject({
      mesh: 'gateway-api',
      httpRoute: 'http-lb',
      backends: { stable: 'http-lb-v1', candidate: 'http-lb-v2' },
    });
  });

  it('expands stepWeight/maxWeight into steps', () => {
    expect(canaryWeights({ stepWeight: 20, maxWeight: 60, window: '1m' })).toEqual([20, 40, 60]);
    expect(canaryWeights({ stepWeight: 10, window: '1m' })).toEqual([10, 20, 30, 40, 50]);
  });

  it('names unknown keys with a suggestion', () => {
    const doc = base();
    doc.service.versionLable = 'version';
    expect(problemsOf(doc)).toEqual([
      expect.stringMatching(
        /^service\.versionLable: unknown key "versionLable" \(did you mean "versionLabel"\?\)/,
      ),
    ]);
  });

  it('service.mesh: istio by default, another name is refused with the registered meshes', () => {
    const doc = base();
    expect(problemsOf(doc)).toEqual([]);
    doc.service.mesh = 'istio';
    expect(problemsOf(doc)).toEqual([]);
    doc.service.mesh = 'linkerd';
    expect(problemsOf(doc)).toEqual([
      `service.mesh: expected one of ${MESHES.map((m) => JSON.stringify(m)).join(', ')}, found string "linkerd"`,
    ]);
    // A spec that reached the engine without the schema (a hand-built object) is refused the same way.
    const err = (() => {
      try {
        return meshOf(doc as never);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(InvalidInputError);
    expect((err as InvalidInputError).problems).toEqual([
      { path: 'service.mesh', message: `expected one of ${MESHES.join(', ')}, got "linkerd"` },
    ]);
    expect(meshOf(base() as never).name).toBe('istio');
  });

  it('reports wrong types with expected and found', () => {
    const doc = base();
    doc.service.port = '9180';
    expect(problemsOf(doc)).toEqual(['service.port: expected integer, found string "9180"']);
  });

  it('refuses weights above 100 and weights that do not increase', () => {
    const doc = base();
    doc.strategy.canary.steps = [10, 150];
    expect(problemsOf(doc)).toEqual(['strategy.canary.steps[1]: expected a number <= 100, found number 150']);
    doc.strategy.canary.steps = [10, 50, 30];
    expect(problemsOf(doc)).toEqual(['strategy.canary.steps[2]: weights must increase: 30 follows 50']);
  });

  it('refuses a window shorter than two scrapes', () => {
    const doc = base();
    doc.gate.metrics = { source: 'prometheus', scrapeInterval: '15s' };
    doc.strategy.canary.window = '20s';
    expect(problemsOf(doc)).toEqual([
      'strategy.canary.window: window 20s is shorter than the gate needs: two scrapes at 15s take 30s',
    ]);
  });

  it('requires exactly one strategy', () => {
    const doc = base();
    doc.strategy.blueGreen = { previewWindow: '30s' };
    expect(problemsOf(doc)).toEqual(['strategy: choose one strategy, found canary and blueGreen']);
  });

  it('checks gate rules by kind, with suggestions', () => {
    const doc = base();
    doc.gate.rules = [
      { errorRat: { max: '1%' } },
      { latency: { percentile: 95, max: 'fast' } },
      { errorRate: { max: 1 } },
    ];
    expect(problemsOf(doc)).toEqual([
      expect.stringMatching(
        /^gate\.rules\[0\]\.errorRat: unknown rule "errorRat" \(did you mean "errorRate"\?\)/,
      ),
      'gate.rules[1].latency.max: expected a duration such as 30s, 2m, found string "fast"',
      'gate.rules[2].errorRate.max: expected string, found number 1',
    ]);
  });

  it('validates triggers by type and a missing load plan file', () => {
    const doc = base();
    doc.spinnaker.triggers = [{ type: 'jenkins', master: 'ci' }];
    doc.load.plan = 'missing.yaml';
    const problems = problemsOf(doc);
    expect(problems).toContain('spinnaker.triggers[0].job: required field is missing');
    expect(problems.some((p) => p.startsWith('load.plan: file not found'))).toBe(true);
  });

  it('throws an exit-2 error with the file name for YAML syntax errors', () => {
    const dir = mkdtempSync(join(tmpdir(), 'spec-'));
    const file = join(dir, 'broken.yaml');
    writeFileSync(file, 'apiVersion: clover-cd/v1\nkind: [Release\n');
    let err: unknown;
    try {
      loadSpec(file);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidInputError);
    expect((err as InvalidInputError).exitCode).toBe(2);
    expect((err as Error).message).toMatch(/broken\.yaml:\d+:\d+: not valid YAML/);
  });
});

describe('gate rule references', () => {
  it('refuses unknown hops, fan-out of an unlisted hop, and malformed labels', () => {
    const doc = base();
    doc.gate.rules = [
      { conservation: { hops: ['proxy-access-control', 'http-lbb'], fanOut: { 'http-lb': 2 } } },
      { count: { route: 'url3', status: 4040, expect: 'all' } },
    ];
    const problems = problemsOf(doc);
    expect(problems).toContain(
      'gate.rules[0].conservation.hops: the released service "http-lb" must be one of the hops [proxy-access-control, http-lbb]',
    );
    expect(problems).toContainEqual(
      expect.stringMatching(
        /^gate\.rules\[0\]\.conservation\.fanOut\.http-lb: unknown hop "http-lb" \(did you mean "http-lbb"\?\)/,
      ),
    );
    expect(problems).toContain(
      'gate.rules[1].count.route: expected a URL path starting with /, found string "url3"',
    );
    expect(problems).toContainEqual(expect.stringMatching(/^gate\.rules\[1\]\.count\.status: expected/));
  });

  it('accepts status classes and paths', () => {
    const doc = base();
    doc.gate.rules = [
      { count: { route: '/url3', status: '4xx', expect: 'all' } },
      { share: { userAgent: 'chrome', expect: '33%', tolerance: '3%' } },
    ];
    expect(problemsOf(doc)).toEqual([]);
  });
});
