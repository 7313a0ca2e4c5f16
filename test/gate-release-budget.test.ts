/**
 * gate.alpha is the release's false-alarm budget: every window the release can run (one per analysed step,
 * and each repeat after an inconclusive window or a held release run again) spends its own part of it, so a
 * healthy candidate is rolled back on chance with probability ≤ alpha however many steps the plan has.
 */
import { describe, expect, it } from '@jest/globals';
import { fileURLToPath } from 'node:url';
import {
  analysesOf,
  buildPlan,
  initialState,
  transition,
  type ReleaseEvent,
  type ReleaseState,
} from '../src/canary/index.js';
import { loadSpec } from '../src/spec/load.js';
import type { GateRule } from '../src/spec/types.js';
import { specForStep, windowShareOf } from '../src/stages/engine/window.js';
import {
  allocateBudget,
  describeBudget,
  judgeBundle,
  renderText,
  windowShare,
} from '../src/validators/index.js';
import { gateSettings } from '../src/validators/sequential/looks.js';
import { testBundle } from './helpers/bundle.js';

const example = (f: string) => loadSpec(fileURLToPath(new URL(`../examples/${f}`, import.meta.url))).spec;
const now = new Date('2026-01-01T00:00:00Z');

describe('windowShare', () => {
  it('gives every analysed step an equal part; its first window 90%, its repeats the rest, halving', () => {
    expect(windowShare(3, 0, 0).share).toBeCloseTo(0.3, 12);
    expect(windowShare(3, 2, 1).share).toBeCloseTo(0.1 / 2 / 3, 12);
    expect(windowShare(3, 2, 2).share).toBeCloseTo(0.1 / 4 / 3, 12);
    expect(windowShare(3, 1, 0).note).toBe(
      "analysed step 2 of 3 (1/3 of the release's budget), its first window: 90% of the step's part",
    );
    expect(windowShare(1, 0, 3).note).toMatch(/repeat 3: 1\.25% of the step's part/);
  });

  it('adds up to at most the whole budget, however many windows every step has', () => {
    for (const steps of [1, 2, 3, 7]) {
      let spent = 0;
      for (let step = 0; step < steps; step++)
        for (let attempt = 0; attempt < 60; attempt++) spent += windowShare(steps, step, attempt).share;
      expect(spent).toBeLessThanOrEqual(1 + 1e-12);
      expect(spent).toBeGreaterThan(0.999);
    }
  });
});

describe('a window spends its part of the budget', () => {
  const rules: GateRule[] = [
    { split: { confidence: 0.999 } },
    { errorRate: { max: '1%' } },
    { compareErrors: { alpha: 0.004 } },
    { tail: { percentiles: [95, 99] } },
  ];

  it("scales the total and every rule's own alpha by the window's share, and says so", () => {
    const whole = allocateBudget({ alpha: '1%', rules });
    const part = allocateBudget({ alpha: '1%', rules, share: 0.3 });
    expect(part.total).toBeCloseTo(0.003, 12);
    expect(part.release).toBe(0.01);
    expect(whole.release).toBeUndefined();
    part.shares.forEach((s, i) => expect(s.alpha).toBeCloseTo(whole.shares[i].alpha * 0.3, 12));
    const [headline] = describeBudget(part, (i) => `rule ${i}`, windowShare(3, 0, 0).note);
    expect(headline).toMatch(
      /^false-alarm budget: alpha 0\.3% \(this window's part of the release's 1%: analysed step 1 of 3/,
    );
  });

  it('the engine watches and judges each analysed step with its part; the spec on its own spends the whole', () => {
    const canary = example('sdc-canary.yaml');
    const plan = buildPlan(canary);
    const analysed = plan.steps.filter((s) => s.windowMs > 0);
    expect(analysed.length).toBeGreaterThan(1);
    const first = specForStep(canary, plan, analysed[0].index, windowShareOf(plan, analysed[0].index, 0));
    const settings = gateSettings(first);
    expect(settings.alphaShare).toBeCloseTo(0.9 / analysed.length, 12);
    expect(settings.alphaNote).toMatch(new RegExp(`analysed step 1 of ${analysed.length}`));
    // The spec as written (no window: `clover-cd gate` on its own) spends the whole budget.
    expect(gateSettings(canary).alphaShare).toBeUndefined();
  });

  it('a bundle replays with the share it was judged with, and its report says which part it spent', () => {
    const counts = (requests: number, errors: number) => ({
      requests,
      errors,
      codes: { '200': requests - errors, '500': errors },
    });
    const b = testBundle(
      [{ compareErrors: {} }, { errorRate: { max: '1%' } }],
      {
        metrics: {
          source: 'prometheus',
          hops: { 'http-lb': { v1: counts(18000, 90), v2: counts(2000, 21) } },
          latency: {},
          missing: [],
        },
      },
      { minSamples: 30, alpha: 0.01, alphaShare: 0.3, alphaNote: windowShare(3, 0, 0).note },
    );
    const v = judgeBundle(b);
    expect(v.budget!.total).toBeCloseTo(0.003, 12);
    expect(v.results[0].expected).toMatch(/α 0\.001\b/);
    expect(renderText(v, b)).toMatch(/alpha 0\.3% \(this window's part of the release's 1%/);
  });
});

describe('the release counts the windows each step has had', () => {
  const spec = example('sdc-canary.yaml');
  const plan = { ...buildPlan(spec), maxInconclusive: 1, onInconclusive: 'hold' as const };
  const step = (s: ReleaseState, e: ReleaseEvent) => transition(plan, s, e, now);
  const verdict = (outcome: 'pass' | 'inconclusive'): ReleaseEvent => ({
    type: 'verdict',
    outcome,
    summary: outcome,
  });

  it('counts every judged window of a step, a resumed held release too, and starts again at the next step', () => {
    let s = step(initialState(plan, 'v2', now), { type: 'shifted', weight: plan.steps[0].weight });
    expect(analysesOf(s, 0)).toBe(0);
    s = step(s, verdict('inconclusive'));
    s = step(s, verdict('inconclusive'));
    expect(s.held).toBe(true);
    expect(analysesOf(s, 0)).toBe(2);
    s = step(s, { type: 'resume' });
    // The resume starts the inconclusive count again; the windows the step has had stay counted.
    expect(s.inconclusive).toBe(0);
    expect(analysesOf(s, 0)).toBe(2);
    s = step(s, verdict('pass'));
    s = step(s, { type: 'shifted', weight: plan.steps[1].weight });
    expect(s.step).toBe(1);
    expect(analysesOf(s, 1)).toBe(0);
  });

  it('reads a state recorded before the count from its inconclusive windows', () => {
    const old = { step: 2, inconclusive: 1 };
    expect(analysesOf(old, 2)).toBe(1);
    expect(analysesOf(old, 3)).toBe(0);
  });
});
