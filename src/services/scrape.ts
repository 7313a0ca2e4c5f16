/**
 * Direct scrape of Prometheus text endpoints (Envoy's :15090/stats/prometheus, the sandbox's /metrics) for
 * users without a Prometheus: a snapshot at window start and one at window end give exact counter deltas.
 */
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { createHttpClient } from './http.js';
import { logged, type QueryLog } from './query-log.js';

export interface ScrapedSeries {
  /** Sample name as Prometheus stores it (histograms flattened to `_bucket` with `le`, `_count`, `_sum`). */
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface ScrapeSnapshot {
  at: number;
  targets: string[];
  series: ScrapedSeries[];
}

/** Parse Prometheus text, keeping only families whose name passes `keep`. */
export function parseExposition(text: string, keep: (name: string) => boolean = () => true): ScrapedSeries[] {
  const out: ScrapedSeries[] = [];
  for (const fam of parsePrometheusTextFormat(text)) {
    if (!keep(fam.name)) continue;
    for (const m of fam.metrics) {
      const labels = m.labels ?? {};
      if (fam.type === 'HISTOGRAM' && m.buckets) {
        for (const [le, v] of Object.entries(m.buckets)) out.push({ name: `${fam.name}_bucket`, labels: { ...labels, le: normalizeLe(le) }, value: Number(v) });
        out.push({ name: `${fam.name}_count`, labels, value: Number(m.count) });
        out.push({ name: `${fam.name}_sum`, labels, value: Number(m.sum) });
      } else if (m.value !== undefined) {
        out.push({ name: fam.name, labels, value: Number(m.value) });
      }
    }
  }
  return out;
}

const normalizeLe = (le: string) => (le === '+Inf' || le === 'Inf' ? '+Inf' : String(Number(le)));

/** Scrape every target once. A target that cannot be reached is an InfrastructureError (exit 4). */
export async function scrapeTargets(targets: string[], opts: { keep?: (name: string) => boolean; log?: QueryLog; timeoutMs?: number } = {}): Promise<ScrapeSnapshot> {
  const at = Date.now();
  const series: ScrapedSeries[] = [];
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
        const res = await http.get<string>('', { responseType: 'text', transformResponse: (d: unknown) => d });
        if (res.status >= 400) throw new Error(`HTTP ${res.status}`);
        return String(res.data);
      },
      (t) => `${t.length} bytes`,
    );
    series.push(...parseExposition(text, opts.keep));
  }
  return { at, targets, series };
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
  for (const s of before?.series ?? []) start.set(keyOf(s), (start.get(keyOf(s)) ?? 0) + s.value);
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
