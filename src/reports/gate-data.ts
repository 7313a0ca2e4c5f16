/**
 * What the gate report draws, read from an evidence bundle: counts per version (and route), latency
 * distributions as ECDFs on a shared grid, and each rule paired with its result. Pure.
 */
import {
  checkSplit,
  type EvidenceBundle,
  type GateRun,
  type Histogram,
  type RuleResult,
  type VersionCounts,
} from '../validators/index.js';
import type { GateRule } from '../spec/types.js';

export interface RulePair {
  index: number;
  kind: string;
  body: Record<string, unknown>;
  result: RuleResult;
}

/** Each rule with its result (results are in rule order). */
export function rulePairs(b: EvidenceBundle, results: RuleResult[]): RulePair[] {
  return results.map((result, index) => {
    const rule = b.rules[index] as GateRule | undefined;
    const [kind, body] = rule
      ? (Object.entries(rule)[0] as [string, Record<string, unknown>])
      : [result.rule.split(' ')[0], {}];
    return { index, kind, body: body ?? {}, result };
  });
}

/** The Wilson interval of k of n, as the gate computes it. */
export function interval(k: number, n: number, confidence = 0.95): { low: number; high: number } {
  return n > 0
    ? checkSplit({ stable: n - k, candidate: k }, 0, confidence).interval
    : { low: NaN, high: NaN };
}

/** Requests per version at the gated service: metrics first, then traces. */
export function versionCounts(
  b: EvidenceBundle,
): { source: string; byVersion: Record<string, VersionCounts> } | undefined {
  const m = b.evidence.metrics?.hops[b.service.name];
  if (m && Object.keys(m).length) return { source: b.evidence.metrics!.source, byVersion: m };
  const t = b.evidence.traces?.versions;
  if (t && Object.keys(t).length) return { source: 'jaeger', byVersion: t };
  return undefined;
}

export function routeCounts(
  b: EvidenceBundle,
): { source: string; routes: Record<string, Record<string, VersionCounts>> } | undefined {
  const m = b.evidence.metrics?.routes;
  if (m && Object.keys(m).length) return { source: b.evidence.metrics!.source, routes: m };
  const t = b.evidence.traces?.routes;
  if (t && Object.keys(t).length) return { source: 'jaeger', routes: t };
  return undefined;
}

/** An empirical CDF: ascending values and the cumulative share at each. */
export interface Ecdf {
  x: number[];
  p: number[];
  n: number;
  from: 'samples' | 'histogram';
}

const MAX_POINTS = 800;

/** ECDF of raw samples, thinned to at most MAX_POINTS steps (evenly in rank). */
export function ecdfOfSamples(samples: number[]): Ecdf {
  const s = samples.filter((v) => Number.isFinite(v) && v > 0).sort((a, b) => a - b);
  const n = s.length;
  const x: number[] = [];
  const p: number[] = [];
  const stride = Math.max(1, Math.ceil(n / MAX_POINTS));
  for (let i = 0; i < n; i += stride) {
    const j = Math.min(n - 1, i + stride - 1);
    x.push(s[j]);
    p.push((j + 1) / n);
  }
  if (n && x[x.length - 1] !== s[n - 1]) {
    x.push(s[n - 1]);
    p.push(1);
  }
  return { x, p, n, from: 'samples' };
}

/** ECDF of a cumulative histogram: one point per finite bucket bound. */
export function ecdfOfHistogram(h: Histogram): Ecdf {
  const n = h.counts[h.counts.length - 1] ?? 0;
  const x: number[] = [];
  const p: number[] = [];
  h.le.forEach((le, i) => {
    if (!Number.isFinite(le) || le <= 0 || !n) return;
    x.push(le);
    p.push(h.counts[i] / n);
  });
  return { x, p, n, from: 'histogram' };
}

/** The latency distribution of each version: trace durations when both have some, else the histograms. */
export function latencyEcdfs(
  b: EvidenceBundle,
  versions: string[],
  route?: string,
): { source: string; ecdfs: Record<string, Ecdf> } | undefined {
  const d = b.evidence.traces?.durations;
  if (!route && d && versions.every((v) => (d[v]?.length ?? 0) > 0)) {
    return { source: 'jaeger', ecdfs: Object.fromEntries(versions.map((v) => [v, ecdfOfSamples(d[v])])) };
  }
  const hs = route ? b.evidence.metrics?.routeLatency?.[route] : b.evidence.metrics?.latency;
  if (hs && versions.some((v) => hs[v])) {
    return {
      source: b.evidence.metrics!.source,
      ecdfs: Object.fromEntries(versions.filter((v) => hs[v]).map((v) => [v, ecdfOfHistogram(hs[v])])),
    };
  }
  return undefined;
}

/** Value at cumulative share q (the first step at or above it). */
export function ecdfQuantile(e: Ecdf, q: number): number {
  const i = e.p.findIndex((p) => p >= q - 1e-12);
  return i < 0 ? NaN : e.x[i];
}

/** ECDFs on one shared x grid (uPlot's aligned data): each series' share at every x of the union. */
export function alignEcdfs(ecdfs: Record<string, Ecdf>): {
  x: number[];
  y: Record<string, Array<number | null>>;
} {
  const x = [...new Set(Object.values(ecdfs).flatMap((e) => e.x))].sort((a, b) => a - b);
  const y: Record<string, Array<number | null>> = {};
  for (const [v, e] of Object.entries(ecdfs)) {
    const out: Array<number | null> = [];
    let j = -1;
    for (const xv of x) {
      while (j + 1 < e.x.length && e.x[j + 1] <= xv) j++;
      out.push(j < 0 ? 0 : e.p[j]);
    }
    y[v] = out;
  }
  return { x, y };
}

/** A GateRun, or a bundle that carries its verdict (replays, files beside bundles). */
export type GateInput = Pick<GateRun, 'bundle' | 'verdict'>;
