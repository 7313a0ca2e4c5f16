/** Release specs and load plans: mutated real examples and hostile YAML never crash and never pass silently. */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expectedSamples, planFromDocument, renderJmx } from '../../src/jmeter/index.js';
import { parseYamlText, readInputText } from '../../src/spec/input.js';
import { loadSpec, readYamlFile } from '../../src/spec/load.js';
import { canaryWeights, validateSpec } from '../../src/spec/validate.js';
import { expectActionable, mutationOf, params, REPO, setAt, validOrInvalid } from './helpers.js';

const EXAMPLES = join(REPO, 'examples');
const SPECS = ['sdc-canary.yaml', 'sdc-bluegreen.yaml', 'sdc-ab.yaml'].map((f) => ({
  f,
  doc: readYamlFile(join(EXAMPLES, f)),
}));
const PLANS = ['sdc-load.yaml', 'jmeter_testplan.yaml'].map((f) => ({
  f,
  doc: readYamlFile(join(EXAMPLES, f)),
}));

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
          if (s.strategy.canary)
            expect(canaryWeights(s.strategy.canary).every((w) => w >= 0 && w <= 100)).toBe(true);
        }
      }),
      params(),
    );
  });

  it('hostile YAML text is parsed or refused with exit 2, never a crash', () => {
    const fragments = fc.constantFrom(
      'a: &x [*x]\n',
      'b: *nope\n',
      '- - - - -\n',
      '{{{',
      'key: [1, 2\n',
      '!!js/function f\n',
      '? [a]\n: 1\n',
      'a: 1\na: 2\n',
      '\t- x\n',
      '%YAML 9\n',
      '&a a: 1\n',
      'x: !!binary AAAA\n',
      '"\\u0000"\n',
    );
    const text = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.array(fragments, { maxLength: 6 }).map((a) => a.join('')),
    );
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
    for (let i = 1; i < 9; i++)
      levels.push(
        `${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10)
          .fill(`*${String.fromCharCode(96 + i)}`)
          .join(',')}]`,
      );
    const r = validOrInvalid(() => parseYamlText(levels.join('\n'), 'laughs.yaml'));
    expect(r.ok).toBe(false);
  });
});

describe('the text of a spec', () => {
  const dir = mkdtempSync(join(tmpdir(), 'clover-fuzz-text-'));
  let n = 0;
  const write = (ext: string, content: string | Buffer) => {
    const f = join(dir, `s${n++}.${ext}`);
    writeFileSync(f, content);
    return f;
  };

  it('a .json spec is JSON: a trailing comma anywhere is refused naming the line and column', () => {
    const arb = fc.tuple(fc.constantFrom(...SPECS), fc.nat({ max: 2 })).chain(([{ doc }, indent]) => {
      const text = JSON.stringify(doc, null, indent);
      const closers = [...text.matchAll(/[}\]]/g)]
        .map((m) => m.index!)
        .filter((i) => !/[[{]\s*$/.test(text.slice(0, i)));
      return fc.constantFrom(...closers).map((i) => ({ text: `${text.slice(0, i)},${text.slice(i)}`, i }));
    });
    fc.assert(
      fc.property(arb, ({ text, i }) => {
        const f = write('json', text);
        const r = validOrInvalid(() => readYamlFile(f));
        expect(r.ok).toBe(false);
        const line = text.slice(0, i + 1).split('\n').length;
        if (!r.ok)
          expect(r.error.message).toMatch(
            new RegExp(
              `^${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:${line}:\\d+: not valid JSON: a comma before the closing bracket`,
            ),
          );
        expect(readYamlFile(write('yaml', text))).toEqual(JSON.parse(text.slice(0, i) + text.slice(i + 1))); // YAML's flow style takes it
      }),
      params(100),
    );
  });

  it('a duplicated key is refused naming the key and its line', () => {
    const key = fc.oneof(
      fc.stringMatching(/^[a-z][a-zA-Z0-9_-]{0,12}$/),
      fc.string({ minLength: 1, maxLength: 12 }),
    );
    fc.assert(
      fc.property(
        fc.uniqueArray(key, { minLength: 1, maxLength: 5 }),
        fc.nat(),
        fc.boolean(),
        (keys, pick, flow) => {
          const dup = keys[pick % keys.length];
          const entries = [...keys, dup].map((k, i) => `${JSON.stringify(k)}: ${i}`);
          const text = flow ? `{${entries.join(', ')}}\n` : `${entries.join('\n')}\n`;
          const r = validOrInvalid(() => parseYamlText(text, 'dup.yaml'));
          expect(r.ok).toBe(false);
          if (!r.ok)
            expect(r.error.message).toContain(`duplicated mapping key ${JSON.stringify(dup.slice(0, 80))}`);
          if (!r.ok && !flow)
            expect(r.error.problems[0].path).toMatch(new RegExp(`^line ${keys.length + 1}, column`)); // the repeated key is the last line
        },
      ),
      params(150),
    );
  });

  it('a byte that is not UTF-8 is reported at its offset, line and column', () => {
    const bad = fc.constantFrom(
      [0x80],
      [0xc3],
      [0xff],
      [0xfe],
      [0xc0, 0xaf],
      [0xed, 0xa0, 0x80],
      [0xf4, 0x90, 0x80, 0x80],
      [0xe2, 0x82],
    );
    const text = fc
      .string({ minLength: 1, maxLength: 60, unit: 'grapheme' })
      .filter((t) => !t.includes('\u0000') && /\S/.test(t));
    fc.assert(
      fc.property(text, bad, fc.nat(), (t, b, at) => {
        const chars = [...t];
        const cut = at % (chars.length + 1);
        const before = Buffer.from(chars.slice(0, cut).join(''));
        const bytes = Buffer.concat([before, Buffer.from(b), Buffer.from(chars.slice(cut).join(''))]);
        const r = validOrInvalid(() =>
          readInputText(write('yaml', bytes), { maxBytes: 1 << 20, what: 'a release spec' }),
        );
        expect(r.ok).toBe(false);
        const line = before.toString('utf8').split('\n').length;
        if (!r.ok) {
          expect(r.error.message).toContain(`at byte offset ${before.length} is not valid UTF-8`);
          expect(r.error.problems[0].path).toMatch(new RegExp(`^line ${line}, column \\d+$`));
        }
      }),
      params(150),
    );
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

  it('ramp_time and duration are whole seconds: a fraction is refused naming the field, never written to the JMX', () => {
    const seconds = fc.oneof(fc.integer({ min: 0, max: 600 }), fc.double({ min: 0, max: 600, noNaN: true }));
    fc.assert(
      fc.property(
        fc.constantFrom(...PLANS),
        fc.constantFrom('ramp_time', 'duration'),
        seconds,
        ({ f, doc }, field, v) => {
          const r = validOrInvalid(() => planFromDocument(setAt(doc, ['load_spec', field], v), f));
          expect(r.ok).toBe(Number.isInteger(v));
          if (r.ok) expect(renderJmx(r.value)).not.toMatch(/ThreadGroup\.(ramp_time|duration)">[^<]*\./);
          else expect(r.error.problems.map((p) => p.path)).toContain(`load_spec.${field}`);
        },
      ),
      params(150),
    );
  });

  it('every url_list entry needs its name (the label of its samples)', () => {
    fc.assert(
      fc.property(fc.constantFrom(...PLANS), fc.nat(), ({ f, doc }, i) => {
        const k = i % (doc as { url_list: unknown[] }).url_list.length;
        const r = validOrInvalid(() => planFromDocument(setAt(doc, ['url_list', k, 'name'], undefined), f));
        expect(r.ok).toBe(false);
        if (!r.ok) expect(r.error.problems.map((p) => p.path)).toContain(`url_list[${k}].name`);
      }),
      params(50),
    );
  });

  it('a spec whose load.plan names a directory, a device, an empty, binary or its own file is refused', () => {
    const dir = mkdtempSync(join(tmpdir(), 'clover-fuzz-plan-'));
    writeFileSync(join(dir, 'empty.yaml'), '');
    writeFileSync(join(dir, 'binary.yaml'), Buffer.from([0, 1, 2, 255, 0]));
    const base = readYamlFile(join(EXAMPLES, 'sdc-canary.yaml')) as any;
    for (const plan of [
      dir,
      '/dev/zero',
      join(dir, 'empty.yaml'),
      join(dir, 'binary.yaml'),
      join(dir, 'spec.yaml'),
    ]) {
      const spec = { ...base, load: { plan } };
      writeFileSync(join(dir, 'spec.yaml'), JSON.stringify(spec));
      const problems = validateSpec(spec, join(dir, 'spec.yaml'), dir);
      expect(problems.map((p) => p.path)).toContain('load.plan');
      problems.forEach(expectActionable);
    }
  });
});
