/** Pipeline JSON: mutations of the real corpus never crash the validator; every error names a field. */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pipelineJson, renderPipeline } from '../../src/pipelines/render.js';
import { readRenderInput } from '../../src/pipelines/inputs.js';
import { validatePipelineDocument } from '../../src/pipelines/validate.js';
import { parseJsonText } from '../../src/spec/input.js';
import { jsonErrorOffset } from '../../src/util/json-offset.js';
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
  doc: JSON.parse(
    pipelineJson(renderPipeline(readRenderInput(loadSpec(join(REPO, 'examples', f)))).pipeline),
  ) as unknown,
}));
const docs = [...rendered, ...corpus];

/** The configs Front50 would be asked to save, with the application each inherits from a Dinghy wrapper. */
function configsOf(doc: unknown): Array<{ config: Record<string, unknown>; application?: unknown }> {
  if (Array.isArray(doc)) return doc.map((config) => ({ config }));
  const d = doc as Record<string, unknown>;
  if (Array.isArray(d.pipelines) && !('stages' in d))
    return d.pipelines.map((config) => ({ config, application: d.application }));
  return [{ config: d }];
}
const nonEmpty = (v: unknown) => typeof v === 'string' && v.trim() !== '';

function checkValidation(doc: unknown): void {
  const v = validatePipelineDocument(doc);
  expect(v.errors + v.warnings).toBe(v.problems.length);
  for (const p of v.problems) {
    expectActionable(p.message);
    if (p.severity === 'error' && p.rule !== 'document-shape') expect(p.path).not.toBe('');
  }
  // Nothing Front50 refuses is valid: at least one pipeline, each with a name and an application.
  if (v.errors === 0) {
    const configs = configsOf(doc);
    expect(configs.length).toBeGreaterThan(0);
    for (const { config, application } of configs)
      expect([nonEmpty(config.name), nonEmpty(config.application ?? application)]).toEqual([true, true]);
  }
}

describe('pipeline JSON fuzz', () => {
  it('finds the corpus beside the checkout', () => {
    expect(corpus.length).toBeGreaterThan(20);
  });

  it('a mutated corpus or rendered pipeline never crashes the validator', () => {
    const arb = fc
      .constantFrom(...docs)
      .chain(({ f, doc }) => mutationOf(doc).map((m) => ({ f, path: m.path, value: m.value, doc: m.doc })));
    fc.assert(
      fc.property(arb, ({ doc }) => checkValidation(doc)),
      params(250),
    );
  });

  it('mutated stage lists (non-objects, wrong refIds, cycles) never crash it', () => {
    const stage = fc.oneof(
      fc.constantFrom(5, null, 'x', [], true),
      fc.record(
        {
          refId: fc.oneof(fc.constantFrom('1', '2', '3', '', 1), fc.string({ maxLength: 3 })),
          requisiteStageRefIds: fc.oneof(
            fc.array(fc.constantFrom('1', '2', '3', '', 7, null), { maxLength: 3 }),
            fc.constantFrom(null, '1', {}),
          ),
          type: fc.constantFrom(
            'wait',
            'webhook',
            'manualJudgment',
            'deployManifest',
            'runJobManifest',
            'jenkins',
            'pipeline',
            5,
          ),
          name: fc.constantFrom('a', 'b', 'a', undefined),
          statusJsonPath: fc.constantFrom('$.status', '$[[[', "$['a'", '$.', '$..', undefined),
          waitForCompletion: fc.boolean(),
          expectedArtifacts: fc.constantFrom(undefined, [1, null], [{ id: 'x' }, { id: 'x' }], [{}]),
          waitTime: fc.constantFrom("${#stage('a').context.x}", "${#judgment('b')}", 5, '5', 'x'),
        },
        { requiredKeys: ['type'] },
      ),
    );
    const doc = fc.record({
      application: fc.constantFrom('app', 5, ''),
      name: fc.constantFrom('p', null),
      spelEvaluator: fc.constantFrom('v4', 'v3', 7),
      stages: fc.array(stage, { maxLength: 8 }),
      expectedArtifacts: fc.constantFrom(undefined, [1, null], 'x'),
    });
    fc.assert(
      fc.property(
        fc.oneof(
          doc,
          fc.array(doc, { maxLength: 3 }),
          doc.map((d) => ({ application: 'a', pipelines: [d] })),
        ),
        checkValidation,
      ),
      params(300),
    );
  });

  it('random JSON text is parsed or refused naming the file, line and column', () => {
    // Broken JSON: cut short, a trailing comma, a character dropped or doubled.
    const broken = fc
      .tuple(fc.json({ maxDepth: 4 }), fc.nat(), fc.constantFrom('cut', 'comma', 'drop', 'double'))
      .map(([j, n, how]) => {
        const i = n % j.length;
        return how === 'cut'
          ? j.slice(0, i)
          : how === 'comma'
            ? j.replace(/([}\]])$/, ',$1')
            : how === 'drop'
              ? j.slice(0, i) + j.slice(i + 1)
              : j.slice(0, i + 1) + j.slice(i);
      });
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 120 }), broken), (t) => {
        const r = validOrInvalid(() => parseJsonText(t, 'fuzz.json'));
        let strict = true;
        try {
          JSON.parse(t);
        } catch (err) {
          strict = false;
          // Where V8 names a position, the message names the same line and column.
          const at = /at position (\d+)/.exec((err as Error).message);
          if (at) expect(jsonErrorOffset(t)).toBe(Number(at[1]));
        }
        expect(jsonErrorOffset(t) === undefined).toBe(strict);
        // Not JSON: refused naming the line and column. JSON: parsed, or refused by the bounds (1e999 is no finite number).
        if (!strict)
          expect(r.ok ? 'parsed' : r.error.message).toMatch(/^fuzz\.json:\d+:\d+: not valid JSON: \S/);
        else if (!r.ok) expect(r.error.message).not.toMatch(/not valid JSON/);
        else checkValidation(r.value);
      }),
      params(),
    );
  });

  it('an empty list is no pipeline, and a pipeline without name or application is refused as Front50 refuses it', () => {
    expect(validatePipelineDocument([]).problems).toEqual([
      expect.objectContaining({ severity: 'error', rule: 'document-shape' }),
    ]);
    expect(validatePipelineDocument({ application: 'a', pipelines: [] }).problems).toEqual([
      expect.objectContaining({ severity: 'error', path: 'pipelines' }),
    ]);
    const base = rendered[0].doc as Record<string, unknown>;
    for (const key of ['name', 'application']) {
      const { [key]: _gone, ...rest } = base;
      expect(validatePipelineDocument(rest).problems.filter((p) => p.severity === 'error')).toEqual([
        expect.objectContaining({ path: key, rule: 'pipeline-identity' }),
      ]);
    }
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
