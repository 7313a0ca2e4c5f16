import { parseDurationMs } from '../util/units.js';
import type { JtlAnalysis, SecondBucket } from './jtl.js';
import type { LabelStats } from './types.js';

/**
 * Pass/fail criteria in Taurus' short form: `subject [of label] <op> threshold [for timeframe]`, also
 * `subject(label) <op> threshold`. A criterion describes the FAILURE condition: `p95 > 250ms` trips when the
 * observed p95 is above 250 ms. Without `for` the whole run is judged; with `for 10s` it trips when the
 * condition holds in every second of some 10 consecutive seconds (Taurus' `for`).
 *
 * subjects: avg-rt | min-rt | max-rt | pNN[.N] (ms), error-rate | fail (% or fraction), errors | failures,
 * count | hits, throughput | rps (req/s), rcNNN / rc4xx (count, or share with a % threshold).
 * threshold: a number, with ms|s for times, % for shares, or `expected` (the plan's expected sample count).
 */
export type Op = '>' | '>=' | '<' | '<=' | '==' | '!=';
export interface Criterion {
  text: string;
  subject: string;
  label?: string;
  op: Op;
  /** Number in the subject's unit (ms, fraction, count, req/s), or 'expected'. */
  threshold: number | 'expected';
  forS?: number;
  /** rcNNN compared as a share of samples (threshold written with %). */
  share?: boolean;
}
export interface CriterionResult {
  criterion: string;
  tripped: boolean;
  observed: string;
  threshold: string;
  reason: string;
}

const PATTERN =
  /^\s*([a-z][\w.-]*|rc[\dx?*]+)(?:\(([^)]+)\)|\s+of\s+(\S+))?\s*(>=|<=|==|!=|>|<|=)\s*(\S+?)(?:\s+for\s+(\S+))?\s*$/i;
const TIME = new Set(['avg-rt', 'min-rt', 'max-rt']);
const RATE = new Set(['error-rate', 'fail']);
const COUNT = new Set(['errors', 'failures', 'count', 'hits']);
const THROUGHPUT = new Set(['throughput', 'rps']);
const PER_SECOND = new Set([
  'avg-rt',
  'error-rate',
  'fail',
  'errors',
  'failures',
  'count',
  'hits',
  'throughput',
  'rps',
]);

function kindOf(subject: string): 'time' | 'rate' | 'count' | 'throughput' | 'rc' | undefined {
  if (TIME.has(subject) || /^p\d{1,2}(\.\d+)?$/.test(subject)) return 'time';
  if (RATE.has(subject)) return 'rate';
  if (COUNT.has(subject)) return 'count';
  if (THROUGHPUT.has(subject)) return 'throughput';
  if (/^rc[\dx?*]+$/.test(subject)) return 'rc';
  return undefined;
}

export function parseCriterion(text: string): Criterion {
  const m = PATTERN.exec(text);
  if (!m)
    throw new Error(
      `criterion "${text}" is not of the form "subject [of label] <op> threshold [for 10s]", e.g. "p95 > 250ms"`,
    );
  const subject = m[1].toLowerCase();
  const kind = kindOf(subject);
  if (!kind) {
    throw new Error(
      `criterion "${text}": unknown subject "${m[1]}" (expected avg-rt, min-rt, max-rt, p95, error-rate, errors, count, throughput or rc5xx)`,
    );
  }
  const op = (m[4] === '=' ? '==' : m[4]) as Op;
  const raw = m[5];
  let threshold: number | 'expected';
  let share = false;
  if (raw.toLowerCase() === 'expected') {
    if (kind !== 'count')
      throw new Error(`criterion "${text}": "expected" compares sample counts; use it with count or hits`);
    threshold = 'expected';
  } else {
    const t = /^(\d+(?:\.\d+)?)(ms|s|%)?$/.exec(raw);
    if (!t)
      throw new Error(
        `criterion "${text}": threshold "${raw}" is not a number (expected e.g. 250ms, 1%, 100)`,
      );
    const n = Number(t[1]);
    const unit = t[2];
    if (kind === 'time') threshold = unit === 's' ? n * 1000 : n;
    else if (kind === 'rate') threshold = unit === '%' ? n / 100 : n;
    else if (unit === '%' && kind === 'rc') threshold = n / 100;
    else if (unit) throw new Error(`criterion "${text}": unit "${unit}" does not fit subject "${subject}"`);
    else threshold = n;
    share = unit === '%';
  }
  let forS: number | undefined;
  if (m[6]) {
    if (!PER_SECOND.has(subject))
      throw new Error(
        `criterion "${text}": "for" needs a per-second subject (avg-rt, error-rate, errors, count, throughput)`,
      );
    try {
      forS = Math.max(1, Math.round(parseDurationMs(m[6]) / 1000));
    } catch {
      throw new Error(`criterion "${text}": timeframe "${m[6]}" is not a duration (expected e.g. 10s)`);
    }
  }
  return { text, subject, label: m[2] ?? m[3], op, threshold, forS, share: kind === 'rc' && share };
}

const compare = (a: number, op: Op, b: number): boolean =>
  op === '>'
    ? a > b
    : op === '>='
      ? a >= b
      : op === '<'
        ? a < b
        : op === '<='
          ? a <= b
          : op === '=='
            ? a === b
            : a !== b;

function codeMatcher(subject: string): (code: string) => boolean {
  const re = new RegExp(`^${subject.slice(2).replace(/[x?]/gi, '.').replace(/\*/g, '.*')}$`, 'i');
  return (code) => re.test(code);
}

function valueOf(c: Criterion, stats: LabelStats, analysis: JtlAnalysis): number {
  const s = c.subject;
  if (s === 'avg-rt') return stats.mean;
  if (s === 'min-rt') return stats.min;
  if (s === 'max-rt') return stats.max;
  if (s.startsWith('p') && /^p[\d.]+$/.test(s)) return analysis.percentile(c.label, Number(s.slice(1)));
  if (RATE.has(s)) return stats.errorRate;
  if (s === 'errors' || s === 'failures') return stats.errors;
  if (s === 'count' || s === 'hits') return stats.count;
  if (THROUGHPUT.has(s)) return stats.throughput;
  const match = codeMatcher(s);
  const n = Object.entries(stats.codes).reduce((acc, [code, k]) => acc + (match(code) ? k : 0), 0);
  return c.share ? (stats.count ? n / stats.count : 0) : n;
}

function secondValue(c: Criterion, b: SecondBucket): number {
  if (c.subject === 'avg-rt') return b.count ? b.sumElapsed / b.count : 0;
  if (RATE.has(c.subject)) return b.count ? b.errors / b.count : 0;
  if (c.subject === 'errors' || c.subject === 'failures') return b.errors;
  return b.count; // count, hits, throughput: samples in that second
}

const fmt = (c: Criterion, v: number): string => {
  const kind = kindOf(c.subject);
  if (kind === 'time') return `${+v.toFixed(1)}ms`;
  if (kind === 'rate' || c.share) return `${+(v * 100).toFixed(2)}%`;
  if (kind === 'throughput') return `${+v.toFixed(1)}/s`;
  return String(v);
};

/** Judge every criterion against an analyzed JTL; `expected` gives the plan's expected counts. */
export function evaluateCriteria(
  texts: string[],
  analysis: JtlAnalysis,
  expected?: { total: number; byLabel: Record<string, number> },
): CriterionResult[] {
  return texts.map((text) => {
    const c = parseCriterion(text);
    const stats = c.label ? analysis.summary.labels[c.label] : analysis.summary.total;
    const scope = c.label ? `label "${c.label}"` : 'all labels';
    if (!stats) {
      const known = Object.keys(analysis.summary.labels).join(', ') || '(none)';
      return {
        criterion: text,
        tripped: true,
        observed: 'no samples',
        threshold: String(c.threshold),
        reason: `no samples with label "${c.label}" (labels seen: ${known})`,
      };
    }
    let threshold: number;
    if (c.threshold === 'expected') {
      const e = c.label ? expected?.byLabel[c.label] : expected?.total;
      if (e === undefined) {
        return {
          criterion: text,
          tripped: true,
          observed: String(stats.count),
          threshold: 'expected',
          reason: 'the plan has no expected count (it loops until its duration ends)',
        };
      }
      threshold = e;
    } else threshold = c.threshold;
    const thr = c.threshold === 'expected' ? `${threshold} (expected)` : fmt(c, threshold);
    if (c.forS) {
      const seconds = analysis.timeline(c.label);
      let run = 0;
      let longest = 0;
      let prev: number | undefined;
      for (const [sec, b] of seconds) {
        if (prev !== undefined && sec !== prev + 1) run = 0;
        run = compare(secondValue(c, b), c.op, threshold) ? run + 1 : 0;
        longest = Math.max(longest, run);
        prev = sec;
      }
      const tripped = longest >= c.forS;
      return {
        criterion: text,
        tripped,
        observed: `${longest}s in a row`,
        threshold: `${c.op} ${thr} for ${c.forS}s`,
        reason: `${scope}: ${c.subject} ${c.op} ${thr} held for at most ${longest} consecutive second(s) (limit ${c.forS}s)`,
      };
    }
    const v = valueOf(c, stats, analysis);
    const tripped = compare(v, c.op, threshold);
    return {
      criterion: text,
      tripped,
      observed: fmt(c, v),
      threshold: `${c.op} ${thr}`,
      reason: `${scope}: ${c.subject} is ${fmt(c, v)}${tripped ? `, which is ${c.op} ${thr}` : `, not ${c.op} ${thr}`}`,
    };
  });
}
