/**
 * The direct-scrape provider: Prometheus text endpoints (Envoy stats, the sandbox's /metrics) read at the
 * window's start and end; the increase is the counter delta (resets handled by services/scrape).
 */
import {
  counterDeltas,
  exposedLabelValue,
  familyOf,
  scrapeTargets,
  snapshotInstant,
  type ScrapedSeries,
  type ScrapeSnapshot,
} from '../services/scrape.js';
import type {
  CounterIncrease,
  CounterQuery,
  CoveredInterval,
  MetricsProvider,
  MetricsWindow,
} from './types.js';

/** The interval two snapshots' counters cover: the instants they were read, each edge as uncertain as its read. */
function coveredBy(start: ScrapeSnapshot, end: ScrapeSnapshot): CoveredInterval {
  const a = snapshotInstant(start);
  const b = snapshotInstant(end);
  return { start: a.at, end: b.at, uncertaintyMs: Math.max(a.uncertaintyMs, b.uncertaintyMs) };
}

const matches = (s: ScrapedSeries, q: CounterQuery) =>
  Object.entries(q.match ?? {}).every(([k, v]) => s.labels[k] === v);

/** The series summed by the labels `by` (a label a series lacks is left out of its key). */
function sumBy(series: ScrapedSeries[], name: string, by: string[]): CounterIncrease[] {
  const sums = new Map<string, CounterIncrease>();
  for (const s of series) {
    const labels = Object.fromEntries(
      by.filter((k) => s.labels[k] !== undefined).map((k) => [k, s.labels[k]]),
    );
    const key = JSON.stringify(labels);
    const cur = sums.get(key);
    if (cur) cur.value += s.value;
    else sums.set(key, { name, labels, value: s.value });
  }
  return [...sums.values()];
}

/**
 * The series that moved; of a histogram that moved, every bucket — an empty bucket below the first full one
 * is what places the quantiles (without it the lowest bound a quantile can be shown above is 0).
 */
function moved(series: CounterIncrease[]): CounterIncrease[] {
  const histogram = (s: CounterIncrease) =>
    s.name.endsWith('_bucket') ? JSON.stringify({ ...s.labels, le: undefined }) : undefined;
  const live = new Set(series.filter((s) => s.value !== 0).map(histogram));
  return series.filter((s) => s.value !== 0 || (histogram(s) !== undefined && live.has(histogram(s))));
}

/** A label value as the text format writes it, in its quotes. */
const quotedValue = (v: string) => `"${exposedLabelValue(v)}"`;

/** Whether `q` reads only series that one of `reads` selects (same series, a match at least as narrow). */
const selects = (reads: CounterQuery[], q: CounterQuery) =>
  reads.some(
    (r) => r.series === q.series && Object.entries(r.match ?? {}).every(([k, v]) => q.match?.[k] === v),
  );

/**
 * A direct scrape that keeps only the series `reads` (the counter queries its windows will be asked) can read.
 * A mesh's endpoint writes every hop's series with a score of labels each (the sandbox's, several MB a scrape);
 * a line is dropped by its text (every matched value, quoted, must appear in it) before its labels are parsed,
 * which is most of a scrape's cost. Asking a query the selection does not cover is a programming error.
 */
export function scrapeProvider(targets: string[], reads: CounterQuery[]): MetricsProvider {
  const families = new Set(reads.map((q) => familyOf(q.series)));
  const keep = (family: string) => families.has(family);
  const needles = new Map<string, string[][]>();
  for (const q of reads)
    needles.set(q.series, [...(needles.get(q.series) ?? []), Object.values(q.match ?? {}).map(quotedValue)]);
  const keepLine = (name: string, line: string) =>
    needles.get(name)?.some((values) => values.every((v) => line.includes(v))) ?? false;
  const assertCovered = (queries: CounterQuery[]) => {
    for (const q of queries)
      if (!selects(reads, q))
        throw new Error(
          `the direct scrape keeps only the series of its reads; ${JSON.stringify(q)} is not one of them`,
        );
  };
  const NO_BASELINE =
    'no snapshot was taken at the window start; a direct scrape can only measure a window it watched';
  return {
    source: 'scrape',
    system: 'metrics endpoints',
    url: targets.join(' '),
    async open(): Promise<MetricsWindow> {
      // The window starts when the counters were read, not when this was called.
      const baseline = await scrapeTargets(targets, { keep, keepLine });
      return { start: snapshotInstant(baseline).at, baseline };
    },
    async inspect(q) {
      const snap = await scrapeTargets(targets, { keep: (n) => n === q.series });
      return {
        detail: targets.join(', '),
        labelSets: snap.series
          .filter((s) => s.name === q.series && matches(s, { ...q, by: [] }))
          .map((s) => s.labels),
      };
    },
    async close(w, queries) {
      if (w.increase) return w;
      if (!w.baseline) return { start: w.start, problem: NO_BASELINE };
      assertCovered(queries);
      let deltas: ScrapedSeries[];
      let covered: CoveredInterval;
      try {
        const end = await scrapeTargets(w.baseline.targets, { keep, keepLine });
        covered = coveredBy(w.baseline, end);
        deltas = counterDeltas(w.baseline, end);
      } catch (err) {
        return {
          start: w.start,
          problem: `the counters could not be read when the window closed: ${(err as Error).message}`,
        };
      }
      // A scrape has hundreds of series with a score of labels each: only what the queries read is kept, summed
      // by the labels they match and group on, and only series that moved — a mesh keeps a series for every
      // past load run (its run id is a label), and a count that did not move is no evidence (validators/metrics.ts).
      const increase: ScrapedSeries[] = [];
      for (const name of new Set(queries.map((q) => q.series))) {
        const qs = queries.filter((q) => q.series === name);
        const keys = [...new Set(qs.flatMap((q) => [...Object.keys(q.match ?? {}), ...q.by]))];
        const read = deltas.filter((s) => s.name === name && qs.some((q) => matches(s, q)));
        increase.push(...moved(sumBy(read, name, keys)));
      }
      return { start: w.start, increase, covered };
    },
    async increases(w, _end, queries: CounterQuery[], o = {}) {
      if (!queries.length) return [];
      if (w.problem) throw new Error(w.problem);
      assertCovered(queries);
      let deltas = w.increase;
      if (deltas) {
        o.log?.push({
          query: 'counter increase recorded when the window closed',
          at: Date.now(),
          ok: true,
          result: `${deltas.length} series`,
        });
        if (w.covered) o.onInterval?.(w.covered);
      } else if (!w.baseline) throw new Error(NO_BASELINE);
      else {
        const end = await scrapeTargets(w.baseline.targets, { keep, keepLine, log: o.log });
        o.onInterval?.(coveredBy(w.baseline, end));
        deltas = counterDeltas(w.baseline, end);
      }
      const all = deltas;
      return queries.flatMap((q) =>
        sumBy(
          all.filter((s) => s.name === q.series && matches(s, q)),
          q.series,
          q.by,
        ),
      );
    },
  };
}
