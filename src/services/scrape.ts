/**
 * Direct scrape of Prometheus text endpoints (Envoy's :15090/stats/prometheus, the sandbox's /metrics) for
 * users without a Prometheus: a snapshot at window start and one at window end give exact counter deltas.
 */
import { createHttpClient } from './http.js';
import { logged, type QueryLog } from './query-log.js';

export interface ScrapedSeries {
  /** Sample name as Prometheus stores it (histograms flattened to `_bucket` with `le`, `_count`, `_sum`). */
  name: string;
  labels: Record<string, string>;
  value: number;
  /** The sample's own timestamp (epoch ms), when the endpoint writes one. */
  ts?: number;
}

export interface ScrapeSnapshot {
  /** When the first request was sent and the last answer received (epoch ms): the counters were read in between. */
  at: number;
  receivedAt?: number;
  /** The instants the endpoints wrote on their samples (earliest and latest), when every endpoint wrote one. */
  stamped?: { first: number; last: number };
  targets: string[];
  series: ScrapedSeries[];
}

/**
 * Parse Prometheus text exposition into flat samples, keeping only families whose name passes `keep` and lines
 * that pass `keepLine` (a test of the raw line, before its labels are parsed: most of a parse's cost).
 * Histograms stay as Prometheus stores them (`_bucket` with `le`, `_count`, `_sum`). Parsed here rather
 * than with parse-prometheus-text-format, which drops the labels of histogram samples.
 */
export function parseExposition(
  text: string,
  keep: (family: string) => boolean = () => true,
  keepLine?: (name: string, line: string) => boolean,
): ScrapedSeries[] {
  const out: ScrapedSeries[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const brace = line.indexOf('{');
    const space = line.indexOf(' ');
    const nameEnd = brace >= 0 && (space < 0 || brace < space) ? brace : space;
    if (nameEnd <= 0) continue;
    const name = line.slice(0, nameEnd);
    if (!keep(familyOf(name)) || (keepLine && !keepLine(name, line))) continue;
    const labels: Record<string, string> = {};
    let rest = line.slice(nameEnd);
    if (rest.startsWith('{')) {
      const re = /\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?/y;
      let i = 1;
      for (;;) {
        re.lastIndex = i;
        const m = re.exec(rest);
        if (!m) break;
        labels[m[1]] = m[2].replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
        i = re.lastIndex;
      }
      const close = rest.indexOf('}', i);
      rest = rest.slice(close + 1);
    }
    const [valueText, tsText] = rest.trim().split(/\s+/);
    const value = Number(valueText);
    if (labels.le !== undefined) labels.le = normalizeLe(labels.le);
    const ts = tsText === undefined ? undefined : Number(tsText);
    if (!Number.isNaN(value))
      out.push(
        ts !== undefined && Number.isFinite(ts) ? { name, labels, value, ts } : { name, labels, value },
      );
  }
  return out;
}

/** A label value as the text format writes it, between its quotes (backslash, double quote and newline escaped). */
export const exposedLabelValue = (v: string): string =>
  v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

const normalizeLe = (le: string) => (le === '+Inf' || le === 'Inf' ? '+Inf' : String(Number(le)));

/** The family a sample belongs to: histogram and summary samples drop their suffix. */
export const familyOf = (name: string) => name.replace(/_(bucket|count|sum)$/, '');

/** Scrape every target once. A target that cannot be reached is an InfrastructureError (exit 4). */
export async function scrapeTargets(
  targets: string[],
  opts: {
    keep?: (family: string) => boolean;
    keepLine?: (name: string, line: string) => boolean;
    log?: QueryLog;
    timeoutMs?: number;
  } = {},
): Promise<ScrapeSnapshot> {
  const at = Date.now();
  const series: ScrapedSeries[] = [];
  const stamps: number[] = [];
  for (const url of targets) {
    const http = createHttpClient({
      system: 'metrics endpoint',
      baseURL: url,
      timeoutMs: opts.timeoutMs ?? 10_000,
      hint: `that ${url} serves Prometheus text (Envoy: :15090/stats/prometheus) and that gate.metrics.targets is right`,
    });
    const text = await logged(
      opts.log,
      `scrape ${url}`,
      async () => {
        const res = await http.get<string>('', {
          responseType: 'text',
          transformResponse: (d: unknown) => d,
        });
        if (res.status >= 400) throw new Error(`HTTP ${res.status}`);
        return String(res.data);
      },
      (t) => `${t.length} bytes`,
    );
    const parsed = parseExposition(text, opts.keep, opts.keepLine);
    const stamp = parsed.reduce((m, x) => (x.ts !== undefined && x.ts > m ? x.ts : m), -Infinity);
    if (Number.isFinite(stamp)) stamps.push(stamp);
    series.push(...parsed);
  }
  const snapshot: ScrapeSnapshot = { at, receivedAt: Date.now(), targets, series };
  if (stamps.length === targets.length && stamps.length)
    snapshot.stamped = { first: Math.min(...stamps), last: Math.max(...stamps) };
  return snapshot;
}

const keyOf = (s: ScrapedSeries) =>
  `${s.name}{${Object.keys(s.labels)
    .sort()
    .map((k) => `${k}=${JSON.stringify(s.labels[k])}`)
    .join(',')}}`;

/**
 * Counter increase from `before` to `after`, per series. A series absent before started in the window (0);
 * a value that went down is a counter reset (the process restarted), so the increase is the new value.
 */
export function counterDeltas(before: ScrapeSnapshot | undefined, after: ScrapeSnapshot): ScrapedSeries[] {
  const start = new Map<string, number>();
  for (const s of before?.series ?? []) {
    const k = keyOf(s);
    start.set(k, (start.get(k) ?? 0) + s.value);
  }
  const end = new Map<string, ScrapedSeries>();
  for (const s of after.series) {
    const k = keyOf(s);
    const e = end.get(k);
    end.set(k, e ? { ...e, value: e.value + s.value } : { ...s });
  }
  const out: ScrapedSeries[] = [];
  for (const [k, s] of end) {
    const b = start.get(k) ?? 0;
    out.push({ ...s, value: s.value >= b ? s.value - b : s.value });
  }
  return out;
}

/**
 * The instant a snapshot stands for, and how far off it may be: the instants its endpoints wrote on their samples
 * (± half their spread), else the middle of its requests, ± half their length.
 */
export function snapshotInstant(s: ScrapeSnapshot): { at: number; uncertaintyMs: number } {
  if (s.stamped)
    return {
      at: (s.stamped.first + s.stamped.last) / 2,
      uncertaintyMs: (s.stamped.last - s.stamped.first) / 2,
    };
  const until = s.receivedAt ?? s.at;
  return { at: (s.at + until) / 2, uncertaintyMs: (until - s.at) / 2 };
}
