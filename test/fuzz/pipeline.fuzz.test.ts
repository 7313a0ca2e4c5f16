/** Pipeline JSON: mutations of the real corpus never crash the validator; every error names a field. */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pipelineJson, renderPipeline } from '../../src/pipelines/render.js';
import { readRenderInput } from '../../src/pipelines/inputs.js';
import { validatePipelineDocument } from '../../src/pipelines/validate.js';
import { parseJsonText } from '../../src/spec/input.js';
import { loadSpec } from '../../src/spec/load.js';
import { CORPUS, expectActionable, mutationOf, params, REPO, validOrInvalid } from './helpers.js';

const corpus = existsSync(CORPUS)
  ? readdirSync(CORPUS)
      .filter((f) => f.endsWith('.json'))
      .flatMap((f) => {
        try {
          return [{ f, doc: JSON.parse(readFileSync(join(CORPUS, f), 'utf8')) as unknown }];
        } catch {
          return []; // the corpus keeps a few files that are not JSON on purpose
        }
      })
  : [];
const rendered = ['sdc-canary.yaml', 'sdc-bluegreen.yaml', 'sdc-ab.yaml'].map((f) => ({
  f,
  doc: JSON.parse(pipelineJson(renderPipeline(readRenderInput(loadSpec(join(REPO, 'examples', f)))).pipeline)) as unknown,
}));
const docs = [...rendered, ...corpus];

function checkValidation(doc: unknown): void {
  const v = validatePipelineDocument(doc);
  expect(v.errors + v.warnings).toBe(v.problems.length);
  for (const p of v.problems) {
    expectActionable(p.message);
    if (p.severity === 'error' && p.rule !== 'document-shape') expect(p.path).not.toBe('');
  }
}

describe('pipeline JSON fuzz', () => {
  it('finds the corpus beside the checkout', () => {
    expect(corpus.length).toBeGreaterThan(20);
  });

  it('a mutated corpus or rendered pipeline never crashes the validator', () => {
    const arb = fc.constantFrom(...docs).chain(({ f, doc }) => mutationOf(doc).map((m) => ({ f, path: m.path, value: m.value, doc: m.doc })));
    fc.assert(fc.property(arb, ({ doc }) => checkValidation(doc)), params(250));
  });

  it('mutated stage lists (non-objects, wrong refIds, cycles) never crash it', () => {
    const stage = fc.oneof(
      fc.constantFrom(5, null, 'x', [], true),
      fc.record(
        {
          refId: fc.oneof(fc.constantFrom('1', '2', '3', '', 1), fc.string({ maxLength: 3 })),
          requisiteStageRefIds: fc.oneof(fc.array(fc.constantFrom('1', '2', '3', '', 7, null), { maxLength: 3 }), fc.constantFrom(null, '1', {})),
          type: fc.constantFrom('wait', 'webhook', 'manualJudgment', 'deployManifest', 'runJobManifest', 'jenkins', 'pipeline', 5),
          name: fc.constantFrom('a', 'b', 'a', undefined),
          statusJsonPath: fc.constantFrom('$.status', '$[[[', "$['a'", '$.', '$..', undefined),
          waitForCompletion: fc.boolean(),
          expectedArtifacts: fc.constantFrom(undefined, [1, null], [{ id: 'x' }, { id: 'x' }], [{}]),
          waitTime: fc.constantFrom("${#stage('a').context.x}", "${#judgment('b')}", 5, '5', 'x'),
        },
        { requiredKeys: ['type'] },
      ),
    );
    const doc = fc.record({ application: fc.constantFrom('app', 5, ''), name: fc.constantFrom('p', null), spelEvaluator: fc.constantFrom('v4', 'v3', 7), stages: fc.array(stage, { maxLength: 8 }), expectedArtifacts: fc.constantFrom(undefined, [1, null], 'x') });
    fc.assert(fc.property(fc.oneof(doc, fc.array(doc, { maxLength: 3 }), doc.map((d) => ({ application: 'a', pipelines: [d] }))), checkValidation), params(300));
  });

  it('random JSON text is parsed or refused naming the file, line and column', () => {
    const text = fc.oneof(fc.string({ maxLength: 120 }), fc.json({ maxDepth: 4 }).map((j) => j.slice(0, Math.max(1, j.length - 1))));
    fc.assert(
      fc.property(text, (t) => {
        const r = validOrInvalid(() => parseJsonText(t, 'fuzz.json'));
        if (!r.ok) expect(r.error.message).toMatch(/^fuzz\.json/);
        else checkValidation(r.value);
      }),
      params(),
    );
  });

  it('a document nested thousands deep is a problem report, not a stack overflow', () => {
    const n = 5000;
    const text = `{"application":"a","name":"p","stages":[${'{"type":"pipeline","stages":['.repeat(n)}{}${']}'.repeat(n)}]}`;
    const r = validOrInvalid(() => parseJsonText(text, 'deep.json'));
    expect(r.ok).toBe(false);
    let doc: any = {};
    for (let i = 0; i < n; i++) doc = { type: 'pipeline', stages: [doc] };
    const v = validatePipelineDocument({ application: 'a', name: 'p', stages: [doc] });
    expect(v.problems[0].rule).toBe('document-bounds');
  });
});
