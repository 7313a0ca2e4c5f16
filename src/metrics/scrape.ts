/**
 * The direct-scrape provider: Prometheus text endpoints (Envoy stats, the sandbox's /metrics) read at the
 * window's start and end; the increase is the counter delta (resets handled by services/scrape).
 */
import { counterDeltas, familyOf, scrapeTargets, snapshotInstant } from '../services/scrape.js';
import type { CounterIncrease, CounterQuery, MetricsProvider, MetricsWindow } from './types.js';

export function scrapeProvider(targets: string[], families: string[]): MetricsProvider {
  const keep = (n: string) => families.includes(n) || families.includes(familyOf(n));
  return {
    source: 'scrape',
    url: targets.join(' '),
    async open(): Promise<MetricsWindow> {
      // The window starts when the counters were read, not when this was called.
      const baseline = await scrapeTargets(targets, { keep });
      return { start: snapshotInstant(baseline).at, baseline };
    },
    async increases(w, _end, queries: CounterQuery[], o = {}) {
      if (!queries.length) return [];
      if (!w.baseline) throw new Error('no snapshot was taken at the window start; a direct scrape can only measure a window it watched');
      const end = await scrapeTargets(w.baseline.targets, { keep, log: o.log });
      const a = snapshotInstant(w.baseline);
      const b = snapshotInstant(end);
      o.onInterval?.({ start: a.at, end: b.at, uncertaintyMs: Math.max(a.uncertaintyMs, b.uncertaintyMs) });
      const deltas = counterDeltas(w.baseline, end);
      const out: CounterIncrease[] = [];
      for (const q of queries) {
        const sums = new Map<string, CounterIncrease>();
        for (const s of deltas) {
          if (s.name !== q.series || !Object.entries(q.match ?? {}).every(([k, v]) => s.labels[k] === v)) continue;
          const labels = Object.fromEntries(q.by.filter((k) => s.labels[k] !== undefined).map((k) => [k, s.labels[k]]));
          const key = JSON.stringify(labels);
          const cur = sums.get(key);
          if (cur) cur.value += s.value;
          else sums.set(key, { name: q.series, labels, value: s.value });
        }
        out.push(...sums.values());
      }
      return out;
    },
  };
}
