/**
 * A JTL as time series per label: requests, errors and latency percentiles per time bucket, for charts.
 * A second streaming pass after `analyzeJtl` (which gives the time span): at most `maxPoints` buckets per
 * label, each a log-scale latency histogram of 8 bins per doubling (percentiles within ±4.5%), so memory is
 * bounded by labels × points, never by rows.
 */
import { columnsFor, eachRecord, isHeaderRecord } from './jtl.js';

export interface SeriesPoint {
  /** Bucket start, epoch seconds. */
  t: number;
  count: number;
  errors: number;
  /** Requests and errors per second over the bucket. */
  rps: number;
  eps: number;
  p50: number | null;
  p90: number | null;
  p99: number | null;
}

export interface JtlSeries {
  bucketMs: number;
  /** Label → points, ascending; "TOTAL" holds every label. */
  labels: Record<string, SeriesPoint[]>;
}

const PER_DOUBLING = 8;
const BINS = PER_DOUBLING * 24; // 1 ms .. ~4.6 hours
const binOf = (ms: number) => (ms < 1 ? 0 : Math.min(BINS - 1, 1 + Math.floor(Math.log2(ms) * PER_DOUBLING)));
/** Geometric middle of a bin (ms). */
const valueOf = (bin: number) => (bin === 0 ? 0.5 : Math.pow(2, (bin - 0.5) / PER_DOUBLING));

interface Bucket {
  count: number;
  errors: number;
  bins: Uint32Array;
}

function percentile(b: Bucket, q: number): number | null {
  if (!b.count) return null;
  const rank = Math.ceil(q * b.count);
  let seen = 0;
  for (let i = 0; i < BINS; i++) {
    seen += b.bins[i];
    if (seen >= rank) return +valueOf(i).toFixed(2);
  }
  return null;
}

/** Time series of a JTL between `firstTs` and `lastEnd` (epoch ms, from `analyzeJtl`). At most `maxLabels` labels, busiest first. */
export async function jtlSeries(
  file: string,
  span: { firstTs: number; lastEnd: number },
  opts: { maxPoints?: number; labels?: string[] } = {},
): Promise<JtlSeries> {
  const maxPoints = opts.maxPoints ?? 240;
  const bucketMs = Math.max(1000, Math.ceil((span.lastEnd - span.firstTs) / maxPoints / 1000) * 1000);
  const start = Math.floor(span.firstTs / bucketMs) * bucketMs;
  const n = Math.max(1, Math.floor((span.lastEnd - start) / bucketMs) + 1);
  const wanted = opts.labels ? new Set(opts.labels) : undefined;
  const byLabel = new Map<string, Bucket[]>();
  const bucketsOf = (label: string) => {
    let b = byLabel.get(label);
    if (!b)
      byLabel.set(
        label,
        (b = Array.from({ length: n }, () => ({ count: 0, errors: 0, bins: new Uint32Array(BINS) }))),
      );
    return b;
  };
  let ix: { ts: number; el: number; label: number; ok: number } | undefined;
  await eachRecord(file, (rec) => {
    if (!ix) {
      const { columns, header } = columnsFor(rec, file);
      ix = {
        ts: columns.indexOf('timeStamp'),
        el: columns.indexOf('elapsed'),
        label: columns.indexOf('label'),
        ok: columns.indexOf('success'),
      };
      if (header) return;
    }
    if (isHeaderRecord(rec)) return;
    const ts = Number(rec[ix.ts]) || Date.parse(rec[ix.ts]);
    const elapsed = Number(rec[ix.el]);
    if (!Number.isFinite(ts) || !Number.isFinite(elapsed)) return;
    const i = Math.floor((ts - start) / bucketMs);
    if (i < 0 || i >= n) return;
    const failed = rec[ix.ok] !== 'true';
    for (const label of [rec[ix.label], 'TOTAL']) {
      if (wanted && label !== 'TOTAL' && !wanted.has(label)) continue;
      const b = bucketsOf(label)[i];
      b.count++;
      if (failed) b.errors++;
      b.bins[binOf(elapsed)]++;
    }
  });
  const labels: Record<string, SeriesPoint[]> = {};
  for (const [label, buckets] of byLabel) {
    labels[label] = buckets.map((b, i) => ({
      t: (start + i * bucketMs) / 1000,
      count: b.count,
      errors: b.errors,
      rps: +(b.count / (bucketMs / 1000)).toFixed(3),
      eps: +(b.errors / (bucketMs / 1000)).toFixed(3),
      p50: percentile(b, 0.5),
      p90: percentile(b, 0.9),
      p99: percentile(b, 0.99),
    }));
  }
  return { bucketMs, labels };
}
