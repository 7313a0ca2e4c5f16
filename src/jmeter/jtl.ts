// Over 400 lines: the streaming JTL reader and the statistics it feeds share the column model.
import { createReadStream, statSync } from 'node:fs';
import { parse as parseCsv } from 'csv-parse/sync';
import type { Histogram } from 'hdr-histogram-js';
import { hdrHistogram } from '../util/lazy-packages.js';
import { InvalidInputError } from '../util/errors.js';
import type { LabelStats, LoadSummary } from './types.js';

/**
 * JTL (JMeter's CSV results) reading and writing. The parser streams: memory grows with the number of labels
 * and seconds, never with rows. Percentiles come from HDR histograms (3 significant digits; exact below 2048 ms).
 */

/** Columns JMeter 2.13 writes without a header line (print_field_names=false, its default). */
export const JMETER_213_DEFAULT = [
  'timeStamp',
  'elapsed',
  'label',
  'responseCode',
  'responseMessage',
  'threadName',
  'dataType',
  'success',
  'bytes',
  'grpThreads',
  'allThreads',
  'Latency',
];
/** JMeter 3.x-5.x default columns (Clover documents these 16, without URL). */
export const JMETER_3_DEFAULT = [
  'timeStamp',
  'elapsed',
  'label',
  'responseCode',
  'responseMessage',
  'threadName',
  'dataType',
  'success',
  'failureMessage',
  'bytes',
  'sentBytes',
  'grpThreads',
  'allThreads',
  'Latency',
  'IdleTime',
  'Connect',
];
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
  hist: Histogram;
  /** Keyed by values from the file: Maps, so a label or code such as "__proto__" is counted like any other. */
  codes: Map<string, number>;
  userAgents: Map<string, number>;
  seconds: Map<number, SecondBucket>;
}

const newHist = () =>
  hdrHistogram().build({
    bitBucketSize: 32,
    autoResize: true,
    numberOfSignificantValueDigits: 3,
    useWebAssembly: false,
  });
const newAcc = (): Acc => ({
  count: 0,
  errors: 0,
  sum: 0,
  min: Infinity,
  max: 0,
  first: Infinity,
  lastEnd: 0,
  hist: newHist(),
  codes: new Map(),
  userAgents: new Map(),
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
    codes: Object.fromEntries(a.codes),
    userAgents: Object.fromEntries(a.userAgents),
  };
}

const count = (m: Map<string, number>, k: string, n = 1) => m.set(k, (m.get(k) ?? 0) + n);

function merge(into: Acc, a: Acc): void {
  into.count += a.count;
  into.errors += a.errors;
  into.sum += a.sum;
  into.min = Math.min(into.min, a.min);
  into.max = Math.max(into.max, a.max);
  into.first = Math.min(into.first, a.first);
  into.lastEnd = Math.max(into.lastEnd, a.lastEnd);
  into.hist.add(a.hist);
  for (const [k, v] of a.codes) count(into.codes, k, v);
  for (const [k, v] of a.userAgents) count(into.userAgents, k, v);
  for (const [s, b] of a.seconds) {
    const t = into.seconds.get(s);
    if (t) {
      t.count += b.count;
      t.errors += b.errors;
      t.sumElapsed += b.sumElapsed;
    } else into.seconds.set(s, { ...b });
  }
}

/** Column names JMeter writes in a JTL header (CSVSaveService); sample variables (`userAgent`) may follow. */
const JMETER_COLUMN_NAMES = new Set([
  ...JMETER_5_DEFAULT,
  'Filename',
  'Encoding',
  'SampleCount',
  'ErrorCount',
  'Hostname',
  USER_AGENT_COLUMN,
]);

/**
 * A header line: cells that name JMeter columns, in any order (no data row holds two of them). JMeter's own
 * reader wants its canonical order; results reshaped by other tools keep the names, so columns map by name.
 */
export const isHeaderRecord = (rec: string[]): boolean =>
  rec.filter((c) => JMETER_COLUMN_NAMES.has(c)).length >= 2;

export function columnsFor(first: string[], file: string): { columns: string[]; header: boolean } {
  if (isHeaderRecord(first)) return { columns: first, header: true };
  const byCount: Record<number, string[]> = {
    12: JMETER_213_DEFAULT,
    16: JMETER_3_DEFAULT,
    17: JMETER_5_DEFAULT,
  };
  const columns = byCount[first.length];
  if (!columns) {
    throw new InvalidInputError(
      `${file}: a JTL without a header line must have JMeter's default columns (12 for 2.13, 16 or 17 for 3.x-5.x); found ${first.length}`,
      [
        {
          file,
          path: 'line 1',
          message:
            'add the header line (jmeter.save.saveservice.print_field_names=true) or use the default columns',
        },
      ],
    );
  }
  return { columns, header: false };
}

export interface AnalyzeOptions {
  /** User-Agent per label, for JTLs without a userAgent column (taken from the plan that produced them). */
  userAgentByLabel?: Record<string, string>;
  /** A file with no sample is bad input (exit 2), as for `load report`; a run that sent nothing is not. */
  requireSamples?: boolean;
}

/** Bad rows reported at most; the first ones say enough about a file in the wrong format. */
const MAX_ROW_PROBLEMS = 5;

function checkJtlFile(file: string): void {
  let st;
  try {
    st = statSync(file);
  } catch {
    throw new InvalidInputError(`cannot read ${file}: no such file`, [
      { file, path: '', message: 'file not found; expected a JMeter results file (CSV JTL)' },
    ]);
  }
  if (st.isDirectory())
    throw new InvalidInputError(`${file} is a directory`, [
      { file, path: '', message: 'is a directory; expected a JMeter results file (CSV JTL)' },
    ]);
  if (!st.isFile() && !st.isFIFO())
    throw new InvalidInputError(`${file} is not a regular file`, [
      { file, path: '', message: 'is a device or socket; expected a JMeter results file (CSV JTL)' },
    ]);
}

/** What is wrong with one data row, or undefined; `line` is 1-based. */
function rowProblem(
  rec: string[],
  ix: { ts: number; el: number; label: number; ok: number },
  columns: string[],
): string | undefined {
  const need = Math.max(ix.ts, ix.el, ix.label, ix.ok);
  if (rec.length <= need)
    return `expected ${columns.length} columns (${columns.slice(0, 4).join(', ')}, ...), found ${rec.length}`;
  const ts = rec[ix.ts];
  // Epoch ms (JMeter's default) or a formatted date (timestamp_format such as yyyy/MM/dd HH:mm:ss.SSS).
  if (!(/^\d{9,}$/.test(ts) || (/^\d{4}[-/]\d{1,2}[-/]\d{1,2}/.test(ts) && Number.isFinite(Date.parse(ts)))))
    return `column timeStamp: expected epoch milliseconds or a date, found "${ts.slice(0, 40)}"`;
  const el = rec[ix.el];
  if (!/^\d+(\.\d+)?$/.test(el))
    return `column elapsed: expected milliseconds (a number >= 0), found "${el.slice(0, 40)}"`;
  if (Number(el) > 86_400_000) return `column elapsed: expected at most a day in milliseconds, found ${el}`;
  const ok = rec[ix.ok];
  if (ok !== 'true' && ok !== 'false')
    return `column success: expected true or false, found "${ok.slice(0, 40)}"`;
  return undefined;
}

/** Stream a JTL into per-label and total statistics. */
export async function analyzeJtl(file: string, opts: AnalyzeOptions = {}): Promise<JtlAnalysis> {
  checkJtlFile(file);
  const labels = new Map<string, Acc>();
  let ix: { ts: number; el: number; label: number; code: number; ok: number; ua: number } | undefined;
  let columns: string[] = [];
  let rows = 0;
  let records = 0;
  const bad: Array<{ line: number; message: string; record: number }> = [];
  await eachRecord(file, (rec, line) => {
    records++;
    if (!ix) {
      if (/^\s*<(\?xml|testResults)/.test(rec.join(','))) {
        throw new InvalidInputError(`${file}: an XML JTL`, [
          {
            file,
            path: 'line 1',
            message:
              'expected a CSV JTL; this file is XML: run JMeter with -Jjmeter.save.saveservice.output_format=csv',
          },
        ]);
      }
      const found = columnsFor(rec, file);
      const header = found.header;
      columns = found.columns;
      const at = (name: string) => columns.indexOf(name);
      ix = {
        ts: at('timeStamp'),
        el: at('elapsed'),
        label: at('label'),
        code: at('responseCode'),
        ok: at('success'),
        ua: at(USER_AGENT_COLUMN),
      };
      for (const need of ['timeStamp', 'elapsed', 'label', 'success'] as const) {
        if (at(need) < 0)
          throw new InvalidInputError(`${file}: the JTL header has no "${need}" column`, [
            {
              file,
              path: 'line 1',
              message: `expected a "${need}" column among ${columns.slice(0, 8).join(', ')}${columns.length > 8 ? ', ...' : ''}`,
            },
          ]);
      }
      if (header) return;
    }
    if (isHeaderRecord(rec)) {
      throw new InvalidInputError(
        `${file}: a second header line at row ${rows + 2}: the file holds several appended runs; write each run to a fresh file`,
      );
    }
    const problem = rowProblem(rec, ix, columns);
    if (problem) {
      if (bad.length <= MAX_ROW_PROBLEMS) bad.push({ line, message: problem, record: records });
      return;
    }
    const ts = Number(rec[ix.ts]) || Date.parse(rec[ix.ts]);
    const elapsed = Number(rec[ix.el]);
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
    count(a.codes, code);
    const ua = ix.ua >= 0 ? rec[ix.ua] : opts.userAgentByLabel?.[label];
    if (ua) count(a.userAgents, ua);
    const sec = Math.floor(ts / 1000);
    const b = a.seconds.get(sec);
    if (b) {
      b.count++;
      if (failed) b.errors++;
      b.sumElapsed += elapsed;
    } else a.seconds.set(sec, { count: 1, errors: failed ? 1 : 0, sumElapsed: elapsed });
  });
  // A killed run leaves its last line cut short: that one line is skipped; any other bad row is bad input.
  const problems = bad.filter((b) => !(bad.length === 1 && b.record === records));
  if (problems.length) {
    throw new InvalidInputError(
      `${file}: not a JMeter CSV JTL in the columns ${columns.length === JTL_COLUMNS.length ? 'clover-cd writes' : 'its header names'} (${problems.length > MAX_ROW_PROBLEMS ? `more than ${MAX_ROW_PROBLEMS}` : problems.length} bad row${problems.length > 1 ? 's' : ''})`,
      problems.slice(0, MAX_ROW_PROBLEMS).map((b) => ({ file, path: `line ${b.line}`, message: b.message })),
    );
  }
  if (opts.requireSamples && rows === 0) {
    throw new InvalidInputError(`${file}: no samples`, [
      {
        file,
        path: records ? 'line 2' : 'line 1',
        message: records
          ? 'expected at least one sample row after the header'
          : 'the file is empty; expected a JMeter results file (CSV JTL)',
      },
    ]);
  }
  const total = newAcc();
  for (const a of labels.values()) merge(total, a);
  const summary: LoadSummary = { total: toStats(total), labels: {} };
  summary.labels = Object.fromEntries(
    [...labels].sort(([x], [y]) => x.localeCompare(y)).map(([k, a]) => [k, toStats(a)]),
  );
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
    timeline: (label) =>
      [...(accOf(label)?.seconds ?? new Map<number, SecondBucket>())].sort(([x], [y]) => x - y),
  };
}

/** Longest record a quoted field may spread over (a label or message with line breaks); longer is a quote never closed. */
const MAX_QUOTED_RECORD = 1 << 20;

/**
 * Records of a CSV file, streamed. Most JTL lines hold no quote, and a plain split is several times faster
 * than a general CSV parser; lines with quotes (labels or messages holding commas, quotes or line breaks)
 * go through csv-parse, joined with the following lines while a quoted field is still open. A quote inside
 * an unquoted field is a character (JMeter quotes such a field, tools that convert results often do not:
 * `say hi"`); a byte-order mark before the first line (Windows tools) is dropped.
 */
export async function eachRecord(
  file: string,
  onRecord: (rec: string[], line: number) => void,
): Promise<void> {
  let rest = '';
  let pending = '';
  let lineNo = 0;
  let start = 0;
  let first = true;
  const stream = createReadStream(file, { encoding: 'utf8', highWaterMark: 1 << 18 });
  const neverClosed = () =>
    new InvalidInputError(`${file}: line ${start}: a quoted field is never closed`, [
      {
        file,
        path: `line ${start}`,
        message: 'expected a field that starts with " to end with " (a quote inside it doubled, "")',
      },
    ]);
  const quoted = (line: string): string[] | undefined => {
    if (!pending) start = lineNo;
    pending = pending ? `${pending}\n${line}` : line;
    try {
      const rec =
        (parseCsv(pending, { relax_quotes: true, relax_column_count: true }) as string[][])[0] ?? [];
      pending = '';
      return rec;
    } catch (err) {
      if ((err as { code?: string }).code !== 'CSV_QUOTE_NOT_CLOSED') {
        const rec = pending.split(','); // the row check names what is wrong with it
        pending = '';
        return rec;
      }
      if (pending.length > MAX_QUOTED_RECORD) throw neverClosed();
      return undefined; // a quoted field continues on the next line
    }
  };
  for await (let chunk of stream as AsyncIterable<string>) {
    if (first && chunk.startsWith('\uFEFF')) chunk = chunk.slice(1);
    first = false;
    const lines = (rest + chunk).split('\n');
    rest = lines.pop() ?? '';
    for (let line of lines) {
      lineNo++;
      if (line.endsWith('\r')) line = line.slice(0, -1);
      if (pending || line.includes('"')) {
        const rec = quoted(line);
        if (rec) onRecord(rec, start);
      } else if (line) onRecord(line.split(','), lineNo);
    }
  }
  if (rest || pending) {
    lineNo++;
    const rec = pending || rest.includes('"') ? quoted(rest) : rest.split(',');
    // Still open at the end: a cut-off last line (a killed run) is skipped; an open quote over several lines is not.
    if (!rec && pending.includes('\n')) throw neverClosed();
    if (rec && rec.length > 1) onRecord(rec, pending ? start : lineNo);
  }
}

/** Per-label and total statistics of a JTL. */
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
