import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import { JMETER_3_DEFAULT, loadPlan, runLoad, type LoadPlan, type LoadRunResult } from '../jmeter/index.js';
import type { Platform } from '../services/platform.js';
import { InvalidInputError } from '../util/errors.js';
import type { CloverBackend } from './clover-routes.js';

/**
 * Clover's JMeter master behind /jmeter/gen, /jmeter/start, /jmeter/results/*: a start answers
 * "Started jmeter on pid: N" as soon as the load runs (JMeter's pid; this process's for the builtin engine);
 * a start during a run starts another run beside it, as Clover's Popen did; results are read while runs are
 * going (the partial log and JTL). Runs since the last /jmeter/gen make up Clover's default.jtl (appended,
 * one header) and jmeter.log; the JTL is given in the 16 columns Clover documented.
 */
/** Clover documented JMeter 3's 16 default columns. */
export const CLOVER_JTL_COLUMNS = JMETER_3_DEFAULT;

interface Run {
  pid?: number;
  engine?: 'jmeter' | 'builtin';
  jtl: string;
  log?: string;
  /** Log lines of the builtin engine (JMeter writes its own log file). */
  lines: string[];
  result?: LoadRunResult;
  error?: string;
}

/** One CSV field as JMeter writes it: quoted only when it holds the delimiter, a quote or a line break. */
const csvField = (v: string) => (/[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);

const stamp = (ms = Date.now()) =>
  new Date(ms).toISOString().replace('T', ' ').replace(/\..*$/, '').replace(/-/g, '/');

/** JMeter's summariser line ("summary = N in hh:mm:ss = r/s Avg: Min: Max: Err: n (p%)"), for the builtin engine's log. */
export function summaryLine(r: LoadRunResult): string {
  const t = r.summary.total;
  const s = Math.round((r.endedAt - r.startedAt) / 1000);
  const hms = [Math.floor(s / 3600), Math.floor(s / 60) % 60, s % 60]
    .map((n) => String(n).padStart(2, '0'))
    .join(':');
  return `summary = ${String(t.count).padStart(6)} in ${hms} = ${t.throughput.toFixed(1).padStart(6)}/s Avg: ${String(Math.round(t.mean)).padStart(5)} Min: ${String(Math.round(t.min)).padStart(5)} Max: ${String(Math.round(t.max)).padStart(5)} Err: ${String(t.errors).padStart(5)} (${(t.errorRate * 100).toFixed(2)}%)`;
}

/**
 * A JTL (any column set with a header line, possibly still being written) in Clover's 16 columns. Columns the
 * engine did not record (JMeter 2.13 has no sentBytes) are left empty; a trailing partial line is left out.
 */
export function toCloverJtl(text: string, withHeader: boolean): string {
  const end = text.lastIndexOf('\n');
  const complete = end < 0 ? '' : text.slice(0, end + 1);
  const rows = complete
    ? (parseCsv(complete, { relax_column_count: true, relax_quotes: true }) as string[][])
    : [];
  const [header, ...samples] = rows;
  const out: string[] = withHeader ? [CLOVER_JTL_COLUMNS.join(',')] : [];
  if (header) {
    const at = CLOVER_JTL_COLUMNS.map((c) => header.indexOf(c));
    for (const r of samples) out.push(at.map((i) => (i < 0 ? '' : csvField(r[i] ?? ''))).join(','));
  }
  return out.length ? out.join('\n') + '\n' : '';
}

export interface CloverJmeterOptions {
  platform: Platform;
  baseDir?: string;
  /** Where run files go (default: a new temp directory). */
  workDir?: string;
}

export function cloverJmeterBackend(
  opts: CloverJmeterOptions,
): Required<Pick<CloverBackend, 'jmeterGen' | 'jmeterStart' | 'jmeterResults'>> & { runs(): readonly Run[] } {
  let plan: LoadPlan | undefined;
  let runs: Run[] = [];
  let dir: string | undefined;
  let n = 0;
  return {
    runs: () => runs,
    async jmeterGen(doc) {
      // Only a plan document: a string would be a file name, and a request never makes the server read a file.
      if (doc === null || typeof doc !== 'object' || Array.isArray(doc))
        throw new InvalidInputError('expected the test plan as a JSON object');
      plan = loadPlan(doc as object);
      runs = []; // a new plan starts a new default.jtl
      return 'Generated test plan';
    },
    async jmeterStart({ slaveList }) {
      if (!plan) throw new InvalidInputError('no test plan: POST one to /jmeter/gen first');
      dir ??= opts.workDir ?? mkdtempSync(join(tmpdir(), 'clover-cd-jmeter-'));
      const run: Run = { jtl: join(dir, `run-${++n}.jtl`), lines: [] };
      runs.push(run);
      const target = opts.platform.kind === 'sandbox' ? opts.platform.endpoints().ingress : undefined;
      const remote = (slaveList ?? []).map((ip) => (ip.includes(':') ? ip : `${ip}:1099`));
      let started!: () => void;
      const startedP = new Promise<void>((r) => (started = r));
      const done = runLoad(plan, {
        engine: remote.length ? 'jmeter' : 'auto',
        target,
        remote,
        resultsFile: run.jtl,
        onStart: (i) => {
          Object.assign(run, { pid: i.pid, engine: i.engine, log: i.log });
          started();
        },
        onProgress: (p) => {
          if (run.engine === 'builtin')
            run.lines.push(
              `${stamp()} INFO  - clover-cd builtin engine: ${p.sent} samples, ${p.errors} errors in ${Math.round(p.elapsedS)}s`,
            );
        },
      }).then(
        (r) => {
          run.result = r;
          if (run.engine === 'builtin')
            run.lines.push(`${stamp(r.endedAt)} INFO  - jmeter.reporters.Summariser: ${summaryLine(r)}`);
        },
        (e: Error) => {
          run.error = e.message;
        },
      );
      await Promise.race([startedP, done]);
      // Clover's StartTest answered the exception text when the launch failed (still HTTP 200).
      return run.pid
        ? `Started jmeter on pid: ${run.pid}`
        : `Failed to start jmeter: ${run.error ?? 'unknown error'}`;
    },
    async jmeterResults(kind) {
      const live = runs.filter((r) => r.pid);
      if (!live.length) return 'Failed to retrieve results';
      if (kind === 'results') {
        const text = live
          .map((r, i) =>
            existsSync(r.jtl)
              ? toCloverJtl(readFileSync(r.jtl, 'utf8'), i === 0)
              : i === 0
                ? toCloverJtl('', true)
                : '',
          )
          .join('');
        return `Retrieved all results\n${text}`;
      }
      const logs = live.map((r) => {
        const text =
          r.log && existsSync(r.log) ? readFileSync(r.log, 'utf8') : r.lines.map((l) => `${l}\n`).join('');
        return r.error ? `${text}${stamp()} ERROR - clover-cd: ${r.error}\n` : text;
      });
      return `Retrieved all results\n${logs.join('')}`;
    },
  };
}
