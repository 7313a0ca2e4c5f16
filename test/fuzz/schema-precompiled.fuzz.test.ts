/**
 * The validators the build precompiles (dist/util/schema-validators.cjs) answer exactly as the schemas compiled
 * at run time: the same problems, in the same order, for mutated examples of every document they check.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { Ajv, type ValidateFunction } from 'ajv';
import fc from 'fast-check';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { readYamlFile } from '../../src/spec/load.js';
import { gateRuleSchemas } from '../../src/spec/gate-schema.js';
import { cloverPlanSchema } from '../../src/spec/load-plan-schema.js';
import { releaseSpecSchema } from '../../src/spec/schema.js';
import { AJV_OPTIONS, problemsOf, schemaKey } from '../../src/util/schema.js';
import { precompiledModule } from '../../src/util/schema-precompile.js';
import { bundleSchema } from '../../src/validators/bundle-schema.js';
import { mutationOf, params, REPO } from './helpers.js';

// Beside the repository's node_modules, so the module's requires of ajv's runtime resolve as in dist/.
const cacheDir = join(REPO, 'node_modules', '.cache');
mkdirSync(cacheDir, { recursive: true });
const dir = mkdtempSync(join(cacheDir, 'schema-precompiled-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const spec = readYamlFile(join(REPO, 'examples/sdc-canary.yaml')) as { gate: { rules: object[] } };
const CASES: Array<{ name: string; schema: object; docs: unknown[] }> = [
  {
    name: 'release spec',
    schema: releaseSpecSchema,
    docs: ['sdc-canary.yaml', 'sdc-bluegreen.yaml', 'sdc-ab.yaml'].map((f) =>
      readYamlFile(join(REPO, 'examples', f)),
    ),
  },
  ...spec.gate.rules.map((rule) => {
    const [kind, body] = Object.entries(rule)[0];
    return { name: `gate rule ${kind}`, schema: gateRuleSchemas[kind], docs: [body] };
  }),
  {
    name: 'Clover load plan',
    schema: cloverPlanSchema,
    docs: [readYamlFile(join(REPO, 'examples/jmeter_testplan.yaml'))],
  },
  {
    name: 'evidence bundle',
    schema: bundleSchema,
    docs: [JSON.parse(readFileSync(join(REPO, 'test/fixtures/bundles/demo-faulty-v2.json'), 'utf8'))],
  },
];

const file = join(dir, 'schema-validators.cjs');
writeFileSync(file, precompiledModule(CASES.map((c) => c.schema)));
const precompiled = createRequire(import.meta.url)(file) as Record<string, ValidateFunction>;
const ajv = new Ajv(AJV_OPTIONS);

describe('precompiled schema validators', () => {
  it('hold one validator per schema, under its key', () => {
    for (const c of CASES) expect(typeof precompiled[schemaKey(c.schema)]).toBe('function');
  });

  it.each(CASES.map((c) => [c.name, c] as const))('%s: mutated documents get the same problems', (_, c) => {
    const built = precompiled[schemaKey(c.schema)];
    const compiled = ajv.compile(c.schema);
    // A mutation of an example where it has fields, and any value at all in its place.
    const withFields = c.docs.filter((d) => d && typeof d === 'object' && Object.keys(d).length);
    const arb = fc.oneof(
      fc.anything().map((doc) => ({ doc })),
      ...(withFields.length ? [fc.constantFrom(...withFields).chain((doc) => mutationOf(doc as never))] : []),
    );
    let invalid = 0;
    fc.assert(
      fc.property(arb, ({ doc }) => {
        const expected = problemsOf(compiled, doc, 'doc.yaml');
        expect(problemsOf(built, doc, 'doc.yaml')).toEqual(expected);
        if (expected.length) invalid++;
      }),
      params(),
    );
    expect(invalid).toBeGreaterThan(0); // the mutations reached the validator's error paths
  });
});
