/**
 * The always-valid tests, each checked by simulation with fixed seeds: under continuous monitoring (a look at
 * every batch) a healthy A/A stream is failed with probability ≤ α (within a 3σ binomial tolerance), while the
 * naive re-run of a fixed test at every look is not; and each test detects a stated regression. Then the gate:
 * early fail and early pass, the minimum window, and a bundle that replays to the same decision at the same look.
 */
import { describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { allocateBudget } from '../src/validators/budget.js';
import { RateRatioTest } from '../src/validators/sequential/counts.js';
import { sequentialGateFor } from '../src/validators/sequential/judge.js';
import { bernoulliBounds, bernoulliEvidence, lnGamma } from '../src/validators/sequential/mixture.js';
import { quantileRatioTest, rankedHistogram, rankedSamples } from '../src/validators/sequential/quantiles.js';
import { compareProportions } from '../src/validators/stats.js';
import type { GateRule } from '../src/spec/types.js';
import type { Look } from '../src/validators/types.js';
import { judgeBundle } from '../src/validators/verdict.js';
import { gateHtml } from '../src/reports/index.js';
import {
  BUCKETS,
  mulberry32,
  ScenarioStream,
  SCENARIOS,
  type GateUnderTest,
} from '../bench/gate-scenarios.js';
import { judgedWindow, MAX_RECORDED_LOOKS_BYTES, recordWindow } from '../src/stages/engine/window.js';
import { runCli } from './helpers/cli.js';

const ALPHA = 0.05;
const THRESHOLD = Math.log(1 / ALPHA);
/** The largest false-alarm rate a valid test shows over `runs` runs: α plus three binomial standard deviations. */
const tolerated = (runs: number, alpha = ALPHA) => alpha + 3 * Math.sqrt((alpha * (1 - alpha)) / runs);
const normalOf = (rnd: () => number) => () =>
  Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());

describe('the beta-binomial mixture', () => {
  it('ln Γ and the confidence sequence agree with known values', () => {
    expect(lnGamma(10)).toBeCloseTo(Math.log(362880), 12);
    expect(lnGamma(0.5)).toBeCloseTo(0.5 * Math.log(Math.PI), 12);
    const cs = bernoulliBounds(10, 2000, 0.025, { tOpt: 2000, alphaOpt: 0.025 });
    expect(cs.low).toBeGreaterThan(0.001);
    expect(cs.high).toBeLessThan(0.012);
    expect(cs.low).toBeLessThan(0.005);
    expect(cs.high).toBeGreaterThan(0.005);
  });

  it('holds α at the boundary under a look every 50 observations, where re-running a fixed test does not', () => {
    const runs = 1000;
    let alarms = 0;
    let peeking = 0;
    for (let r = 0; r < runs; r++) {
      const rnd = mulberry32(5000 + r);
      let k = 0;
      let n = 0;
      let peeked = false;
      for (let look = 0; look < 100; look++) {
        for (let i = 0; i < 50; i++, n++) if (rnd() < 0.01) k++;
        // The fixed one-sided normal test at 5%, re-run at every look.
        if (!peeked && (k / n - 0.01) / Math.sqrt((0.01 * 0.99) / n) > 1.645) peeked = true;
        if (bernoulliEvidence(k, n, 0.01, 'above', { tOpt: 2000, alphaOpt: ALPHA }) >= THRESHOLD) {
          alarms++;
          break;
        }
      }
      if (peeked) peeking++;
    }
    expect(alarms / runs).toBeLessThanOrEqual(tolerated(runs));
    expect(peeking / runs).toBeGreaterThan(2 * ALPHA);
  });

  it('detects a rate three times the limit within 2,000 observations', () => {
    let detected = 0;
    for (let r = 0; r < 200; r++) {
      const rnd = mulberry32(7000 + r);
      let k = 0;
      for (let n = 1; n <= 2000; n++) {
        if (rnd() < 0.03) k++;
        if (
          n % 50 === 0 &&
          bernoulliEvidence(k, n, 0.01, 'above', { tOpt: 2000, alphaOpt: 0.001 }) >= Math.log(1000)
        ) {
          detected++;
          break;
        }
      }
    }
    expect(detected / 200).toBeGreaterThanOrEqual(0.95);
  });
});

describe('the rate-ratio contrast of two versions (compareErrors)', () => {
  /** A look every 200 requests; the candidate's share of traffic moves between 5% and 30% (the null follows it). */
  function stream(
    seed: number,
    ratio: number,
    looks: number,
    onLook: (t: RateRatioTest, c: { kc: number; nc: number; ks: number; ns: number }) => boolean,
  ): boolean {
    const rnd = mulberry32(seed);
    const test = new RateRatioTest(1);
    const c = { kc: 0, nc: 0, ks: 0, ns: 0 };
    for (let look = 0; look < looks; look++) {
      const share = look % 20 < 10 ? 0.05 : 0.3;
      const d = { candidateErrors: 0, stableErrors: 0, candidateRequests: 0, stableRequests: 0 };
      for (let i = 0; i < 200; i++) {
        if (rnd() < share) {
          d.candidateRequests++;
          if (rnd() < 0.01 * ratio) d.candidateErrors++;
        } else {
          d.stableRequests++;
          if (rnd() < 0.01) d.stableErrors++;
        }
      }
      test.add(d);
      c.kc += d.candidateErrors;
      c.nc += d.candidateRequests;
      c.ks += d.stableErrors;
      c.ns += d.stableRequests;
      if (onLook(test, c)) return true;
    }
    return false;
  }

  it('holds α on equal error rates with a moving traffic share, where peeking at the exact test does not', () => {
    const runs = 500;
    let alarms = 0;
    let peeking = 0;
    for (let r = 0; r < runs; r++) {
      let peeked = false;
      if (
        stream(
          100 + r,
          1,
          100,
          (t, c) => (
            (peeked ||= compareProportions(c.ks, c.ns, c.kc, c.nc).p < ALPHA),
            t.evidence() >= THRESHOLD
          ),
        )
      )
        alarms++;
      if (peeked) peeking++;
    }
    expect(alarms / runs).toBeLessThanOrEqual(tolerated(runs));
    expect(peeking / runs).toBeGreaterThan(3 * ALPHA);
  });

  it('detects a tripled error rate at α 0.1%', () => {
    let detected = 0;
    for (let r = 0; r < 200; r++)
      if (stream(9000 + r, 3, 100, (t) => t.evidence() >= Math.log(1000))) detected++;
    expect(detected / 200).toBeGreaterThanOrEqual(0.95);
  });
});

describe('quantile comparisons (compareLatency, tail)', () => {
  const histogram = (bins: number[]) => {
    let acc = 0;
    return { le: BUCKETS, counts: bins.map((x) => (acc += x)) };
  };

  it('hold α on equal latency (histograms, margin 0, a look every 300 requests) for the median and p95', () => {
    const runs = 200;
    for (const q of [0.5, 0.95]) {
      let alarms = 0;
      for (let r = 0; r < runs; r++) {
        const rnd = mulberry32(20_000 + r);
        const normal = normalOf(rnd);
        const bc = BUCKETS.map(() => 0);
        const bs = BUCKETS.map(() => 0);
        for (let look = 0; look < 40; look++) {
          for (let i = 0; i < 300; i++) {
            const ms = 50 * Math.exp(0.6 * normal());
            (rnd() < 0.1 ? bc : bs)[BUCKETS.findIndex((e) => ms <= e)]++;
          }
          const t = quantileRatioTest(
            rankedHistogram(histogram(bc)),
            rankedHistogram(histogram(bs)),
            q,
            1,
            'slower',
            THRESHOLD,
            { candidate: { tOpt: 1000, alphaOpt: ALPHA }, stable: { tOpt: 9000, alphaOpt: ALPHA } },
          );
          if (t.rejected) {
            alarms++;
            break;
          }
        }
      }
      expect(alarms / runs).toBeLessThanOrEqual(tolerated(runs));
    }
  });

  it('a median 30% slower fails the 10% tolerance; an equal one passes the 25% detect size (span durations)', () => {
    const rnd = mulberry32(31);
    const normal = normalOf(rnd);
    const draw = (n: number, f: number) =>
      Float64Array.from({ length: n }, () => 50 * f * Math.exp(0.6 * normal())).sort();
    const tuning = { candidate: { tOpt: 2000, alphaOpt: 0.001 }, stable: { tOpt: 18000, alphaOpt: 0.001 } };
    const stable = rankedSamples(draw(18000, 1));
    expect(
      quantileRatioTest(rankedSamples(draw(2000, 1.3)), stable, 0.5, 1.1, 'slower', Math.log(1000), tuning)
        .rejected,
    ).toBe(true);
    expect(
      quantileRatioTest(rankedSamples(draw(2000, 1)), stable, 0.5, 1.1, 'slower', Math.log(1000), tuning)
        .rejected,
    ).toBe(false);
    expect(
      quantileRatioTest(rankedSamples(draw(2000, 1)), stable, 0.5, 1.25, 'faster', Math.log(20), tuning)
        .rejected,
    ).toBe(true);
    expect(
      quantileRatioTest(rankedSamples(draw(2000, 1.3)), stable, 0.5, 1.25, 'faster', Math.log(20), tuning)
        .rejected,
    ).toBe(false);
  });
});

describe('the sequential gate', () => {
  const rules: GateRule[] = [
    { errorRate: { max: '5%', perRoute: true } },
    { compareErrors: { perRoute: true } },
    { compareLatency: { maxIncrease: '10%' } },
    { tail: { percentiles: [95, 99] } },
  ];
  const gate: GateUnderTest = { minSamples: 100, rules, plannedSamples: 1000, alpha: 0.01 };
  const budget = allocateBudget({ alpha: 0.01, rules });
  /** Looks every 5 s up to 300 s; returns the decision and the looks taken. */
  function run(name: string, seed: number) {
    const s = SCENARIOS.find((x) => x.name === name)!;
    const stream = new ScenarioStream(s, seed, gate);
    const g = sequentialGateFor(stream.bundle({ alpha: 0.01, minWindowMs: 60_000 }), budget);
    const looks: Look[] = [];
    for (let t = 5; t <= 300 && !g.decision; t += 5) {
      stream.advanceTo(t);
      looks.push(stream.look());
      g.look(looks[looks.length - 1], t * 1000, t === 300);
    }
    return { g, looks, bundle: stream.bundle({ alpha: 0.01, minWindowMs: 60_000, sequence: looks }) };
  }

  it('passes healthy canaries no earlier than the minimum window, and fails none (α 1% over every rule and look)', () => {
    const runs = 100;
    let fails = 0;
    let passes = 0;
    for (let r = 0; r < runs; r++) {
      const { g } = run('healthy', 40_000 + r);
      if (g.decision?.outcome === 'fail') fails++;
      if (g.decision?.outcome === 'pass') {
        passes++;
        expect(g.decision.t).toBeGreaterThanOrEqual(60_000);
      }
    }
    expect(fails / runs).toBeLessThanOrEqual(tolerated(runs, 0.01));
    expect(passes / runs).toBeGreaterThanOrEqual(0.97);
  });

  it('fails a regression before the minimum window: errors +2 points on 2%, a 30% slower median', () => {
    for (const [name, rule] of [
      ['errors +2% on 2%', 'compareErrors'],
      ['median +30% σ 0.6', 'compareLatency'],
    ]) {
      let early = 0;
      for (let r = 0; r < 30; r++) {
        const { g, bundle } = run(name, 50_000 + r);
        expect(g.decision?.outcome).toBe('fail');
        if (g.decision!.t < 60_000) early++;
        const failed = judgeBundle(bundle)
          .results.filter((x) => x.outcome === 'fail')
          .map((x) => x.rule.split(' ')[0]);
        expect(failed).toContain(rule);
      }
      // Most runs fail before the 60 s minimum window, which holds 2,000 candidate requests.
      expect(early / 30).toBeGreaterThanOrEqual(0.6);
    }
  });

  it('a bundle replays to the same decision at the same look, through JSON', () => {
    const { g, bundle } = run('503 on 3% of 1 route', 60_001);
    const first = judgeBundle(bundle);
    const again = judgeBundle(JSON.parse(JSON.stringify(bundle)));
    expect(first.decision).toEqual({
      outcome: g.decision!.outcome,
      at: g.decision!.t,
      look: g.decision!.look,
      looks: bundle.sequence!.length,
      afterMs: g.decision!.t,
    });
    expect(again.decision).toEqual(first.decision);
    expect(again.results).toEqual(first.results);
    const compare = first.results.find((r) => r.rule.startsWith('compareErrors'))!;
    expect(compare.outcome).toBe('fail');
    expect(compare.reason).toMatch(
      /^v2 has more errors than v1 on \/, beyond chance \d+(\.\d)?s into the window \(evidence/,
    );
  });

  it('gate --replay re-runs the sequence to the same decision at the same moment', async () => {
    const { g, bundle } = run('errors +2% on 2%', 60_002);
    const dir = mkdtempSync(join(tmpdir(), 'gate-replay-'));
    try {
      const file = join(dir, 'bundle.json');
      writeFileSync(file, JSON.stringify(bundle));
      const r = await runCli(['gate', '--replay', file, '-o', 'json']);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(1);
      const replayed = JSON.parse(r.stdout).verdict;
      expect(replayed.decision).toMatchObject({ outcome: 'fail', at: g.decision!.t, look: g.decision!.look });
      expect(g.decision!.t).toBeLessThan(60_000);
      const explained = await runCli(['gate', '--replay', file, '--explain']);
      expect(explained.stdout).toContain(`look ${g.decision!.look} of ${bundle.sequence!.length}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the gate report draws each test over the window against its thresholds and marks the decision', () => {
    const { bundle } = run('errors +2% on 2%', 60_002);
    const v = judgeBundle(bundle);
    const html = gateHtml(bundle, v);
    expect(html).toContain('id="panel-sequence"');
    expect(html).toMatch(
      /Decided <strong>fail<\/strong> at look \d+ of \d+, [\d.]+s after the window opened/,
    );
    const data = JSON.parse(
      /<script type="application\/json" id="report-data">(.*?)<\/script>/s.exec(html)![1],
    );
    const index = v.results.findIndex((r) => r.rule.startsWith('compareErrors'));
    const chart = data.charts[`seq-${index}`];
    expect(chart.x.length).toBe(bundle.sequence!.length);
    expect(chart.series[0]).toMatchObject({ label: expect.stringMatching(/: fail evidence$/) });
    expect(chart.series[0].y).toHaveLength(chart.x.length);
    expect(chart.marks).toContainEqual(
      expect.objectContaining({ kind: 'vline', label: expect.stringMatching(/^decided fail at [\d.]+s$/) }),
    );
    expect(chart.marks).toContainEqual(
      expect.objectContaining({
        kind: 'hline',
        label: expect.stringMatching(/^fail at ln\(1\/α\) = \d+\.\d/),
      }),
    );
  });

  it('a rule about the candidate alone passes without stable traffic (a blue/green preview)', () => {
    const only: GateRule[] = [{ errorRate: { max: '5%' } }];
    const g = sequentialGateFor(
      {
        ...new ScenarioStream(SCENARIOS[0], 1, { ...gate, rules: only }).bundle({ minWindowMs: 10_000 }),
        candidateWeight: 100,
      },
      allocateBudget({ alpha: 0.01, rules: only }),
    );
    const look = (t: number, n: number): Look => ({ at: t, versions: { v2: { requests: n, errors: 0 } } });
    expect(g.look(look(5_000, 400), 5_000)).toBeUndefined(); // shown below 5%, but before the minimum window
    expect(g.look(look(10_000, 800), 10_000)).toEqual({ outcome: 'pass', t: 10_000, look: 2 });
  });

  it('is inconclusive when the window ends before the evidence decides', () => {
    const s = SCENARIOS.find((x) => x.name === 'healthy')!;
    const stream = new ScenarioStream(s, 3, gate);
    stream.advanceTo(10);
    const v = judgeBundle(stream.bundle({ alpha: 0.01, minWindowMs: 60_000, sequence: [stream.look()] }));
    expect(v.outcome).toBe('inconclusive');
    expect(v.decision).toMatchObject({ outcome: 'inconclusive', look: 1, looks: 1 });
    expect(v.results.find((r) => r.rule.startsWith('errorRate'))!.reason).toMatch(/^undecided after 10s/);
  });
});

describe('looks kept with the release state', () => {
  it('a long window keeps every n-th look within the bound, the deciding (last) one always', () => {
    const hist = { le: [5, 10, 25, 50, 100, 250, 500, 1000], counts: [0, 1, 2, 3, 4, 5, 6, 7] };
    const looks = Array.from({ length: 600 }, (_, i) => ({
      at: 1000 * (i + 1),
      versions: { v1: { requests: 90 * i, errors: 0 }, v2: { requests: 10 * i, errors: 0 } },
      latency: { v1: hist, v2: hist },
      routeLatency: { '/': { v1: hist, v2: hist }, '/a': { v1: hist, v2: hist } },
    }));
    const short = judgedWindow(
      recordWindow({ step: 0, window: { start: 0 }, end: 60_000, sequence: looks.slice(0, 60) }),
    );
    expect(short.sequence).toEqual(looks.slice(0, 60));
    const kept = judgedWindow(
      JSON.parse(
        JSON.stringify(
          recordWindow({ step: 0, window: { start: 0 }, end: 600_000, sequence: looks, minWindowMs: 60_000 }),
        ),
      ),
    );
    expect(JSON.stringify(kept.sequence).length).toBeLessThanOrEqual(MAX_RECORDED_LOOKS_BYTES);
    expect(kept.sequence!.at(-1)).toEqual(looks.at(-1));
    expect(kept.sequence!.length).toBeGreaterThan(1);
    const times = kept.sequence!.map((l) => l.at);
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(kept.minWindowMs).toBe(60_000);
  });
});
