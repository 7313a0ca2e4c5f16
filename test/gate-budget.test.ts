/**
 * One false-alarm budget: gate.alpha is split over the statistical rules by weighted Bonferroni, a rule's
 * own alpha is taken off the top, the split says how it was spent, and specs whose own shares exceed the
 * budget are refused before anything runs.
 */
import { describe, expect, it } from '@jest/globals';
import * as yaml from 'js-yaml';
import {
  allocateBudget,
  judgeBundle,
  renderMarkdown,
  renderText,
  splitConfidence,
} from '../src/validators/index.js';
import { validateSpec } from '../src/spec/validate.js';
import { planWarnings } from '../src/validators/sample-size.js';
import { runCli } from './helpers/cli.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SPEC_TEMPLATE } from '../src/spec/init-template.js';
import type { GateRule } from '../src/spec/types.js';
import type { EvidenceBundle, VersionCounts } from '../src/validators/types.js';
import { testBundle } from './helpers/bundle.js';

const counts = (requests: number, errors: number): VersionCounts => ({
  requests,
  errors,
  codes: { '200': requests - errors, '500': errors },
});

describe('allocateBudget', () => {
  const rules: GateRule[] = [
    { conservation: { hops: ['a', 'http-lb'] } },
    { split: {} },
    { errorRate: { max: '1%', perRoute: true } },
    { compareErrors: { alphaWeight: 2 } },
    { tail: { percentiles: [95, 99] } },
    { count: { expect: 'all' } },
  ];

  it('spends gate.alpha over the statistical rules by weight, exact-count rules take none', () => {
    const b = allocateBudget({ alpha: '1%', rules });
    expect(b.method).toBe('weighted Bonferroni');
    expect(b.shares.map((s) => [s.index, s.kind])).toEqual([
      [1, 'split'],
      [2, 'errorRate'],
      [3, 'compareErrors'],
      [4, 'tail'],
    ]);
    const total = b.shares.reduce((a, s) => a + s.alpha, 0);
    expect(total).toBeCloseTo(0.01, 12);
    // weights 1, 1, 2, 1 of 5
    expect(b.shares[2].alpha).toBeCloseTo(0.004, 12);
    expect(b.shares[0].alpha).toBeCloseTo(0.002, 12);
    expect(b.shares[1].split).toMatch(/½ overall, ½ over up to 8 routes/);
    expect(b.shares[3].split).toBe('evenly over 2 percentiles');
  });

  it("takes a rule's own alpha (and split confidence) off the top and splits the rest", () => {
    const b = allocateBudget({
      alpha: 0.02,
      rules: [
        { split: { confidence: 0.999 } },
        { compareErrors: { alpha: 0.01 } },
        { compareLatency: {} },
        { tail: {} },
      ],
    });
    expect(b.shares.map((s) => +s.alpha.toFixed(6))).toEqual([0.001, 0.01, 0.0045, 0.0045]);
    expect(b.shares.filter((s) => s.explicit).map((s) => s.kind)).toEqual(['split', 'compareErrors']);
  });

  it("reserves a share for the engine's split check when no split rule is given", () => {
    const b = allocateBudget({ rules: [{ errorRate: { max: '1%' } }] });
    expect(b.total).toBe(0.01);
    expect(b.shares.map((s) => [s.index, s.kind, s.alpha])).toEqual([
      [0, 'errorRate', 0.005],
      [-1, 'split', 0.005],
    ]);
    expect(splitConfidence({ rules: [{ errorRate: { max: '1%' } }] })).toBeCloseTo(0.995, 12);
    expect(splitConfidence({ rules: [{ split: { confidence: 0.9999 } }] })).toBeCloseTo(0.9999, 12);
  });
});

describe('spec validation of the budget', () => {
  const spec = (gate: Record<string, unknown>) => ({
    apiVersion: 'clover-cd/v1',
    kind: 'Release',
    metadata: { name: 'r' },
    application: 'a',
    service: { name: 'http-lb', namespace: 'default', port: 80, stable: 'v1', candidate: 'v2' },
    strategy: { canary: { steps: [10], window: '60s' } },
    gate,
  });

  it('refuses own alphas that add up to more than gate.alpha, naming gate.alpha and each share', () => {
    const problems = validateSpec(
      spec({ alpha: '1%', rules: [{ split: { confidence: 0.999 } }, { compareErrors: { alpha: 0.01 } }] }),
      'r.yaml',
    );
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ file: 'r.yaml', path: 'gate.alpha' });
    expect(problems[0].message).toMatch(
      /add up to 1.1% \(rules\[0\]\.split 0\.1%, rules\[1\]\.compareErrors 1%\), more than gate.alpha 1%/,
    );
  });

  it('accepts a budget, weights and a pass error; refuses a zero budget and unknown fields', () => {
    expect(
      validateSpec(
        spec({
          alpha: '2%',
          beta: '10%',
          rules: [{ compareErrors: { alpha: 0.01, alphaWeight: 3 } }, { tail: { alphaWeight: 0.5 } }],
        }),
      ),
    ).toEqual([]);
    expect(validateSpec(spec({ alpha: '0%', rules: [{ tail: {} }] })).map((p) => p.path)).toEqual([
      'gate.alpha',
    ]);
    expect(validateSpec(spec({ rules: [{ tail: { alphaWieght: 2 } }] })).map((p) => p.path)).toEqual([
      'gate.rules[0].tail.alphaWieght',
    ]);
  });

  it('refuses a detect size at or below the tolerance it must lie beyond', () => {
    const problems = validateSpec(
      spec({
        rules: [
          { compareLatency: { maxIncrease: '20%', detect: '20%' } },
          { compareErrors: { routeDetect: '0%' } },
        ],
      }),
      'r.yaml',
    );
    expect(problems.map((p) => p.path)).toEqual([
      'gate.rules[0].compareLatency.detect',
      'gate.rules[1].compareErrors.routeDetect',
    ]);
    expect(problems[0].message).toMatch(/expected a regression size above maxIncrease 20% .* found 20%/);
  });

  it('warns when a step cannot decide within maxWindow at the request rate the spec states', async () => {
    const rules: GateRule[] = [{ compareErrors: { perRoute: true } }, { tail: { percentiles: [99] } }];
    const warnings = planWarnings({ requestRate: '10/s', maxWindow: '5m', rules }, [
      { weight: 10, windowMs: 60_000 },
      { weight: 50, windowMs: 60_000 },
    ]);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(
      /^step 10%: a healthy canary needs ~\d+ candidate requests \(.*\); at 10\/s × 10% that takes \d+s, more than maxWindow 5m: it will end inconclusive/,
    );
    expect(planWarnings({ rules }, [{ weight: 10, windowMs: 60_000 }])).toEqual([]);
    const dir = mkdtempSync(join(tmpdir(), 'plan-warn-'));
    const file = join(dir, 'r.yaml');
    writeFileSync(file, JSON.stringify(spec({ requestRate: '5/s', maxWindow: '5m', rules })));
    const r = await runCli(['spec', 'validate', file]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/warning: step 10%: a healthy canary needs/);
  }, 60_000);

  it('the spec init template states its budget and is valid', () => {
    const doc = yaml.load(SPEC_TEMPLATE) as { gate: { alpha: string; rules: GateRule[] } };
    expect(doc.gate.alpha).toBe('1%');
    expect(validateSpec(doc, 'init.yaml', '.')).toEqual([]);
  });
});

describe('the verdict spends the budget and says how', () => {
  const bundle = (rules: GateRule[], extra: Partial<EvidenceBundle> = {}): EvidenceBundle =>
    testBundle(
      rules,
      {
        metrics: {
          source: 'prometheus',
          hops: { 'http-lb': { v1: counts(18000, 90), v2: counts(2000, 21) } },
          latency: {},
          missing: [],
        },
      },
      { minSamples: 30, ...extra },
    );

  it('a bundle with alpha judges each rule at its share and reports the allocation', () => {
    const rules: GateRule[] = [{ compareErrors: {} }, { errorRate: { max: '1%' } }];
    const v = judgeBundle(bundle(rules, { alpha: 0.01 }));
    expect(v.budget?.shares.map((s) => +(s.alpha * 100).toFixed(4))).toEqual([0.3333, 0.3333, 0.3333]);
    expect(v.results[0].expected).toMatch(/α 0\.0033/);
    const text = renderText(v, bundle(rules, { alpha: 0.01 }), undefined, { explain: true });
    expect(text).toMatch(
      /false-alarm budget: alpha 1% by weighted Bonferroni, spent over 3 statistical rule/,
    );
    expect(text).toMatch(/0\.333%\s+compareErrors — weight 1, one test/);
    expect(text).toMatch(/observed split \(checked by the release engine on weighted steps; no split rule\)/);
    expect(renderMarkdown(v, bundle(rules, { alpha: 0.01 }))).toMatch(
      /<summary>false-alarm budget<\/summary>/,
    );
    // Without --explain only the headline is printed.
    expect(renderText(v, bundle(rules, { alpha: 0.01 }))).not.toMatch(/compareErrors — weight/);
  });

  it('a bundle written before the budget replays with each rule at its old default', () => {
    const v = judgeBundle(bundle([{ compareErrors: {} }]));
    expect(v.budget).toBeUndefined();
    expect(v.results[0].expected).toMatch(/α 0\.01\b/);
  });
});
