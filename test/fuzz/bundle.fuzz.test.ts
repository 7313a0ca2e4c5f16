/** Evidence bundles: a mutated real bundle is refused naming the field, or judged without a crash. */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundleProblems } from '../../src/validators/bundle-schema.js';
import { judgeBundle, readBundle, type EvidenceBundle } from '../../src/validators/index.js';
import { expectActionable, mutationOf, params, REPO, setAt, validOrInvalid } from './helpers.js';

const DIR = join(REPO, 'test/fixtures/bundles');
const bundles = readdirSync(DIR)
  .filter((f) => f.endsWith('.json'))
  .map((f) => ({ f, doc: JSON.parse(readFileSync(join(DIR, f), 'utf8')) as EvidenceBundle }));

/** Small copies (a few trace durations) so a mutation hits the structure, not one of 40,000 numbers. */
const small = bundles.map(({ f, doc }) => {
  const d = structuredClone(doc);
  if (d.evidence.traces)
    for (const k of Object.keys(d.evidence.traces.durations))
      d.evidence.traces.durations[k] = d.evidence.traces.durations[k].slice(0, 20);
  if (d.verdict) d.verdict.results = d.verdict.results.slice(0, 2);
  return { f, doc: d };
});

describe('evidence bundle fuzz', () => {
  it('real bundles (current and trimmed) replay through readBundle', () => {
    for (const { f, doc } of bundles) {
      const b = readBundle(join(DIR, f));
      expect(judgeBundle(b).outcome).toBe(doc.verdict?.outcome ?? judgeBundle(b).outcome);
    }
  });

  it('a mutated bundle is refused naming the field, or judged without an exception', () => {
    const arb = fc.constantFrom(...small).chain(({ f, doc }) => mutationOf(doc).map((m) => ({ f, ...m })));
    fc.assert(
      fc.property(arb, ({ f, doc }) => {
        const problems = bundleProblems(doc, f);
        problems.forEach(expectActionable);
        if (problems.length === 0) {
          const v = judgeBundle(doc as EvidenceBundle);
          expect(['pass', 'fail', 'inconclusive', 'error']).toContain(v.outcome);
          expectActionable(v.summary);
          // A bundle that passes the schema can be judged: it has rules, and none lacks what the bundle records.
          expect(v.results.length).toBeGreaterThan(0);
          expect(v.results.filter((r) => /weight is not known/.test(r.reason))).toEqual([]);
        }
      }),
      params(300),
    );
  });

  it('the shapes the issue found are refused with their field', () => {
    const b = small[0].doc;
    const cases: Array<[Array<string | number>, unknown, string]> = [
      [['evidence'], null, 'evidence'],
      [['rules', 0, 'conservation', 'hops'], null, 'rules[0].conservation.hops'],
      [['rules'], [null], 'rules[0]'],
      [['window'], { start: 'a', end: 'b' }, 'window.start'],
      [['window', 'end'], 1, 'window.end'],
      [['candidateWeight'], 150, 'candidateWeight'],
      [['rules'], [], 'rules'],
      [['evidence', 'traces', 'durations', 'v1'], ['a', null, {}], 'evidence.traces.durations.v1[0]'],
    ];
    for (const [path, value, field] of cases) {
      const problems = bundleProblems(setAt(b, path, value), 'b.json');
      expect(problems.map((p) => p.path)).toContain(field);
    }
    const { release: _r, ...noRelease } = b;
    expect(bundleProblems(noRelease, 'b.json').map((p) => p.path)).toContain('release');
    // Without the configured weight the split rule cannot be judged: invalid input (2), not inconclusive (3).
    const { candidateWeight: _w, ...noWeight } = b;
    expect(bundleProblems(noWeight, 'b.json')).toEqual([
      expect.objectContaining({ path: 'candidateWeight', message: expect.stringMatching(/split/) }),
    ]);
    expect(bundleProblems({ ...noWeight, rules: b.rules.filter((r) => !('split' in r)) }, 'b.json')).toEqual(
      [],
    );
  });

  it('text that is not a bundle is refused by readBundle with exit 2', () => {
    const dir = mkdtempSync(join(tmpdir(), 'clover-fuzz-bundle-'));
    const text = fc.oneof(
      fc.string({ maxLength: 80 }),
      fc.json({ maxDepth: 3 }),
      fc.constant(''),
      fc.constant('{"kind":"clover-cd/evidence","version":1}'),
    );
    fc.assert(
      fc.property(text, (t) => {
        const file = join(dir, 'b.json');
        writeFileSync(file, t);
        const r = validOrInvalid(() => readBundle(file));
        expect(r.ok).toBe(false);
      }),
      params(100),
    );
    expect(validOrInvalid(() => readBundle(dir)).ok).toBe(false);
  });
});
