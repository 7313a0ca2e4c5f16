/** Release specs and load plans: mutated real examples and hostile YAML never crash and never pass silently. */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expectedSamples, planFromDocument, renderJmx } from '../../src/jmeter/index.js';
import { parseYamlText } from '../../src/spec/input.js';
import { loadSpec, readYamlFile } from '../../src/spec/load.js';
import { canaryWeights, validateSpec } from '../../src/spec/validate.js';
import { expectActionable, mutationOf, params, REPO, validOrInvalid } from './helpers.js';

const EXAMPLES = join(REPO, 'examples');
const SPECS = ['sdc-canary.yaml', 'sdc-bluegreen.yaml', 'sdc-ab.yaml'].map((f) => ({ f, doc: readYamlFile(join(EXAMPLES, f)) }));
const PLANS = ['sdc-load.yaml', 'jmeter_testplan.yaml'].map((f) => ({ f, doc: readYamlFile(join(EXAMPLES, f)) }));

describe('release spec fuzz', () => {
  it('the examples stay valid', () => {
    for (const { f } of SPECS) expect(() => loadSpec(join(EXAMPLES, f))).not.toThrow();
  });

  it('a mutated example is valid or every problem names a field and says what was found', () => {
    const arb = fc.constantFrom(...SPECS).chain(({ f, doc }) => mutationOf(doc).map((m) => ({ f, ...m })));
    fc.assert(
      fc.property(arb, ({ f, doc }) => {
        const problems = validateSpec(doc, f, EXAMPLES);
        for (const p of problems) {
          expect(p.file).toBe(f);
          expectActionable(p);
        }
        if (problems.length === 0) {
          const s = doc as any;
          if (s.strategy.canary) expect(canaryWeights(s.strategy.canary).every((w) => w >= 0 && w <= 100)).toBe(true);
        }
      }),
      params(),
    );
  });

  it('hostile YAML text is parsed or refused with exit 2, never a crash', () => {
    const fragments = fc.constantFrom('a: &x [*x]\n', 'b: *nope\n', '- - - - -\n', '{{{', 'key: [1, 2\n', '!!js/function f\n', '? [a]\n: 1\n', 'a: 1\na: 2\n', '\t- x\n', '%YAML 9\n', '&a a: 1\n', 'x: !!binary AAAA\n', '"\\u0000"\n');
    const text = fc.oneof(fc.string({ maxLength: 200 }), fc.array(fragments, { maxLength: 6 }).map((a) => a.join('')));
    fc.assert(
      fc.property(text, (t) => {
        const r = validOrInvalid(() => parseYamlText(t, 'fuzz.yaml'));
        if (!r.ok) expect(r.error.message).toContain('fuzz.yaml');
        else validateSpec(r.value, 'fuzz.yaml').forEach(expectActionable);
      }),
      params(),
    );
  });

  it('alias expansion is bounded ("billion laughs")', () => {
    const levels = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]'];
    for (let i = 1; i < 9; i++) levels.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10).fill(`*${String.fromCharCode(96 + i)}`).join(',')}]`);
    const r = validOrInvalid(() => parseYamlText(levels.join('\n'), 'laughs.yaml'));
    expect(r.ok).toBe(false);
  });
});

describe('load plan fuzz', () => {
  it('a mutated plan is valid (and renders) or refused naming the field', () => {
    const arb = fc.constantFrom(...PLANS).chain(({ f, doc }) => mutationOf(doc).map((m) => ({ f, ...m })));
    fc.assert(
      fc.property(arb, ({ f, doc }) => {
        const r = validOrInvalid(() => planFromDocument(doc, f));
        if (r.ok) {
          const e = expectedSamples(r.value);
          if (e) expect(Number.isFinite(e.total)).toBe(true);
          expect(renderJmx(r.value)).toContain('<jmeterTestPlan');
        } else expect(r.error.problems.length).toBeGreaterThan(0);
      }),
      params(),
    );
  });

  it('a spec whose load.plan names a directory, a device, an empty, binary or its own file is refused', () => {
    const dir = mkdtempSync(join(tmpdir(), 'clover-fuzz-plan-'));
    writeFileSync(join(dir, 'empty.yaml'), '');
    writeFileSync(join(dir, 'binary.yaml'), Buffer.from([0, 1, 2, 255, 0]));
    const base = readYamlFile(join(EXAMPLES, 'sdc-canary.yaml')) as any;
    for (const plan of [dir, '/dev/zero', join(dir, 'empty.yaml'), join(dir, 'binary.yaml'), join(dir, 'spec.yaml')]) {
      const spec = { ...base, load: { plan } };
      writeFileSync(join(dir, 'spec.yaml'), JSON.stringify(spec));
      const problems = validateSpec(spec, join(dir, 'spec.yaml'), dir);
      expect(problems.map((p) => p.path)).toContain('load.plan');
      problems.forEach(expectActionable);
    }
  });
});
