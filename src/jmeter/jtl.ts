import { createReadStream, existsSync } from 'node:fs';
import { parse as parseCsv } from 'csv-parse/sync';
import * as hdr from 'hdr-histogram-js';
import { InvalidInputError } from '../util/errors.js';
import type { LabelStats, LoadSummary } from './types.js';

/**
 * JTL (JMeter's CSV results) reading and writing. The parser streams: memory grows with the number of labels
 * and seconds, never with rows. Percentiles come from HDR histograms (3 significant digits; exact below 2048 ms).
 */

/** Columns JMeter 2.13 writes without a header line (print_field_names=false, its default). */
export const JMETER_213_DEFAULT = ['timeStamp', 'elapsed', 'label', 'responseCode', 'responseMessage', 'threadName', 'dataType', 'success', 'bytes', 'grpThreads', 'allThreads', 'Latency'];
/** JMeter 3.x-5.x default columns (Clover documents these 16, without URL). */
const JMETER_3_DEFAULT = ['timeStamp', 'elapsed', 'label', 'responseCode', 'responseMessage', 'threadName', 'dataType', 'success', 'failureMessage', 'bytes', 'sentBytes', 'grpThreads', 'allThreads', 'Latency', 'IdleTime', 'Connect'];
const JMETER_5_DEFAULT = [...JMETER_3_DEFAULT.slice(0, 13), 'URL', ...JMETER_3_DEFAULT.slice(13)];
/** What clover-cd writes (builtin engine) and asks JMeter for: JMeter 5's default set plus the user-agent. */
export const JTL_COLUMNS = [...JMETER_5_DEFAULT, 'userAgent'];
/** Name of the sample variable carrying the User-Agent of each sample (a JMeter `sample_variables` column). */
export const USER_AGENT_COLUMN = 'userAgent';

export interface SecondBucket {
  count: number;
  errors: number;
  sumElapsed: number;
}

export interface JtlAnalysis {
  summary: LoadSummary;
  rows: number;
  /** epoch ms of the first sample start and of the last sample end */
  firstTs: number;
  lastEnd: number;
  percentile(label: string | undefined, p: number): number;
  /** Per-second buckets (epoch seconds, ascending) of one label, or of all labels. */
  timeline(label?: string): Array<[number, SecondBucket]>;
}

interface Acc {
  count: number;
  errors: number;
  sum: number;
  min: number;
  max: number;
  first: number;
  lastEnd: number;
  hist: hdr.Histogram;
  codes: Record<string, number>;
  userAgents: Record<string, number>;
  seconds: Map<number, SecondBucket>;
}

const newHist = () => hdr.build({ bitBucketSize: 32, autoResize: true, numberOfSignificantValueDigits: 3, useWebAssembly: false });
const newAcc = (): Acc => ({
  count: 0,
  errors: 0,
  sum: 0,
  min: Infinity,
  max: 0,
  first: Infinity,
  lastEnd: 0,
  hist: newHist(),
  codes: {},
  userAgents: {},
  seconds: new Map(),
});

function toStats(a: Acc): LabelStats {
  const spanS = Math.max(a.lastEnd - a.first, 1) / 1000;
  const pct = (p: number) => (a.count ? a.hist.getValueAtPercentile(p) : 0);
  return {
    count: a.count,
    errors: a.errors,
    errorRate: a.count ? a.errors / a.count : 0,
    min: a.count ? a.min : 0,
    mean: a.count ? a.sum / a.count : 0,
    max: a.max,
    p50: pct(50),
    p90: pct(90),
    p95: pct(95),
    p99: pct(99),
    throughput: a.count ? a.count / spanS : 0,
    codes: a.codes,
    userAgents: a.userAgents,
  };
}

function merge(into: Acc, a: Acc): void {
  into.count += a.count;
  into.errors += a.errors;
  into.sum += a.sum;
  into.min = Math.min(into.min, a.min);
  into.max = Math.max(into.max, a.max);
  into.first = Math.min(into.first, a.first);
  into.lastEnd = Math.max(into.lastEnd, a.lastEnd);
  into.hist.add(a.hist);
  for (const [k, v] of Object.entries(a.codes)) into.codes[k] = (into.codes[k] ?? 0) + v;
  for (const [k, v] of Object.entries(a.userAgents)) into.userAgents[k] = (into.userAgents[k] ?? 0) + v;
  for (const [s, b] of a.seconds) {
    const t = into.seconds.get(s);
    if (t) {
      t.count += b.count;
      t.errors += b.errors;
      t.sumElapsed += b.sumElapsed;
    } else into.seconds.set(s, { ...b });
  }
}

export function columnsFor(first: string[], file: string): { columns: string[]; header: boolean } {
  if (first[0] === 'timeStamp') return { columns: first, header: true };
  const byCount: Record<number, string[]> = { 12: JMETER_213_DEFAULT, 16: JMETER_3_DEFAULT, 17: JMETER_5_DEFAULT };
  const columns = byCount[first.length];
  if (!columns) {
    throw new InvalidInputError(`${file}: a JTL without a header line must have JMeter's default columns (12 for 2.13, 16 or 17 for 3.x-5.x); found ${first.length}`, [
      { file, path: 'line 1', message: 'add the header line (jmeter.save.saveservice.print_field_names=true) or use the default columns' },
    ]);
  }
  return { columns, header: false };
}

export interface AnalyzeOptions {
  /** User-Agent per label, for JTLs without a userAgent column (taken from the plan that produced them). */
  userAgentByLabel?: Record<string, string>;
}

/** Stream a JTL into per-label and total statistics. */
export async function analyzeJtl(file: string, opts: AnalyzeOptions = {}): Promise<JtlAnalysis> {
  if (!existsSync(file)) throw new InvalidInputError(`cannot read ${file}: no such file`);
  const labels = new Map<string, Acc>();
  let ix: { ts: number; el: number; label: number; code: number; ok: number; ua: number } | undefined;
  let rows = 0;
  await eachRecord(file, (rec) => {
    if (!ix) {
      const { columns, header } = columnsFor(rec, file);
      const at = (name: string) => columns.indexOf(name);
      ix = { ts: at('timeStamp'), el: at('elapsed'), label: at('label'), code: at('responseCode'), ok: at('success'), ua: at(USER_AGENT_COLUMN) };
      for (const need of ['timeStamp', 'elapsed', 'label', 'success'] as const) {
        if (at(need) < 0) throw new InvalidInputError(`${file}: the JTL header has no "${need}" column`);
      }
      if (header) return;
    }
    if (rec[0] === 'timeStamp') {
      throw new InvalidInputError(`${file}: a second header line at row ${rows + 2}: the file holds several appended runs; write each run to a fresh file`);
    }
    const ts = Number(rec[ix.ts]) || Date.parse(rec[ix.ts]);
    const elapsed = Number(rec[ix.el]);
    if (!Number.isFinite(ts) || !Number.isFinite(elapsed)) return; // truncated last line of a killed run
    rows++;
    const label = rec[ix.label];
    let a = labels.get(label);
    if (!a) labels.set(label, (a = newAcc()));
    const failed = rec[ix.ok] !== 'true';
    a.count++;
    if (failed) a.errors++;
    a.sum += elapsed;
    if (elapsed < a.min) a.min = elapsed;
    if (elapsed > a.max) a.max = elapsed;
    if (ts < a.first) a.first = ts;
    if (ts + elapsed > a.lastEnd) a.lastEnd = ts + elapsed;
    a.hist.recordValue(elapsed);
    const code = ix.code >= 0 ? rec[ix.code] : '';
    a.codes[code] = (a.codes[code] ?? 0) + 1;
    const ua = ix.ua >= 0 ? rec[ix.ua] : opts.userAgentByLabel?.[label];
    if (ua) a.userAgents[ua] = (a.userAgents[ua] ?? 0) + 1;
    const sec = Math.floor(ts / 1000);
    const b = a.seconds.get(sec);
    if (b) {
      b.count++;
      if (failed) b.errors++;
      b.sumElapsed += elapsed;
    } else a.seconds.set(sec, { count: 1, errors: failed ? 1 : 0, sumElapsed: elapsed });
  });
  const total = newAcc();
  for (const a of labels.values()) merge(total, a);
  const summary: LoadSummary = { total: toStats(total), labels: {} };
  for (const [k, a] of [...labels].sort(([x], [y]) => x.localeCompare(y))) summary.labels[k] = toStats(a);
  const accOf = (label?: string) => (label === undefined ? total : labels.get(label));
  return {
    summary,
    rows,
    firstTs: total.count ? total.first : 0,
    lastEnd: total.lastEnd,
    percentile: (label, p) => {
      const a = accOf(label);
      return a && a.count ? a.hist.getValueAtPercentile(p) : 0;
    },
    timeline: (label) => [...(accOf(label)?.seconds ?? new Map<number, SecondBucket>())].sort(([x], [y]) => x - y),
  };
}

/**
 * Records of a CSV file, streamed. Most JTL lines hold no quote, and a plain split is several times faster
 * than a general CSV parser; lines with quotes (labels or messages holding commas, quotes or line breaks)
 * go through csv-parse, joined with the following lines while a quoted field is still open.
 */
export async function eachRecord(file: string, onRecord: (rec: string[]) => void): Promise<void> {
  let rest = '';
  let pending = '';
  const stream = createReadStream(file, { encoding: 'utf8', highWaterMark: 1 << 18 });
  const quoted = (line: string): string[] | undefined => {
    pending = pending ? `${pending}\n${line}` : line;
    if ((pending.split('"').length - 1) % 2 === 1) return undefined; // a quoted field continues on the next line
    const rec = (parseCsv(pending, { relax_quotes: true, relax_column_count: true }) as string[][])[0] ?? [];
    pending = '';
    return rec;
  };
  for await (const chunk of stream as AsyncIterable<string>) {
    const lines = (rest + chunk).split('\n');
    rest = lines.pop() ?? '';
    for (let line of lines) {
      if (line.endsWith('\r')) line = line.slice(0, -1);
      if (pending || line.includes('"')) {
        const rec = quoted(line);
        if (rec) onRecord(rec);
      } else if (line) onRecord(line.split(','));
    }
  }
  if (rest || pending) {
    const rec = pending || rest.includes('"') ? quoted(rest) : rest.split(',');
    if (rec && rec.length > 1) onRecord(rec);
  }
}

/** Per-label and total statistics of a JTL (contract [B]). */
export async function summarizeJtl(path: string, opts: AnalyzeOptions = {}): Promise<LoadSummary> {
  return (await analyzeJtl(path, opts)).summary;
}

/** One CSV field as JMeter writes it: quoted only when it holds the delimiter, a quote or a line break. */
export function csvField(v: string | number | boolean): string {
  const s = String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export interface JtlSample {
  timeStamp: number;
  elapsed: number;
  label: string;
  responseCode: string;
  responseMessage: string;
  threadName: string;
  success: boolean;
  failureMessage: string;
  bytes: number;
  sentBytes: number;
  grpThreads: number;
  allThreads: number;
  url: string;
  latency: number;
  connect: number;
  userAgent: string;
}

/** One JTL_COLUMNS row (with its line break). */
export function jtlRow(s: JtlSample): string {
  return (
    [
      s.timeStamp,
      s.elapsed,
      csvField(s.label),
      csvField(s.responseCode),
      csvField(s.responseMessage),
      csvField(s.threadName),
      'text',
      s.success,
      csvField(s.failureMessage),
      s.bytes,
      s.sentBytes,
      s.grpThreads,
      s.allThreads,
      csvField(s.url),
      s.latency,
      0,
      s.connect,
      csvField(s.userAgent),
    ].join(',') + '\n'
  );
}
