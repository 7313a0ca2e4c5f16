/**
 * The Prometheus provider: counter increases as the difference of two instant queries (`sum by (…)` at the
 * window's start and end). The end is read after a scrape past the window's end (one scrape interval
 * later), or the window's last requests would be missed.
 */
import { createPrometheusClient } from '../services/prometheus.js';
import { seriesSelector } from './telemetry.js';
import { sleep } from '../util/retry.js';
import type { CounterIncrease, CounterQuery, MetricsProvider, MetricsWindow } from './types.js';

/** Counter increases between two instant results: a series absent at the start began in the window; a value that went down was reset. */
export function increases(
  start: Array<{ labels: Record<string, string>; value: number }>,
  end: Array<{ labels: Record<string, string>; value: number }>,
  name: string,
): CounterIncrease[] {
  const key = (l: Record<string, string>) =>
    JSON.stringify(
      Object.keys(l)
        .sort()
        .map((k) => [k, l[k]]),
    );
  const before = new Map(start.map((s) => [key(s.labels), s.value]));
  return end.map((s) => {
    const b = before.get(key(s.labels)) ?? 0;
    return { name, labels: s.labels, value: s.value >= b ? s.value - b : s.value };
  });
}

export function prometheusProvider(url: string, opts: { scrapeIntervalMs?: number } = {}): MetricsProvider {
  const scrapeMs = opts.scrapeIntervalMs ?? 15_000;
  return {
    source: 'prometheus',
    system: 'Prometheus',
    url,
    scrapeIntervalMs: scrapeMs,
    async open(): Promise<MetricsWindow> {
      return { start: Date.now() };
    },
    async close(w) {
      return w;
    },
    async inspect(q) {
      const prom = createPrometheusClient(url, { attempts: 2 });
      const now = Date.now();
      const labelSets = await prom.series(seriesSelector(q.series, q.match), now - 3_600_000, now);
      const targets = await prom.targets();
      const intervals = targets.map((t) => t.scrapeIntervalMs).filter((x): x is number => !!x);
      const down = targets.filter((t) => t.health !== 'up');
      return {
        detail: `${url}: ${targets.length} active targets${down.length ? `, ${down.length} not up (${down.map((t) => t.scrapeUrl).join(', ')})` : ''}`,
        labelSets,
        scrapeIntervalMs: intervals.length ? Math.max(...intervals) : undefined,
      };
    },
    async increases(w, end, queries: CounterQuery[], o = {}) {
      if (!queries.length) return [];
      const prom = createPrometheusClient(url, { log: o.log });
      const endEval = o.settle === false ? Date.now() : end + scrapeMs;
      const wait = endEval + 250 - Date.now();
      if (o.settle !== false && wait > 0) {
        o.onNote?.(`waiting ${Math.ceil(wait / 1000)}s for Prometheus to scrape past the window end`);
        await sleep(Math.min(wait, 3 * scrapeMs));
      }
      const at = Math.min(Date.now(), endEval);
      const out: CounterIncrease[] = [];
      for (const q of queries) {
        const promql = `sum by (${q.by.join(', ')}) (${seriesSelector(q.series, q.match)})`;
        out.push(...increases(await prom.instant(promql, w.start), await prom.instant(promql, at), q.series));
      }
      if (o.onInterval) {
        // The counters hold what the last scrape before each instant saw: the interval they cover runs between
        // those scrapes, which different targets take at different phases.
        const stamps = `timestamp(${seriesSelector(queries[0].series, queries[0].match)})`;
        const edge = async (t: number) => {
          const [lo] = await prom.instant(`min(${stamps})`, t);
          const [hi] = await prom.instant(`max(${stamps})`, t);
          return lo && hi
            ? { at: ((lo.value + hi.value) / 2) * 1000, spread: ((hi.value - lo.value) / 2) * 1000 }
            : { at: t, spread: 0 };
        };
        const [a, b] = [await edge(w.start), await edge(at)];
        o.onInterval({ start: a.at, end: b.at, uncertaintyMs: Math.max(a.spread, b.spread) });
      }
      return out;
    },
  };
}
